"""``python -m pipelines.commands.deploy`` against the session stack: blue/green update, idempotent re-run, rollback
of an unhealthy model, a failed update, the history through ``python -m pipelines.commands.deployments``, and the
gate's verdict on a failed run.

The packages hold XGBoost boosters trained in-process on a 70/30 split of German credit encoded as the features step
encodes it (``pipelines/credit_risk/encoding.py``); the 30 % is written where the health check reads a labelled test
split. Two good models, one trained on inverted labels (it answers every row but ranks them backwards: AUC < 0.5),
and one whose model archive does not exist.
"""

import io
import tarfile
from pathlib import Path

import boto3
import pandas as pd
import pytest
import xgboost
from sklearn.model_selection import train_test_split

from pipelines.commands import deploy, deployments, gate
from pipelines.credit_risk.encoding import LABEL, build_table
from pipelines.library.deployment.deployment_health import judge, roc_auc
from pipelines.library.deployment.deployment_history import DeploymentHistory, Outcome
from tests.integration.conftest import XGBOOST_IMAGE, unique
from tests.pipelines.conftest import create, run

BUCKET = "sagemaker-us-east-1-123456789012"
DATA = Path(__file__).resolve().parents[2] / "data" / "german_credit.csv"


def _model_tar(features, labels, seed):
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": seed},
        xgboost.DMatrix(features, label=labels),
        num_boost_round=20,
    )
    raw = booster.save_raw(raw_format="ubj")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(bytes(raw)))
    return archive.getvalue()


@pytest.fixture(scope="module")
def packages(stack_url, sm, s3):
    """A group with versions 1 and 2 (good models), 3 (inverted labels) and 4 (its model.tar.gz does not exist)."""
    table = build_table(pd.read_csv(DATA))
    train, test = train_test_split(table, test_size=0.3, random_state=42, stratify=table[LABEL])
    features, labels = train.drop(columns=[LABEL]).to_numpy(dtype=float), train[LABEL].to_numpy()
    group = unique("deploy-grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{group}/labelled_test/part-0.csv", Body=test.to_csv(index=False).encode())
    arns = []
    for version, (target, seed) in enumerate([(labels, 1), (labels, 2), (1 - labels, 3)], start=1):
        key = f"{group}/v{version}/model.tar.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=_model_tar(features, target, seed))
        arns.append(_register(sm, group, f"s3://{BUCKET}/{key}"))
    arns.append(_register(sm, group, f"s3://{BUCKET}/{group}/missing/model.tar.gz"))
    return group, arns


def _register(sm, group, model_data):
    inference = {
        "Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": model_data}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }
    return sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification=inference)["ModelPackageArn"]


def _deploy(group, endpoint, version):
    health = ["--health-data", f"s3://{BUCKET}/{group}/labelled_test/"]
    return deploy.main(["--group", group, "--endpoint", endpoint, "--package", str(version), *health])


def _history(endpoint):
    return DeploymentHistory(boto3.client("s3"), BUCKET).records(endpoint)


def test_deploy_update_rerun_rollback_and_history(sdk_env, packages, capsys):
    group, arns = packages
    sm, endpoint = boto3.client("sagemaker"), unique("deploy-ep")
    assert _deploy(group, endpoint, 1) == 0
    first = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    assert "creating endpoint" in capsys.readouterr().out
    assert sm.describe_model_package(ModelPackageName=arns[0])["ModelApprovalStatus"] == "Approved"

    # update path: a new package gets a new endpoint config; the old config is kept
    assert _deploy(group, endpoint, 2) == 0
    second = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    assert second != first and f"{first} -> {second}" in capsys.readouterr().out
    assert sm.describe_endpoint_config(EndpointConfigName=first)["EndpointConfigName"] == first

    # idempotent: the same package again changes nothing
    assert _deploy(group, endpoint, 2) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == second

    # rollback: the inverted model goes live, fails its health check, traffic returns to the previous config
    assert _deploy(group, endpoint, 3) == 1
    err = capsys.readouterr().err
    assert "RolledBack" in err and "below 0.6" in err and f"traffic is back on {second}" in err
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", second)
    assert sm.describe_model_package(ModelPackageName=arns[2])["ModelApprovalStatus"] == "PendingManualApproval"

    # a failed update (the model cannot be downloaded): SageMaker keeps the old config serving
    for _ in range(2):  # twice: the second attempt must not mistake the first one's FailureReason for its own
        assert _deploy(group, endpoint, 4) == 1
        assert "Failed: the update to" in capsys.readouterr().err
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == second

    records = _history(endpoint)
    assert [(r.package_arn, r.outcome, r.previous_config) for r in records] == [
        (arns[0], Outcome.SUCCEEDED, None),
        (arns[1], Outcome.SUCCEEDED, first),
        (arns[2], Outcome.ROLLED_BACK, second),
        (arns[3], Outcome.FAILED, second),
        (arns[3], Outcome.FAILED, second),
    ]
    assert records[1].health["auc"] >= 0.6 > records[2].health["auc"]

    assert deployments.main(["--endpoint", endpoint]) == 0
    lines = capsys.readouterr().out.splitlines()
    ours = [line for line in lines if endpoint in line and group in line]
    outcomes = [word for line in ours for word in line.split() if word in {o.value for o in Outcome}]
    assert outcomes == ["Succeeded", "Succeeded", "RolledBack", "Failed", "Failed"]
    assert [line.startswith("*") for line in ours] == [False, True, False, False, False]
    sm.delete_endpoint(EndpointName=endpoint)  # frees its serving process for the rest of the suite


def test_gate_fails_on_a_failed_evaluation_and_names_no_package(sdk_env, sm, condition_branches, tmp_path, capsys):
    name = create(sm, condition_branches)
    _, described = run(sm, name, PipelineParameters=[{"Name": "Auc", "Value": "0.5"}])
    assert described["PipelineExecutionStatus"] == "Failed"
    outputs = tmp_path / "github_output"
    assert gate.main(["--pipeline", name, "--output", str(outputs)]) == 1
    assert "condition Gate is False" in capsys.readouterr().err
    assert dict(line.split("=", 1) for line in outputs.read_text().splitlines())["passed"] == "false"
    assert "package=\n" in outputs.read_text()


def test_health_judgement_of_answers():
    labels = [1, 0, 1, 0]
    assert judge("0.9\n0.2\n0.8\n0.1\n", labels, 0.6).passed
    assert judge("0.9,0.2,0.8,0.1", labels, 0.6).figures["auc"] == 1.0
    assert "below 0.6" in judge("0.1\n0.9\n0.2\n0.8", labels, 0.6).reason
    assert judge("0.9\n0.2", labels, 0.6).reason == "2 scores answered for 4 rows"
    assert "not probabilities" in judge("0.9\n1.7\n0.8\n0.1", labels, 0.6).reason
    assert "not a list of scores" in judge('{"predictions": []}', labels, 0.6).reason
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1]) == 0.875  # a tie counts half


def test_deploy_without_a_test_split_stops_before_creating_anything(sdk_env, packages, capsys):
    group, _ = packages
    sm, endpoint = boto3.client("sagemaker"), unique("deploy-ep")
    argv = ["--group", group, "--endpoint", endpoint, "--package", "1", "--health-data", f"s3://{BUCKET}/nothing/"]
    assert deploy.main(argv) == 1
    assert "no test split under" in capsys.readouterr().err
    assert not sm.list_endpoint_configs(NameContains=endpoint)["EndpointConfigs"]
