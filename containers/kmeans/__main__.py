"""``python -m containers.kmeans train|serve``: the image's entry point.

Only the standard library is imported before :func:`limit_native_threads` runs: numpy and the BLAS behind it read
their thread counts when they load, in the ``train``/``serve`` functions below.
"""

from __future__ import annotations

import sys

from containers.toolkit.entrypoint import main_for
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.threads import limit_native_threads


def _train(env: TrainingEnvironment) -> None:
    from containers.kmeans.train import train

    train(env)


def _serve() -> int:
    from containers.toolkit.serving import serve

    return serve("containers.kmeans.serve:KMeansHandler")


if __name__ == "__main__":
    limit_native_threads()
    sys.exit(main_for(_train, _serve))
