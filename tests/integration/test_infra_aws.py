"""infra/aws: the CloudFormation template on the session's local stack (deploy, no-op, change, rollback, delete),
its IAM policies, image publishing (Docker) and TARGET=aws without credentials."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.aws import stacks
from infra.aws.config import InfraConfig
from infra.aws.errors import DeployError
from infra.aws.publish import publish
from infra.aws.registry import LocalRegistry
from infra.aws.targets import local_target
from infra.runtime.docker.docker_cli import DockerCli
from tests.integration.conftest import REGION, unique

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "aws" / "template.yaml"
# Actions AWS offers no resource-level permissions for: the only ones allowed with Resource "*".
UNSCOPABLE = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "sagemaker:ListTrainingJobs",
    "sagemaker:ListModelPackages",
    "sagemaker:ListEndpoints",
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListPipelineExecutions",
}


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CfnLoader.add_multi_constructor("!", _tag)


def _template():
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


def _listed(value):
    return value if isinstance(value, list) else [value]


def test_iam_policies_give_no_star_resource_to_data_plane_actions():
    resources = _template()["Resources"]
    policies = [r["Properties"]["PolicyDocument"] for r in resources.values() if r["Type"] == "AWS::IAM::Policy"]
    assert len(policies) == 2
    star_statements = 0
    for document in policies:
        for statement in document["Statement"]:
            actions = _listed(statement["Action"])
            assert statement["Effect"] == "Allow"
            assert not any(a.endswith(":*") or a == "*" for a in actions), statement
            if "*" in _listed(statement["Resource"]):
                star_statements += 1
                assert statement["Sid"] == "NoResourceLevelScoping"
                assert set(actions) <= UNSCOPABLE, set(actions) - UNSCOPABLE
    assert star_statements == 2  # one clearly separated statement per policy


@pytest.fixture
def target(stack_url):
    return local_target(stack_url, REGION)


def _parameters(prefix):
    config = InfraConfig.load("local")
    params = config.parameters("123456789012")
    params.update(
        Prefix=prefix,
        BucketName=f"{prefix}-data",
        CreditRiskGroupName=f"{prefix}-credit",
        SegmentationGroupName=f"{prefix}-segments",
    )
    return params


def _deploy(target, name, params, lines):
    cf = target.client("cloudformation")
    return stacks.deploy(cf, name, TEMPLATE.read_text(), params, lines.append, interval=0.05)


def test_deploy_no_op_update_failed_update_and_delete(target, sm):
    prefix, lines = unique("iac"), []
    params = _parameters(prefix)
    created = _deploy(target, prefix, params, lines)
    assert created.status == "CREATE_COMPLETE" and created.changed
    assert created.outputs["ExecutionRoleArn"].endswith(f":role/{prefix}-sagemaker-execution")
    assert created.outputs["RlRepositoryUri"].endswith(f"/{prefix}/rl")
    # The resources are real: moto's S3/ECR/IAM and OUR control plane's model package groups.
    s3, ecr = target.client("s3"), target.client("ecr")
    assert s3.get_bucket_versioning(Bucket=f"{prefix}-data")["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=f"{prefix}-data")["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    rule = s3.get_bucket_encryption(Bucket=f"{prefix}-data")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    repo = ecr.describe_repositories(repositoryNames=[f"{prefix}/xgboost"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert sm.describe_model_package_group(ModelPackageGroupName=f"{prefix}-credit")["ModelPackageGroupStatus"]

    again = _deploy(target, prefix, params, lines)
    assert not again.changed and again.status == "CREATE_COMPLETE"

    renamed = {**params, "SegmentationGroupName": f"{prefix}-segments2"}
    changed = _deploy(target, prefix, renamed, lines)
    assert changed.changed and changed.status == "UPDATE_COMPLETE"
    assert changed.outputs["SegmentationModelPackageGroupName"] == f"{prefix}-segments2"
    names = {g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert f"{prefix}-segments2" in names and f"{prefix}-segments" not in names

    sm.create_model_package_group(ModelPackageGroupName=f"{prefix}-taken")
    with pytest.raises(DeployError) as failed:
        _deploy(target, prefix, {**renamed, "CreditRiskGroupName": f"{prefix}-taken"}, lines)
    assert "UPDATE_ROLLBACK_COMPLETE" in str(failed.value)
    assert any("CreditRiskModelPackageGroup" in f and "already exists" in f for f in failed.value.failures)
    stack = stacks.describe(target.client("cloudformation"), prefix)
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert sm.describe_model_package_group(ModelPackageGroupName=f"{prefix}-credit")  # the old group is back in use

    assert stacks.delete(target.client("cloudformation"), prefix, lines.append, interval=0.05) == "DELETE_COMPLETE"
    assert stacks.describe(target.client("cloudformation"), prefix) is None
    assert not [r for r in ecr.describe_repositories()["repositories"] if r["repositoryName"].startswith(prefix)]
    names = {g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert not {n for n in names if n.startswith(prefix)} - {f"{prefix}-taken"}


def test_failed_create_rolls_back_everything(target, sm):
    prefix, lines = unique("iacfail"), []
    sm.create_model_package_group(ModelPackageGroupName=f"{prefix}-credit")  # the stack's group name is taken
    with pytest.raises(DeployError) as failed:
        _deploy(target, prefix, _parameters(prefix), lines)
    assert "ROLLBACK_COMPLETE (rolled back)" in str(failed.value)
    assert any("CREATE_FAILED" in f for f in failed.value.failures)
    assert any("DELETE_COMPLETE" in line for line in lines)  # what was created is deleted again
    ecr = target.client("ecr")
    assert not [r for r in ecr.describe_repositories()["repositories"] if r["repositoryName"].startswith(prefix)]
    assert f"{prefix}-data" not in {b["Name"] for b in target.client("s3").list_buckets()["Buckets"]}


def test_target_aws_without_credentials_fails_fast_with_a_clear_message(tmp_path):
    keep = ("PATH", "HOME", "LANG", "SAGEMAKER_SUPPRESS_V2_WARNING")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    done = subprocess.run(
        [sys.executable, "-m", "infra.aws", "deploy", "--target", "aws"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "TARGET=aws needs AWS credentials" in done.stderr and "Nothing was created" in done.stderr
    assert "Traceback" not in done.stderr


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.requires_docker
@pytest.mark.capability("docker", "docker-registry")
def test_publish_images_local_pushes_to_the_registry_and_records_in_ecr(target, tmp_path):
    cli = DockerCli()
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "hello.txt").write_text("hello\n")
    archive = tmp_path / "tiny.tar"
    subprocess.run(["tar", "-C", str(tmp_path / "rootfs"), "-cf", str(archive), "."], check=True)
    source = f"sagestack-tests/{unique('tiny')}:latest"
    cli.run("import", str(archive), source)
    ecr = target.client("ecr")
    repo = unique("pubtest")
    uri = ecr.create_repository(repositoryName=f"{repo}/kmeans")["repository"]["repositoryUri"]
    registry = LocalRegistry(tmp_path / "registry", _free_port())
    try:
        done = publish(target, {"KmeansRepositoryUri": uri}, {"kmeans": source}, "abc123", cli, print, registry)
        assert done[0].uri == f"{uri}:abc123" and done[0].digest.startswith("sha256:")
        details = ecr.describe_images(repositoryName=f"{repo}/kmeans")["imageDetails"]
        assert details[0]["imageTags"] == ["abc123"]
        assert cli.inspect("image", f"{uri}:abc123") is not None  # the local ECR URI resolves for the runtime
        again = publish(target, {"KmeansRepositoryUri": uri}, {"kmeans": source}, "abc123", cli, print, registry)
        assert again[0].digest == done[0].digest
    finally:
        pid_file = tmp_path / "registry" / "registry.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        cli.run("rmi", "-f", source, f"{uri}:abc123", check=False)
