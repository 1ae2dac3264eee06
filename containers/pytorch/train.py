"""PyTorch script-mode training: the user's entry point, started by ``torchrun`` across the instance hosts when the
estimator asks for ``distribution={"torch_distributed": {"enabled": True}}`` (or ``pytorchddp``), as the SageMaker
PyTorch training toolkit does (docs/containers.md, "Framework containers").

Every host runs ``torchrun --nnodes <hosts> --nproc_per_node <n> --node_rank <i> --master_addr <hosts[0]>
--master_port <port> <entry point> <args>``: ``n`` is the host's GPU count, or 1 on a CPU host; the port is the
job's own (``SAGESTACK_RABIT_PORT``, which the process runtime picks free per job; 7777 otherwise, the toolkit's).
When the master resolves to a loopback address (every host on this machine), Gloo is told to use the loopback
interface, since the machine's own host name may not resolve inside the job's network namespace.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from collections.abc import Callable, Sequence

from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.framework.script_mode import run_user_entry_point
from containers.toolkit.framework.training_env import Hardware, decode_hyperparameters

logger = logging.getLogger(__name__)

__all__ = ["torchrun_launcher", "train"]

DISTRIBUTED_FLAGS = ("sagemaker_torch_distributed_enabled", "sagemaker_pytorch_ddp_enabled")
PORT_ENV = "SAGESTACK_RABIT_PORT"
DEFAULT_MASTER_PORT = 7777


def distributed(env: TrainingEnvironment) -> bool:
    decoded = decode_hyperparameters(env.hyperparameters)
    return any(decoded.get(flag) is True or str(decoded.get(flag)).lower() == "true" for flag in DISTRIBUTED_FLAGS)


def _master_address(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        logger.info("host %s does not resolve: every host runs on this machine, the master is 127.0.0.1", host)
        return "127.0.0.1"


def torchrun_launcher(env: TrainingEnvironment, hardware: Hardware) -> tuple[list[str], dict[str, str]]:
    """The ``torchrun`` arguments before the entry point, and the variables the processes need."""
    hosts = list(env.resource.hosts)
    master = _master_address(hosts[0])
    port = env.environ.get(PORT_ENV) or str(DEFAULT_MASTER_PORT)
    per_host = max(1, hardware.num_gpus)
    launcher = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", str(len(hosts)),
        "--nproc_per_node", str(per_host),
        "--node_rank", str(hosts.index(env.resource.current_host)),
        "--master_addr", master,
        "--master_port", port,
    ]  # fmt: skip
    extra: dict[str, str] = {}
    if ipaddress.ip_address(master).is_loopback and "GLOO_SOCKET_IFNAME" not in env.environ:
        extra["GLOO_SOCKET_IFNAME"] = "lo"
    return launcher, extra


def train(env: TrainingEnvironment, hardware: Hardware | None = None) -> None:
    """The image's ``train``: the entry point, under ``torchrun`` when distributed training is asked for."""
    hardware = hardware or Hardware.detect()
    if not distributed(env):
        run_user_entry_point(env, hardware=hardware)
        return
    launcher, extra = torchrun_launcher(env, hardware)
    logger.info("torch_distributed: %d host(s), launching with torchrun", len(env.resource.hosts))
    run_user_entry_point(env, hardware=hardware, launcher=_prefix(launcher), extra_env=extra)


def _prefix(launcher: Sequence[str]) -> Callable[[list[str]], list[str]]:
    def wrap(command: list[str]) -> list[str]:
        if len(command) < 2 or command[0] != sys.executable or command[1] == "-m":
            raise UserError("torch_distributed runs Python programs (*.py) only, as on SageMaker.")
        return [*launcher, *command[1:]]

    return wrap
