"""The EMR API served by the stack: clusters are real Spark standalone clusters, steps real spark-submit runs."""

import gzip
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import REGION, unique

APP = """
import json, os, sys, time
import boto3
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("emr-api-test").getOrCreate()
sc = spark.sparkContext
bucket, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "fail":
    raise RuntimeError("no partitions for day 2026-12-07")

def square(x):
    time.sleep(0.2)
    return (os.getcwd().rsplit("/", 1)[-1], x * x)  # an executor's Python worker runs in its executor's folder

pairs = sc.parallelize(range(20), 10).map(square).collect()
result = {"total": sum(v for _, v in pairs), "executors": sorted({e for e, _ in pairs}), "master": sc.master}
boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(result).encode())
spark.stop()
"""


@pytest.fixture(scope="module")
def emr(stack_url):
    return boto3.client(
        "emr", endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def _spark_step(name, app_uri, *args, action="CONTINUE"):
    return {
        "Name": name,
        "ActionOnFailure": action,
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": ["spark-submit", "--deploy-mode", "cluster", app_uri, *args],
        },
    }


def _wait(describe, done):
    while True:
        answer = describe()
        if done(answer):
            return answer
        time.sleep(0.1)  # a cluster starts and a step ends in seconds here: a 1 s poll added ~0.5 s per wait


def _step_ended(emr, cluster_id, step_id):
    return _wait(
        lambda: emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"],
        lambda s: s["Status"]["State"] in ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"),
    )


def test_a_cluster_runs_spark_steps_on_its_workers_and_terminates(emr, s3, bucket, stack):
    prefix = unique("emr")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/app.py", Body=APP.encode())
    app = f"s3://{bucket}/{prefix}/app.py"
    cluster_id = emr.run_job_flow(
        Name="api-test",
        ReleaseLabel="emr-7.5.0",
        LogUri=f"s3://{bucket}/{prefix}/logs/",
        Applications=[{"Name": "Spark"}],
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 2},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    assert cluster_id.startswith("j-")
    cluster = _wait(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"], lambda c: c["Status"]["State"] != "STARTING"
    )
    assert cluster["Status"]["State"] == "WAITING", cluster["Status"]
    assert cluster["AutoTerminate"] is False
    status = stack.backend().emr.spark_cluster(cluster_id).status()
    assert status["aliveworkers"] == 2  # the two CORE instances, each a worker JVM

    ok, bad = emr.add_job_flow_steps(
        JobFlowId=cluster_id,
        Steps=[
            _spark_step("squares", app, bucket, f"{prefix}/out.json", "ok"),
            _spark_step("broken", app, bucket, f"{prefix}/none.json", "fail"),
        ],
    )["StepIds"]
    assert _step_ended(emr, cluster_id, ok)["Status"]["State"] == "COMPLETED"
    result = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/out.json")["Body"].read())
    assert result["total"] == sum(x * x for x in range(20))
    assert result["master"].startswith("spark://127.0.0.1:")
    assert len(result["executors"]) == 2  # tasks ran on both workers

    failed = _step_ended(emr, cluster_id, bad)
    assert failed["Status"]["State"] == "FAILED"
    details = failed["Status"]["FailureDetails"]
    assert details["Reason"] == "RuntimeError: no partitions for day 2026-12-07"
    log_key = details["LogFile"].removeprefix(f"s3://{bucket}/")
    assert log_key == f"{prefix}/logs/{cluster_id}/steps/{bad}/stdout.gz"
    assert b"Traceback" in gzip.decompress(s3.get_object(Bucket=bucket, Key=log_key)["Body"].read())

    listed = emr.list_steps(ClusterId=cluster_id)["Steps"]
    assert [s["Id"] for s in listed] == [bad, ok]  # newest first, as EMR lists them
    assert emr.list_steps(ClusterId=cluster_id, StepStates=["FAILED"])["Steps"][0]["Name"] == "broken"
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "WAITING"  # CONTINUE
    assert cluster_id in {c["Id"] for c in emr.list_clusters(ClusterStates=["WAITING"])["Clusters"]}

    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    ended = _wait(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"],
        lambda c: c["Status"]["State"].startswith("TERMINATED"),
    )
    assert ended["Status"]["State"] == "TERMINATED"
    assert ended["Status"]["StateChangeReason"]["Code"] == "USER_REQUEST"
    assert stack.backend().emr.spark_cluster(cluster_id) is None  # its JVMs are gone
    with pytest.raises(ClientError, match="may not be modified"):
        emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[_spark_step("late", app, bucket, "k", "ok")])


def test_bad_requests_get_emrs_errors(emr):
    with pytest.raises(ClientError) as unknown:
        emr.describe_cluster(ClusterId="j-NOSUCHCLUSTER1")
    assert unknown.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as too_big:
        emr.run_job_flow(
            Name="huge",
            Instances={"InstanceGroups": [{"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 50}]},
        )
    assert too_big.value.response["Error"]["Code"] == "ValidationException"
    assert "at most 8 Spark workers" in too_big.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as not_served:
        emr.list_instance_groups(ClusterId="j-NOSUCHCLUSTER1")
    assert not_served.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "RunJobFlow" in not_served.value.response["Error"]["Message"]


def test_a_failed_step_ends_an_auto_terminating_cluster_with_step_failure(emr, s3, bucket):
    prefix = unique("emr-fail")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/app.py", Body=APP.encode())
    app = f"s3://{bucket}/{prefix}/app.py"
    jar_step = {
        "Name": "custom-jar",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": f"s3://{bucket}/{prefix}/job.jar", "MainClass": "com.example.Job"},
    }
    cluster_id = emr.run_job_flow(
        Name="auto-terminate",
        Instances={"InstanceCount": 1, "MasterInstanceType": "m5.xlarge"},  # a lone master: one worker
        Steps=[
            jar_step,
            _spark_step("broken", app, bucket, "k", "fail", action="TERMINATE_CLUSTER"),
            _spark_step("never", app, bucket, "k", "ok"),
        ],
    )["JobFlowId"]
    ended = _wait(
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"],
        lambda c: c["Status"]["State"].startswith("TERMINATED"),
    )
    assert ended["Status"]["State"] == "TERMINATED_WITH_ERRORS"
    assert ended["Status"]["StateChangeReason"] == {
        "Code": "STEP_FAILURE",
        "Message": "Shut down as step failed: broken",
    }
    steps = {s["Name"]: s["Status"] for s in emr.list_steps(ClusterId=cluster_id)["Steps"]}
    assert steps["custom-jar"]["State"] == "FAILED"
    assert "custom JAR steps" in steps["custom-jar"]["FailureDetails"]["Message"]
    assert steps["broken"]["FailureDetails"]["Reason"] == "RuntimeError: no partitions for day 2026-12-07"
    assert steps["never"]["State"] == "CANCELLED"
