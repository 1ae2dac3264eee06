"""A record's serialisable form and back, driven by its dataclass fields' type hints (docs/local-stack.md).

Every control-plane record is a dataclass whose fields are plain values, enums, datetimes, typed requests
(:class:`~infra.control_plane.core.api_shapes.ApiShape`, stored as their ``wire()`` form), nested dataclasses and
containers of these. Locks, events, threads and fields marked :data:`TRANSIENT` (live containers, say) are not
stored: a decoded record gets them fresh from the field's default. Decoding never runs ``__init__`` or
``__post_init__``, so a record comes back exactly as it was written.
"""

from __future__ import annotations

import dataclasses
import enum
import queue
import sys
import threading
import types
import typing
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = ["TRANSIENT", "RecordCodecError", "decode_record", "encode_record"]

# ``field(default=None, metadata=TRANSIENT)``: a field that lives only as long as the process (never stored).
TRANSIENT: Mapping[str, bool] = types.MappingProxyType({"sagestack.transient": True})

_DT, _TD = "$dt", "$td"
_LIVE_TYPES: tuple[type, ...] = (
    type(threading.Event()),
    type(threading.RLock()),
    type(threading.Lock()),
    threading.Thread,
    queue.Queue,
)


class RecordCodecError(ValueError):
    """A value has no serialisable form (or a stored form no longer fits its field)."""


def encode_record(record: Any) -> Any:
    """The JSON-ready form of a record (a dataclass, or a plain value such as a tag list)."""
    return _encode(record)


def decode_record(kind: type[Any], data: Any) -> Any:
    """A record of type ``kind`` from its stored form."""
    return _decode(kind, data)


def _stored_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("sagestack.transient")]


def _encode_dataclass(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in _stored_fields(type(record)):
        value = getattr(record, f.name, None)
        if isinstance(value, _LIVE_TYPES) or (callable(value) and not isinstance(value, type | BaseModel)):
            continue
        out[f.name] = _encode(value)
    return out


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if isinstance(value, datetime):
        return {_DT: value.isoformat()}
    if isinstance(value, timedelta):
        return {_TD: value.total_seconds()}
    if isinstance(value, BaseModel):
        wire = getattr(value, "wire", None)
        return wire() if callable(wire) else value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_dataclass(value)
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_encode(item) for item in items]
    if isinstance(value, Path):
        return str(value)
    raise RecordCodecError(f"cannot store a {type(value).__name__}")


def _hints(cls: type[Any]) -> dict[str, Any]:
    """Field name -> type; an annotation that cannot be resolved here (a TYPE_CHECKING import) reads as ``Any``."""
    cached: dict[str, Any] | None = cls.__dict__.get("__sagestack_hints__")
    if cached is not None:
        return cached
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module else {}
    hints: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        annotation = f.type
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # the class's own annotation, in its module
            except Exception:
                annotation = Any
        hints[f.name] = annotation
    type.__setattr__(cls, "__sagestack_hints__", hints)
    return hints


def _decode_dataclass(cls: type[Any], data: Mapping[str, Any]) -> Any:
    if not isinstance(data, Mapping):
        raise RecordCodecError(f"{cls.__name__}: stored form is not an object")
    record = object.__new__(cls)
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in data and not f.metadata.get("sagestack.transient"):
            value = _decode(hints.get(f.name, Any), data[f.name])
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            raise RecordCodecError(f"{cls.__name__}: stored form has no {f.name}")
        object.__setattr__(record, f.name, value)
    return record


def _decode(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _decode(options[0] if len(options) == 1 else Any, value)
    if origin is typing.Literal:
        return value
    if origin is not None:
        return _decode_container(origin, typing.get_args(kind), value)
    if not isinstance(kind, type) or kind is object:
        return _decode_any(value)
    return _decode_type(kind, value)


def _decode_type(kind: type[Any], value: Any) -> Any:
    if kind is datetime:
        return datetime.fromisoformat(value[_DT] if isinstance(value, Mapping) else value)
    if kind is timedelta:
        return timedelta(seconds=value[_TD] if isinstance(value, Mapping) else value)
    if issubclass(kind, enum.Enum):
        return kind(value)
    if issubclass(kind, BaseModel):
        return kind.model_validate(value)
    if dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, value)
    if issubclass(kind, Path):
        return Path(value)
    if kind in (int, float, str, bool):
        return kind(value)
    return _decode_any(value)


def _decode_container(origin: Any, args: tuple[Any, ...], value: Any) -> Any:
    if origin in (dict, Mapping, typing.Mapping) or _is_subclass(origin, Mapping):
        value_kind = args[1] if len(args) == 2 else Any
        return {key: _decode(value_kind, item) for key, item in value.items()}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in value)
        if args:
            return tuple(_decode(kind, item) for kind, item in zip(args, value, strict=False))
        return tuple(_decode_any(item) for item in value)
    item_kind = args[0] if args else Any
    items = [_decode(item_kind, item) for item in value]
    if origin in (set, typing.AbstractSet) or _is_subclass(origin, set):
        return set(items)
    if origin is frozenset:
        return frozenset(items)
    return items


def _is_subclass(origin: Any, base: type) -> bool:
    return isinstance(origin, type) and issubclass(origin, base)


def _decode_any(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_DT}:
            return datetime.fromisoformat(value[_DT])
        if set(value) == {_TD}:
            return timedelta(seconds=value[_TD])
        return {key: _decode_any(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode_any(item) for item in value]
    return value
