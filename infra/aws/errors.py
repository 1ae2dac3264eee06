"""Typed errors of ``infra.aws``; the CLI prints their message and exits non-zero."""

from __future__ import annotations

__all__ = ["ConfigError", "CredentialsError", "DeployError", "InfraError", "PublishError"]


class InfraError(RuntimeError):
    """Base: the message says what happened and what to do."""


class ConfigError(InfraError):
    """An environment file (conf/<target>.yml) is missing or malformed."""


class CredentialsError(InfraError):
    """TARGET=aws without usable AWS credentials (raised before anything is created)."""


class DeployError(InfraError):
    """A stack operation failed; ``failures`` are the failed resource events, oldest first."""

    def __init__(self, message: str, failures: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failures = failures


class PublishError(InfraError):
    """Images could not be tagged, pushed or recorded."""
