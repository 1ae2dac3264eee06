"""Typed errors of ``spark_jobs``. Every message says what happened, why, and how to fix it."""

from __future__ import annotations


class SparkJobsError(Exception):
    """Base class of every error raised by ``spark_jobs``."""

    def __init__(self, what: str, why: str = "", fix: str = "") -> None:
        self.what, self.why, self.fix = what, why, fix
        parts = [what]
        if why:
            parts.append(f"why: {why}")
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" | ".join(parts))

    def __reduce__(self) -> tuple[type[SparkJobsError], tuple[str, str, str]]:
        # Errors raised on executors are pickled back to the driver; keep the structured fields.
        return (type(self), (self.what, self.why, self.fix))


class InputDataError(SparkJobsError):
    """The DataFrame given to a job, estimator or transformer is not usable (missing columns, wrong types, nulls)."""


class FeatureJobError(SparkJobsError):
    """The feature job cannot run with the arguments or data it was given."""


class PayloadTooLargeError(SparkJobsError):
    """A single row does not fit in one InvokeEndpoint request under the configured byte limit."""


class EndpointInvocationError(SparkJobsError):
    """InvokeEndpoint failed for good: a non-retryable error, or retries exhausted."""


class EndpointNotFoundError(EndpointInvocationError):
    """The endpoint does not exist (or is not visible to these credentials/region)."""


class EndpointModelError(EndpointInvocationError):
    """The model container answered 4xx/5xx (``ModelError``); never retried, because the same payload fails again."""


class SageMakerJobError(SparkJobsError):
    """A training job, model or endpoint created by the estimator API failed or timed out."""
