"""``python -m containers.scikit_learn train|serve|<command>``: the scikit-learn framework image's ENTRYPOINT."""

from __future__ import annotations

import sys

from containers.scikit_learn import HANDLER
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.framework.framework_entry import framework_main


def _train(env: TrainingEnvironment) -> None:
    from containers.toolkit.framework.script_mode import run_user_entry_point

    run_user_entry_point(env)  # the scikit-learn image trains only in script mode


def _serve() -> int:
    from containers.toolkit.framework.script_serving import serve_user_script

    return serve_user_script(HANDLER)


if __name__ == "__main__":
    sys.exit(framework_main(_train, _serve))
