"""Container processes outlive the thread that started them, and still die with the stack (bwrap --die-with-parent)."""

import subprocess
import sys
import threading
import time

import pytest

from infra.runtime.process.host_process import HostProcess

needs_bwrap = pytest.mark.capability("bubblewrap")


def _start_in_short_lived_thread(argv, tmp_path):
    started = []
    thread = threading.Thread(
        target=lambda: started.append(HostProcess("algo-1", argv, {"PATH": "/usr/bin"}, tmp_path))
    )
    thread.start()
    thread.join()
    return started[0]


@needs_bwrap
def test_a_process_started_from_a_finished_thread_keeps_running(tmp_path):
    process = _start_in_short_lived_thread(
        ["bwrap", "--dev-bind", "/", "/", "--die-with-parent", "--", "sleep", "30"], tmp_path
    )
    try:
        time.sleep(1.0)
        assert process.is_alive(), process.last_lines()
    finally:
        process.terminate(grace_seconds=1.0)
        assert process.wait(10)


@needs_bwrap
def test_the_process_still_dies_with_the_stack_process(tmp_path):
    script = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "from infra.runtime.process.host_process import HostProcess\n"
        "argv = ['bwrap', '--dev-bind', '/', '/', '--die-with-parent', '--', 'sleep', '60']\n"
        "t = threading.Thread(target=lambda: print(HostProcess('algo-1', argv, {'PATH': '/usr/bin'}, Path('.')).pid,"
        " flush=True))\n"
        "t.start(); t.join(); time.sleep(60)\n"
    )
    stack = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    child = int(stack.stdout.readline())
    time.sleep(0.5)
    assert _alive(child)
    stack.kill()
    stack.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
