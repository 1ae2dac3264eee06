"""Explainability: Kernel SHAP with its baseline, and partial dependence (PDP)."""
