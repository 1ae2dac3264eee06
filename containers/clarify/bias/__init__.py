"""Bias: facet groups and outcomes as booleans, the pre-training and post-training metrics (smclarify 0.5 arithmetic)
and the bias blocks of ``analysis.json``.
"""
