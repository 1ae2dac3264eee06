"""The Lambda standby processes stay bounded and end when evicted, discarded or closed (real child processes)."""

import subprocess
import sys

from infra.control_plane.lambda_functions.standby_processes import MAX_STANDBY, InvocationProcess, StandbyProcesses


def _waiting(tmp_path, index):
    scratch = tmp_path / f"p{index}"
    scratch.mkdir()
    command = [sys.executable, "-S", "-c", "import sys; sys.stdin.buffer.read()"]
    popen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return InvocationProcess(popen, scratch)


def test_the_least_recently_used_standby_is_stopped_past_the_cap(tmp_path):
    standby = StandbyProcesses()
    started = []

    def start(index):
        process = _waiting(tmp_path, index)
        started.append(process)
        return process

    for index in range(MAX_STANDBY + 1):
        standby.refill(f"arn:fn-{index}\nconfig", lambda index=index: start(index))
    assert started[0].popen.poll() is not None and not started[0].scratch.exists()
    assert standby.take("arn:fn-0\nconfig") is None
    assert all(p.popen.poll() is None for p in started[1:])
    taken = standby.take("arn:fn-1\nconfig")
    assert taken is started[1]
    taken.discard()
    standby.discard_function("arn:fn-2")
    assert started[2].popen.poll() is not None
    standby.close()
    assert all(p.popen.poll() is not None for p in started)


def test_a_standby_that_died_is_not_handed_out(tmp_path):
    standby = StandbyProcesses()
    process = _waiting(tmp_path, 0)
    standby.refill("arn:fn\nconfig", lambda: process)
    process.popen.kill()
    process.popen.wait()
    assert standby.take("arn:fn\nconfig") is None
