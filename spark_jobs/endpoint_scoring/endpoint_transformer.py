"""Score a Spark DataFrame through a SageMaker endpoint: ``EndpointTransformer(...).transform(df)``.

Per partition (``mapInArrow``): one ``sagemaker-runtime`` client and one thread pool of ``concurrency`` workers;
each Arrow batch is serialized once, cut into requests by rows AND bytes (default 1000 rows / 5 MiB, under the
6 MiB limit), sent concurrently with jittered retries (``spark_jobs.endpoint_scoring.invoker``), and the answers are
appended to the batch in input order. The output keeps every input column and row, 1:1 and in order, plus the
deserializer's columns; any mismatch fails the task loudly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import TaskContext
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, NumericType, StructField, StructType

from spark_jobs.config import AwsSettings
from spark_jobs.endpoint_scoring.deserializers import (
    SPARK_TYPES,
    ResponseCountError,
    ResponseDeserializer,
    XGBoostCSVDeserializer,
    to_arrow,
)
from spark_jobs.endpoint_scoring.invoker import Request, RetryPolicy, invoke, plan_requests
from spark_jobs.endpoint_scoring.serializers import CSVSerializer, RequestSerializer
from spark_jobs.errors import EndpointInvocationError, InputDataError

logger = logging.getLogger(__name__)

_VECTOR_TMP = "__sagestack_features"


@dataclass(frozen=True)
class RuntimeClientFactory:
    """Builds the ``sagemaker-runtime`` client on each executor (picklable: settings, not a client)."""

    aws: AwsSettings = field(default_factory=AwsSettings.from_env)
    read_timeout_s: float = 70.0
    connect_timeout_s: float = 10.0
    max_pool_connections: int = 16

    def __call__(self) -> Any:
        return self.aws.client(
            "sagemaker-runtime",
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=self.read_timeout_s,
            connect_timeout=self.connect_timeout_s,
            max_pool_connections=self.max_pool_connections,
        )


@dataclass(frozen=True)
class BatchingPolicy:
    max_rows_per_request: int = 1000
    max_bytes_per_request: int = 5 * 1024 * 1024
    concurrency: int = 4  # in-flight requests per partition (total = task slots x this)

    def __post_init__(self) -> None:
        if self.max_bytes_per_request > 6 * 1024 * 1024 or min(self.max_rows_per_request, self.concurrency) < 1:
            raise InputDataError(
                f"invalid batching {self}",
                why="InvokeEndpoint takes at most 6 MiB per request; rows and concurrency must be >= 1",
                fix="use max_bytes_per_request <= 6291456 (5 MiB recommended)",
            )


@dataclass
class EndpointTransformer:
    """Append an endpoint's predictions to a DataFrame.

    Features come from ``features_col`` (a Vector or array column) or ``feature_columns`` (numeric columns, in the
    order the model expects). ``allow_missing`` sends nulls as NaN (XGBoost treats NaN as missing); by default a
    null feature is an error naming the column.
    """

    endpoint_name: str
    features_col: str | None = "features"
    feature_columns: tuple[str, ...] = ()
    serializer: RequestSerializer = field(default_factory=CSVSerializer)
    deserializer: ResponseDeserializer = field(default_factory=XGBoostCSVDeserializer)
    batching: BatchingPolicy = field(default_factory=BatchingPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    client_factory: Callable[[], Any] = field(default_factory=RuntimeClientFactory)
    allow_missing: bool = False
    custom_attributes: str | None = None
    target_variant: str | None = None

    def output_schema(self, schema: StructType) -> StructType:
        clash = [name for name in self.deserializer.fields if name in schema.names]
        if clash:
            raise InputDataError(
                f"output columns {clash} already exist in the input",
                fix="drop or rename them before scoring, or configure the deserializer's column names",
            )
        extra = [StructField(name, SPARK_TYPES[kind]) for name, kind in self.deserializer.fields.items()]
        return StructType(list(schema.fields) + extra)

    def transform(self, df: DataFrame) -> DataFrame:
        columns, prepared = self._prepare(df)
        schema = self.output_schema(df.schema)
        return prepared.mapInArrow(_PartitionScorer(self, columns, _VECTOR_TMP in prepared.columns), schema)

    def _prepare(self, df: DataFrame) -> tuple[list[str], DataFrame]:
        if self.feature_columns:
            missing = [c for c in self.feature_columns if c not in df.columns]
            if missing:
                raise InputDataError(f"feature columns {missing} are missing", fix=f"available: {df.columns}")
            bad = [
                f"{c} ({df.schema[c].dataType.simpleString()})"
                for c in self.feature_columns
                if not isinstance(df.schema[c].dataType, NumericType)
            ]
            if bad:
                raise InputDataError(f"non-numeric feature columns {bad}", fix="cast or encode them first")
            return list(self.feature_columns), df
        if not self.features_col or self.features_col not in df.columns:
            raise InputDataError(
                f"features column {self.features_col!r} is missing",
                fix=f"set features_col or feature_columns; available: {df.columns}",
            )
        kind = df.schema[self.features_col].dataType
        if isinstance(kind, ArrayType):
            column = F.col(self.features_col).cast("array<double>")
        elif isinstance(kind, VectorUDT):
            column = vector_to_array(F.col(self.features_col))
        else:
            raise InputDataError(
                f"features column {self.features_col!r} is {kind.simpleString()}",
                fix="use a Vector or array column, or feature_columns=[...] of numeric columns",
            )
        return [_VECTOR_TMP], df.withColumn(_VECTOR_TMP, column)


class _PartitionScorer:
    """The function ``mapInArrow`` runs on each partition (a class, so it pickles cleanly)."""

    def __init__(self, transformer: EndpointTransformer, columns: list[str], drop_tmp: bool) -> None:
        self.t, self.columns, self.drop_tmp = transformer, columns, drop_tmp

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        context = TaskContext.get()
        self.partition = context.partitionId() if context else 0
        client = self.t.client_factory()
        seen = 0
        with ThreadPoolExecutor(max_workers=self.t.batching.concurrency) as pool:
            for batch in batches:
                yield self._scored(pool, client, batch, seen)
                seen += batch.num_rows

    def _scored(self, pool: ThreadPoolExecutor, client: Any, batch: pa.RecordBatch, seen: int) -> pa.RecordBatch:
        outputs = self._score(pool, client, self._matrix(batch, seen), seen) if batch.num_rows else None
        out = batch.drop_columns([_VECTOR_TMP]) if self.drop_tmp else batch
        for i, (name, kind) in enumerate(self.t.deserializer.fields.items()):
            array = outputs[i] if outputs is not None else to_arrow([], kind)
            out = out.append_column(name, array)
        return out

    def _matrix(self, batch: pa.RecordBatch, seen: int) -> np.ndarray:
        if self.drop_tmp:
            lists = batch.column(_VECTOR_TMP)
            if lists.null_count:
                raise InputDataError(f"partition {self.partition}: {lists.null_count} rows have a null features vector")
            widths = pc_list_lengths(lists)
            if len(set(widths.tolist())) > 1:
                raise InputDataError(
                    f"partition {self.partition}: feature vectors of different lengths {sorted(set(widths.tolist()))}"
                )
            matrix = lists.flatten().to_numpy(zero_copy_only=False).reshape(batch.num_rows, -1)
        else:
            matrix = np.column_stack(
                [batch.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in self.columns]
            )
        if not self.t.allow_missing:
            nulls = np.isnan(matrix).any(axis=0)
            if nulls.any():
                names = [self.columns[i] if not self.drop_tmp else f"features[{i}]" for i in np.flatnonzero(nulls)]
                raise InputDataError(
                    f"partition {self.partition}, rows {seen}..{seen + batch.num_rows - 1}: "
                    f"null/NaN in features {names}",
                    why="a missing feature would be scored silently as something else",
                    fix="impute or filter nulls first, or set allow_missing=True to send NaN (XGBoost: missing)",
                )
        return matrix

    def _score(self, pool: ThreadPoolExecutor, client: Any, matrix: np.ndarray, seen: int) -> list[pa.Array]:
        encoded = self.t.serializer.encode(matrix)
        b = self.t.batching
        ranges = plan_requests(
            encoded.offsets,
            b.max_rows_per_request,
            b.max_bytes_per_request,
            self.t.serializer.request_overhead(),
            first_row=seen,
        )
        extra = []
        if self.t.custom_attributes:
            extra.append(("CustomAttributes", self.t.custom_attributes))
        if self.t.target_variant:
            extra.append(("TargetVariant", self.t.target_variant))

        def call(span: tuple[int, int]) -> list[pa.Array]:
            start, stop = span
            request = Request(
                self.t.endpoint_name,
                self.t.serializer.body(encoded, start, stop),
                self.t.serializer.content_type,
                self.t.deserializer.accept,
                stop - start,
                seen + start,
                tuple(extra),
            )
            body = invoke(client, request, self.t.retry)
            try:
                return self.t.deserializer.deserialize(body, stop - start)
            except (ResponseCountError, ValueError, KeyError) as exc:
                raise EndpointInvocationError(
                    f"endpoint {self.t.endpoint_name!r}: unreadable answer for rows {seen + start}..{seen + stop - 1}"
                    f" of partition {self.partition}: {exc}",
                    why=f"the response does not match {type(self.t.deserializer).__name__} "
                    f"(Accept {self.t.deserializer.accept})",
                    fix="pick the deserializer that matches the model's output format",
                ) from exc

        parts = list(pool.map(call, ranges))  # map keeps request order
        return [pa.concat_arrays([p[i] for p in parts]) for i in range(len(self.t.deserializer.fields))]


def pc_list_lengths(lists: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return np.asarray(pc.list_value_length(lists).to_numpy(zero_copy_only=False))
