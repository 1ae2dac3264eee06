"""A background thread that writes a durable store's changes every few seconds, and once more when stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PeriodicWriter:
    """Calls ``write`` every ``seconds`` on a daemon thread; a failed write is logged and tried again next time."""

    def __init__(self, name: str, seconds: float, write: Callable[[], object]) -> None:
        self._name, self._seconds, self._write = name, seconds, write
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"sagestack-{self._name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._write()
            except Exception:  # a writer thread must outlive one failed write
                logger.exception("%s failed; retrying", self._name)

    def stop(self, join_seconds: float = 30.0) -> None:
        """End the thread (waiting up to ``join_seconds``); the caller then writes what is left itself."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=join_seconds)
