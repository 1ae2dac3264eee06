"""``make pipeline|deploy|gate|monitor TARGET=aws`` with no AWS credentials: a clear message, exit 2, nothing called."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module",
    [
        "pipelines.commands.run_pipeline",
        "pipelines.commands.deploy",
        "pipelines.commands.gate",
        "pipelines.commands.monitor",
    ],
)
def test_target_aws_without_credentials_is_refused_before_any_call(module, tmp_path):
    keep = ("PATH", "HOME", "LANG", "SAGEMAKER_SUPPRESS_V2_WARNING")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    command = [sys.executable, "-m", module, "--target", "aws"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert "TARGET=aws needs AWS credentials" in done.stderr
    assert "Traceback" not in done.stderr
