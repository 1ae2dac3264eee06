"""One Sagestack per test session, in-process on a free port, with a test-only fake image registered.

``SAGESTACK_TEST_RUNTIME=docker`` (``make test-docker``) runs the same tests against a stack whose jobs and endpoints
run in Docker; the fake image is then built as a real image (``tests/docker/fake_image.py``). Tests that check what
only one runtime does are listed in ``RUNTIME_SPECIFIC`` and get the ``runtime(name)`` marker.
"""

import os
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from infra.cli import env_lines, write_sdk_config
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

FAKE_IMAGE = "sagestack-tests/fake:latest"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
REGION = "us-east-1"


RUNTIMES = ("process", "docker")
# Test name -> (the only runtime it makes sense for, why).
RUNTIME_SPECIFIC = {
    "test_a_dead_serving_container_is_restarted": ("process", "kills the serve process by its pid"),
    "test_stopping_the_stack_stops_running_jobs": ("process", "starts its own process-runtime stack, finds pids"),
    "test_invoke_timeout_is_a_model_error": ("process", "runs on its own process-runtime stack"),
    "test_a_matching_job_reuses_the_warm_pool_on_a_clean_prestarted_host": (
        "process",
        "the process runtime pre-starts warm hosts; Docker starts a fresh container per job",
    ),
    "test_the_next_job_like_it_runs_on_a_clean_standby_host_and_no_warm_pool_shows": (
        "process",
        "the process runtime keeps standby hosts; Docker starts a fresh container per job",
    ),
    "test_the_stacks_end_ends_its_standby_hosts_and_the_ledger_recorded_them": (
        "process",
        "runs on its own process-runtime stack, finds its standby hosts by pid",
    ),
    "test_a_serverless_container_over_its_memory_size_is_stopped_and_started_again": (
        "process",
        "memory is read from the serve process group",
    ),
    "test_a_job_runs_as_an_unprivileged_user_and_its_outputs_are_uploaded": ("process", "the process runtime's user"),
    "test_a_two_instance_xgboost_job_listens_on_loopback_only": ("process", "finds the job's sockets by pid"),
    "test_a_two_instance_spark_cluster_listens_on_loopback_only": ("process", "finds the job's sockets by pid"),
}


def selected_runtime():
    """The runtime the session stack uses: ``SAGESTACK_TEST_RUNTIME`` (default ``process``)."""
    runtime = os.environ.get("SAGESTACK_TEST_RUNTIME") or "process"
    if runtime not in RUNTIMES:
        raise pytest.UsageError(f"SAGESTACK_TEST_RUNTIME={runtime!r}: expected one of {', '.join(RUNTIMES)}")
    return runtime


def pytest_configure(config):
    config.addinivalue_line("markers", "runtime(name): only meaningful with that runtime (SAGESTACK_TEST_RUNTIME)")


def pytest_collection_modifyitems(config, items):
    here, runtime = Path(__file__).parent, selected_runtime()
    for item in items:
        wanted = RUNTIME_SPECIFIC.get(getattr(item, "originalname", item.name))
        if wanted is None or here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.runtime(wanted[0]))
        if wanted[0] != runtime:
            item.add_marker(pytest.mark.skip(reason=f"{wanted[0]} runtime only: {wanted[1]}"))


class ExternalStack:
    """A stack started elsewhere (``python -m infra.cli up``); ``SAGESTACK_TEST_ENDPOINT`` names its URL."""

    def __init__(self, url):
        self.url = url
        self.settings = StackSettings(port=int(url.rsplit(":", 1)[1]), region=REGION)

    def backend(self):
        pytest.skip("needs the in-process stack's internals")


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    external = os.environ.get("SAGESTACK_TEST_ENDPOINT")
    if external:
        yield ExternalStack(external)
        return
    data_dir = tmp_path_factory.mktemp("sagestack")
    fake = str(Path(__file__).with_name("fake_container.py"))
    runtime = selected_runtime()
    if runtime == "docker":
        from tests.docker.fake_image import build_fake_image

        build_fake_image(FAKE_IMAGE, Path(fake))
    settings = StackSettings(
        data_dir=data_dir,
        port=0,
        region=REGION,
        extra_images={FAKE_IMAGE: (sys.executable, fake)},
        capture_flush_seconds=0.3,
        runtime=runtime,
    )
    local = LocalStack(settings)
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def stack_url(stack):
    return stack.url


def _client(url, service):
    return boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture(scope="session")
def sm(stack_url):
    return _client(stack_url, "sagemaker")


@pytest.fixture(scope="session")
def smr(stack_url):
    return _client(stack_url, "sagemaker-runtime")


@pytest.fixture(scope="session")
def s3(stack_url):
    return _client(stack_url, "s3")


@pytest.fixture(scope="session")
def logs(stack_url):
    return _client(stack_url, "logs")


@pytest.fixture(scope="session")
def bucket(s3):
    name = "sagestack-tests"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="data/train/part-1.csv", Body=b"1,0.5\n0,0.1\n")
    s3.put_object(Bucket=name, Key="data/train/part-2.csv", Body=b"1,0.7\n")
    s3.put_object(Bucket=name, Key="data/validation/v.csv", Body=b"0,0.2\n")
    return name


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sdk_env(stack, monkeypatch, tmp_path):
    settings = StackSettings(data_dir=tmp_path, port=stack.settings.port, region="us-east-1")
    bucket = "sagemaker-us-east-1-123456789012"
    for line in env_lines(settings, write_sdk_config(settings, bucket)):
        key, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(key, value)
    import boto3
    import sagemaker

    boto3.client("s3").create_bucket(Bucket=bucket) if bucket not in [
        b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]
    ] else None
    return sagemaker.Session(boto_session=boto3.Session()), bucket


@pytest.fixture(scope="module")
def sdk_env_module(stack, tmp_path_factory):
    """``sdk_env`` for the whole module: the stack's endpoint and SDK config in the environment, a session."""
    import sagemaker

    settings = StackSettings(data_dir=tmp_path_factory.mktemp("sdk"), port=stack.settings.port, region="us-east-1")
    bucket = "sagemaker-us-east-1-123456789012"
    patch = pytest.MonkeyPatch()
    for line in env_lines(settings, write_sdk_config(settings, bucket)):
        key, _, value = line.removeprefix("export ").partition("=")
        patch.setenv(key, value)
    s3 = boto3.client("s3")
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    yield sagemaker.Session(boto_session=boto3.Session()), bucket
    patch.undo()
