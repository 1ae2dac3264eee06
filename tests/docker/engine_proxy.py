"""A stand-in for "the Docker engine stopped": a Unix-socket proxy in front of the real engine that a test can cut.

Stopping the real ``dockerd`` would break everyone else using it on this machine; cutting this proxy looks the
same to our runtime: attached ``docker run`` clients lose their connection and every later command fails with
"Cannot connect to the Docker daemon". The engine behind it keeps the containers, as one with ``live-restore``
would, so a test can also check they are removed once the "engine" is back (:meth:`EngineProxy.start` again).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from infra.runtime.docker.docker_relay import pipe_sockets

ENGINE_SOCKET = "/var/run/docker.sock"


class EngineProxy:
    def __init__(self, path: Path, engine: str = ENGINE_SOCKET) -> None:
        self.path = path
        self.engine = engine
        self._server: socket.socket | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> None:
        if self.path.exists():
            self.path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut every open one (the engine "stops")."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self.path.exists():
            os.unlink(self.path)
        with self._lock:
            cut, self._open = list(self._open), set()
        for sock in cut:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.engine)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open.update((client, upstream))
        try:
            pipe_sockets(client, upstream)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((client, upstream))
            client.close()
            upstream.close()
