"""Native thread pools (BLAS, OpenMP, Arrow) sized to the cores the container may use, set before numpy loads.

OpenBLAS, OpenMP and Arrow size their pools from the host's CPU count, which inside a container with a CPU quota
(``docker run --cpus``) or a CPU set is larger than what the process may use; oversubscribed BLAS threads then
spin against each other. The entry points call :func:`limit_native_threads` *before* importing numpy (this module
imports only the standard library). The count is the smallest of: the CPUs in the affinity mask, the cgroup CPU
quota (rounded up), and ``SM_NUM_CPUS`` when set (SageMaker's "CPUs of this host"). A variable the user already set
(``OMP_NUM_THREADS=1``) is left alone.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path

logger = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(cpu_max: Path = CGROUP_V2_CPU_MAX, quota: Path = CGROUP_V1_QUOTA) -> int | None:
    """The cgroup CPU quota in whole CPUs (rounded up), or None when there is none."""
    text = _read(cpu_max)
    if text is not None:
        limit, _, period = text.partition(" ")
        if limit != "max" and period:
            return max(1, math.ceil(int(limit) / int(period)))
        return None
    quota_text, period_text = _read(quota), _read(quota.with_name("cpu.cfs_period_us"))
    if quota_text and period_text and int(quota_text) > 0:
        return max(1, math.ceil(int(quota_text) / int(period_text)))
    return None


def available_cpus(env: Mapping[str, str] | None = None, cgroup_limit: int | None = None) -> int:
    """CPUs this process may use: affinity mask, cgroup quota and ``SM_NUM_CPUS``, whichever is smallest."""
    environ = os.environ if env is None else env
    candidates = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1]
    if cgroup_limit is not None:
        candidates.append(cgroup_limit)
    declared = environ.get("SM_NUM_CPUS", "").strip()
    if declared.isdigit() and int(declared) > 0:
        candidates.append(int(declared))
    return max(1, min(candidates))


def limit_native_threads(env: MutableMapping[str, str] | None = None) -> int:
    """Set the thread variables (those not already set) to :func:`available_cpus`; returns that count."""
    environ = os.environ if env is None else env
    cpus = available_cpus(environ, cgroup_cpu_limit())
    for name in THREAD_VARIABLES:
        environ.setdefault(name, str(cpus))
    logger.debug("native thread pools limited to %d thread(s)", cpus)
    return cpus


_background: dict[threading.Thread, Callable[[], None] | None] = {}
_background_lock = threading.Lock()


def start_background(target: Callable[[], None], name: str, stop: Callable[[], None] | None = None) -> None:
    """Run ``target`` in a daemon thread that the interpreter's exit waits for.

    A thread still inside Arrow's or a BLAS's C++ code when the process exits aborts the process ("terminate called
    without an active exception", exit code -6) and loses the job's own exit code and failure file. At exit, ``stop``
    (when given) is called, then every such thread still running is joined: ``target`` must end soon after ``stop``.
    """

    def run() -> None:
        try:
            target()
        finally:
            with _background_lock:
                _background.pop(threading.current_thread(), None)

    thread = threading.Thread(target=run, name=name, daemon=True)
    with _background_lock:
        _background[thread] = stop
    thread.start()


@atexit.register
def stop_background() -> None:
    """Stop and join every thread :func:`start_background` started that is still running (also run at exit)."""
    with _background_lock:
        running = list(_background.items())
    for _, stop in running:
        if stop is not None:
            stop()
    for thread, _ in running:
        thread.join()
