"""The processing container: runs a processing job's ContainerEntrypoint + ContainerArguments in this Python env."""

from __future__ import annotations

from containers.processing.runner import run_command

__all__ = ["run_command"]
