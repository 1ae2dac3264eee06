"""The control-plane suite against a background server started with ``python -m infra.cli up`` (make up)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import FAKE_IMAGE

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SUITE = ["test_control_plane.py", "test_model_registry.py", "test_processing_jobs.py"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.expensive
def test_control_plane_suite_against_make_up(tmp_path):
    if os.environ.get("SAGESTACK_TEST_ENDPOINT"):
        pytest.skip("already running against an external server")
    port = _free_port()
    env = {
        **os.environ,
        "SAGESTACK_EXTRA_IMAGES": json.dumps({FAKE_IMAGE: [sys.executable, str(HERE / "fake_container.py")]}),
        "SAGESTACK_CAPTURE_FLUSH_SECONDS": "0.3",
    }
    cli = [sys.executable, "-m", "infra.cli", "--port", str(port), "--data-dir", str(tmp_path)]
    subprocess.run([*cli, "up"], check=True, cwd=ROOT, env=env, capture_output=True, timeout=60)
    try:
        suite = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(str(HERE / name) for name in SUITE)],
            cwd=ROOT,
            env={**env, "SAGESTACK_TEST_ENDPOINT": f"http://127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        subprocess.run([*cli, "down"], check=True, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout
