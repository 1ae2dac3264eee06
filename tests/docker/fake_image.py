"""Build the integration tests' fake container (``tests/integration/fake_container.py``) as a Docker image.

With ``SAGESTACK_TEST_RUNTIME=docker`` the integration stack runs every job in Docker, so the test-only image URI
must name a real local image. It is built ``FROM sagestack/base`` (``make images``) with ``--network none``; Docker's
layer cache makes a rebuild with no change take about a second.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from infra.runtime.docker.docker_cli import DockerCli
from tests.capabilities import requires_capability

BASE_IMAGE = "sagestack/base:latest"
DOCKERFILE = """\
FROM {base}
COPY fake_container.py fake_entry.py /fake/
ENV PYTHONPATH=/fake PYTHONUNBUFFERED=1 HOME=/tmp
ENTRYPOINT ["python", "/fake/fake_entry.py"]
"""


def build_fake_image(tag: str, fake_container: Path) -> None:
    """``docker build -t tag``; skips the calling test (or session) when there is no engine or no base image."""
    docker = DockerCli()
    requires_capability("docker", available=docker.is_available(), why="SAGESTACK_TEST_RUNTIME=docker")
    built = docker.inspect("image", BASE_IMAGE) is not None
    requires_capability("docker-images", available=built, why=f"SAGESTACK_TEST_RUNTIME=docker needs {BASE_IMAGE}")
    with tempfile.TemporaryDirectory(prefix="sagestack-fake-image-") as scratch:
        context = Path(scratch)
        shutil.copy2(fake_container, context / "fake_container.py")
        shutil.copy2(Path(__file__).with_name("fake_entry.py"), context / "fake_entry.py")
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=BASE_IMAGE), encoding="utf-8")
        argv = docker.argv("build", "--network", "none", "--label", "org.sagestack.tests=1", "-t", tag, str(context))
        subprocess.run(argv, capture_output=True, text=True, env=docker.environment(), check=True)
