"""A ``PySparkProcessor`` with ``instance_count=2`` forms a Spark standalone cluster across its two hosts, and
everything that cluster listens on is loopback (docs/security.md#what-jobs-listen-on).

One two-instance job serves both checks: two cluster start-ups (master, two workers, driver: four JVMs each) were
the suite's costliest duplicate (docs/ci.md#scheduling-the-suite).
"""

import contextlib
import json
import os
import shutil

import pytest

from tests.integration.conftest import ROLE, unique
from tests.integration.listeners import ListenerWatch

APP = """
import json, os, sys, time, urllib.request
from pathlib import Path
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("cluster-check").getOrCreate()
sc = spark.sparkContext
port = os.environ["SAGESTACK_SPARK_MASTER_UI_PORT"]
with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/") as response:
    master = json.loads(response.read())

def where(_):
    time.sleep(0.2)
    return os.getcwd()  # an executor's Python workers run in <worker work dir>/<app id>/<executor id>

dirs = sorted(set(sc.parallelize(range(16), 8).map(where).collect()))
out = Path(sys.argv[sys.argv.index("--output") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "result.json").write_text(json.dumps({
    "master": sc.master,
    "alive_workers": master["aliveworkers"],
    "active_apps": len(master["activeapps"]),
    "worker_cores": sorted(w["cores"] for w in master["workers"] if w["state"] == "ALIVE"),
    "executor_dirs": dirs,
    "marker": sc.parallelize([1]).map(lambda _: os.environ.get("MARKER")).first(),
}))
spark.stop()
"""


@pytest.fixture(scope="module")
def cluster_job(sdk_env_module, tmp_path_factory):
    """The two-instance job, run once under a :class:`ListenerWatch` when ``ss`` is there to sample sockets; its
    description, its ``result.json``, its Spark event log and the watch (None without ``ss``)."""
    from sagemaker.processing import ProcessingOutput
    from sagemaker.spark.processing import PySparkProcessor

    session, bucket = sdk_env_module
    s3 = session.boto_session.client("s3")
    prefix = unique("spark-cluster")
    app = tmp_path_factory.mktemp("spark-cluster") / "app.py"
    app.write_text(APP)
    processor = PySparkProcessor(
        framework_version="3.5",
        role=ROLE,
        instance_type="ml.m5.large",
        instance_count=2,
        base_job_name=unique("spark-cluster"),
        sagemaker_session=session,
        max_runtime_in_seconds=600,
    )
    watch = ListenerWatch() if shutil.which("ss") else None
    with watch if watch is not None else contextlib.nullcontext():
        processor.run(
            submit_app=str(app),
            outputs=[ProcessingOutput(source="/opt/ml/processing/output", destination=f"s3://{bucket}/{prefix}/out")],
            arguments=["--output", "/opt/ml/processing/output"],
            configuration=[
                {
                    "Classification": "spark-env",
                    "Properties": {},
                    "Configurations": [{"Classification": "export", "Properties": {"MARKER": "on-executors"}}],
                }
            ],
            spark_event_logs_s3_uri=f"s3://{bucket}/{prefix}/events",
            wait=True,
            logs=False,
        )
    described = processor.latest_job.describe()
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    result = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/out/result.json")["Body"].read())
    [log] = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/events/")["Contents"]
    events = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=log["Key"])["Body"].read().splitlines()]
    return described, result, events, watch


def test_two_instance_pyspark_job_runs_on_a_two_worker_standalone_cluster(cluster_job):
    _, result, events, _ = cluster_job
    assert result["master"].startswith("spark://127.0.0.1:")
    assert result["alive_workers"] == 2 and result["active_apps"] == 1
    share = max(1, (os.cpu_count() or 1) // 2)
    assert result["worker_cores"] == [share, share]
    assert result["marker"] == "on-executors"
    # the executors' working directories: one per worker, under each host's worker directory
    hosts = {os.path.basename(os.path.dirname(os.path.dirname(d))).split("-")[3] for d in result["executor_dirs"]}
    assert len(result["executor_dirs"]) >= 2 and len(hosts) == 2, result["executor_dirs"]
    executors = {e["Task Info"]["Executor ID"] for e in events if e["Event"] == "SparkListenerTaskEnd"}
    assert len(executors - {"driver"}) >= 2, executors


@pytest.mark.capability("iproute2-ss", "loopback-listeners")
def test_a_two_instance_spark_cluster_listens_on_loopback_only(cluster_job):
    """Issue 17, finding 8: the Spark JVMs were bound to the machine's external interface."""
    *_, watch = cluster_job
    assert any(entry[0] == "java" for entry in watch.seen), watch.seen
    assert watch.external() == []
