"""State behind one small interface: a thread-safe named collection per resource kind, per account/region."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from infra.control_plane.core.errors import ServiceError

T = TypeVar("T")
B = TypeVar("B")


class Store(Generic[T]):
    """Named resources of one kind. In memory today; the interface is what a durable store must provide."""

    def __init__(self, kind: str, not_found: Callable[[str], ServiceError]) -> None:
        self.kind = kind
        self._not_found = not_found
        self._items: dict[str, T] = {}
        self._lock = threading.RLock()

    def add(self, name: str, item: T, already_exists: Callable[[str], ServiceError]) -> T:
        with self._lock:
            if name in self._items:
                raise already_exists(name)
            self._items[name] = item
            return item

    def get_or_raise(self, name: str) -> T:
        with self._lock:
            item = self._items.get(name)
        if item is None:
            raise self._not_found(name)
        return item

    def find(self, name: str) -> T | None:
        with self._lock:
            return self._items.get(name)

    def remove(self, name: str) -> T:
        with self._lock:
            item = self._items.pop(name, None)
        if item is None:
            raise self._not_found(name)
        return item

    def values(self) -> list[T]:
        with self._lock:
            return list(self._items.values())


class Registry(Generic[B]):
    """Backends keyed by (account, region), created lazily under a lock (moto's BackendDict habit)."""

    def __init__(self, factory: Callable[[str, str], B]) -> None:
        self._factory = factory
        self._backends: dict[tuple[str, str], B] = {}
        self._lock = threading.RLock()

    def get(self, account_id: str, region: str) -> B:
        key = (account_id, region)
        with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                backend = self._factory(account_id, region)
                self._backends[key] = backend
            return backend

    def all(self) -> list[B]:
        with self._lock:
            return list(self._backends.values())
