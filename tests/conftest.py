"""Settings every test session shares."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

# Capability skips are listed at the end of the run, and fail it under CI when this machine could have run them.
pytest_plugins = ["tests.capabilities"]

# The SDK v2 prints a deprecation banner on import; the stack and the SDK never reach AWS from tests.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
# Every JVM the suite starts (SparkSessions, EMR and Spark-processing clusters, spark-submit drivers, executors) runs
# short work: C1 alone compiles it for about 40 % less CPU than the tiered C2 (docs/ci.md#jvms-in-the-suite).
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1")
# Three workers share two cores: the test processes' own intra-op thread pools (OpenMP and the BLAS under numpy and
# torch, TensorFlow's) only oversubscribe them (docs/ci.md#scheduling-the-suite). Containers size their own pools.
for _pool in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_pool, "1")


class _SdkPollingClock:
    """``time`` as the SageMaker SDK v2 sees it: sleeps are capped and the skipped time is added to its clock.

    The SDK polls Describe* every 5-30 s (``wait_for_job``, ``wait_for_endpoint``) and ``logs_for_job`` re-describes a
    job only when 30 s of ``time.time()`` have passed; none of it can be configured. Against the local stack jobs
    finish in seconds, so the suite would mostly measure those intervals. Only the SDK's own modules get this clock
    (the stack, the containers and the tests keep the real one): each capped sleep moves the SDK's clock forward by
    the full requested amount, so its loops run in the same order with the same checks, just sooner.
    """

    max_sleep_seconds = 0.25

    def __init__(self) -> None:
        self._skipped = 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        real = min(seconds, self.max_sleep_seconds)
        time.sleep(real)
        self._skipped += max(0.0, seconds - real)

    def time(self) -> float:
        return time.time() + self._skipped

    def monotonic(self) -> float:
        return time.monotonic() + self._skipped


@pytest.fixture(scope="session", autouse=True)
def _fast_sdk_polling() -> Iterator[None]:
    try:
        import sagemaker.session
        import sagemaker.utils
    except ImportError:  # pragma: no cover - the SDK is a project dependency
        yield
        return
    patch = pytest.MonkeyPatch()
    for module in (sagemaker.session, sagemaker.utils):
        patch.setattr(module, "time", _SdkPollingClock())
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def _one_sdk_config_validator() -> None:
    """Tests drive the SDK directly (not only through ``pipelines``): give them the same prebuilt config validator."""
    from pipelines.library import sdk_config

    sdk_config.install()


@pytest.fixture(scope="session", autouse=True)
def _quiet_logging_after_the_session() -> Iterator[None]:
    """Exit handlers (the runtimes' shutdown, py4j's gateway) log after pytest has closed the streams it captured
    into; without this, each such record prints a 'Logging error' traceback at the end of the run."""
    yield
    import logging

    logging.raiseExceptions = False
