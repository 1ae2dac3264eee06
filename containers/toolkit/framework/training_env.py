"""The ``SM_*`` environment the SageMaker training toolkit gives a user's entry point
(docs/reference/container-contract.md#training-environment-variables).

``sm_env_vars(env)`` turns a loaded :class:`TrainingEnvironment` into the exact variables and values that
sagemaker-training sets: hyperparameters decoded with ``json.loads`` (the raw string when that fails), ``sagemaker_*``
and reserved keys split off, ``SM_USER_ARGS`` built like ``mapping.to_cmd_args``, and values encoded like
``mapping.to_env_vars`` (strings unchanged, ``None`` -> ``""``, anything else compact JSON with sorted keys).
Paths come from ``env.paths``, so they are the ones the container sees.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from containers.toolkit.environment import TrainingEnvironment

logger = logging.getLogger(__name__)

SAGEMAKER_PREFIX = "sagemaker_"
PROGRAM_PARAM = "sagemaker_program"
SUBMIT_DIR_PARAM = "sagemaker_submit_directory"
REGION_PARAM = "sagemaker_region"
LOG_LEVEL_PARAM = "sagemaker_container_log_level"
JOB_NAME_PARAM = "sagemaker_job_name"
PROGRAM_ENV = "SAGEMAKER_PROGRAM"
TRAINING_MODULE_ENV = "SAGEMAKER_TRAINING_MODULE"

# Removed from SM_HPS and the CLI arguments, and kept out of SM_FRAMEWORK_PARAMS (TT params.SAGEMAKER_HYPERPARAMETERS).
RESERVED_HYPERPARAMETERS: tuple[str, ...] = (
    PROGRAM_PARAM,
    SUBMIT_DIR_PARAM,
    "sagemaker_enable_cloudwatch_metrics",
    REGION_PARAM,
    LOG_LEVEL_PARAM,
    JOB_NAME_PARAM,
    "default_user_module_name",
    "_tuning_objective_metric",
    "sagemaker_s3_output",
)

_DISTRIBUTION_FLAGS = (
    "sagemaker_mpi_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
    "sagemaker_torch_distributed_enabled",
)
_LOG_LEVEL_INFO = 20


def decode_value(raw: str) -> Any:
    """``json.loads`` the value, keeping the raw string when it is not JSON (``binary:logistic``)."""
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return raw


def decode_hyperparameters(raw: Mapping[str, str]) -> dict[str, Any]:
    return {key: decode_value(value) for key, value in raw.items()}


def split_hyperparameters(decoded: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(user, platform)``: platform keys are the reserved ones and every ``sagemaker_*`` key."""
    platform = {k: v for k, v in decoded.items() if k in RESERVED_HYPERPARAMETERS or k.startswith(SAGEMAKER_PREFIX)}
    user = {k: v for k, v in decoded.items() if k not in platform}
    return user, platform


def _arg_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    return str(value)


def to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``--key value`` pairs, keys sorted; ``-k`` for one-character keys; dicts as ``k1=v1,k2=v2``."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        name = _arg_text(key)
        args.append(("--" if len(name) > 1 else "-") + name if name else "")
        value = hyperparameters[key]
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(_arg_text(value))
    return args


def env_value(value: Any) -> str:
    """Encode one value the way the training toolkit does for ``SM_*`` variables."""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _count_gpus() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        output = subprocess.run(
            ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        logger.info("no GPUs detected (nvidia-smi failed)")
        return 0
    return sum(1 for line in output.splitlines() if line.startswith("GPU "))


def _count_neurons() -> int:
    if shutil.which("neuron-ls") is None:
        return 0
    try:
        output = subprocess.run(["neuron-ls", "-j"], capture_output=True, text=True, check=True, timeout=30).stdout
        devices = json.loads(output)
    except (OSError, subprocess.SubprocessError, ValueError):
        logger.info("no Neuron cores detected (neuron-ls failed)")
        return 0
    return sum(int(item.get("nc_count", 0)) for item in devices if isinstance(item, dict))


@dataclass(frozen=True)
class Hardware:
    """What the host offers; passed in so tests (and the runtime) can pin it."""

    num_cpus: int
    num_gpus: int = 0
    num_neurons: int = 0

    @classmethod
    def detect(cls) -> Hardware:
        return cls(num_cpus=os.cpu_count() or 1, num_gpus=_count_gpus(), num_neurons=_count_neurons())


def _instance_groups(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    groups = resource.get("instance_groups") or []
    return [group for group in groups if isinstance(group, dict)]


def _cluster_info(env: TrainingEnvironment, framework_params: Mapping[str, Any]) -> dict[str, Any]:
    """The heterogeneous-cluster keys of the toolkit's environment, from ``resourceconfig.json``."""
    raw = env.resource.raw
    groups = _instance_groups(raw)
    current_group = str(raw.get("current_group_name", "homogeneousCluster"))
    group_hosts = next((list(g.get("hosts", [])) for g in groups if g.get("instance_group_name") == current_group), [])
    if "sagemaker_distribution_instance_groups" in framework_params:
        distribution_groups = list(framework_params["sagemaker_distribution_instance_groups"])
    elif any(framework_params.get(flag) for flag in _DISTRIBUTION_FLAGS):
        distribution_groups = [current_group]
    else:
        distribution_groups = []
    if groups:
        chosen = [g for g in groups if g.get("instance_group_name") in distribution_groups]
        distribution_hosts = [host for group in chosen for host in group.get("hosts", [])]
    else:
        distribution_hosts = list(env.resource.hosts)
    master = distribution_hosts[0] if distribution_hosts else env.resource.hosts[0]
    return {
        "current_instance_group": current_group,
        "current_instance_group_hosts": group_hosts,
        "instance_groups": [g.get("instance_group_name") for g in groups],
        "instance_groups_dict": {g.get("instance_group_name"): g for g in groups},
        "distribution_instance_groups": distribution_groups,
        "distribution_hosts": distribution_hosts,
        "is_hetero": len(groups) > 1,
        "master_hostname": master,
        "is_master": env.resource.current_host == master,
    }


def _resource_config(env: TrainingEnvironment) -> dict[str, Any]:
    if env.resource.raw:
        return dict(env.resource.raw)
    return {
        "current_host": env.resource.current_host,
        "hosts": list(env.resource.hosts),
        "network_interface_name": env.resource.network_interface_name,
        "current_instance_type": env.resource.current_instance_type,
    }


def _input_data_config(env: TrainingEnvironment) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, channel in env.channels.items():
        out[name] = dict(channel.raw) if channel.raw else channel.to_json()
    return out


def user_entry_point(env: TrainingEnvironment) -> str | None:
    """The entry point: env ``SAGEMAKER_PROGRAM`` first, else the ``sagemaker_program`` hyperparameter."""
    program = env.environ.get(PROGRAM_ENV) or None
    if program is None and PROGRAM_PARAM in env.hyperparameters:
        decoded = decode_value(env.hyperparameters[PROGRAM_PARAM])
        program = str(decoded) if decoded not in (None, "") else None
    return program


def training_env(env: TrainingEnvironment, hardware: Hardware | None = None) -> dict[str, Any]:
    """The toolkit's ``Environment`` as one dict: the object ``SM_TRAINING_ENV`` holds."""
    hardware = hardware or Hardware.detect()
    user_hps, platform_hps = split_hyperparameters(decode_hyperparameters(env.hyperparameters))
    framework_params = {k: v for k, v in platform_hps.items() if k not in RESERVED_HYPERPARAMETERS}
    entry_point = user_entry_point(env)
    paths = env.paths
    info: dict[str, Any] = {
        "additional_framework_parameters": framework_params,
        "channel_input_dirs": {name: str(channel.path) for name, channel in env.channels.items()},
        "current_host": env.resource.current_host,
        "current_instance_type": env.resource.current_instance_type,
        "framework_module": env.environ.get(TRAINING_MODULE_ENV) or None,
        "hosts": list(env.resource.hosts),
        "hyperparameters": user_hps,
        "input_config_dir": str(paths.config_dir),
        "input_data_config": _input_data_config(env),
        "input_dir": str(paths.input_dir),
        "is_modelparallel_enabled": False,
        "is_smddpmprun_installed": False,
        "job_name": env.job_name or None,
        "log_level": platform_hps.get(LOG_LEVEL_PARAM, _LOG_LEVEL_INFO),
        "model_dir": str(paths.model_dir),
        "module_dir": str(platform_hps.get(SUBMIT_DIR_PARAM) or paths.code_dir),
        "module_name": entry_point[:-3] if entry_point and entry_point.endswith(".py") else entry_point,
        "network_interface_name": env.resource.network_interface_name,
        "num_cpus": hardware.num_cpus,
        "num_gpus": hardware.num_gpus,
        "num_neurons": hardware.num_neurons,
        "output_data_dir": str(paths.output_data_dir),
        "output_dir": str(paths.output_dir),
        "output_intermediate_dir": str(paths.intermediate_dir),
        "resource_config": _resource_config(env),
        "user_entry_point": entry_point,
    }
    info.update(_cluster_info(env, framework_params))
    return dict(sorted(info.items()))


_ENV_KEYS = (
    "hosts",
    "network_interface_name",
    "output_data_dir",
    "current_host",
    "current_instance_type",
    "current_instance_group",
    "current_instance_group_hosts",
    "instance_groups",
    "instance_groups_dict",
    "distribution_instance_groups",
    "is_hetero",
    "module_name",
    "log_level",
    "framework_module",
    "input_dir",
    "input_config_dir",
    "output_dir",
    "num_cpus",
    "num_gpus",
    "num_neurons",
    "model_dir",
    "module_dir",
    "output_intermediate_dir",
    "resource_config",
    "input_data_config",
    "user_entry_point",
)


def sm_env_vars(env: TrainingEnvironment, hardware: Hardware | None = None) -> dict[str, str]:
    """Every ``SM_*`` variable of docs/reference/container-contract.md#training-environment-variables, plus
    ``SAGEMAKER_JOB_NAME``, ``CURRENT_HOST``, ``SAGEMAKER_REGION``."""
    info = training_env(env, hardware)
    values: dict[str, Any] = {key: info[key] for key in _ENV_KEYS}
    values["hps"] = info["hyperparameters"]
    values["framework_params"] = info["additional_framework_parameters"]
    values["channels"] = sorted(info["channel_input_dirs"])
    values["training_env"] = info
    values["user_args"] = to_cmd_args(info["hyperparameters"])
    for name, path in info["channel_input_dirs"].items():
        values[f"channel_{name}"] = path
    for key, value in info["hyperparameters"].items():
        values[f"hp_{key}"] = value
    out = {f"SM_{key.upper()}": env_value(value) for key, value in values.items()}
    out.update(_toolkit_process_vars(env))
    return out


def _toolkit_process_vars(env: TrainingEnvironment) -> dict[str, str]:
    """What the toolkit sets in its own process (and so the child inherits)."""
    decoded = decode_hyperparameters(env.hyperparameters)
    region = decoded.get(REGION_PARAM) or env.environ.get("AWS_REGION") or env.environ.get("AWS_DEFAULT_REGION")
    return {
        "SAGEMAKER_JOB_NAME": env_value(decoded.get(JOB_NAME_PARAM, "")),
        "CURRENT_HOST": env.resource.current_host,
        "SAGEMAKER_REGION": env_value(region or ""),
    }
