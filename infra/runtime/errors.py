"""Errors the runtime raises besides the ones :mod:`infra.runtime.api` declares."""

from __future__ import annotations

from infra.runtime.api import ContainerRuntimeError, ImageNotFoundError

__all__ = [
    "ContainerRuntimeError",
    "ImageNotFoundError",
    "InvalidSpecError",
    "IsolationError",
    "ServingPortTakenError",
    "ServingStartupError",
    "UnsafeArchiveError",
]


class InvalidSpecError(ContainerRuntimeError):
    """A spec asks for something the runtime cannot lay out (for example a path outside ``/opt/ml``)."""


class IsolationError(ContainerRuntimeError):
    """A forced isolation mode does not work on this machine."""


class UnsafeArchiveError(ContainerRuntimeError):
    """A tar archive holds a member that would land outside the destination or is not a plain file/dir/link."""


class ServingStartupError(ContainerRuntimeError):
    """A ``serve`` process exited or never answered ``GET /ping`` with 200 in time."""

    def __init__(self, message: str, last_lines: tuple[str, ...] = ()) -> None:
        tail = "\n".join(last_lines)
        super().__init__(f"{message}\nLast log lines:\n{tail}" if tail else message)
        self.last_lines = last_lines


class ServingPortTakenError(ServingStartupError):
    """Another process listens on the port a ``serve`` process was given: what answers there is not the container."""
