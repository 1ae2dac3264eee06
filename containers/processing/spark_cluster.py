"""A Spark standalone cluster across a multi-instance processing job's hosts (docs/spark.md, "The cluster path").

On AWS the Spark processing image makes the job's instances a YARN cluster; here every host runs a standalone
*worker* (pyspark's ``spark-class org.apache.spark.deploy.worker.Worker``) bounded to its share of cores and memory,
the first host also runs the *master* (``...deploy.master.Master``) and the application's driver, submitted with
``--master spark://<algo-1>:<port>``. The other hosts keep their worker alive while the master is up and exit 0 once
it is gone, which happens when the application has ended.

All hosts of the process runtime share the machine's loopback: it hands the job its master ports
(``SAGESTACK_SPARK_MASTER_PORT`` / ``SAGESTACK_SPARK_MASTER_UI_PORT``) and workers take random ports. In containers of
their own (Docker) the hosts use Spark's usual 7077 / 8080.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from containers.toolkit.environment import resolve_host

logger = logging.getLogger(__name__)

__all__ = ["ClusterError", "SparkCluster", "cluster_layout", "run_worker_host"]

MASTER_PORT_ENV = "SAGESTACK_SPARK_MASTER_PORT"
MASTER_UI_PORT_ENV = "SAGESTACK_SPARK_MASTER_UI_PORT"
DEFAULT_MASTER_PORT = 7077
DEFAULT_MASTER_UI_PORT = 8080
# Hosts start together but JVMs take a few seconds; a worker that cannot find its master gives up after this long.
STARTUP_TIMEOUT_SECONDS = 180.0
POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0
# The share of a host's memory given to its worker (the rest is the OS's, the worker daemon's and Python's).
MEMORY_FRACTION = 0.75
MIN_WORKER_MEMORY_MB = 512


class ClusterError(RuntimeError):
    """The cluster could not be formed; the message names the host and what was missing."""


@dataclass(frozen=True)
class ClusterLayout:
    """Where this host sits in the job's Spark cluster and what its worker may use."""

    hosts: tuple[str, ...]
    current_host: str
    master_address: str
    bind_address: str
    master_port: int
    master_ui_port: int
    cores: int
    memory_mb: int

    @property
    def is_primary(self) -> bool:
        return self.current_host == self.hosts[0]

    @property
    def master_url(self) -> str:
        return f"spark://{self.master_address}:{self.master_port}"

    @property
    def master_json_url(self) -> str:
        return f"http://{self.master_address}:{self.master_ui_port}/json/"


def cluster_layout(base: Path, env: Mapping[str, str] | None = None) -> ClusterLayout | None:
    """The cluster of a job with two or more hosts (``None`` for one host: that runs ``local[*]``)."""
    source = os.environ if env is None else env
    try:
        config = json.loads((base / "config" / "resourceconfig.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    hosts = tuple(sorted(config.get("hosts") or []))
    current = str(config.get("current_host") or "")
    if len(hosts) < 2 or current not in hosts:
        return None
    master_address = resolve_host(hosts[0])
    bind_address = resolve_host(current)
    shared_machine = master_address.startswith("127.")
    cores, memory_mb = host_share(len(hosts) if shared_machine else 1)
    return ClusterLayout(
        hosts=hosts,
        current_host=current,
        master_address=master_address,
        bind_address=bind_address,
        master_port=int(source.get(MASTER_PORT_ENV) or DEFAULT_MASTER_PORT),
        master_ui_port=int(source.get(MASTER_UI_PORT_ENV) or DEFAULT_MASTER_UI_PORT),
        cores=cores,
        memory_mb=memory_mb,
    )


def host_share(hosts_on_machine: int) -> tuple[int, int]:
    """(cores, memory MB) for one worker when ``hosts_on_machine`` hosts share this machine."""
    cores = max(1, (os.cpu_count() or 1) // hosts_on_machine)
    total_mb = _memory_total_mb()
    return cores, max(MIN_WORKER_MEMORY_MB, int(total_mb * MEMORY_FRACTION / hosts_on_machine))


def _memory_total_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 4096


def cluster_conf(layout: ClusterLayout, extra_env: Mapping[str, str]) -> dict[str, str]:
    """Spark settings the driver needs on the cluster; the configuration's own values win over these."""
    conf = {
        "spark.driver.host": layout.bind_address,
        "spark.driver.bindAddress": layout.bind_address,
        "spark.executor.memory": f"{layout.memory_mb}m",
        # Every worker has registered before the submit: wait for all their executors so the work is spread.
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    }
    # spark-env exports reach the driver through its environment; executors get them as executorEnv.
    conf.update({f"spark.executorEnv.{key}": value for key, value in extra_env.items()})
    return conf


MASTER_OPTS = "-Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false"


def daemon_environment(layout: ClusterLayout) -> dict[str, str]:
    """The daemons' environment. The master binds the port it is given or exits (Spark's default would move it to
    the next port, where no host looks for it, while what holds the given one answers the workers); its REST
    submission server, on the fixed port 6066 another job's master may hold, is off (spark-submit does not use it)."""
    master_opts = f"{os.environ.get('SPARK_MASTER_OPTS', '')} {MASTER_OPTS}".strip()
    return {
        **os.environ,
        "SPARK_LOCAL_IP": layout.bind_address,
        "SPARK_NO_DAEMONIZE": "1",
        "SPARK_MASTER_OPTS": master_opts,
    }


def spark_class(spark_bin: Path, main_class: str, *arguments: str) -> list[str]:
    return [str(spark_bin / "spark-class"), main_class, *arguments]


def start_worker(layout: ClusterLayout, spark_bin: Path) -> subprocess.Popen[bytes]:
    work_dir = tempfile.mkdtemp(prefix=f"spark-worker-{layout.current_host}-")
    command = spark_class(
        spark_bin,
        "org.apache.spark.deploy.worker.Worker",
        *("--host", layout.bind_address, "--port", "0", "--webui-port", "0"),
        *("--cores", str(layout.cores), "--memory", f"{layout.memory_mb}M", "--work-dir", work_dir),
        layout.master_url,
    )
    logger.info("%s: starting a Spark worker (%d cores, %d MB) for %s", layout.current_host, layout.cores,
                layout.memory_mb, layout.master_url)  # fmt: skip
    return subprocess.Popen(command, env=daemon_environment(layout))


def master_reachable(layout: ClusterLayout) -> bool:
    try:
        with socket.create_connection((layout.master_address, layout.master_port), timeout=2.0):
            return True
    except OSError:
        return False


def master_state(layout: ClusterLayout) -> dict[str, object] | None:
    """The master's JSON status page, or ``None`` while it does not answer."""
    try:
        with urllib.request.urlopen(layout.master_json_url, timeout=2.0) as response:
            document = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def alive_workers(state: Mapping[str, object] | None) -> int:
    if not state:
        return 0
    workers = state.get("workers")
    if not isinstance(workers, list):
        return 0
    return len([worker for worker in workers if isinstance(worker, dict) and worker.get("state") == "ALIVE"])


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class SparkCluster:
    """The primary host's part: the master and the local worker, up until :meth:`stop`."""

    def __init__(self, layout: ClusterLayout, spark_bin: Path) -> None:
        self.layout = layout
        self.spark_bin = spark_bin
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, timeout_seconds: float = STARTUP_TIMEOUT_SECONDS, local_workers: int = 1) -> None:
        """Start the master and this host's worker(s); return once every host's worker has registered.

        Workers start once the master listens: one that finds no master backs off for several seconds.
        """
        layout = self.layout
        command = spark_class(
            self.spark_bin,
            "org.apache.spark.deploy.master.Master",
            *("--host", layout.master_address, "--port", str(layout.master_port)),
            *("--webui-port", str(layout.master_ui_port)),
        )
        logger.info("%s: starting the Spark master at %s (UI %s)", layout.current_host, layout.master_url,
                    layout.master_json_url)  # fmt: skip
        started = time.monotonic()
        self.master = subprocess.Popen(command, env=daemon_environment(layout))
        deadline = started + timeout_seconds
        while True:
            if self.master.poll() is not None:
                code = self.master.returncode
                raise ClusterError(f"the Spark master on {layout.current_host} exited with code {code}")
            if not self.workers and master_reachable(layout):
                names = [layout.current_host] if local_workers == 1 else [f"{layout.current_host}-{i}" for i in
                                                                           range(local_workers)]  # fmt: skip
                self.workers = [start_worker(replace(layout, current_host=name), self.spark_bin) for name in names]
            count = alive_workers(master_state(layout))
            if count >= len(layout.hosts):
                break
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"only {count} of {len(layout.hosts)} Spark workers registered with the master within "
                    f"{timeout_seconds:.0f} s"
                )
            time.sleep(POLL_SECONDS)
        logger.info("Spark cluster of %d workers up in %.1f s", len(layout.hosts), time.monotonic() - started)

    def stop(self) -> None:
        for worker in self.workers:
            stop_process(worker)
        stop_process(self.master)


def run_worker_host(layout: ClusterLayout, spark_bin: Path, timeout_seconds: float = STARTUP_TIMEOUT_SECONDS) -> int:
    """A non-primary host: wait for the master, run a worker while the master is up, then exit 0."""
    deadline = time.monotonic() + timeout_seconds
    while not master_reachable(layout):
        if time.monotonic() >= deadline:
            raise ClusterError(f"{layout.current_host}: the Spark master {layout.master_url} did not come up")
        time.sleep(POLL_SECONDS)
    worker = start_worker(layout, spark_bin)
    try:
        misses = 0
        reported = False
        while misses < 2:
            time.sleep(POLL_SECONDS)
            misses = 0 if master_reachable(layout) else misses + 1
            if worker.poll() is not None and not reported:
                # Spark moves the work to the remaining executors; this host waits for the end like the others.
                logger.warning("%s: the Spark worker exited with code %s", layout.current_host, worker.returncode)
                reported = True
        logger.info("%s: the Spark master is gone; the application has ended", layout.current_host)
    finally:
        stop_process(worker)
    return 0
