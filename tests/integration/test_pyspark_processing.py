"""SDK v2 ``PySparkProcessor`` against the local stack: the Spark processing image runs a tiny PySpark app."""

import json

import pytest

from tests.integration.conftest import ROLE, unique

APP = """
import json, sys
from pathlib import Path
from pyspark.sql import SparkSession
from helper_lib import double

spark = SparkSession.builder.appName("tiny").getOrCreate()
rows = spark.read.csv(sys.argv[sys.argv.index("--input") + 1], inferSchema=True).collect()
total = sum(double(r[0]) for r in rows)
out = Path(sys.argv[sys.argv.index("--output") + 1])
out.mkdir(parents=True, exist_ok=True)
conf = spark.sparkContext.getConf()
(out / "result.json").write_text(json.dumps({
    "total": total,
    "partitions": conf.get("spark.sql.shuffle.partitions"),
    "master": spark.sparkContext.master,
    "marker": spark.sparkContext.parallelize([1]).map(lambda _: __import__("os").environ.get("MARKER")).first(),
}))
if "--fail" in sys.argv:
    raise SystemExit("asked to fail")
spark.stop()
"""
HELPER = "def double(x):\n    return 2 * x\n"


@pytest.fixture
def app(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "helper_lib.py").write_text(HELPER)
    return tmp_path


def _processor(session):
    from sagemaker.spark.processing import PySparkProcessor

    return PySparkProcessor(
        framework_version="3.5",
        role=ROLE,
        instance_type="ml.m5.large",
        instance_count=1,
        base_job_name=unique("spark"),
        sagemaker_session=session,
        max_runtime_in_seconds=600,
    )


def _run(processor, app, bucket, prefix, arguments=()):
    from sagemaker.processing import ProcessingInput, ProcessingOutput

    processor.run(
        submit_app=str(app / "app.py"),
        submit_py_files=[str(app / "helper_lib.py")],
        inputs=[ProcessingInput(source=f"s3://{bucket}/{prefix}/in", destination="/opt/ml/processing/input/data")],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output", destination=f"s3://{bucket}/{prefix}/out")],
        arguments=["--input", "/opt/ml/processing/input/data", "--output", "/opt/ml/processing/output", *arguments],
        configuration=[
            {"Classification": "spark-defaults", "Properties": {"spark.sql.shuffle.partitions": "3"}},
            {
                "Classification": "spark-env",
                "Properties": {},
                "Configurations": [{"Classification": "export", "Properties": {"MARKER": "from-conf"}}],
            },
        ],
        spark_event_logs_s3_uri=f"s3://{bucket}/{prefix}/events",
        wait=True,
        logs=False,
    )
    return processor.latest_job.describe()


def test_pyspark_processor_runs_app_with_py_files_configuration_and_event_logs(sdk_env, app):
    session, bucket = sdk_env
    s3 = session.boto_session.client("s3")
    prefix = unique("pyspark")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/in/rows.csv", Body=b"1\n2\n3\n")
    processor = _processor(session)
    described = _run(processor, app, bucket, prefix)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["AppSpecification"]["ContainerEntrypoint"][0] == "smspark-submit"
    result = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/out/result.json")["Body"].read())
    assert result == {"total": 12, "partitions": "3", "master": "local[*]", "marker": "from-conf"}
    events = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/events/").get("Contents", [])
    assert events and not any(e["Key"].endswith(".crc") for e in events), events
    [log] = events  # one plain JSON-lines file per application, as the Spark 3.x images write
    first = s3.get_object(Bucket=bucket, Key=log["Key"])["Body"].read().splitlines()[0]
    assert json.loads(first)["Event"] == "SparkListenerLogStart"


def test_failing_pyspark_app_fails_the_job_with_its_message(sdk_env, app):
    session, bucket = sdk_env
    s3 = session.boto_session.client("s3")
    prefix = unique("pyspark-fail")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/in/rows.csv", Body=b"1\n")
    processor = _processor(session)
    with pytest.raises(Exception, match="asked to fail"):
        _run(processor, app, bucket, prefix, arguments=["--fail"])
    described = processor.latest_job.describe()
    assert described["ProcessingJobStatus"] == "Failed"
    assert "asked to fail" in described["FailureReason"]
