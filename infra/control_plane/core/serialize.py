"""Responses shaped by botocore's output model: unknown keys and empty structures dropped, timestamps as epoch."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

logger = logging.getLogger(__name__)

_OMIT = object()


def shape_response(value: Mapping[str, Any], shape: StructureShape | None) -> dict[str, Any]:
    """Return ``value`` as the JSON-protocol wire form of ``shape``."""
    if shape is None:
        return {}
    shaped = _structure(value, shape, top_level=True)
    return shaped if isinstance(shaped, dict) else {}


def _structure(value: Mapping[str, Any], shape: StructureShape, top_level: bool = False) -> Any:
    out: dict[str, Any] = {}
    for key, item in value.items():
        member = shape.members.get(key)
        if member is None:
            logger.debug("dropping %s: not a member of %s", key, shape.name)
            continue
        shaped = _value(item, member)
        if shaped is not _OMIT:
            out[key] = shaped
    if not out and not top_level:
        return _OMIT  # AWS omits empty structures (sagemaker-core rejects VpcConfig: {})
    return out


def _value(item: Any, shape: Shape) -> Any:
    if item is None:
        return _OMIT
    if isinstance(shape, StructureShape):
        return _structure(item, shape) if isinstance(item, Mapping) else _OMIT
    if isinstance(shape, ListShape):
        shaped = [_list_element(element, shape.member) for element in item]
        return [element for element in shaped if element is not _OMIT]
    if isinstance(shape, MapShape):
        return {str(k): v for k, v in ((k, _value(v, shape.value)) for k, v in item.items()) if v is not _OMIT}
    return _scalar(item, shape)


def _list_element(element: Any, shape: Shape) -> Any:
    """A list keeps its empty structures (an Athena row's NULL datum is ``{}``): only empty members are omitted."""
    shaped = _value(element, shape)
    if shaped is _OMIT and isinstance(shape, StructureShape) and isinstance(element, Mapping):
        return {}
    return shaped


def _scalar(item: Any, shape: Shape) -> Any:
    if isinstance(item, Enum):
        return item.value
    if shape.type_name == "timestamp":
        return item.timestamp() if isinstance(item, datetime) else item
    if shape.type_name == "blob" and isinstance(item, bytes):
        return base64.b64encode(item).decode("ascii")
    return item
