"""The feature step's encoding in pandas, for code that encodes raw German credit rows outside the pipeline.

The ``Features`` step runs the Spark job ``spark_jobs/features/credit.py`` (``pipelines`` may not import
``spark_jobs``); the model is trained on its columns. ``build_table`` gives the same columns in the same order for
the same raw rows, so rows encoded here (the monitor demo's traffic, ``make deploy``'s smoke test) are what the model
expects: ``risk``, the numerics ``job, credit_amount, duration, age``, ``sex`` (1 = female), then one-hot
``<column>__<level>`` columns for every level present in ``frame`` (sorted; categoricals trimmed and lower-cased,
``not_known``/``NA``/... as level ``missing``). Unlike the Spark job it keeps missing numerics empty (the job imputes
train medians) so Model Monitor can see them, and it keeps every row. ``tests/spark`` checks both agree.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

LABEL = "risk"
NUMERIC = ("job", "credit_amount", "duration", "age")
BINARY = "sex"
BINARY_POSITIVE = "female"
CATEGORICAL = ("housing", "saving_accounts", "checking_account", "purpose")
MISSING_TOKENS = frozenset(("", "na", "n/a", "nan", "null", "none", "not_known", "unknown", "?"))
MISSING_LEVEL = "missing"


def one_hot_name(column: str, level: str) -> str:
    return f"{column}__{re.sub(r'[^0-9a-z]+', '_', level.lower()).strip('_') or 'blank'}"


def clean_category(values: pd.Series) -> pd.Series:
    """Trimmed, lower-cased text; missing tokens and empty cells become ``missing``."""
    text = values.astype("string").str.strip().str.lower()
    return text.where(~text.isin(MISSING_TOKENS) & text.notna(), MISSING_LEVEL).astype(str)


def build_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Label first, then the model's input columns, in the Spark feature job's order (float64 values)."""
    columns: dict[str, pd.Series] = {LABEL: pd.to_numeric(frame[LABEL], errors="coerce").astype(np.float64)}
    for column in NUMERIC:
        columns[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    columns[BINARY] = (clean_category(frame[BINARY]) == BINARY_POSITIVE).astype(np.float64)
    for column in CATEGORICAL:
        values = clean_category(frame[column])
        for level in sorted(values.unique()):
            columns[one_hot_name(column, level)] = (values == level).astype(np.float64)
    return pd.DataFrame(columns, index=frame.index)
