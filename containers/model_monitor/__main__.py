"""``python -m containers.model_monitor``: the analyzer image's ENTRYPOINT (arguments are ignored, as AWS does)."""

from __future__ import annotations

import sys

from containers.model_monitor.main import main

if __name__ == "__main__":
    sys.exit(main())
