"""The container processes a stack started, recorded under its data directory so a later run can end survivors.

Every container process gets a parent-death signal (``setpriv --pdeathsig KILL``), so it dies with the stack however
the stack dies. The ledger is the second guard, for what that cannot cover (a process whose parent died before the
signal was armed, a child the container left in its process group): each started process is recorded as its pid and
its start time (field 22 of ``/proc/<pid>/stat``, in clock ticks since boot) in a file named after the recording
process (``container-processes/<pid>-<start time>.json``); at start-up :func:`reap_survivors` reads the files of
runs that are gone and ends the process groups whose leader, or a member started after it, is still alive. A
process is only ever matched by pid and start time, never by name, so a recycled pid is left alone
(docs/local-stack.md, "Processes and disk").
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["ProcessLedger", "RecordedProcess", "process_start_time", "reap_survivors"]

LEDGER_DIRECTORY = "container-processes"
_REAP_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class RecordedProcess:
    pid: int  # also the id of the process group it leads (containers start in their own session)
    start_time: int  # clock ticks since boot, from /proc/<pid>/stat


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (field 3 onwards), or ``None`` if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def live_processes() -> Iterator[tuple[int, list[str]]]:
    """Every running process (zombies excluded) with its ``/proc/<pid>/stat`` fields after the command name: the
    state, then the parent, the process group (index 2), the session (3), ..., the start time (19)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[0] not in ("Z", "X"):
            yield int(entry.name), fields


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; ``None`` when it does not exist."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else None


class ProcessLedger:
    """The live container processes of this run, mirrored to ``<directory>/container-processes/<run>.json``."""

    def __init__(self, directory: Path) -> None:
        me = os.getpid()
        self.path = directory / LEDGER_DIRECTORY / f"{me}-{process_start_time(me) or 0}.json"
        self._lock = threading.Lock()
        self._live: dict[int, int] = {}

    def add(self, pid: int) -> None:
        start_time = process_start_time(pid)
        if start_time is None:
            return
        with self._lock:
            self._live[pid] = start_time
            self._write_locked()

    def remove(self, pid: int) -> None:
        with self._lock:
            if self._live.pop(pid, None) is not None:
                self._write_locked()

    def _write_locked(self) -> None:
        entries = [{"pid": pid, "start_time": start} for pid, start in sorted(self._live.items())]
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(entries), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:  # the pdeathsig still guards; a missing ledger only weakens the start-up reaper
            logger.warning("cannot record container processes in %s: %s", self.path, exc)


def recorded_processes(path: Path) -> list[RecordedProcess]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [RecordedProcess(int(entry["pid"]), int(entry["start_time"])) for entry in entries]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def _survivors(recorded: RecordedProcess) -> list[int]:
    """Live processes of a recorded group: the leader if its start time matches, else members started after it.

    A pid that leads a process group is not reused while any member of the group lives, so a process whose group
    id is the recorded pid and that started no earlier than the recorded leader belongs to that group.
    """
    found: list[int] = []
    for pid, fields in live_processes():
        if int(fields[2]) != recorded.pid:
            continue
        start_time = int(fields[19])
        if start_time == recorded.start_time if pid == recorded.pid else start_time >= recorded.start_time:
            found.append(pid)
    return found


def _run_is_alive(path: Path) -> bool:
    """Whether the process that wrote a ledger file (named ``<pid>-<start time>.json``) still runs."""
    pid, _, start_time = path.stem.partition("-")
    try:
        return process_start_time(int(pid)) == int(start_time)
    except ValueError:
        return False


def reap_survivors(directory: Path) -> int:
    """SIGKILL the container processes ended runs recorded in ``directory`` that still run; how many there were.

    The files of runs still alive (another runtime of this process, a stack running on the same directory) are
    left alone.
    """
    if not Path("/proc").is_dir():
        return 0
    killed: list[int] = []
    ended = [path for path in sorted((directory / LEDGER_DIRECTORY).glob("*.json")) if not _run_is_alive(path)]
    for path in ended:
        for recorded in recorded_processes(path):
            for pid in _survivors(recorded):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except (ProcessLookupError, PermissionError):
                    pass
    if killed:
        logger.warning("ended %d container process(es) left running by an earlier run: %s", len(killed), killed)
        deadline = time.monotonic() + _REAP_WAIT_SECONDS
        while any(process_start_time(pid) is not None and not _is_zombie(pid) for pid in killed):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.01)
    for path in ended:
        path.unlink(missing_ok=True)
    return len(killed)


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")
