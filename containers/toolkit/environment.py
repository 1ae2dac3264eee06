"""The training environment: ``/opt/ml`` parsed once into frozen dataclasses.

The base directory is ``/opt/ml`` unless ``SAGEMAKER_BASE_DIR`` names another one (the sagemaker-training toolkit
honours the same variable; our process runtime uses it where no mount namespace is available).
Config is read only when ``TrainingEnvironment.load()`` is called, never at import time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containers.toolkit.errors import PlatformError, UserError

logger = logging.getLogger(__name__)

DEFAULT_BASE_DIR = "/opt/ml"
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"


@dataclass(frozen=True)
class Paths:
    """Every path of the container contract, under one base directory."""

    base: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if env is None else env
        return cls(Path(env.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR))

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def data_dir(self) -> Path:
        return self.input_dir / "data"

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def intermediate_dir(self) -> Path:
        return self.output_dir / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def success_file(self) -> Path:
        return self.output_dir / "success"

    @property
    def checkpoints_dir(self) -> Path:
        return self.base / "checkpoints"

    @property
    def code_dir(self) -> Path:
        return self.base / "code"

    def channel_dir(self, name: str) -> Path:
        return self.data_dir / name


@dataclass(frozen=True)
class ChannelConfig:
    """One entry of ``inputdataconfig.json``."""

    name: str
    path: Path
    content_type: str | None = None
    input_mode: str = "File"
    s3_distribution_type: str = "FullyReplicated"
    record_wrapper_type: str = "None"
    compression_type: str = "None"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the entry verbatim (SM_INPUT_DATA_CONFIG)

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any], path: Path) -> ChannelConfig:
        return cls(
            name=name,
            path=path,
            content_type=raw.get("ContentType"),
            input_mode=str(raw.get("TrainingInputMode", "File")),
            s3_distribution_type=str(raw.get("S3DistributionType", "FullyReplicated")),
            record_wrapper_type=str(raw.get("RecordWrapperType", "None")),
            compression_type=str(raw.get("CompressionType", "None")),
            raw=dict(raw),
        )

    def to_json(self) -> dict[str, str]:
        out = {
            "TrainingInputMode": self.input_mode,
            "S3DistributionType": self.s3_distribution_type,
            "RecordWrapperType": self.record_wrapper_type,
        }
        if self.content_type:
            out["ContentType"] = self.content_type
        return out


@dataclass(frozen=True)
class ResourceConfig:
    """``resourceconfig.json``: which host this is and who the others are."""

    current_host: str = "algo-1"
    hosts: tuple[str, ...] = ("algo-1",)
    network_interface_name: str = "eth0"
    current_instance_type: str = "local"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ResourceConfig:
        hosts = tuple(sorted(raw.get("hosts") or [raw.get("current_host", "algo-1")]))
        return cls(
            current_host=str(raw.get("current_host", hosts[0])),
            hosts=hosts,
            network_interface_name=str(raw.get("network_interface_name", "eth0")),
            current_instance_type=str(raw.get("current_instance_type", "local")),
            raw=dict(raw),
        )

    @property
    def master_host(self) -> str:
        return self.hosts[0]

    @property
    def is_master(self) -> bool:
        return self.current_host == self.master_host


@dataclass(frozen=True)
class TrainingEnvironment:
    """What a training container knows about its job, read from ``/opt/ml`` and the environment."""

    paths: Paths
    hyperparameters: Mapping[str, str]
    channels: Mapping[str, ChannelConfig]
    resource: ResourceConfig
    job_name: str
    checkpoint_config: Mapping[str, Any] | None
    environ: Mapping[str, str]

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> TrainingEnvironment:
        env = dict(os.environ if env is None else env)
        paths = Paths.from_env(env)
        hyperparameters = {str(k): _as_raw_string(v) for k, v in _read_json(paths, "hyperparameters.json").items()}
        data_config = _read_json(paths, "inputdataconfig.json")
        channels = {
            name: ChannelConfig.from_json(name, raw or {}, paths.channel_dir(name))
            for name, raw in sorted(data_config.items())
        }
        resource = ResourceConfig.from_json(_read_json(paths, "resourceconfig.json"))
        checkpoint = _read_json(paths, "checkpointconfig.json") or None
        return cls(
            paths=paths,
            hyperparameters=hyperparameters,
            channels=channels,
            resource=resource,
            job_name=env.get("TRAINING_JOB_NAME", ""),
            checkpoint_config=checkpoint,
            environ=env,
        )

    @property
    def checkpoint_dir(self) -> Path | None:
        """Local checkpoint directory when checkpointing is configured, else None."""
        if self.checkpoint_config is None:
            return None
        local = self.checkpoint_config.get("LocalPath") or str(self.paths.checkpoints_dir)
        return _rebase(Path(str(local)), self.paths)

    def channel(self, name: str) -> ChannelConfig | None:
        return self.channels.get(name)


def _rebase(path: Path, paths: Paths) -> Path:
    """Map an absolute /opt/ml/... path onto the real base directory (they differ without a namespace)."""
    try:
        return paths.base / path.relative_to(DEFAULT_BASE_DIR)
    except ValueError:
        return path


def _as_raw_string(value: object) -> str:
    # The platform writes strings; a hand-written file may hold numbers or booleans.
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _read_json(paths: Paths, name: str) -> dict[str, Any]:
    """Read one config file; a missing file reads as an empty object (SageMaker omits optional ones)."""
    path = paths.config_dir / name
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text() or "{}")
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


_ALGO_HOST = re.compile(r"algo-[0-9]+")


def resolve_host(name: str, *, timeout_seconds: float = 900.0) -> str:
    """Resolve a host name with exponential back-off (the training toolkit waits up to 15 minutes).

    Where the runtime could not give the container its own ``/etc/hosts`` it sets ``SAGESTACK_LOCAL_HOSTS=1``: every
    ``algo-N`` host then runs on this machine, at 127.0.0.1.
    """
    if os.environ.get("SAGESTACK_LOCAL_HOSTS") == "1" and _ALGO_HOST.fullmatch(name):
        return "127.0.0.1"
    delay = 0.1
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return socket.gethostbyname(name)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise PlatformError(f"host {name} did not resolve within {timeout_seconds:.0f} s") from exc
            logger.info("waiting for host %s to resolve", name)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
