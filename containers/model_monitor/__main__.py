"""``python -m containers.model_monitor``: the analyzer image's ENTRYPOINT (arguments are ignored, as AWS does)."""

from __future__ import annotations

from containers.model_monitor.main import main
from containers.toolkit.entrypoint import exit_process

if __name__ == "__main__":
    exit_process(main())
