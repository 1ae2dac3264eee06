"""``python -m containers.xgboost train|serve``: the image's ENTRYPOINT."""

from __future__ import annotations

import os
import sys

from containers.toolkit.entrypoint import main_for
from containers.toolkit.serving import serve
from containers.xgboost import HANDLER
from containers.xgboost.train import train_job


def _serve() -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return serve(HANDLER)


if __name__ == "__main__":
    sys.exit(main_for(train_job, _serve))
