"""Error taxonomy shared by every container, after SageMaker's blame model.

``UserError``: the customer can fix it (bad hyperparameter, bad data, missing channel).
``AlgorithmError``: a defect or limit inside the algorithm.
``PlatformError``: the environment failed (disk, network, missing files the platform should have written).

Serving errors carry the HTTP status the serving app answers with. Always ``raise ... from exc`` so the cause is kept.
"""

from __future__ import annotations


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
