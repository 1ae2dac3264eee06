"""Error taxonomy shared by every container, after SageMaker's blame model.

``UserError``: the customer can fix it (bad hyperparameter, bad data, missing channel).
``AlgorithmError``: a defect or limit inside the algorithm.
``PlatformError``: the environment failed (disk, network, missing files the platform should have written).

Serving errors carry the HTTP status the serving app answers with. Always ``raise ... from exc`` so the cause is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class ToolkitError(Exception):
    """Base of every error raised on purpose by a container."""

    kind = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def failure_text(self) -> str:
        """The text written to ``/opt/ml/output/failure``."""
        return f"{self.kind}: {self.message}"


class UserError(ToolkitError):
    kind = "ClientError"


class AlgorithmError(ToolkitError):
    kind = "AlgorithmError"


class PlatformError(ToolkitError):
    kind = "PlatformError"


class InferenceError(ToolkitError):
    """An error answered over HTTP by the serving app; ``status`` is the HTTP status code."""

    status = 500


class UnsupportedMediaTypeError(InferenceError):
    status = 415


class NotAcceptableError(InferenceError):
    status = 406


class BadRequestError(InferenceError):
    status = 400


class PayloadTooLargeError(InferenceError):
    status = 413


class ModelLoadError(InferenceError):
    status = 500


class ModelNotFoundError(InferenceError):
    """A multi-model server has no model of that name (docs/containers.md#multi-model-serving)."""

    status = 404


class ModelAlreadyLoadedError(InferenceError):
    status = 409


# A raised exception's last traceback line: "RuntimeError: ...", "botocore.exceptions.ClientError: ...", "KeyError"
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt)(?::|$)")
# Log records never make a good failure reason: log4j's (Spark's shutdown chatter comes after the Python traceback),
# Python logging's default and bracketed formats, and the SageMaker SDK's config notices.
_LOG_RECORD = re.compile(
    r"^(?:\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} |\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}[,.]\d+ |\S+ )"
    r"(?:INFO|WARN|WARNING|DEBUG|TRACE)\b"
)


def failure_line(lines: Sequence[str]) -> str:
    """The line of a failed command's output that best says why: the last exception line, else the last line that
    is not a log record, else the last line."""
    stripped = [line.strip() for line in lines if line.strip()]
    for line in reversed(stripped):
        if _EXCEPTION_LINE.match(line):
            return line
    for line in reversed(stripped):
        if not _LOG_RECORD.match(line):
            return line
    return stripped[-1] if stripped else "no error output"
