"""Groups and outcomes as booleans (docs/clarify.md#binarisation-smclarifys-rules), with smclarify 0.5's exact
conventions.

* Column type: categorical if the dtype is ``category``, several values were given, or an integer (or
  integer-castable text) column has a uniqueness fraction below 5 %; floats and other integers are continuous.
* Categorical: ``x ∈ values`` (retried with the values cast to the column's element type when nothing matches).
* Continuous: ``x ∈ (threshold, max]``, reported as the pandas interval string, e.g. ``"(40, 75]"``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "DataType",
    "FacetGroup",
    "Outcome",
    "binarise_label",
    "binarise_predicted",
    "column_type",
    "facet_groups",
]

UNIQUENESS_THRESHOLD = 0.05


class DataType(Enum):
    CATEGORICAL = "categorical"
    CONTINUOUS = "continuous"


@dataclass(frozen=True)
class Outcome:
    """A binarised label column: the positive index, how it is reported, and how the column was typed."""

    positive: np.ndarray
    value_or_threshold: str
    data_type: DataType
    values: tuple[Any, ...]
    series: pd.Series


@dataclass(frozen=True)
class FacetGroup:
    """One sensitive group *d* of a facet (everything else is *a*)."""

    value_or_threshold: str
    sensitive: np.ndarray


def _uniqueness(series: pd.Series) -> float:
    count = int(series.count())
    return 0.0 if count == 0 else series.nunique() / count


def column_type(series: pd.Series, values: Sequence[Any] | None) -> DataType:
    """smclarify's ``series_datatype`` rule."""
    if isinstance(series.dtype, pd.CategoricalDtype) or (values is not None and len(values) > 1):
        return DataType.CATEGORICAL
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return DataType.CATEGORICAL
    if pd.api.types.is_float_dtype(dtype):
        return DataType.CONTINUOUS
    if pd.api.types.is_integer_dtype(dtype):
        return DataType.CONTINUOUS if _uniqueness(series) >= UNIQUENESS_THRESHOLD else DataType.CATEGORICAL
    try:
        series.astype("int64")
    except (TypeError, ValueError):
        return DataType.CATEGORICAL
    return DataType.CONTINUOUS if _uniqueness(series) >= UNIQUENESS_THRESHOLD else DataType.CATEGORICAL


def _threshold(values: Sequence[Any] | None, key: str) -> float:
    """The threshold, kept as written when it is a number (so an integer prints as ``(40, 75]``)."""
    if not values:
        raise UserError(f"analysis_config.json: '{key}' is needed: the column is continuous and needs a threshold.")
    if isinstance(values[0], (int, float)):
        return values[0]
    try:
        return float(values[0])
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"analysis_config.json: '{key}' must be a single numeric threshold for a continuous column, "
            f"got {list(values)!r}. Fix: give a number, or several values to treat the column as categorical."
        ) from exc


def _interval(data: pd.Series, threshold: float) -> pd.IntervalIndex:
    """smclarify's ``_interval_index``: breaks ``[threshold, max]`` (max added unless ``|max|`` is the threshold)."""
    breaks: list[Any] = [threshold]
    maximum = data.max()
    if abs(maximum) != threshold:
        breaks.append(maximum)
    return pd.IntervalIndex.from_breaks(sorted(breaks))


def _in_intervals(data: pd.Series, intervals: pd.IntervalIndex) -> np.ndarray:
    values = data.to_numpy(dtype=np.float64)
    inside = np.zeros(len(values), dtype=bool)
    for interval in intervals:
        inside |= (values > interval.left) & (values <= interval.right)
    return inside


def _cast_values(series: pd.Series, values: Sequence[Any]) -> list[Any]:
    sample = series.dropna()
    if sample.empty:
        return list(values)
    kind = type(sample.iloc[0].item() if hasattr(sample.iloc[0], "item") else sample.iloc[0])
    try:
        return [kind(v) for v in values]
    except (TypeError, ValueError):
        try:
            return [float(v) for v in values]
        except (TypeError, ValueError):
            return list(values)


def _categorical_index(series: pd.Series, values: Sequence[Any]) -> np.ndarray:
    data = series.astype(object).to_numpy()
    index = np.isin(data, np.array(list(values), dtype=object))
    if index.any():
        return index
    return np.isin(data, np.array(_cast_values(series, values), dtype=object))


def _numeric(series: pd.Series, key: str) -> pd.Series:
    try:
        return pd.to_numeric(series)
    except (TypeError, ValueError) as exc:
        raise UserError(f"analysis_config.json: '{key}': column {series.name!r} is not numeric ({exc}).") from exc


def binarise_label(series: pd.Series, values: Sequence[Any], key: str = "label_values_or_threshold") -> Outcome:
    """The positive-label index and its reported ``label_value_or_threshold``."""
    kind = column_type(series, values)
    if kind is DataType.CONTINUOUS:
        data = _numeric(series, key)
        intervals = _interval(data, _threshold(values, key))
        return Outcome(_in_intervals(data, intervals), ",".join(map(str, intervals)), kind, tuple(values), data)
    positive = _categorical_index(series, values)
    return Outcome(positive, ",".join(map(str, values)), kind, tuple(values), series)


def binarise_predicted(predicted: pd.Series, label: Outcome) -> np.ndarray:
    """Predicted labels binarised with the **label's** positive values
    (docs/clarify.md#binarisation-smclarifys-rules)."""
    kind = column_type(predicted, label.values)
    if kind is not label.data_type:
        raise UserError(
            f"The predicted labels look {kind.value} but the labels are {label.data_type.value}. "
            "Fix: make the model return labels of the same kind as the label column, or return a score."
        )
    if kind is DataType.CONTINUOUS:
        data = _numeric(predicted, "predicted_label").astype(label.series.dtype)
        intervals = _interval(pd.concat([label.series, data]), _threshold(label.values, "label_values_or_threshold"))
        positive = _in_intervals(data, intervals)
    else:
        positive = _categorical_index(predicted, label.values)
    if not positive.any():
        raise UserError(
            f"No predicted label is positive (label values {list(label.values)}): the post-training metrics are "
            "undefined. Fix: check label_values_or_threshold, probability_threshold and the model's output."
        )
    return positive


def facet_groups(series: pd.Series, values: Sequence[Any] | None, facet: str) -> list[FacetGroup]:
    """The sensitive groups of one facet: the given values, one-vs-rest per value, or ``(threshold, max]``."""
    key = f"facet[{facet}].value_or_threshold"
    kind = column_type(series, values)
    if kind is DataType.CONTINUOUS:
        data = _numeric(series, key)
        intervals = _interval(data, _threshold(values, key))
        return [FacetGroup(",".join(map(str, intervals)), _in_intervals(data, intervals))]
    if not values:
        return [FacetGroup(str(v), _categorical_index(series, [v])) for v in series.dropna().unique()]
    groups = [FacetGroup(",".join(map(str, values)), _categorical_index(series, values))]
    if not groups[0].sensitive.any():
        present = sorted(map(str, series.dropna().unique()))[:20]
        raise UserError(
            f"analysis_config.json: facet '{facet}' value(s) {list(values)!r} do not occur in the data "
            f"(values seen: {present}). Fix: use values present in the column."
        )
    return groups
