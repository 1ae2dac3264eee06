"""The EMR room's Spark standalone cluster and step runner, with real master/worker JVMs (no stack needed)."""

import contextlib
import json
import os
import signal
import socket
import threading
import time

import pytest

from infra.control_plane.core.aws_services import S3Access
from infra.control_plane.emr.spark_steps import RunningStep, StepEnvironment, driver_error, run_spark_step
from infra.control_plane.emr.standalone_cluster import StandaloneCluster
from infra.runtime.process.process_serving import free_port

APP = """
import json, os, sys, time
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("emr-unit").getOrCreate()
sc = spark.sparkContext
if sys.argv[1] == "fail":
    sc.parallelize([1]).count()
    raise ValueError("the input has no rows for 2026-12-07")

delay = float(sys.argv[2])  # read on the driver: executors have their own sys.argv

def slow(x):
    time.sleep(delay)
    return (os.getcwd().split("/")[-1], x * x)  # the executor id is the name of its working folder

pairs = sc.parallelize(range(int(sys.argv[3])), int(sys.argv[3])).map(slow).collect()
with open(sys.argv[1], "w") as out:
    json.dump({"total": sum(v for _, v in pairs), "executors": sorted({e for e, _ in pairs})}, out)
spark.stop()
"""


@pytest.fixture(scope="module")
def taken_port():
    """A port another process listens on (here: the test process), given to the cluster's master; Spark's REST
    submission port, 6066, is held too (by this process, or already by another cluster of the machine)."""
    with socket.socket() as listener, socket.socket() as rest:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        with contextlib.suppress(OSError):
            rest.bind(("127.0.0.1", 6066))
            rest.listen()
        yield listener.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, taken_port):
    spark = StandaloneCluster(2, tmp_path_factory.mktemp("spark"), master_port=taken_port)
    spark.start(timeout_seconds=180)
    yield spark
    spark.stop()


def test_a_master_whose_port_is_taken_starts_on_other_ports_and_its_workers_register_there(cluster, taken_port):
    """Two stacks can pick the same port a moment apart: the master must not take the other's for its own (its
    workers would register with, and steps run on, the other stack's cluster)."""
    assert cluster.master_port != taken_port
    assert cluster.master_url == f"spark://127.0.0.1:{cluster.master_port}"
    assert cluster.status()["aliveworkers"] == 2
    master_log = (cluster.log_dir / "master.log").read_text()
    assert "Address already in use" in master_log or "BindException" in master_log


def _run(tmp_path, spark, args):
    app = tmp_path / "app.py"
    app.write_text(APP)
    config = {"Jar": "command-runner.jar", "Args": ["spark-submit", "--deploy-mode", "cluster", str(app), *args]}
    running = RunningStep(tmp_path / "step")
    env = StepEnvironment("http://127.0.0.1:1", "us-east-1", S3Access("000000000000"))
    return running, run_spark_step(running, config, spark.master_url, env)


def test_a_worker_killed_mid_job_is_survived_last(tmp_path, cluster):
    """Two workers (on loopback) until one is killed mid-step; Spark reruns its tasks on the other.
    (A step on both workers and a failing app's driver error are checked through EMR in
    tests/integration/test_emr_clusters.py and tests/pipelines/test_emr_steps.py.)"""
    status = cluster.status()
    assert status["aliveworkers"] == 2
    assert {w["host"] for w in status["workers"]} == {"127.0.0.1"}
    result = tmp_path / "result.json"
    victim = cluster.worker_pids()[0]

    def kill_when_running():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            apps = cluster.status().get("activeapps") or []
            if (
                apps
                and (tmp_path / "step" / "stderr").exists()
                and "Starting task" in (tmp_path / "step" / "stderr").read_text(errors="replace")
            ):
                time.sleep(1.0)
                os.killpg(victim, signal.SIGKILL)  # the worker and its executor, as when a node is lost
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    _, failure = _run(tmp_path, cluster, [str(result), "0.5", "24"])
    killer.join()
    assert failure is None
    assert json.loads(result.read_text())["total"] == sum(x * x for x in range(24))
    deadline = time.monotonic() + 120
    while cluster.alive_workers() != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.alive_workers() == 1  # the master saw the worker go


def test_driver_error_is_the_last_exception_line():
    text = "INFO starting\nTraceback (most recent call last):\n  File x\nKeyError: 'date'\nINFO shutdown hook\n"
    assert driver_error(text) == "KeyError: 'date'"
    assert driver_error("INFO nothing wrong\n") is None
