"""``python -m containers.pca train|serve``: the image's entry point.

Only the standard library is imported before :func:`limit_native_threads` runs: numpy and the BLAS behind it read
their thread counts when they load, in the ``train``/``serve`` functions below. For training, idle OpenBLAS workers
are also told to sleep at once instead of spinning for ~2^28 cycles after each call: between the BLAS calls the Arrow
CSV parser and the recordIO decoder need those cores (a value the user set wins).
"""

from __future__ import annotations

import os
import sys

from containers.toolkit.entrypoint import main_for
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.threads import limit_native_threads

BLAS_IDLE_SPIN = ("OPENBLAS_THREAD_TIMEOUT", "4")  # idle workers spin 2^4 cycles, not 2^28, before they sleep


def _train(env: TrainingEnvironment) -> None:
    os.environ.setdefault(*BLAS_IDLE_SPIN)  # numpy, and OpenBLAS with it, is first imported just below
    from containers.pca.train import train

    train(env)


def _serve() -> int:
    from containers.toolkit.serving import serve

    return serve("containers.pca.serve:PCAHandler")


if __name__ == "__main__":
    limit_native_threads()
    sys.exit(main_for(_train, _serve))
