"""``python -m containers.remote_function train|serve|<command>``: the remote-function image's ENTRYPOINT."""

from __future__ import annotations

import sys

from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.framework.framework_entry import framework_main


def _train(env: TrainingEnvironment) -> None:
    raise UserError(
        f"Training job {env.job_name}: this image runs the SageMaker SDK's remote functions, started by the "
        "SDK's own AlgorithmSpecification.ContainerEntrypoint (job_driver.sh); it has no default training program."
    )


def _serve() -> int:
    raise UserError("this image runs remote functions and serves no model")


if __name__ == "__main__":
    sys.exit(framework_main(_train, _serve))
