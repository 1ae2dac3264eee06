"""``python -m containers.processing <argv...>``: the processing image's ENTRYPOINT."""

from __future__ import annotations

from containers.processing.runner import run_command
from containers.toolkit.entrypoint import ContainerEntry, configure_processing_logging, exit_process, run_container

if __name__ == "__main__":
    exit_process(run_container(ContainerEntry(process=run_command, configure_logs=configure_processing_logging)))
