"""``statistics.json`` (data quality, docs/reference/model-monitor-files.md#statisticsjson): built from streamed chunks,
and read back as a baseline."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from containers.model_monitor.data_quality.kll import KLLSketch
from containers.model_monitor.data_quality.profile import ColumnProfile
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["BaselineFeature", "DatasetProfile", "kll_buckets", "load_statistics"]

BUCKETS = 10
TOP_VALUES = 1000


class DatasetProfile:
    """Every column of a dataset, in first-seen order, plus the row count."""

    def __init__(self) -> None:
        self.item_count = 0
        self.columns: dict[str, ColumnProfile] = {}

    def update(self, table: pa.Table) -> None:
        self.item_count += table.num_rows
        for name in table.column_names:
            profile = self.columns.get(name)
            if profile is None:
                profile = self.columns[name] = ColumnProfile(name)
            profile.update(table.column(name))

    def recount_columns(self) -> list[str]:
        """String columns whose value counts must be rebuilt in a second pass."""
        return [n for n, c in self.columns.items() if c.needs_recount and not c.is_numeric]

    def recount(self, tables: Iterable[pa.Table], names: list[str]) -> None:
        for name in names:
            self.columns[name].counts = None
        for table in tables:
            for name in names:
                if name in table.column_names:
                    self.columns[name].recount(table.column(name))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 0.0,
            "dataset": {"item_count": self.item_count},
            "features": [feature_json(c, self.item_count) for c in self.columns.values()],
        }


def kll_buckets(sketch: KLLSketch, low: float, high: float) -> list[dict[str, float]]:
    """10 equal-width buckets over [low, high]; count = rank(upper) - rank(lower), the last bucket includes high."""
    edges = [low + (high - low) * i / BUCKETS for i in range(BUCKETS + 1)]
    edges[-1] = high
    exclusive = sketch.rank(edges, inclusive=False)
    top = float(sketch.rank([high], inclusive=True)[0])
    buckets = []
    for i in range(BUCKETS):
        upper_rank = top if i == BUCKETS - 1 else float(exclusive[i + 1])
        buckets.append({"lower_bound": edges[i], "upper_bound": edges[i + 1], "count": upper_rank - exclusive[i]})
    return [{k: float(v) for k, v in b.items()} for b in buckets]


def feature_json(column: ColumnProfile, item_count: int) -> dict[str, Any]:
    common = {"num_present": column.num_present, "num_missing": item_count - column.num_present}
    kind = column.inferred_type
    if column.is_numeric:
        return {
            "name": column.name,
            "inferred_type": kind,
            "numerical_statistics": {
                "common": common,
                "mean": column.num_mean,
                "sum": column.num_sum,
                "std_dev": column.std_dev,
                "min": column.num_min,
                "max": column.num_max,
                "distribution": {
                    "kll": {
                        "buckets": kll_buckets(column.sketch, column.num_min, column.num_max),
                        "sketch": column.sketch.to_json(),
                    }
                },
            },
        }
    counts: dict[str, int] = dict(column.counts or {})
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
    return {
        "name": column.name,
        "inferred_type": kind,
        "string_statistics": {
            "common": common,
            "distinct_count": float(len(counts)),
            "distribution": {"categorical": {"buckets": [{"value": v, "count": c} for v, c in top]}},
        },
    }


@dataclass
class BaselineFeature:
    """What the checks need from one feature of a baseline ``statistics.json``."""

    name: str
    inferred_type: str
    num_present: float
    num_missing: float
    sketch: KLLSketch | None = None
    categories: dict[str, float] = field(default_factory=dict)
    buckets: list[dict[str, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.num_present + self.num_missing


def load_statistics(path: Path) -> tuple[dict[str, Any], dict[str, BaselineFeature]]:
    """The raw document and its features by name; a malformed file is a ``UserError`` naming the problem."""
    raw = read_json(path, "baseline statistics")
    features: dict[str, BaselineFeature] = {}
    for entry in raw.get("features") or []:
        try:
            features[entry["name"]] = _baseline_feature(entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(
                f"Baseline statistics {path} has a malformed feature {str(entry)[:120]}: {exc!r}. "
                "Regenerate it with a baselining job or fix it to the statistics.json schema."
            ) from exc
    return raw, features


def _baseline_feature(entry: dict[str, Any]) -> BaselineFeature:
    numeric = entry.get("numerical_statistics")
    stats = numeric or entry.get("string_statistics") or {}
    common = stats.get("common") or {}
    feature = BaselineFeature(
        name=str(entry["name"]),
        inferred_type=str(entry.get("inferred_type", "Unknown")),
        num_present=float(common.get("num_present", 0)),
        num_missing=float(common.get("num_missing", 0)),
    )
    if numeric:
        kll = (numeric.get("distribution") or {}).get("kll") or {}
        if kll.get("sketch"):
            feature.sketch = KLLSketch.from_json(kll["sketch"])
        feature.buckets = list(kll.get("buckets") or [])
    else:
        buckets = ((stats.get("distribution") or {}).get("categorical") or {}).get("buckets") or []
        feature.categories = {str(b["value"]): float(b["count"]) for b in buckets}
    return feature


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"The {what} file {path} does not exist; check the baseline input of the job.") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"The {what} file {path} is not readable JSON ({exc}); regenerate or fix it.") from exc
    if not isinstance(raw, dict):
        raise UserError(f"The {what} file {path} must hold a JSON object, not {type(raw).__name__}.")
    return raw


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=4, default=_jsonable) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
