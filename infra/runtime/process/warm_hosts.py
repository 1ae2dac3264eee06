"""Pre-started, pre-imported training hosts of the process runtime: warm-pool hosts and standby hosts.

See docs/performance.md#warm-pools.

A *host set* is one process per host, each wrapped in a job's isolation with an empty host directory at ``/opt/ml``,
running :mod:`containers.toolkit.warm_start` for the image's entry module. The next matching job *claims* the set:
its files are laid out in those host directories (the bind mounts point at them already) and its argv and
environment are written to each host's start channel; from then on the processes are the job's, supervised like any
other. Two kinds of sets are kept, each by its own :class:`WarmHosts`:

- a SageMaker warm pool's set (keyed by the pool), pre-started when a job of the pool completes;
- the runtime's own *standby* sets (keyed by :func:`standby_key`), pre-started when a job without a warm pool ends,
  for the next job with the same image, instance count and type and import-time environment. They are no warm pool
  (nothing SageMaker shows changes); they end after an idle time, and the oldest makes room for a new one.

A set is only claimed by a job it can run exactly as a cold start would: the same image, instance count and type,
no ``ContainerEntrypoint``, no checkpoint bind, and the same import-time environment (thread-pool sizes,
``PYTHON*`` variables). Anything else, or a set whose processes died, is discarded and the job starts cold. A host
serves one job and exits with it, so nothing passes from one job to the next.
"""

from __future__ import annotations

import errno
import hashlib
import json
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

__all__ = ["IMPORT_TIME_VARIABLES", "WarmHostSet", "WarmHosts", "standby_key", "warm_module"]

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


def standby_key(image: ContainerImage, hosts: Sequence[str], instance_type: str, env: Mapping[str, str]) -> str:
    """What a standby set is kept for: the image, hosts, instance type and import-time environment (a digest)."""
    what = [image.uri, list(hosts), instance_type, sorted(import_environment(env).items())]
    return "standby-" + hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]


@dataclass
class WarmHostSet:
    """Pre-started hosts of one pool (or standby key), in host order, and what they were started for."""

    key: str
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
    """Ready host sets, at most one per key and at most ``limit`` in all (``0``: none).

    ``idle_seconds`` (standby sets) ends a set nobody claimed in that time, and a new set then makes room by ending
    the oldest; without it (warm pools) a set is kept until claimed or released and none is started past the limit.
    """

    def __init__(self, root: Path, limit: int, kind: str = "warm pool", idle_seconds: float | None = None) -> None:
        self._root = root
        self._limit = limit
        self._kind = kind
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._sets: dict[str, WarmHostSet] = {}  # oldest first
        self._expiries: dict[str, threading.Timer] = {}
        self._starting: set[str] = set()
        self._closed = False

    def prestart(
        self, key: str, image: ContainerImage, instance_type: str, start_hosts: StartHosts
    ) -> WarmHostSet | None:
        """Start a set for ``key`` (replacing one it had, unless that one is a live standby set, which is kept and
        its idle time restarted); ``None`` when the limit is reached, the hosts are closed or it cannot start."""
        kept = self._keep_live_standby(key)
        if kept is not None:
            return kept
        self.release(key)
        if not self._reserve(key):
            return None
        try:
            started = self._start(key, image, instance_type, start_hosts)
        finally:
            with self._lock:
                self._starting.discard(key)
        if started is None:
            return None
        with self._lock:
            closed = self._closed
            if not closed:
                self._sets[key] = started
                self._arm_expiry_locked(key, started)
        if closed:  # release_all ran while it started: it was not there to be ended
            started.discard()
            return None
        logger.info("%s %s: %d host(s) pre-started for %s", self._kind, key, len(started.processes), image.uri)
        return started

    def claim(
        self, key: str, image: ContainerImage, hosts: Sequence[str], instance_type: str, env: Mapping[str, str]
    ) -> WarmHostSet | None:
        """The key's set if the job can run on it exactly as on a cold start; otherwise it is discarded."""
        warm = self._pop(key)
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
            logger.info("%s %s: starting cold (%s)", self._kind, key, why)
            warm.discard()
            return None
        logger.info("%s %s: claimed for a job of %s", self._kind, key, image.uri)
        return warm

    def release(self, key: str) -> None:
        warm = self._pop(key)
        if warm is not None:
            warm.discard()

    def release_all(self) -> None:
        """End every set; sets still starting are ended when they are up, and none is started after this."""
        with self._lock:
            self._closed = True
            keys = list(self._sets)
        for key in keys:
            self.release(key)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._sets)

    def _keep_live_standby(self, key: str) -> WarmHostSet | None:
        with self._lock:
            warm = self._sets.get(key)
            if self._idle_seconds is None or warm is None or not warm.alive():
                return None
            self._sets[key] = self._sets.pop(key)  # the newest again: the last to make room
            self._arm_expiry_locked(key, warm)
            return warm

    def _reserve(self, key: str) -> bool:
        """Count ``key`` as starting if there is room (a standby set makes room by ending the oldest)."""
        evicted: WarmHostSet | None = None
        with self._lock:
            if self._closed or key in self._starting:
                return False
            if len(self._sets) + len(self._starting) >= self._limit:
                if self._idle_seconds is None or not self._sets:
                    logger.info("%s %s: %d host sets already kept; none pre-started", self._kind, key, self._limit)
                    return False
                evicted = self._pop_locked(next(iter(self._sets)))
            self._starting.add(key)
        if evicted is not None:
            logger.info("%s %s: ended to make room for %s", self._kind, evicted.key, key)
            evicted.discard()
        return True

    def _start(
        self, key: str, image: ContainerImage, instance_type: str, start_hosts: StartHosts
    ) -> WarmHostSet | None:
        slot_dir = self._root / f"{key}-{uuid.uuid4().hex[:8]}"
        slot_dir.mkdir(parents=True)
        try:
            layouts, processes, env = start_hosts(slot_dir)
        except OSError as exc:
            logger.warning("%s %s: could not pre-start its hosts: %s", self._kind, key, exc)
            shutil.rmtree(slot_dir, ignore_errors=True)
            return None
        return WarmHostSet(key, image.uri, instance_type, slot_dir, layouts, processes, import_environment(env))

    def _arm_expiry_locked(self, key: str, warm: WarmHostSet) -> None:
        if self._idle_seconds is None:
            return
        previous = self._expiries.pop(key, None)
        if previous is not None:
            previous.cancel()
        timer = threading.Timer(self._idle_seconds, self._expire, args=(key, warm))
        timer.daemon = True
        timer.name = f"sagestack-standby-expiry-{key}"
        self._expiries[key] = timer
        timer.start()

    def _expire(self, key: str, warm: WarmHostSet) -> None:
        with self._lock:
            if self._sets.get(key) is not warm:
                return  # claimed, released or replaced meanwhile
            self._pop_locked(key)
        logger.info("%s %s: idle for %g s; ended", self._kind, key, self._idle_seconds)
        warm.discard()

    def _pop(self, key: str) -> WarmHostSet | None:
        with self._lock:
            return self._pop_locked(key)

    def _pop_locked(self, key: str) -> WarmHostSet | None:
        timer = self._expiries.pop(key, None)
        if timer is not None:
            timer.cancel()
        return self._sets.pop(key, None)
