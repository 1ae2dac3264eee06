"""spark_endpoint_scoring: score a DataFrame through a local XGBoost endpoint vs in-process mapInPandas scoring.

1M rows x 20 features (``SAGESTACK_BENCH_SCORING_ROWS`` to change), ``local[2]``. The transformer sends
recordIO-protobuf requests (5000 rows each, 4 in flight per partition) to an endpoint on the in-process stack
running the XGBoost container; the anchor runs ``Booster.predict`` on the same rows inside ``mapInPandas``.
ratio = transformer rows/s / in-process rows/s (goal >= 0.5).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import xgboost as xgb

from benchmarks.common import emit
from benchmarks.invoke_overhead import deploy
from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from infra.runtime.model_archive import pack_model
from spark_jobs.config import AwsSettings, SparkSettings
from spark_jobs.endpoint_scoring.endpoint_transformer import BatchingPolicy, EndpointTransformer, RuntimeClientFactory
from spark_jobs.endpoint_scoring.serializers import RecordIOProtobufSerializer
from spark_jobs.session import build_session

FEATURES = 20
NAMES = [f"x{i}" for i in range(FEATURES)]


def booster(base: Path) -> tuple[xgb.Booster, Path]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20_000, FEATURES)).astype(np.float32)
    y = (x[:, :5].sum(axis=1) > 0).astype(np.float32)
    model = xgb.train({"objective": "binary:logistic", "max_depth": 4}, xgb.DMatrix(x, label=y), 50)
    model_dir = base / "model"
    model_dir.mkdir()
    model.save_model(str(model_dir / "xgboost-model"))
    return model, pack_model(model_dir, base / "model.tar.gz")


def in_process(df, raw: bytearray):
    def predict(batches):
        model = xgb.Booster()
        model.load_model(raw)
        for pdf in batches:
            yield pdf.assign(prediction=model.predict(xgb.DMatrix(pdf[NAMES].to_numpy(np.float32))))

    return df.mapInPandas(predict, _schema(df))


def _schema(df):
    from pyspark.sql.types import DoubleType, StructField, StructType

    return StructType([*df.schema.fields, StructField("prediction", DoubleType())])


def timed(df) -> float:
    start = time.perf_counter()
    df.selectExpr("sum(prediction)").collect()
    return time.perf_counter() - start


def main() -> None:
    rows = int(os.environ.get("SAGESTACK_BENCH_SCORING_ROWS", "1000000"))
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(key, value)
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(StackSettings(data_dir=Path(tmp) / "stack", port=0, region="us-east-1"))
        url = stack.start()
        try:
            model, archive = booster(Path(tmp))
            endpoint = deploy(url, archive)
            spark = build_session(SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="2g"))
            columns = [f"cast(randn({i}) as float) as x{i}" for i in range(FEATURES)]
            data = spark.range(rows, numPartitions=2).selectExpr("id", *columns).cache()
            data.count()
            transformer = EndpointTransformer(
                endpoint_name=endpoint,
                features_col=None,
                feature_columns=tuple(NAMES),
                serializer=RecordIOProtobufSerializer(),
                batching=BatchingPolicy(max_rows_per_request=5000, concurrency=4),
                client_factory=RuntimeClientFactory(AwsSettings(endpoint_url=url, region="us-east-1")),
            )
            raw = model.save_raw("ubj")
            timed(in_process(data.limit(10_000), raw))  # warm the Python workers
            local_s = timed(in_process(data, raw))
            endpoint_s = timed(transformer.transform(data))
            check = transformer.transform(data.limit(1000)).toPandas()
            expected = model.predict(xgb.DMatrix(check[NAMES].to_numpy(np.float32)))
            max_err = float(np.abs(check["prediction"].to_numpy() - expected).max())
            spark.stop()
        finally:
            stack.stop()
    emit(
        "spark_endpoint_scoring",
        f"{rows} rows x {FEATURES} features, local[2], recordIO 5000 rows/request, 4 in flight per partition",
        ratio=(rows / endpoint_s) / (rows / local_s),
        endpoint_rows_per_s=rows / endpoint_s,
        in_process_rows_per_s=rows / local_s,
        max_abs_err=max_err,
    )


if __name__ == "__main__":
    main()
