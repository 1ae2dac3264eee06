"""``python -m containers.pytorch train|serve|<command>``: the PyTorch framework images' ENTRYPOINT."""

from __future__ import annotations

import sys

from containers.pytorch import HANDLER
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.framework.framework_entry import framework_main


def _train(env: TrainingEnvironment) -> None:
    from containers.pytorch.train import train

    train(env)


def _serve() -> int:
    from containers.toolkit.framework.script_serving import serve_user_script

    return serve_user_script(HANDLER)


if __name__ == "__main__":
    sys.exit(framework_main(_train, _serve))
