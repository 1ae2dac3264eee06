"""A real Spark standalone cluster on this machine for one EMR cluster: a master and N workers, each its own JVM.

pyspark's ``spark-class`` starts ``org.apache.spark.deploy.master.Master`` and ``...deploy.worker.Worker`` processes
bound to 127.0.0.1 (``SPARK_LOCAL_IP``; the master's and workers' web UIs too). Each worker gets its share of the
machine's cores and memory. The master's JSON page (``/json/``) says how many workers are alive; :meth:`start`
returns once all of them have registered (docs/spark.md#8-emr-clusters-locally).

The processing image's multi-host cluster (one worker per SageMaker host, in ``containers/``) is a different shape:
hosts of their own, the master found by host name. This one lives in the control plane and owns every process.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from infra.runtime.process.host_process import with_parent_death_signal
from infra.runtime.process.process_serving import (
    ListenerOwner,
    free_port,
    is_listened_on,
    listener_owner,
    with_port_retries,
)

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
MIN_WORKER_MEMORY_MB = 1024
MEMORY_SHARE = 0.5  # of the machine's memory, for all workers of one cluster together
STOP_GRACE_SECONDS = 10.0
# The master binds the ports it is given or exits: Spark's default moves to the next port, where the stack would
# not look for it (and another stack's master, on the port given, would answer in its place). Its REST submission
# server is off: it would bind the fixed port 6066, which the first cluster of the machine holds (spark-submit falls
# back to the legacy gateway, on the master's own port, either way).
MASTER_OPTS = "-Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false"


class SparkClusterError(RuntimeError):
    """The cluster did not come up; the message says which daemon and where its log is."""


class SparkPortTakenError(SparkClusterError):
    """Another process holds a port the master was given (another stack picked it a moment earlier)."""


def spark_home() -> Path:
    """pyspark's installation (``bin/spark-class``, ``bin/spark-submit``, the jars)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SparkClusterError("pyspark is not installed in the stack's environment")
    return Path(spec.origin).parent


def worker_share(workers: int) -> tuple[int, int]:
    """(cores, memory MB) of each of ``workers`` workers sharing this machine."""
    cores = max(1, (os.cpu_count() or 1) // workers)
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return cores, max(MIN_WORKER_MEMORY_MB, int(total_mb * MEMORY_SHARE / workers))


@dataclass
class _Daemon:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class StandaloneCluster:
    """The master and ``worker_count`` workers of one EMR cluster; ``log_dir`` keeps every daemon's log."""

    worker_count: int
    log_dir: Path
    master_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    _master: _Daemon | None = None
    _workers: list[_Daemon] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{LOOPBACK}:{self.master_port}"

    @property
    def status_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ui_port}/json/"

    def start(self, timeout_seconds: float) -> float:
        """Start the master, then the workers; return the seconds it took for every worker to register."""
        started = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._start_master(started + timeout_seconds)
        cores, memory_mb = worker_share(self.worker_count)
        for index in range(self.worker_count):
            work_dir = self.log_dir / f"worker-{index + 1}-work"
            self._workers.append(
                self._spawn(
                    f"worker-{index + 1}",
                    WORKER_CLASS,
                    "--host",
                    LOOPBACK,
                    "--port",
                    "0",
                    "--webui-port",
                    "0",
                    "--cores",
                    str(cores),
                    "--memory",
                    f"{memory_mb}M",
                    "--work-dir",
                    str(work_dir),
                    self.master_url,
                )
            )
        self._wait(
            lambda: self.alive_workers() >= self.worker_count,
            f"{self.worker_count} Spark workers to register",
            started + timeout_seconds,
        )
        elapsed = time.monotonic() - started
        logger.info("Spark standalone cluster %s: %d workers up in %.1f s", self.master_url, self.worker_count, elapsed)
        return elapsed

    def _start_master(self, deadline: float) -> None:
        """Start the master; on new ports when it exits because another process holds one of its ports."""

        def start() -> None:
            self._master = self._spawn(
                "master",
                MASTER_CLASS,
                "--host",
                LOOPBACK,
                "--port",
                str(self.master_port),
                "--webui-port",
                str(self.ui_port),
            )
            try:
                self._wait(self._listening, "the Spark master to listen", deadline)
            except SparkClusterError as exc:
                taken = [port for port in self._ports() if is_listened_on(port)]  # the master, exited, holds none
                if not taken:
                    raise
                self.master_port, self.ui_port = free_port(), free_port()  # the next start's
                raise SparkPortTakenError(f"the Spark master's port {taken[0]} was taken") from exc

        with_port_retries(start, SparkPortTakenError)

    def status(self) -> dict[str, object]:
        """The master's JSON page (workers, cores, running and completed applications); {} when it does not answer."""
        try:
            with urllib.request.urlopen(self.status_url, timeout=2.0) as answer:
                document = json.loads(answer.read())
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def alive_workers(self) -> int:
        workers = self.status().get("workers")
        return (
            sum(1 for w in workers if isinstance(w, dict) and w.get("state") == "ALIVE")
            if isinstance(workers, list)
            else 0
        )

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.poll() is None]

    def stop(self) -> None:
        for daemon in [*self._workers, *([self._master] if self._master else [])]:
            daemon.stop()
        self._workers, self._master = [], None

    def _spawn(self, name: str, main_class: str, *arguments: str) -> _Daemon:
        log = (self.log_dir / f"{name}.log").open("ab")
        env = {
            **os.environ,
            "SPARK_LOCAL_IP": LOOPBACK,
            "SPARK_NO_DAEMONIZE": "1",
            "SPARK_HOME": str(spark_home()),
            "SPARK_MASTER_OPTS": MASTER_OPTS,
        }
        # Killed with the thread that starts it (the cluster's own, which outlives the cluster): no JVM outlives
        # the stack, even when the stack is killed.
        command = with_parent_death_signal([str(spark_home() / "bin" / "spark-class"), main_class, *arguments])
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return _Daemon(name, process, log)

    def _ports(self) -> tuple[int, int]:
        return self.master_port, self.ui_port

    def _listening(self) -> bool:
        """Both the master's ports are held by the master's own processes (docs/security.md#what-jobs-listen-on)."""
        if self._master is None:
            return False
        session = self._master.process.pid
        return all(listener_owner(port, session) is ListenerOwner.SESSION for port in self._ports())

    def _wait(self, ready: Callable[[], bool], what: str, deadline: float) -> None:
        while not ready():
            for daemon in [*([self._master] if self._master else []), *self._workers]:
                if daemon.process.poll() is not None:
                    self.stop()
                    raise SparkClusterError(
                        f"the Spark {daemon.name} exited with code {daemon.process.returncode} while waiting for {what}"
                    )
            if time.monotonic() > deadline:
                self.stop()
                raise SparkClusterError(f"timed out waiting for {what}")
            time.sleep(0.25)
