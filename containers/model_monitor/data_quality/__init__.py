"""Data quality: column profiles and KLL sketches, ``statistics.json`` and ``constraints.json`` (suggested and read
back), and the checks of a window against them (``constraint_violations.json``, distribution distances).
"""
