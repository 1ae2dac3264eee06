"""``python -m containers.processing <argv...>``: the processing image's ENTRYPOINT."""

from __future__ import annotations

import sys

from containers.processing.runner import run_command
from containers.toolkit.entrypoint import ContainerEntry, configure_processing_logging, run_container

if __name__ == "__main__":
    sys.exit(run_container(ContainerEntry(process=run_command, configure_logs=configure_processing_logging)))
