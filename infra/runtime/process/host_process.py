"""One container process: its own session and process group, log pumps, and group-wide signals.

The process is started with ``start_new_session=True`` so every process it spawns shares its process group; signals
always go to the whole group. When the main process exits, anything left in its group is SIGKILLed before the main
process is reaped (``waitid(WNOWAIT)`` keeps the group id ours until then), so nothing is orphaned. Every process
also gets the parent-death signal (SIGKILL when the stack dies, even of kill -9) and is recorded in the stack's
:class:`~infra.runtime.process.process_ledger.ProcessLedger` while it runs (docs/local-stack.md, "Processes and disk").
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from infra.runtime.api import LogCallback, LogLine
from infra.runtime.process.process_ledger import ProcessLedger, live_processes

logger = logging.getLogger(__name__)

__all__ = ["HostProcess", "describe_exit", "docker_exit_code"]

_READER_JOIN_SECONDS = 5.0
_GROUP_EXIT_SECONDS = 2.0


def docker_exit_code(returncode: int) -> int:
    """Docker's convention: a process killed by signal N exits with 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(exit_code: int) -> str:
    """E.g. ``AlgorithmError: process exited with code 137 (killed by SIGKILL)``."""
    text = f"AlgorithmError: process exited with code {exit_code}"
    if exit_code > 128:
        try:
            text += f" (killed by {signal.Signals(exit_code - 128).name})"
        except ValueError:
            pass
    return text


def _group_has_live_members(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies, already dead, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return any(int(fields[2]) == pgid for _, fields in live_processes())


def with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    """``argv`` run so that it is SIGKILLed when the thread that forked it (our spawner) dies.

    ``setpriv --pdeathsig`` sets ``PR_SET_PDEATHSIG`` and execs, so the pid stays the container's; the setting
    survives the ``exec`` of unshare and of the container (none of them is set-user-ID).
    """
    if argv and shutil.which(argv[0]) is None:  # as Popen would: a command that cannot start fails here, not later
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        logger.warning("setpriv not found: container processes will not die with the stack if it is killed")
        return list(argv)
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


class _Spawner:
    """Forks every container process from one long-lived thread.

    bubblewrap's ``--die-with-parent`` (``PR_SET_PDEATHSIG``) fires when the *thread* that forked the process exits,
    not the process: a serving container started from an endpoint's short-lived deploy thread would be killed as soon
    as that thread returned. Forking from a thread that lives as long as the stack keeps the guarantee we want (the
    containers die with the stack, never before).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def popen(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="sagestack-spawner", daemon=True)
                self._thread.start()
        result: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((start, result))
        return result.result()

    def _serve(self) -> None:
        while True:
            start, result = self._requests.get()
            try:
                result.set_result(start())
            except BaseException as exc:  # handed to the caller, which raises it in its own thread
                result.set_exception(exc)


_SPAWNER = _Spawner()


class HostProcess:
    """A started container process for one host."""

    def __init__(
        self,
        host: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        on_log: LogCallback | None = None,
        on_exit: Callable[[HostProcess], None] | None = None,
        tail_lines: int = 50,
        ledger: ProcessLedger | None = None,
    ) -> None:
        self.host = host
        self._ledger = ledger
        self._on_log = on_log
        self._on_exit = on_exit
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._lock = threading.Lock()
        self._reaped = False
        self._exit_code: int | None = None
        self._exited = threading.Event()
        self._kill_timer: threading.Timer | None = None
        self._kill_deadline: float | None = None
        logger.debug("starting %s: %s", host, list(argv))
        self._popen = _SPAWNER.popen(
            lambda: subprocess.Popen(
                with_parent_death_signal(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        )
        self.pid = self._popen.pid
        if ledger is not None:
            ledger.add(self.pid)
        assert self._popen.stdout is not None and self._popen.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=(self._popen.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._pump, args=(self._popen.stderr, "stderr"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(target=self._wait_for_exit, name=f"sagestack-wait-{host}", daemon=True).start()

    def adopt(self, on_log: LogCallback | None, on_exit: Callable[[HostProcess], None] | None) -> None:
        """Hand a pre-started process (a warm-pool host) to its job: later lines and the exit go to the job."""
        with self._lock:
            self._on_log = on_log
            self._on_exit = on_exit
            exited = self._exit_code is not None
        if exited and on_exit is not None:
            on_exit(self)

    @property
    def exit_code(self) -> int | None:
        """Docker-style exit code once the process has exited, else ``None``."""
        return self._exit_code

    def last_lines(self) -> tuple[str, ...]:
        return tuple(self._tail)

    def is_alive(self) -> bool:
        return not self._exited.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the process has exited and its logs are drained; ``False`` on timeout."""
        return self._exited.wait(timeout)

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM the group (once) and SIGKILL it ``grace_seconds`` later unless it has exited by then.

        Calling again never sends a second SIGTERM (it could interrupt a container saving its model); it only
        brings the SIGKILL forward when the new deadline is earlier.
        """
        with self._lock:
            if self._reaped:
                return
            first = self._kill_deadline is None
            deadline = time.monotonic() + grace_seconds
            if self._kill_deadline is None or deadline < self._kill_deadline:
                if self._kill_timer is not None:
                    self._kill_timer.cancel()
                self._kill_deadline = deadline
                self._kill_timer = threading.Timer(grace_seconds, self.kill)
                self._kill_timer.daemon = True
                self._kill_timer.start()
            if first:
                self._signal_group_locked(signal.SIGTERM)

    def kill(self) -> None:
        with self._lock:
            self._signal_group_locked(signal.SIGKILL)

    def _signal_group_locked(self, signum: signal.Signals) -> None:
        if self._reaped:
            return
        try:
            os.killpg(self.pid, signum)
            logger.debug("sent %s to %s (process group %s)", signum.name, self.host, self.pid)
        except (ProcessLookupError, PermissionError):
            pass

    def _wait_group_gone(self) -> None:
        """Give the SIGKILLed rest of the group a moment to die, so "exited" means nothing of it runs."""
        deadline = time.monotonic() + _GROUP_EXIT_SECONDS
        while _group_has_live_members(self.pid):
            if time.monotonic() >= deadline:
                logger.warning("process group %s of %s outlived SIGKILL", self.pid, self.host)
                return
            time.sleep(0.01)

    def _pump(self, stream: IO[bytes], name: str) -> None:
        try:
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._tail.append(text)
                if self._on_log is not None:
                    self._emit(LogLine(self.host, name, text, datetime.now(UTC)))
        except (OSError, ValueError) as exc:
            logger.debug("log pump %s/%s stopped: %s", self.host, name, exc)
        finally:
            stream.close()

    def _emit(self, line: LogLine) -> None:
        assert self._on_log is not None
        try:
            self._on_log(line)
        except Exception:  # a broken callback must not stop the pipe from draining
            logger.exception("log callback failed for %s", self.host)

    def _wait_for_exit(self) -> None:
        try:
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        with self._lock:
            self._signal_group_locked(signal.SIGKILL)  # whatever the container left behind in its group
            self._reaped = True
            if self._kill_timer is not None:
                self._kill_timer.cancel()
        returncode = self._popen.wait()
        self._wait_group_gone()
        if self._ledger is not None:
            self._ledger.remove(self.pid)
        for reader in self._readers:
            reader.join(_READER_JOIN_SECONDS)
        with self._lock:
            self._exit_code = docker_exit_code(returncode)
            on_exit = self._on_exit
        logger.debug("%s exited with %s", self.host, self._exit_code)
        self._exited.set()
        if on_exit is not None:
            try:
                on_exit(self)
            except Exception:
                logger.exception("exit callback failed for %s", self.host)
