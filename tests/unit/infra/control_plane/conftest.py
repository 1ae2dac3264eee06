"""Fixtures shared by the control plane's unit tests."""

from __future__ import annotations

import pytest

from infra.control_plane.mlflow_servers import mlflow_process


@pytest.fixture
def probe_launch(tmp_path) -> mlflow_process.MlflowLaunch:
    """A managed MLflow server's launch settings, never started: what its child process's environment is built from."""
    return mlflow_process.MlflowLaunch(
        name="probe",
        server_dir=tmp_path,
        artifacts_destination="s3://bucket/runs",
        port=1,
        stack_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
        startup_timeout_seconds=1,
    )
