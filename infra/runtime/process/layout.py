"""Lay out the ``/opt/ml``-shaped directory of one host (docs/reference/container-contract.md#the-optml-tree; processing
and serving trees).

Every function takes ``base``: the path the *container* sees as ``/opt/ml``. It is ``/opt/ml`` when the host
directory is mounted there, and the host directory itself in ``IsolationMode.ENVIRONMENT``; config files that hold
paths (``checkpointconfig.json``, ``processingjobconfig.json`` is passed through as given) use it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from infra.runtime.api import ChannelSpec, ProcessingSpec, ServingSpec, TrainingSpec
from infra.runtime.errors import ContainerRuntimeError, InvalidSpecError

logger = logging.getLogger(__name__)

CONTAINER_ROOT = PurePosixPath("/opt/ml")
GROUP_NAME = "homogeneousCluster"
TRAINING_DIRS = (
    "input/config",
    "input/data",
    "model",
    "output/data",
    "output/intermediate",
    "checkpoints",
    "code",
)


@dataclass(frozen=True)
class HostLayout:
    """One host's directory and the extra directories to bind into its ``/opt/ml``."""

    host: str
    root: Path
    binds: Mapping[str, Path] = field(default_factory=dict)  # container path -> host directory


def host_names(count: int) -> tuple[str, ...]:
    """``algo-1`` … ``algo-N`` sorted lexicographically, as SageMaker lists them (``algo-10`` before ``algo-2``)."""
    if count < 1:
        raise InvalidSpecError(f"instance count must be at least 1, got {count}")
    return tuple(sorted(f"algo-{index}" for index in range(1, count + 1)))


def merge_order(hosts: Sequence[str]) -> tuple[str, ...]:
    """Hosts in the order their outputs are merged: the master (first sorted host) last, so its files win."""
    return (*hosts[1:], hosts[0])


def resource_config(current_host: str, hosts: Sequence[str], instance_type: str) -> dict[str, object]:
    ordered = sorted(hosts)
    return {
        "current_host": current_host,
        "hosts": ordered,
        "network_interface_name": "eth0",
        "current_instance_type": instance_type,
        "current_group_name": GROUP_NAME,
        "instance_groups": [
            {"instance_group_name": GROUP_NAME, "instance_type": instance_type, "hosts": ordered},
        ],
    }


def input_data_config(channels: Iterable[ChannelSpec]) -> dict[str, dict[str, str]]:
    config: dict[str, dict[str, str]] = {}
    for channel in channels:
        entry = {
            "TrainingInputMode": channel.input_mode,
            "S3DistributionType": channel.s3_distribution_type,
            "RecordWrapperType": channel.record_wrapper_type,
            "CompressionType": channel.compression_type,
        }
        if channel.content_type:
            entry["ContentType"] = channel.content_type
        config[channel.name] = entry
    return config


def lay_out_training_host(
    spec: TrainingSpec, host: str, hosts: Sequence[str], base: PurePosixPath, link_inputs: bool = False
) -> HostLayout:
    """Create ``spec.work_dir/<host>`` with its config files, channel data and empty output directories."""
    root = _fresh_dir(spec.work_dir / host)
    for relative in TRAINING_DIRS:
        (root / relative).mkdir(parents=True, exist_ok=True)
    channels = tuple(spec.channels.get(host, ()))
    for channel in channels:
        if channel.input_mode == "Pipe":
            raise InvalidSpecError(f"channel {channel.name!r}: Pipe input mode is not supported by this runtime")
        stage_tree(channel.source_dir, root / "input/data" / channel.name, link=link_inputs)
    config_dir = root / "input/config"
    _write_json(config_dir / "hyperparameters.json", dict(spec.hyperparameters))
    _write_json(config_dir / "inputdataconfig.json", input_data_config(channels))
    _write_json(config_dir / "resourceconfig.json", resource_config(host, hosts, spec.instance_type))
    binds: dict[str, Path] = {}
    if spec.checkpoint_dir is not None or spec.checkpoint_s3_uri is not None:
        checkpoint: dict[str, str] = {"LocalPath": str(base / "checkpoints")}
        if spec.checkpoint_s3_uri is not None:
            checkpoint["S3Uri"] = spec.checkpoint_s3_uri
        _write_json(config_dir / "checkpointconfig.json", checkpoint)
    if spec.checkpoint_dir is not None:
        spec.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        binds[str(CONTAINER_ROOT / "checkpoints")] = spec.checkpoint_dir
    return HostLayout(host=host, root=root, binds=binds)


def lay_out_processing_host(
    spec: ProcessingSpec, host: str, hosts: Sequence[str], link_inputs: bool = False
) -> HostLayout:
    """Create ``spec.work_dir/<host>``: ``config/`` files, the inputs copied in, empty output directories."""
    root = _fresh_dir(spec.work_dir / host)
    config_dir = root / "config"
    config_dir.mkdir(parents=True)
    job_config: dict[str, object] = {"ProcessingJobName": spec.job_name, **dict(spec.job_config)}
    _write_json(config_dir / "processingjobconfig.json", job_config)
    _write_json(config_dir / "resourceconfig.json", resource_config(host, hosts, spec.instance_type))
    for container_path, source in spec.inputs.items():
        stage_tree(source, host_path(root, container_path), link=link_inputs)
    for container_path in spec.outputs:
        host_path(root, container_path).mkdir(parents=True, exist_ok=True)
    return HostLayout(host=host, root=root)


def lay_out_serving(spec: ServingSpec) -> HostLayout:
    """Create the serving ``/opt/ml``; the model directory is bound at ``/opt/ml/model``."""
    root = spec.work_dir
    root.mkdir(parents=True, exist_ok=True)
    (root / "model").mkdir(exist_ok=True)
    binds: dict[str, Path] = {}
    if spec.model_dir is not None:
        if not spec.model_dir.is_dir():
            raise InvalidSpecError(f"model directory {spec.model_dir} does not exist")
        binds[str(CONTAINER_ROOT / "model")] = spec.model_dir
    return HostLayout(host="algo-1", root=root, binds=binds)


def host_path(root: Path, container_path: str) -> Path:
    """Where ``container_path`` (which must lie under ``/opt/ml``) lives in the host directory ``root``."""
    path = PurePosixPath(os.path.normpath(container_path))
    if not path.is_absolute() or not path.is_relative_to(CONTAINER_ROOT) or path == CONTAINER_ROOT:
        raise InvalidSpecError(
            f"container path {container_path!r} must lie under {CONTAINER_ROOT}/ (for processing: /opt/ml/processing/)"
        )
    return root.joinpath(*path.relative_to(CONTAINER_ROOT).parts)


def stage_tree(source: Path, dest: Path, link: bool = False) -> None:
    """Copy (or hard-link, when ``link``) the regular files under ``source`` into ``dest``; symlinks are skipped."""
    if not source.is_dir():
        raise InvalidSpecError(f"input directory {source} does not exist")
    dest.mkdir(parents=True, exist_ok=True)
    with os.scandir(source) as entries:
        for entry in entries:
            target = dest / entry.name
            if entry.is_symlink():
                logger.warning("skipping symlink %s: inputs are staged without links", entry.path)
            elif entry.is_dir():
                stage_tree(Path(entry.path), target, link=link)
            elif entry.is_file():
                _stage_file(Path(entry.path), target, link)


def merge_trees(sources: Iterable[Path], dest: Path) -> Path:
    """Copy every existing ``source`` into ``dest`` in order; later sources overwrite earlier ones."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if source.is_dir():
            shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
    return dest


def _stage_file(source: Path, target: Path, link: bool) -> None:
    if link:
        try:
            os.link(source, target)
            return
        except OSError as exc:
            logger.debug("hard link %s failed (%s); copying", source, exc)
    shutil.copy2(source, target)


def _fresh_dir(path: Path) -> Path:
    """An empty directory at ``path``. An existing one is emptied, not replaced: a warm-pool host's process has it
    bound at ``/opt/ml`` already (a new directory would not be the one it sees)."""
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        return path
    if path.exists() or path.is_symlink():
        path.unlink()
    path.mkdir(parents=True)
    return path


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


JOB_PYTHON_DIR = ".sagestack/python"  # under the host's /opt/ml: the job's own Python environment
_SITE_OF = (
    "import json, site, sys; print(json.dumps(['%d.%d.%d' % sys.version_info[:3], '%d.%d' % sys.version_info[:2], "
    "site.getsitepackages()]))"
)


def lay_out_job_python(root: Path, base: PurePosixPath | Path, interpreter: str) -> str:
    """An environment of the job's own in ``root`` over ``interpreter``: that interpreter with every package it has,
    and a site-packages the job may install into, ahead of the interpreter's (so ``pip install -U`` upgrades in the
    job alone, as in a container's writable image). Returns its ``bin`` directory as the container sees it (under
    ``base``), for the front of ``PATH`` (docs/pipelines.md#step-functions-and-remote-functions)."""
    real = Path(os.path.realpath(interpreter))  # the installation under it; its packages are asked of it as given
    version, short, site_dirs = _interpreter_site(interpreter)
    env_dir = root / JOB_PYTHON_DIR
    bin_dir = env_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3", f"python{short}"):
        link = bin_dir / name
        if not link.is_symlink():
            link.symlink_to(real)
    (env_dir / "pyvenv.cfg").write_text(
        f"home = {real.parent}\ninclude-system-site-packages = false\nversion = {version}\n", encoding="utf-8"
    )
    own_site = env_dir / "lib" / f"python{short}" / "site-packages"
    own_site.mkdir(parents=True, exist_ok=True)
    # One `import` line: a .pth runs it, and addsitedir reads the interpreter's own .pth files as its start-up does.
    added = "; ".join(f"site.addsitedir({directory!r})" for directory in site_dirs)
    (own_site / "_sagestack_image.pth").write_text(f"import site; {added}\n", encoding="utf-8")
    return os.path.join(str(base), JOB_PYTHON_DIR, "bin")


@functools.cache
def _interpreter_site(interpreter: str) -> tuple[str, str, tuple[str, ...]]:
    """``interpreter``'s version (``3.11.7``, ``3.11``) and site-packages directories, asked once per process."""
    try:
        answer = subprocess.run(
            [interpreter, "-I", "-c", _SITE_OF], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ContainerRuntimeError(f"cannot read the site-packages of {interpreter}: {exc}") from exc
    version, short, site_dirs = json.loads(answer)
    return str(version), str(short), tuple(str(directory) for directory in site_dirs)
