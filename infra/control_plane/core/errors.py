"""Typed service errors carrying AWS error codes; the dispatcher serializes them in one place."""

from __future__ import annotations

import logging
from typing import ClassVar

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error answered to the client with an AWS error code and HTTP status."""

    code: ClassVar[str] = "InternalFailure"
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, object]:
        return {"__type": self.code, "message": self.message}


class ValidationException(ServiceError):
    code = "ValidationException"


class ResourceNotFound(ServiceError):
    code = "ResourceNotFound"


class ResourceInUse(ServiceError):
    code = "ResourceInUse"


class ResourceLimitExceeded(ServiceError):
    code = "ResourceLimitExceeded"


class ConflictException(ServiceError):
    code = "ConflictException"


class SerializationException(ServiceError):
    code = "SerializationException"


class UnknownOperationException(ServiceError):
    code = "UnknownOperationException"


class InternalFailure(ServiceError):
    code = "InternalFailure"
    status = 500


# SageMaker Runtime (rest-json) errors: the code also travels in the x-amzn-ErrorType header.
class RuntimeValidationError(ServiceError):
    code = "ValidationError"


class ModelError(ServiceError):
    code = "ModelError"
    status = 424

    def __init__(self, message: str, original_status: int, original_message: str, log_stream_arn: str) -> None:
        super().__init__(message)
        self.original_status = original_status
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn

    def to_body(self) -> dict[str, object]:
        return {
            "__type": self.code,
            "message": self.message,
            "OriginalStatusCode": self.original_status,
            "OriginalMessage": self.original_message,
            "LogStreamArn": self.log_stream_arn,
        }


class ServiceUnavailable(ServiceError):
    code = "ServiceUnavailable"
    status = 503


class ThrottlingException(ServiceError):
    """A serverless endpoint at its MaxConcurrency (docs/deploy.md#serverless-inference); SDKs retry it."""

    code = "ThrottlingException"


def as_service_error(exc: Exception, call: str) -> ServiceError:
    """What a front answers for ``exc`` raised by ``call`` (e.g. ``AmazonAthena.GetQueryResults``): a
    ``ServiceError`` as itself; anything else is a bug, logged with its traceback and answered as a 500
    ``InternalFailure`` that names only the exception's type."""
    if isinstance(exc, ServiceError):
        return exc
    logger.error("%s failed", call, exc_info=exc)
    return InternalFailure(f"Internal error while handling {call.rpartition('.')[2]}: {type(exc).__name__}")
