"""Everything a job listens on is loopback (issue 17, finding 8; docs/security.md#what-jobs-listen-on).

While a job runs, ``ss -ltnp`` is sampled; every listening socket of a process the in-process stack started (the
test process's descendants) must be bound to a loopback address. Distributed XGBoost's worker sockets were bound to
0.0.0.0 by libxgboost, and the Spark JVMs to the machine's external interface (that check shares the two-instance
Spark job of tests/integration/test_spark_cluster_processing.py).
"""

import pytest

from tests.integration.conftest import XGBOOST_IMAGE, unique
from tests.integration.helpers import training_request, wait_training
from tests.integration.listeners import ListenerWatch

pytestmark = pytest.mark.capability("iproute2-ss", "loopback-listeners")


def test_a_two_instance_xgboost_job_listens_on_loopback_only(sm, s3, bucket):
    rows = "".join(f"{i % 2},{i / 100:.2f},{(i * 7) % 13}\n" for i in range(2000))
    s3.put_object(Bucket=bucket, Key="listeners/train/a.csv", Body=rows.encode())
    s3.put_object(Bucket=bucket, Key="listeners/train/b.csv", Body=rows.encode())
    name = unique("xgb-listen")
    channel = {
        "ChannelName": "train",
        "ContentType": "text/csv",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{bucket}/listeners/train/",
                "S3DataDistributionType": "ShardedByS3Key",
            }
        },
    }
    request = training_request(
        name,
        bucket,
        InputDataConfig=[channel],
        HyperParameters={"num_round": "10", "objective": "binary:logistic", "max_depth": "6"},
    )
    request["AlgorithmSpecification"]["TrainingImage"] = XGBOOST_IMAGE
    request["ResourceConfig"]["InstanceCount"] = 2
    with ListenerWatch() as watch:
        sm.create_training_job(**request)
        described = wait_training(sm, name, timeout=600)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert watch.seen, "no listener of the job was seen: the measurement itself failed"
    assert watch.external() == []
