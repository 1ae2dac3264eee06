"""Media types the containers read and write, and ``Accept`` negotiation.

Names are matched case-insensitively and the short aliases SageMaker accepts (``csv``, ``libsvm``,
``recordio-protobuf``, ...) map to the canonical MIME type (docs/algorithms/xgboost.md#channels-and-content-types).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from containers.toolkit.errors import NotAcceptableError

logger = logging.getLogger(__name__)

CSV = "text/csv"
LIBSVM = "text/libsvm"
JSON = "application/json"
JSONLINES = "application/jsonlines"
PARQUET = "application/x-parquet"
RECORDIO_PROTOBUF = "application/x-recordio-protobuf"

_ALIASES: Mapping[str, str] = {
    "csv": CSV,
    "libsvm": LIBSVM,
    "text/x-libsvm": LIBSVM,
    "parquet": PARQUET,
    "recordio-protobuf": RECORDIO_PROTOBUF,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "jsonlines": JSONLINES,
    "json": JSON,
}


@dataclass(frozen=True)
class MediaType:
    """A parsed media type: ``type`` is canonical and lower case, ``params`` have lower-case names."""

    type: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __str__(self) -> str:
        extra = "".join(f";{name}={value}" for name, value in self.params.items())
        return f"{self.type}{extra}"


def canonical_type(name: str) -> str:
    """Map a bare type name (no parameters) to its canonical spelling; unknown names are only lower-cased."""
    lowered = name.strip().lower()
    return _ALIASES.get(lowered, lowered)


def parse_media_type(value: str) -> MediaType:
    """Parse ``type/subtype; name=value; ...`` into a :class:`MediaType`.

    >>> parse_media_type("CSV; label_size=1")
    MediaType(type='text/csv', params=mappingproxy({'label_size': '1'}))
    """
    head, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        name, sep, raw = part.partition("=")
        if not sep or not name.strip():
            continue
        params[name.strip().lower()] = raw.strip().strip('"')
    return MediaType(canonical_type(head), MappingProxyType(params))


def _accept_entries(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their q-values, best first (stable for equal q)."""
    entries: list[tuple[str, float, int]] = []
    for position, item in enumerate(accept.split(",")):
        if not item.strip():
            continue
        media = parse_media_type(item)
        try:
            quality = float(media.params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality > 0:
            entries.append((media.type, quality, position))
    entries.sort(key=lambda entry: (-entry[1], entry[2]))
    return [(media_type, quality) for media_type, quality, _ in entries]


def _match(media_range: str, supported: Sequence[str], default: str) -> str | None:
    if media_range in ("*/*", "*"):
        return default
    if media_range.endswith("/*"):
        prefix = media_range[:-1]
        if default.startswith(prefix):
            return default
        return next((candidate for candidate in supported if candidate.startswith(prefix)), None)
    return media_range if media_range in supported else None


def negotiate_accept(accept: str | None, supported: Sequence[str], default: str) -> str:
    """Choose the response media type for an ``Accept`` header.

    A missing, empty or ``*/*`` header gives ``default``. Lists with q-values and ``type/*`` ranges are honoured.
    Raises :class:`NotAcceptableError` (406) naming the supported types when nothing fits.
    """
    if accept is None or not accept.strip():
        return default
    canonical_supported = [canonical_type(name) for name in supported]
    for media_range, _ in _accept_entries(accept):
        chosen = _match(media_range, canonical_supported, canonical_type(default))
        if chosen is not None:
            return chosen
    raise NotAcceptableError(
        f"Accept type {accept} is not supported. Supported types: {', '.join(canonical_supported)}."
    )
