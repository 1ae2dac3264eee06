"""The built-in XGBoost algorithm, compatible with the open-source SageMaker XGBoost container
(docs/algorithms/xgboost.md)."""

from __future__ import annotations

__all__ = ["HANDLER"]

# The serving handler, as ``serve`` imports it in every gunicorn worker.
HANDLER = "containers.xgboost.serve:XGBoostHandler"
