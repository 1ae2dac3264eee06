"""Which sockets the stack's child processes listen on, as ``ss -ltnp`` shows them (issue 17, finding 8)."""

import ipaddress
import os
import re
import subprocess
import threading

import psutil

_SS_LINE = re.compile(r"^LISTEN\s+\S+\s+\S+\s+(?P<local>\S+):(?P<port>\d+)\s+\S+\s*(?P<users>.*)$")
_PID = re.compile(r"pid=(\d+)")


def _loopback(address):
    address = address.strip("[]").split("%")[0]
    if address == "*":
        return False
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback


class ListenerWatch:
    """Samples ``ss -ltnpH`` until stopped; keeps the listening sockets of this process's descendants."""

    def __init__(self):
        self.seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def external(self):
        return sorted(entry for entry in self.seen if not _loopback(entry[1]))

    def _run(self):
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            self.sample({child.pid for child in me.children(recursive=True)})
            self._stop.wait(0.05)

    def sample(self, pids):
        listing = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            match = _SS_LINE.match(line.strip())
            if match is None:
                continue
            owners = {int(pid) for pid in _PID.findall(match["users"])}
            for pid in owners & pids:
                self.seen.add((_name(pid), match["local"], int(match["port"])))


def _name(pid):
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "?"
