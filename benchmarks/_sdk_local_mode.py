"""The SageMaker SDK v2's local mode (``LocalSession``, ``instance_type="local"``, docker-compose) deploying the same
model with the image tagged as the AWS XGBoost URI: the comparison issue 24 asks of ``endpoint_cold_start`` when
Docker is there (docs/performance.md#endpoint-start). No image is pulled: ``make images`` builds and tags it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.runtime.docker.docker_cli import DockerCli
from infra.runtime.errors import ContainerRuntimeError

ROLE = "arn:aws:iam::123456789012:role/Bench"
TELEMETRY_OFF = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
_STACK_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER")
_DEFAULTS = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def why_unavailable(image: str) -> str:
    """Why SDK local mode cannot run here (a short token for the benchmark line), or ``""`` when it can."""
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        return "no-docker-compose"
    docker = DockerCli()
    try:
        if not docker.is_available():
            return "no-docker-engine"
        if docker.inspect("image", image) is None:
            return "image-not-tagged"
    except ContainerRuntimeError:
        return "no-docker-engine"
    return ""


def deploy_seconds(image: str, archive: Path, body: bytes, base: Path) -> float:
    """``Model.deploy(instance_type="local")`` until the first prediction answers, in seconds; the endpoint and its
    containers are removed afterwards."""
    docker = DockerCli()
    before = set(_containers_of(docker, image))
    try:
        with _sdk_home(base / "home"):
            return _deploy_and_predict(image, archive, body, base)
    finally:  # the SDK's docker-compose leaves its exited containers behind: remove the ones made here
        leftovers = [c for c in _containers_of(docker, image) if c not in before]
        if leftovers:
            docker.run("rm", "-f", *leftovers, check=False)


def _containers_of(docker: DockerCli, image: str) -> list[str]:
    return docker.run("ps", "-aq", "--filter", f"ancestor={image}", check=False).stdout.split()


def _deploy_and_predict(image: str, archive: Path, body: bytes, base: Path) -> float:
    from sagemaker.local import LocalSession
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    session = LocalSession()
    session.config = {"local": {"local_code": True, "container_root": str(base / "sm-local")}}
    (base / "sm-local").mkdir(parents=True, exist_ok=True)
    model = Model(image_uri=image, model_data=f"file://{archive}", role=ROLE, sagemaker_session=session)
    start = time.perf_counter()
    model.deploy(initial_instance_count=1, instance_type="local")
    predictor = Predictor(model.endpoint_name, session, serializer=CSVSerializer())
    try:
        predictor.predict(body)
        return time.perf_counter() - start
    finally:
        predictor.delete_endpoint()


@contextmanager
def _sdk_home(home: Path) -> Iterator[None]:
    """The SDK reads ``~/.config/sagemaker/config.yaml`` (its defaults), ``~/.sagemaker/config.yaml`` (local mode's
    settings) and the AWS endpoint variables: neither the user's nor the stack's."""
    (home / ".config" / "sagemaker").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "sagemaker" / "config.yaml").write_text(TELEMETRY_OFF)  # the SDK's defaults
    (home / ".sagemaker").mkdir(parents=True, exist_ok=True)
    (home / ".sagemaker" / "config.yaml").write_text("local:\n  local_code: true\n")  # local mode's own settings
    saved = {key: os.environ.get(key) for key in ("HOME", *_STACK_VARIABLES, *_DEFAULTS)}
    os.environ["HOME"] = str(home)
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)  # LocalSession builds a boto3 session; nothing reaches AWS
    for key in _STACK_VARIABLES:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, before in saved.items():
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before
