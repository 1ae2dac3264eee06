"""``python -m containers.rl train|serve``: the RL image's ENTRYPOINT."""

from __future__ import annotations

import sys

from containers.rl.serve import serve_main
from containers.rl.train import train
from containers.toolkit.entrypoint import main_for

if __name__ == "__main__":
    sys.exit(main_for(train, serve_main))
