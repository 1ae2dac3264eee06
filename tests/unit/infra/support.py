"""Helpers shared by the runtime tests."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

from infra.runtime.api import LogLine


class LogCollector:
    """A log callback that records lines and lets a test wait for one."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self._changed = threading.Condition()

    def __call__(self, line: LogLine) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: any(text in line.text for line in self.lines), timeout)

    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


def pid_gone(pid: int) -> bool:
    """True when no process (other than a zombie awaiting its reaper) has this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class Impostor(http.server.BaseHTTPRequestHandler):
    """Another process's server: healthy, and answers invocations itself."""

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(b'{"impostor": "yes"}')

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


PROBE = "sagestack_probe"  # the module of the probe wheels


def probe_wheel(directory: Path, version: str) -> Path:
    """A pure-Python wheel of ``sagestack-probe`` whose module says its version."""
    info = f"{PROBE}-{version}.dist-info"
    files = {
        f"{PROBE}/__init__.py": f'VERSION = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: sagestack-probe\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: sagestack-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_digest(text)},{len(text.encode())}\n" for path, text in files.items())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{PROBE}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in {**files, f"{info}/RECORD": f"{record}{info}/RECORD,,\n"}.items():
            archive.writestr(member, text)
    return path


def _digest(text: str) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
