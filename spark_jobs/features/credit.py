"""German credit features: pure DataFrame -> DataFrame functions (clean, split, fit/apply the encoding).

The order is: ``validate_columns`` -> ``clean`` -> ``assign_split`` -> ``fit_encoding`` (on the train split only)
-> ``encode`` (label first, imputed numerics, one-hot categoricals). Each step is deterministic: the split is a hash
of the row's content and a seed (not of partitioning or row order), category levels are sorted, and medians come
from the train split. ``spark_jobs.features.credit_job`` writes the channels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.errors import FeatureJobError, InputDataError

LABEL = "risk"
NUMERIC = ("job", "credit_amount", "duration", "age")
CATEGORICAL = ("sex", "housing", "saving_accounts", "checking_account", "purpose")
MISSING_TOKENS = ("", "na", "n/a", "nan", "null", "none", "not_known", "unknown", "?")
SPLIT = "split"
SPLITS = ("train", "validation", "test")
MISSING_LEVEL = "missing"


@dataclass(frozen=True)
class SplitFractions:
    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        values = (self.train, self.validation, self.test)
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-9:
            raise FeatureJobError(
                f"split fractions {values} are invalid",
                why="they must be non-negative and sum to 1",
                fix="pass e.g. --fractions 0.7,0.15,0.15",
            )


@dataclass(frozen=True)
class Encoding:
    """What ``fit_encoding`` learned on the train split; stored in the manifest so scoring can reuse it."""

    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)

    def feature_columns(self) -> list[str]:
        one_hot = [one_hot_name(col, level) for col in CATEGORICAL for level in self.levels.get(col, ())]
        return [*NUMERIC, *one_hot]

    def to_json(self) -> dict[str, object]:
        return {"levels": {k: list(v) for k, v in self.levels.items()}, "medians": self.medians}


def one_hot_name(column: str, level: str) -> str:
    return f"{column}__{re.sub(r'[^0-9a-z]+', '_', level.lower()).strip('_') or 'blank'}"


def validate_columns(df: DataFrame) -> DataFrame:
    """Fail early, naming every missing column (and near misses by case)."""
    present = {c.lower(): c for c in df.columns}
    missing = [c for c in (LABEL, *NUMERIC, *CATEGORICAL) if c not in df.columns]
    if missing:
        hints = [f"{c} (found {present[c.lower()]!r})" for c in missing if c.lower() in present]
        raise InputDataError(
            f"the credit data lacks columns {missing}",
            why=f"the feature job needs {[LABEL, *NUMERIC, *CATEGORICAL]}; it has {df.columns}",
            fix="rename the columns" + (f"; did you mean {', '.join(hints)}" if hints else ""),
        )
    return df


def _clean_category(column: str) -> Column:
    value = F.lower(F.trim(F.col(column).cast("string")))
    return F.when(value.isin(*MISSING_TOKENS) | value.isNull(), F.lit(None)).otherwise(value)


def clean(df: DataFrame) -> DataFrame:
    """Normalise types and missing values; keep only rows whose label is 0 or 1 (see ``invalid_label_rows``).

    Categoricals are trimmed, lower-cased, and missing tokens (``not_known``, ``NA``, ...) become null. Numerics are
    ``try_cast`` to double, so a non-numeric cell becomes null (imputed later) instead of failing the job.
    """
    numeric = [F.expr(f"try_cast(trim(cast(`{c}` as string)) as double)").alias(c) for c in NUMERIC]
    categorical = [_clean_category(c).alias(c) for c in CATEGORICAL]
    label = F.expr(f"try_cast(trim(cast(`{LABEL}` as string)) as double)").alias(LABEL)
    typed = validate_columns(df).select(label, *numeric, *categorical)
    return typed.where(F.col(LABEL).isin(0.0, 1.0))


def invalid_label_rows(df: DataFrame) -> DataFrame:
    """The rows ``clean`` drops (label missing or not 0/1), so a job can count and report them."""
    label = F.expr(f"try_cast(trim(cast(`{LABEL}` as string)) as double)")
    return validate_columns(df).where(label.isNull() | ~label.isin(0.0, 1.0))


def assign_split(df: DataFrame, seed: int = 42, fractions: SplitFractions | None = None) -> DataFrame:
    """Add ``split`` (train/validation/test) from a hash of the row's values and ``seed``.

    Reproducible across runs, partitionings and row orders; identical rows land in the same split (no leakage).
    """
    share = fractions or SplitFractions()
    bucket = F.pmod(F.xxhash64(F.lit(seed), *[F.col(c) for c in df.columns]), F.lit(1_000_000)) / F.lit(1_000_000.0)
    split = (
        F.when(bucket < share.train, F.lit(SPLITS[0]))
        .when(bucket < share.train + share.validation, F.lit(SPLITS[1]))
        .otherwise(F.lit(SPLITS[2]))
    )
    return df.withColumn(SPLIT, split)


def fit_encoding(train: DataFrame) -> Encoding:
    """Learn sorted category levels (nulls as level ``missing``) and numeric medians from the train split.

    One small aggregation; only the vocabulary and the medians reach the driver.
    """
    aggregations = [F.percentile_approx(c, 0.5, 100_000).alias(f"median_{c}") for c in NUMERIC]
    aggregations += [
        F.array_sort(F.collect_set(F.coalesce(F.col(c), F.lit(MISSING_LEVEL)))).alias(f"levels_{c}")
        for c in CATEGORICAL
    ]
    row = train.agg(*aggregations).first()
    if row is None or not row[f"levels_{CATEGORICAL[0]}"]:
        raise FeatureJobError(
            "the train split is empty", why="no row survived cleaning and splitting", fix="check the input data"
        )
    medians = {c: float(row[f"median_{c}"]) if row[f"median_{c}"] is not None else 0.0 for c in NUMERIC}
    levels = {c: tuple(row[f"levels_{c}"]) for c in CATEGORICAL}
    return Encoding(levels=levels, medians=medians)


def encode(df: DataFrame, encoding: Encoding) -> DataFrame:
    """Label first (double), then imputed numerics, then one-hot columns; other columns (``split``) kept last.

    A category unseen in training gets all-zero one-hot columns.
    """
    label = F.col(LABEL).cast("double").alias(LABEL)
    numeric = [F.coalesce(F.col(c), F.lit(encoding.medians[c])).cast("double").alias(c) for c in NUMERIC]
    one_hot = []
    for column in CATEGORICAL:
        value = F.coalesce(F.col(column), F.lit(MISSING_LEVEL))
        for level in encoding.levels[column]:
            name = one_hot_name(column, level)
            one_hot.append(F.when(value == F.lit(level), F.lit(1.0)).otherwise(F.lit(0.0)).alias(name))
    rest = [c for c in df.columns if c not in (LABEL, *NUMERIC, *CATEGORICAL)]
    return df.select(label, *numeric, *one_hot, *rest)


def label_first(df: DataFrame, label: str = LABEL) -> DataFrame:
    """Move ``label`` to the first column (SageMaker CSV/recordIO training channels expect it there)."""
    if label not in df.columns:
        raise InputDataError(f"label column {label!r} is missing", fix=f"columns are {df.columns}")
    return df.select(label, *[c for c in df.columns if c != label])


def prepare(raw: DataFrame, seed: int, fractions: SplitFractions) -> tuple[DataFrame, Encoding]:
    """``clean`` -> ``assign_split`` -> ``fit_encoding`` on train -> ``encode``: the whole feature pipeline."""
    split = assign_split(clean(raw), seed, fractions)
    encoding = fit_encoding(split.where(F.col(SPLIT) == SPLITS[0]))
    return encode(split, encoding), encoding


if __name__ == "__main__":
    import sys

    from spark_jobs.features.cli import main

    sys.exit(main())
