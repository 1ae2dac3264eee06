"""The typed surface of a container runtime.

A runtime runs a SageMaker-compatible container the way SageMaker does: it lays out an ``/opt/ml``-shaped tree per
host, sets SageMaker's environment, and starts the image's ``train`` or ``serve`` entry. The control plane talks to
runtimes only through the types in this module; it never imports a container's Python code.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol


class ContainerRuntimeError(Exception):
    """Base class of every error a runtime raises."""


class ImageNotFoundError(ContainerRuntimeError):
    """The image URI names no container this runtime can run."""


class IsolationMode(str, enum.Enum):
    """How a job's directory becomes ``/opt/ml`` for the container process."""

    BUBBLEWRAP = "bubblewrap"  # bwrap binds the job directory at /opt/ml
    UNSHARE = "unshare"  # a private mount namespace (util-linux unshare) binds it there
    ENVIRONMENT = "environment"  # no namespace: SAGEMAKER_BASE_DIR points at the job directory


class Entry(str, enum.Enum):
    """The argument SageMaker passes to the image: ``docker run <image> train|serve``."""

    TRAIN = "train"
    SERVE = "serve"


@dataclass(frozen=True)
class ContainerImage:
    """An image resolved to something this machine can start."""

    uri: str
    command: tuple[str, ...]  # argv that stands for the image's ENTRYPOINT; the entry (train/serve) is appended
    environment: Mapping[str, str] = field(default_factory=dict)  # the image's own ENV lines
    # Its jobs pip-install packages of their own, as into a container's writable image: the process runtime gives
    # each job an environment of its own over the interpreter's (docs/pipelines.md#step-functions-and-remote-functions).
    installs_packages: bool = False


@dataclass(frozen=True)
class LogLine:
    """One line a container printed, stamped when the runtime read it."""

    host: str
    stream: str  # "stdout" or "stderr"
    text: str  # without the trailing newline
    timestamp: datetime


LogCallback = Callable[[LogLine], None]


@dataclass(frozen=True)
class ChannelSpec:
    """One input channel as ``inputdataconfig.json`` describes it; files are already on local disk."""

    name: str
    source_dir: Path  # local directory with this host's files for the channel
    content_type: str | None = None
    input_mode: str = "File"
    s3_distribution_type: str = "FullyReplicated"
    record_wrapper_type: str = "None"
    compression_type: str = "None"


@dataclass(frozen=True)
class TrainingSpec:
    """Everything needed to run one training job on ``instance_count`` local hosts."""

    job_name: str
    image: ContainerImage
    work_dir: Path  # the job's directory; hosts live in work_dir/<host>
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, Sequence[ChannelSpec]] = field(default_factory=dict)  # host -> channels
    environment: Mapping[str, str] = field(default_factory=dict)
    instance_count: int = 1
    instance_type: str = "ml.m5.large"
    checkpoint_dir: Path | None = None  # local copy of CheckpointConfig.S3Uri, bound at /opt/ml/checkpoints
    checkpoint_s3_uri: str | None = None
    max_runtime_seconds: int | None = None
    entrypoint: Sequence[str] | None = None  # AlgorithmSpecification.ContainerEntrypoint
    arguments: Sequence[str] | None = None  # AlgorithmSpecification.ContainerArguments
    warm_pool: str | None = None  # the managed warm pool the job runs in (ResourceConfig.KeepAlivePeriodInSeconds)


class TrainingOutcome(str, enum.Enum):
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"


@dataclass(frozen=True)
class HostResult:
    host: str
    exit_code: int
    failure_reason: str | None  # first 1024 characters of /opt/ml/output/failure, if written


@dataclass(frozen=True)
class TrainingResult:
    outcome: TrainingOutcome
    hosts: tuple[HostResult, ...]
    model_dir: Path  # every host's /opt/ml/model merged (master last, so its files win)
    output_data_dir: Path  # every host's /opt/ml/output/data merged
    failure_reason: str | None  # the job's reason: the first failing host's failure file or exit description


class TrainingRun(Protocol):
    """A started training job."""

    def wait(self) -> TrainingResult: ...

    def stop(self) -> None:
        """SIGTERM every host, SIGKILL after the grace period; ``wait`` then reports STOPPED."""


@dataclass(frozen=True)
class ServingSpec:
    """One serving container for one production variant instance."""

    name: str
    image: ContainerImage
    work_dir: Path  # the container's /opt/ml
    model_dir: Path | None  # extracted model.tar.gz, bound at /opt/ml/model
    environment: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_seconds: float = 240.0


class ServingContainer(Protocol):
    """A started ``serve`` process listening on 127.0.0.1."""

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""

    def connect_unix(self) -> socket.socket | None:
        """A new connection to the server over a unix socket, when it listens on one the stack trusts
        (``OSError`` when it takes none); None: reach it at ``url``."""

    def is_alive(self) -> bool: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class ProcessingSpec:
    """One processing job: inputs are already local; outputs are collected from their container paths."""

    job_name: str
    image: ContainerImage
    work_dir: Path  # hosts live in work_dir/<host>; each host's work_dir/<host> is its /opt/ml
    inputs: Mapping[str, Path] = field(default_factory=dict)  # container path (/opt/ml/processing/...) -> local dir
    outputs: Sequence[str] = ()  # container paths whose contents are collected after the job
    environment: Mapping[str, str] = field(default_factory=dict)
    entrypoint: Sequence[str] | None = None  # AppSpecification.ContainerEntrypoint
    arguments: Sequence[str] | None = None  # AppSpecification.ContainerArguments
    instance_count: int = 1
    instance_type: str = "ml.m5.large"
    job_config: Mapping[str, object] = field(default_factory=dict)  # written to /opt/ml/config/processingjobconfig.json
    max_runtime_seconds: int | None = None


@dataclass(frozen=True)
class ProcessingResult:
    outcome: TrainingOutcome
    hosts: tuple[HostResult, ...]
    outputs: Mapping[str, Path]  # container path -> local directory holding what the hosts wrote there
    failure_reason: str | None


class ProcessingRun(Protocol):
    def wait(self) -> ProcessingResult: ...

    def stop(self) -> None: ...


class Runtime(Protocol):
    """Runs containers. ``process`` is the default implementation; ``docker`` comes later."""

    def start_training(self, spec: TrainingSpec, on_log: LogCallback | None = None) -> TrainingRun: ...

    def start_processing(self, spec: ProcessingSpec, on_log: LogCallback | None = None) -> ProcessingRun: ...

    def start_serving(self, spec: ServingSpec, on_log: LogCallback | None = None) -> ServingContainer: ...

    def release_warm_pool(self, pool: str) -> None:
        """End what the runtime keeps warm for a pool (its pre-started hosts); nothing when it keeps nothing."""

    def shutdown(self) -> None:
        """Stop every process this runtime started."""
