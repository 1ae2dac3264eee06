"""One SparkSession for the whole test run; the local stack fixtures are reused from the integration suite."""

from __future__ import annotations

import pytest

from spark_jobs.config import SparkSettings
from spark_jobs.session import build_session
from tests.integration.conftest import bucket, s3, sdk_env_module, sm, smr, stack, stack_url  # noqa: F401
from tests.spark.fake_runtime import FakeRuntime


@pytest.fixture(scope="session")
def spark():
    session = build_session(SparkSettings(master="local[2]", app_name="sagestack-tests", shuffle_partitions=2))
    yield session
    session.stop()


@pytest.fixture
def fake_runtime():
    """A fresh fake endpoint per test: its counters (served rows, throttles) must not carry over between tests."""
    runtime = FakeRuntime()
    yield runtime
    runtime.stop()
