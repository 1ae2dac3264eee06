"""Model quality: its inputs (baseline columns, or captures merged with ground truth) and its metrics, constraints
and checks.
"""
