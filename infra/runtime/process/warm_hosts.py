"""Warm-pool hosts of the process runtime: pre-started, pre-imported training processes.

See docs/performance.md#warm-pools.

When a training job that belongs to a warm pool ends, the runtime pre-starts a fresh set of hosts for that pool:
one process per host, each wrapped in the job's isolation with an empty host directory at ``/opt/ml``, running
:mod:`containers.toolkit.warm_start` for the image's entry module. The next job of the pool *claims* the set: its
files are laid out in those host directories (the bind mounts point at them already) and its argv and environment
are written to each host's start channel; from then on the processes are the job's, supervised like any other.

A set is only claimed by a job it can run exactly as a cold start would: the same image, instance count and type,
no ``ContainerEntrypoint``, no checkpoint bind, and the same import-time environment (thread-pool sizes,
``PYTHON*`` variables). Anything else, or a set whose processes died, is discarded and the job starts cold.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.runtime.api import ContainerImage
from infra.runtime.process.host_process import HostProcess
from infra.runtime.process.layout import HostLayout

logger = logging.getLogger(__name__)

__all__ = ["IMPORT_TIME_VARIABLES", "WarmHostSet", "WarmHosts", "warm_module"]

START_CHANNEL = ".sagestack-warm-start"  # containers.toolkit.warm_start.START_CHANNEL (the container side)
# Read by the interpreter or by native libraries when they load: a warm host started with other values would differ.
_READER_POLL_SECONDS = 0.01
IMPORT_TIME_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "SM_NUM_CPUS",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONOPTIMIZE",
    "PYTHONWARNINGS",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
)


def warm_module(image: ContainerImage) -> str | None:
    """The entry module of an image started as ``python -m <module>``, else ``None`` (no warm start)."""
    command = image.command
    if len(command) == 3 and Path(command[0]).name.startswith("python") and command[1] == "-m":
        return command[2]
    return None


def import_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {name: env[name] for name in IMPORT_TIME_VARIABLES if name in env}


@dataclass
class WarmHostSet:
    """Pre-started hosts of one pool, in host order, and what they were started for."""

    pool: str
    image_uri: str
    instance_type: str
    slot_dir: Path  # holds <host>/ (each bound at /opt/ml) and <host>.tmp/ (each bound at /tmp)
    layouts: tuple[HostLayout, ...]
    processes: tuple[HostProcess, ...]
    import_env: Mapping[str, str]

    def alive(self) -> bool:
        return all(process.is_alive() for process in self.processes)

    def start(self, index: int, message: bytes) -> None:
        """Hand host ``index`` its job: the message goes to its start channel, a FIFO the process opens once its
        imports are done (a job that claims a set still importing waits for that, which is shorter than a cold
        start). Raises ``OSError`` when the process dies first."""
        layout, process = self.layouts[index], self.processes[index]
        channel = self.slot_dir / f"{layout.host}.tmp" / START_CHANNEL
        while True:
            try:
                fd = os.open(channel, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO or not process.is_alive():  # ENXIO: nobody reads the FIFO yet
                    raise
                process.wait(_READER_POLL_SECONDS)
        try:
            os.set_blocking(fd, True)
            os.write(fd, message)
        finally:
            os.close(fd)

    def discard(self) -> None:
        for process in self.processes:
            process.terminate(0.0)
        for process in self.processes:
            process.wait(5.0)
        shutil.rmtree(self.slot_dir, ignore_errors=True)


StartHosts = Callable[[Path], tuple[tuple[HostLayout, ...], tuple[HostProcess, ...], Mapping[str, str]]]


class WarmHosts:
    """The pools' ready host sets, at most one per pool, and at most ``limit`` sets in all."""

    def __init__(self, root: Path, limit: int) -> None:
        self._root = root
        self._limit = limit
        self._lock = threading.Lock()
        self._sets: dict[str, WarmHostSet] = {}

    def prestart(
        self, pool: str, image: ContainerImage, instance_type: str, start_hosts: StartHosts
    ) -> WarmHostSet | None:
        """Start a set for ``pool`` (replacing one it had); ``None`` when the limit is reached or it cannot start."""
        self.release(pool)
        with self._lock:
            if len(self._sets) >= self._limit:
                logger.info("warm pool %s: %d warm host sets already kept; none pre-started", pool, self._limit)
                return None
        slot_dir = self._root / f"{pool}-{uuid.uuid4().hex[:8]}"
        slot_dir.mkdir(parents=True)
        try:
            layouts, processes, env = start_hosts(slot_dir)
        except OSError as exc:
            logger.warning("warm pool %s: could not pre-start its hosts: %s", pool, exc)
            shutil.rmtree(slot_dir, ignore_errors=True)
            return None
        warm = WarmHostSet(pool, image.uri, instance_type, slot_dir, layouts, processes, import_environment(env))
        with self._lock:
            self._sets[pool] = warm
        logger.info("warm pool %s: %d host(s) pre-started for %s", pool, len(processes), image.uri)
        return warm

    def claim(
        self, pool: str, image: ContainerImage, hosts: Sequence[str], instance_type: str, env: Mapping[str, str]
    ) -> WarmHostSet | None:
        """The pool's set if the job can run on it exactly as on a cold start; otherwise it is discarded."""
        with self._lock:
            warm = self._sets.pop(pool, None)
        if warm is None:
            return None
        reasons = [
            f"image {warm.image_uri} != {image.uri}" if warm.image_uri != image.uri else "",
            "instance count differs" if tuple(lay.host for lay in warm.layouts) != tuple(hosts) else "",
            "instance type differs" if warm.instance_type != instance_type else "",
            "import-time environment differs" if dict(warm.import_env) != import_environment(env) else "",
            "a host process died" if not warm.alive() else "",
        ]
        why = "; ".join(reason for reason in reasons if reason)
        if why:
            logger.info("warm pool %s: starting cold (%s)", pool, why)
            warm.discard()
            return None
        return warm

    def release(self, pool: str) -> None:
        with self._lock:
            warm = self._sets.pop(pool, None)
        if warm is not None:
            warm.discard()

    def release_all(self) -> None:
        with self._lock:
            sets, self._sets = list(self._sets.values()), {}
        for warm in sets:
            warm.discard()

    def pools(self) -> list[str]:
        with self._lock:
            return sorted(self._sets)
