"""The JSONPath subset batch transform's ``DataProcessing`` filters accept
(docs/reference/formats.md#dataprocessing-and-its-jsonpath-subset).

``$``; ``.name``; ``*``; ``['a','b']``; ``[n]`` / ``[n,m,...]`` with negative indices; slices ``[start:end]`` whose
end is **inclusive** (DG: ``$[1:4]`` is "the second through fifth columns", ``$[:5]`` "first through sixth").
A single name or index selects one value; ``*``, several names/indices and slices select several (several names on
an object keep their keys).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["JsonPathError", "compile_path", "select"]

_TOKEN = re.compile(r"\.(?P<name>[A-Za-z_][\w-]*|\*)|\[(?P<bracket>[^\]]*)\]")
_SLICE = re.compile(r"^\s*(?P<start>-?\d+)?\s*:\s*(?P<end>-?\d+)?\s*$")
_QUOTED = re.compile(r"^\s*'(?P<q>[^']*)'\s*$|^\s*\"(?P<d>[^\"]*)\"\s*$")

Step = Callable[[Any], Any]


class JsonPathError(ValueError):
    """A path outside the supported subset, or one that does not fit the record it is applied to."""


@dataclass(frozen=True)
class _Many:
    """Marks a step result that holds several selected values (so the next step maps over them)."""

    values: list[Any]


def select(path: str, document: Any) -> Any:
    """Apply ``path`` to ``document``; raises :class:`JsonPathError` for an index or key that is not there."""
    value: Any = document
    for step in compile_path(path):
        value = _apply(step, value)
    return value.values if isinstance(value, _Many) else value


def _apply(step: Step, value: Any) -> Any:
    if isinstance(value, _Many):
        return _Many([_unwrap(step(item)) for item in value.values])
    return step(value)


def _unwrap(value: Any) -> Any:
    return value.values if isinstance(value, _Many) else value


@lru_cache(maxsize=256)
def compile_path(path: str) -> tuple[Step, ...]:
    text = path.strip()
    if not text.startswith("$"):
        raise JsonPathError(f"JSONPath {path!r} must start with '$'")
    steps: list[Step] = []
    position = 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise JsonPathError(f"unsupported JSONPath {path!r} near {text[position:]!r}")
        name, bracket = match.group("name"), match.group("bracket")
        steps.append(_name_step(name) if name is not None else _bracket_step(bracket, path))
        position = match.end()
    return tuple(steps)


def _name_step(name: str) -> Step:
    if name == "*":
        return _wildcard
    return lambda value: _key(value, name)


def _bracket_step(content: str, path: str) -> Step:
    if content.strip() == "*":
        return _wildcard
    sliced = _SLICE.match(content)
    if sliced is not None:
        start, end = sliced.group("start"), sliced.group("end")
        return lambda value: _slice(value, int(start) if start else None, int(end) if end else None)
    parts = [part for part in content.split(",")]
    quoted = [_QUOTED.match(part) for part in parts]
    if all(q is not None for q in quoted):
        keys = [q.group("q") if q.group("q") is not None else q.group("d") for q in quoted if q is not None]
        return (lambda value: _key(value, keys[0])) if len(keys) == 1 else (lambda value: _keys(value, keys))
    try:
        indices = [int(part) for part in parts]
    except ValueError as exc:
        raise JsonPathError(f"unsupported JSONPath {path!r}: bracket [{content}]") from exc
    return (lambda value: _index(value, indices[0])) if len(indices) == 1 else (lambda value: _indices(value, indices))


def _wildcard(value: Any) -> _Many:
    if isinstance(value, Mapping):
        return _Many(list(value.values()))
    if isinstance(value, list):
        return _Many(list(value))
    raise JsonPathError("'*' applied to a value that is neither an object nor an array")


def _key(value: Any, key: str) -> Any:
    if not isinstance(value, Mapping) or key not in value:
        raise JsonPathError(f"key {key!r} not found in the record")
    return value[key]


def _keys(value: Any, keys: Sequence[str]) -> dict[str, Any]:
    return {key: _key(value, key) for key in keys}


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise JsonPathError("an index was applied to a value that is not an array")
    return value


def _index(value: Any, index: int) -> Any:
    items = _as_list(value)
    if not -len(items) <= index < len(items):
        raise JsonPathError(f"index {index} is outside the record's dimension ({len(items)})")
    return items[index]


def _indices(value: Any, indices: Sequence[int]) -> list[Any]:
    return [_index(value, index) for index in indices]


def _slice(value: Any, start: int | None, end: int | None) -> list[Any]:
    items = _as_list(value)
    if end is None:
        return items[start:]
    stop = end + 1 if end != -1 else None  # inclusive end
    return items[start:stop]
