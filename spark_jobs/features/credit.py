"""German credit features: pure DataFrame -> DataFrame functions (clean, split, fit/apply the encoding).

The order is: ``validate_columns`` -> ``clean`` -> ``assign_split`` (stratified on the label) -> ``fit_encoding``
(levels from every row, medians from the train split) -> ``encode`` (label first, imputed numerics, ``sex`` as 0/1,
one-hot categoricals). Each step is deterministic: the split ranks a hash of the row's content and a seed (not of
partitioning or row order) within each label, category levels are sorted. ``spark_jobs.features.cli`` writes the
channels to a local directory or S3; ``spark_jobs.features.processing`` writes a processing job's outputs.

Runs on PySpark 3.5 (the SageMaker Spark processing image, Python 3.9+) as well as 4.x: SQL functions only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.errors import FeatureJobError, InputDataError

LABEL = "risk"
NUMERIC = ("job", "credit_amount", "duration", "age")
BINARY = "sex"  # one 0/1 column (the Clarify facet): 1 when the cleaned value is BINARY_POSITIVE
BINARY_POSITIVE = "female"
CATEGORICAL = ("housing", "saving_accounts", "checking_account", "purpose")
INPUT_COLUMNS = (LABEL, *NUMERIC, BINARY, *CATEGORICAL)
MISSING_TOKENS = ("", "na", "n/a", "nan", "null", "none", "not_known", "unknown", "?")
SPLIT = "split"
SPLITS = ("train", "validation", "test")
MISSING_LEVEL = "missing"
_KEY_RANGE = 1 << 52
QUANTILE_ACCURACY = 100_000  # percentile_approx: relative rank error 1e-5 (exact on small data)


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

    @classmethod
    def parse(cls, text: str) -> SplitFractions:
        """``"0.7,0.15,0.15"`` (train,validation,test) as checked fractions."""
        try:
            train, validation, test = (float(x) for x in text.split(","))
        except ValueError as exc:
            raise FeatureJobError(
                f"split fractions {text!r} are not three numbers", fix="pass e.g. --fractions 0.7,0.15,0.15"
            ) from exc
        return cls(train, validation, test)


@dataclass(frozen=True)
class Encoding:
    """What ``fit_encoding`` learned (levels from every row, medians from train); stored in the manifest."""

    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)

    def feature_columns(self) -> list[str]:
        one_hot = [one_hot_name(col, level) for col in CATEGORICAL for level in self.levels.get(col, ())]
        return [*NUMERIC, BINARY, *one_hot]

    def to_json(self) -> dict[str, object]:
        levels = {k: list(v) for k, v in self.levels.items()}
        return {"levels": levels, "medians": self.medians, "binary": {BINARY: BINARY_POSITIVE}}


def one_hot_name(column: str, level: str) -> str:
    return f"{column}__{re.sub(r'[^0-9a-z]+', '_', level.lower()).strip('_') or 'blank'}"


def validate_columns(df: DataFrame) -> DataFrame:
    """Fail early, naming every missing column (and near misses by case)."""
    present = {c.lower(): c for c in df.columns}
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        hints = [f"{c} (found {present[c.lower()]!r})" for c in missing if c.lower() in present]
        raise InputDataError(
            f"the credit data lacks columns {missing}",
            why=f"the feature job needs {list(INPUT_COLUMNS)}; it has {df.columns}",
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
    categorical = [_clean_category(c).alias(c) for c in (BINARY, *CATEGORICAL)]
    label = F.expr(f"try_cast(trim(cast(`{LABEL}` as string)) as double)").alias(LABEL)
    typed = validate_columns(df).select(label, *numeric, *categorical)
    return typed.where(F.col(LABEL).isin(0.0, 1.0))


def invalid_label_rows(df: DataFrame) -> DataFrame:
    """The rows ``clean`` drops (label missing or not 0/1), so a job can count and report them."""
    label = F.expr(f"try_cast(trim(cast(`{LABEL}` as string)) as double)")
    return validate_columns(df).where(label.isNull() | ~label.isin(0.0, 1.0))


def split_key(df: DataFrame, seed: int) -> Column:
    """xxhash64 of ``seed`` and every column of the row, folded into [0, 2^52): a per-row random number that ignores
    row order. 52 bits because ``percentile_approx`` ranks through doubles, which hold such integers exactly."""
    return F.pmod(F.xxhash64(F.lit(seed), *[F.col(c) for c in df.columns]), F.lit(_KEY_RANGE))


def assign_split(df: DataFrame, seed: int = 42, fractions: SplitFractions | None = None) -> DataFrame:
    """Add ``split`` (train/validation/test), stratified on the label, from a hash of the row's values and ``seed``.

    Within each label, rows whose key (``split_key``) is at most the label's ``train`` quantile of keys go to train,
    up to the ``train + validation`` quantile to validation, the rest to test: every class is split by the
    fractions (exactly on small data, within ``percentile_approx``'s 1e-5 rank error on large data). One small
    aggregation runs here. Reproducible across runs, partitionings and row orders; identical rows share a key, so
    they land in the same split (no leakage).
    """
    share = fractions or SplitFractions()
    key = split_key(df, seed)
    bounds = (round(share.train, 9), round(share.train + share.validation, 9))
    quantiles = F.percentile_approx(key, list(bounds), QUANTILE_ACCURACY).alias("cuts")
    cuts = {row[LABEL]: tuple(row["cuts"]) for row in df.groupBy(LABEL).agg(quantiles).collect()}

    def within(index: int) -> Column:
        condition = F.lit(False)
        if bounds[index] <= 0:  # percentile 0 is the smallest key, which would still be taken
            return condition
        for label, label_cuts in cuts.items():
            condition = condition | ((F.col(LABEL) == F.lit(label)) & (key <= F.lit(label_cuts[index])))
        return condition

    split = F.when(within(0), F.lit(SPLITS[0])).when(within(1), F.lit(SPLITS[1])).otherwise(F.lit(SPLITS[2]))
    return df.withColumn(SPLIT, split)


def fit_encoding(df: DataFrame) -> Encoding:
    """Sorted category levels from every row (nulls as level ``missing``); numeric medians from the train split.

    Levels are the data's vocabulary, so the model's columns do not depend on how rows were split; medians are
    statistics, so only train rows count (all rows when ``df`` has no ``split`` column). One small aggregation;
    only the vocabulary and the medians reach the driver.
    """
    in_train = (F.col(SPLIT) == F.lit(SPLITS[0])) if SPLIT in df.columns else F.lit(True)
    aggregations = [F.count(F.when(in_train, F.lit(1))).alias("train_rows")]
    aggregations += [
        F.percentile_approx(F.when(in_train, F.col(c)), 0.5, QUANTILE_ACCURACY).alias(f"median_{c}") for c in NUMERIC
    ]
    aggregations += [
        F.array_sort(F.collect_set(F.coalesce(F.col(c), F.lit(MISSING_LEVEL)))).alias(f"levels_{c}")
        for c in CATEGORICAL
    ]
    row = df.agg(*aggregations).first()
    if row is None or not row["train_rows"]:
        raise FeatureJobError(
            "the train split is empty", why="no row survived cleaning and splitting", fix="check the input data"
        )
    medians = {c: float(row[f"median_{c}"]) if row[f"median_{c}"] is not None else 0.0 for c in NUMERIC}
    levels = {c: tuple(row[f"levels_{c}"]) for c in CATEGORICAL}
    return Encoding(levels=levels, medians=medians)


def encode(df: DataFrame, encoding: Encoding) -> DataFrame:
    """Label first (double), imputed numerics, ``sex`` as 0/1, one-hot columns; other columns (``split``) last.

    A category absent from the vocabulary gets all-zero one-hot columns; a missing ``sex`` is 0.
    """
    label = F.col(LABEL).cast("double").alias(LABEL)
    numeric = [F.coalesce(F.col(c), F.lit(encoding.medians[c])).cast("double").alias(c) for c in NUMERIC]
    binary = F.when(F.col(BINARY) == F.lit(BINARY_POSITIVE), F.lit(1.0)).otherwise(F.lit(0.0)).alias(BINARY)
    one_hot = []
    for column in CATEGORICAL:
        value = F.coalesce(F.col(column), F.lit(MISSING_LEVEL))
        for level in encoding.levels[column]:
            name = one_hot_name(column, level)
            one_hot.append(F.when(value == F.lit(level), F.lit(1.0)).otherwise(F.lit(0.0)).alias(name))
    rest = [c for c in df.columns if c not in INPUT_COLUMNS]
    return df.select(label, *numeric, binary, *one_hot, *rest)


def label_first(df: DataFrame, label: str = LABEL) -> DataFrame:
    """Move ``label`` to the first column (SageMaker CSV/recordIO training channels expect it there)."""
    if label not in df.columns:
        raise InputDataError(f"label column {label!r} is missing", fix=f"columns are {df.columns}")
    return df.select(label, *[c for c in df.columns if c != label])


def prepare(raw: DataFrame, seed: int, fractions: SplitFractions) -> tuple[DataFrame, Encoding]:
    """``clean`` -> ``assign_split`` -> ``fit_encoding`` -> ``encode``: the whole feature pipeline."""
    split = assign_split(clean(raw), seed, fractions)
    encoding = fit_encoding(split)
    return encode(split, encoding), encoding


if __name__ == "__main__":
    import sys

    # ``--processing``: the SageMaker processing entry (PySparkProcessor's ``submit_app``), which needs only pyspark;
    # otherwise the local/cluster CLI (``make features``), which also needs pyarrow, numpy and boto3.
    if "--processing" in sys.argv[1:]:
        from spark_jobs.features.processing import main
    else:
        from spark_jobs.features.cli import main

    sys.exit(main())
