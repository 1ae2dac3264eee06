"""The scikit-learn framework image (``sagemaker-scikit-learn``): script-mode training and serving, and processing
jobs' commands (docs/containers.md, "Framework containers")."""

from __future__ import annotations

__all__ = ["HANDLER"]

# The serving handler, as ``serve`` imports it in every gunicorn worker.
HANDLER = "containers.scikit_learn.serve:ScikitLearnHandler"
