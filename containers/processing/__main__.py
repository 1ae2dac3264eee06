"""``python -m containers.processing <argv...>``: the processing image's ENTRYPOINT."""

from __future__ import annotations

import logging
import sys

from containers.processing.runner import run_command

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    sys.exit(run_command(sys.argv[1:]))
