"""Let containers reach a stack that listens on ``127.0.0.1`` only, without opening the stack to the network.

Inside a container, ``127.0.0.1`` is the container itself, so ``AWS_ENDPOINT_URL=http://127.0.0.1:4566`` (what the
control plane gives every job) reaches nothing. Binding the stack to ``0.0.0.0`` would expose it to every network the
machine is on. Instead, for each job network the Docker runtime starts a :class:`EdgeRelay`: a TCP forwarder bound
only to the network's gateway address (the host's side of that network's bridge, e.g. ``172.18.0.1``), which only
the host and the containers of the job holding the network can reach, forwarding to the loopback address and port
of the original URL. The container's ``AWS_ENDPOINT_URL*`` variables are rewritten to the relay
(:func:`relay_environment`). The relays live as long as their network
(:mod:`infra.runtime.docker.docker_networks`): when a job ends, :meth:`RelaySet.recycle` cuts every connection its
containers had open and closes the relays it did not use, so the next job on that network starts with no connection
of the previous one.
"""

from __future__ import annotations

import logging
import re
import selectors
import socket
import threading
from collections.abc import Mapping

logger = logging.getLogger(__name__)

__all__ = ["EdgeRelay", "RelaySet", "loopback_target", "pipe_sockets", "relay_environment"]

RELAYED_PREFIX = "AWS_ENDPOINT_URL"  # AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (boto3's service overrides)
_LOOPBACK_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<host>127\.0\.0\.1|localhost|\[::1\]):(?P<port>\d+)(?P<rest>/.*)?$"
)
_BUFFER = 65536


def loopback_target(url: str) -> tuple[str, int] | None:
    """``(host, port)`` when ``url`` points at this machine's loopback interface, else ``None``."""
    match = _LOOPBACK_URL.match(url.strip())
    if match is None:
        return None
    host = match.group("host")
    return ("::1" if host == "[::1]" else "127.0.0.1" if host == "localhost" else host), int(match.group("port"))


class EdgeRelay:
    """Accepts TCP connections on ``(listen_host, ephemeral port)`` and pipes each one to ``target``."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server((listen_host, 0))
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        name = f"sagestack-relay-{self.address[1]}"
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)
        self._thread.start()
        logger.info("relay %s:%d -> %s:%d", *self.address, *target)

    def close(self) -> None:
        self._closed.set()
        _shut(self._server)  # wakes the thread blocked in accept(); a bare close() would leave it waiting
        self._server.close()
        self.drop_connections()
        self._thread.join(timeout=5)

    def accepting(self) -> bool:
        """Whether the relay still accepts connections (its accept thread runs)."""
        return self._thread.is_alive()

    def drop_connections(self) -> None:
        """Cut every connection piped now (their threads then close them); the relay keeps listening."""
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            _shut(connection)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), name="sagestack-relay-pipe", daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError as exc:
            logger.warning("relay cannot reach %s:%d: %s", *self.target, exc)
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._connections.update((client, upstream))
        try:
            pipe_sockets(client, upstream)
        finally:
            with self._lock:
                self._connections.difference_update((client, upstream))
            client.close()
            upstream.close()


def _shut(sock: socket.socket) -> None:
    """Shut a socket down both ways: a thread blocked on it (``accept``, ``select``) wakes up at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # not connected, or already gone
        pass


def pipe_sockets(first: socket.socket, second: socket.socket) -> None:
    """Copy bytes both ways until both sides have finished sending (half-closes are passed on).

    Returns quietly when either socket fails or is closed under it (a relay or proxy being shut down).
    """
    peers = {first: second, second: first}
    try:
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while selector.get_map():
                for key, _ in selector.select():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(_BUFFER)
                    if data:
                        peers[source].sendall(data)
                        continue
                    selector.unregister(source)
                    peers[source].shutdown(socket.SHUT_WR)
    except (OSError, ValueError):
        return


class RelaySet:
    """The relays of one network, one per loopback target; :meth:`close` stops them all."""

    def __init__(self) -> None:
        self._relays: dict[tuple[str, int], EdgeRelay] = {}
        self._used: set[tuple[str, int]] = set()  # targets asked for since the last recycle

    def url_for(self, gateway: str, url: str) -> str:
        """``url`` with its loopback host and port replaced by a relay on ``gateway`` (other URLs unchanged)."""
        target = loopback_target(url)
        if target is None:
            return url
        relay = self._relays.get(target)
        if relay is None:
            relay = self._relays[target] = EdgeRelay(gateway, target)
        self._used.add(target)
        match = _LOOPBACK_URL.match(url.strip())
        assert match is not None
        return f"{match.group('scheme')}://{gateway}:{relay.address[1]}{match.group('rest') or ''}"

    def recycle(self) -> None:
        """Between two jobs: cut every connection, close the relays the last job did not use (the set stays bounded)."""
        for target in list(self._relays):
            if target in self._used:
                self._relays[target].drop_connections()
            else:
                self._relays.pop(target).close()
        self._used.clear()

    def close(self) -> None:
        for relay in self._relays.values():
            relay.close()
        self._relays.clear()
        self._used.clear()


def relay_environment(environment: Mapping[str, str], gateway: str, relays: RelaySet) -> dict[str, str]:
    """The environment with every loopback ``AWS_ENDPOINT_URL*`` pointed at a relay on ``gateway``."""
    return {
        key: relays.url_for(gateway, value) if key.startswith(RELAYED_PREFIX) else value
        for key, value in environment.items()
    }
