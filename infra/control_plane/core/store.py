"""State behind one small interface: a thread-safe named collection per resource kind, per account/region.

Built inside :func:`~infra.control_plane.core.durable.record_journal.bind_records` (the composition root does this
for each backend), a store with a ``record_type`` starts from the records stored by an earlier run and writes its
records to the state database (docs/local-stack.md, "What persists"); otherwise it lives in memory only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

from infra.control_plane.core.durable.record_journal import Collection, current_binding
from infra.control_plane.core.errors import ServiceError

T = TypeVar("T")
B = TypeVar("B")


def _open(
    kind: str, record_type: type[Any] | None, items: Callable[[], dict[str, Any]]
) -> tuple[Collection | None, dict[str, Any]]:
    binding = current_binding()
    if binding is None or record_type is None:
        return None, {}
    journal, account, region = binding
    return journal.open(account, region, kind, record_type, items)


class Store(Generic[T]):
    """Named resources of one kind; durable when built with a ``record_type`` under a journal binding."""

    def __init__(self, kind: str, not_found: Callable[[str], ServiceError], record_type: type[T] | None = None) -> None:
        self.kind = kind
        self._not_found = not_found
        self._lock = threading.RLock()
        self._journal, self._items = _open(kind, record_type, self._snapshot)

    def _snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._items)

    def _touch(self, name: str) -> None:
        if self._journal is not None:
            self._journal.touch(name)

    def add(self, name: str, item: T, already_exists: Callable[[str], ServiceError]) -> T:
        with self._lock:
            if name in self._items:
                raise already_exists(name)
            self._items[name] = item
        if self._journal is not None:
            self._journal.write_now(name, item)
        return item

    def get_or_raise(self, name: str) -> T:
        item = self.find(name)
        if item is None:
            raise self._not_found(name)
        return item

    def find(self, name: str) -> T | None:
        with self._lock:
            item: T | None = self._items.get(name)
        if item is not None:
            self._touch(name)
        return item

    def peek(self, name: str) -> T | None:
        """A lookup that will not change the record (InvokeEndpoint's, on every call): the journal is not told, so
        a busy endpoint costs the state flush nothing (docs/local-stack.md#what-persists-where-and-how-to-reset)."""
        with self._lock:
            return self._items.get(name)

    def changed(self, name: str) -> None:
        """Say that a record changed outside a lookup (the next flush stores it)."""
        self._touch(name)

    def remove(self, name: str) -> T:
        with self._lock:
            item: T | None = self._items.pop(name, None)
        if item is None:
            raise self._not_found(name)
        if self._journal is not None:
            self._journal.delete_now(name)
        return item

    def values(self) -> list[T]:
        with self._lock:
            return list(self._items.values())


class DurableMap(MutableMapping[str, T]):
    """A ``dict`` of records (pipeline executions, a family's tags by ARN) stored like a :class:`Store`'s."""

    def __init__(self, kind: str, record_type: type[Any] | None = None) -> None:
        self._lock = threading.RLock()
        self._journal, self._items = _open(kind, record_type, self._snapshot)

    def _snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._items)

    def __getitem__(self, name: str) -> T:
        with self._lock:
            item: T = self._items[name]
        if self._journal is not None:
            self._journal.touch(name)
        return item

    def __setitem__(self, name: str, item: T) -> None:
        with self._lock:
            self._items[name] = item
        if self._journal is not None:
            self._journal.write_now(name, item)

    def __delitem__(self, name: str) -> None:
        with self._lock:
            del self._items[name]
        if self._journal is not None:
            self._journal.delete_now(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._items


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
