"""Materialise a training job's input channels from S3 into each host's local channel directory.

Every byte written counts against the host's volume (``VolumeSizeInGB``), and ``CompressionType=Gzip`` objects are
decompressed as a stream into their file, counted the same way: a small object that expands without end fails the job
with a ``ClientError`` instead of filling the stack's memory (docs/security.md#quotas).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from infra.control_plane.core.api_shapes import Channel, S3DataSource
from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location, relative_key, safe_join
from infra.runtime.api import ChannelSpec

logger = logging.getLogger(__name__)


_GIB = 1024**3
DEFAULT_VOLUME_SIZE_GB = 30  # the SageMaker SDK's default volume size, used when a request names none
_CHUNK_BYTES = 1024 * 1024


class ChannelError(Exception):
    """A channel cannot be materialised (missing data, bad manifest, unsafe key, unsupported source, too large)."""


class VolumeBudget:
    """The bytes one host may still write: its ``VolumeSizeInGB``."""

    def __init__(self, volume_size_gb: int | None) -> None:
        self.size_gb = volume_size_gb or DEFAULT_VOLUME_SIZE_GB
        self._left = self.size_gb * _GIB

    def take(self, count: int, location: S3Location) -> None:
        self._left -= count
        if self._left < 0:
            raise ChannelError(
                f"the input data does not fit the job's volume: {location.uri} takes the data past "
                f"VolumeSizeInGB ({self.size_gb} GB) once written (and decompressed); raise VolumeSizeInGB"
            )


def host_names(count: int) -> list[str]:
    return sorted(f"algo-{i}" for i in range(1, count + 1))


def materialise_channels(
    s3: S3Access, channels: Sequence[Channel], hosts: Sequence[str], root: Path, volume_size_gb: int | None = None
) -> dict[str, list[ChannelSpec]]:
    """Download every channel for every host under ``root/<host>/<channel>``; returns host -> channel specs."""
    by_host: dict[str, list[ChannelSpec]] = {host: [] for host in hosts}
    budgets = {host: VolumeBudget(volume_size_gb) for host in hosts}
    for channel in channels:
        name = channel.channel_name
        source = channel.data_source.s3_data_source
        if source is None:
            raise ChannelError(f"channel {name}: only S3DataSource is supported locally")
        objects = list_objects(s3, source.s3_uri, source.s3_data_type)
        sharded = source.s3_data_distribution_type == "ShardedByS3Key"
        gzipped = channel.compression_type == "Gzip"
        for index, host in enumerate(hosts):
            mine = objects[index :: len(hosts)] if sharded else objects
            target = root / host / name
            target.mkdir(parents=True, exist_ok=True)
            download_objects(s3, mine, target, gzipped, budgets[host])
            by_host[host].append(_spec(channel, source, target))
    return by_host


def _spec(channel: Channel, source: S3DataSource, target: Path) -> ChannelSpec:
    return ChannelSpec(
        name=channel.channel_name,
        source_dir=target,
        content_type=channel.content_type,
        input_mode=channel.input_mode,
        s3_distribution_type=source.s3_data_distribution_type,
        record_wrapper_type=channel.record_wrapper_type,
        compression_type=channel.compression_type,
    )


def list_objects(s3: S3Access, s3_uri: str, data_type: str) -> list[tuple[S3Location, str]]:
    """``(object, relative path)`` pairs for an ``S3Prefix`` or a manifest (incl. the SDK's ``.amazon.manifest``)."""
    try:
        location = S3Location.parse(s3_uri)
        if data_type == "S3Prefix":
            return [
                (S3Location(location.bucket, key), relative_key(location.key, key)) for key, _ in s3.list_keys(location)
            ]
        if data_type == "ManifestFile":
            return _manifest_objects(s3, location)
    except S3AccessError as exc:
        raise ChannelError(str(exc)) from exc
    raise ChannelError(f"S3DataType {data_type} is not supported locally")


def _manifest_objects(s3: S3Access, manifest: S3Location) -> list[tuple[S3Location, str]]:
    try:
        entries = json.loads(s3.get_bytes(manifest))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChannelError(f"manifest {manifest.uri} is not a JSON array: {exc}") from exc
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise ChannelError(f'manifest {manifest.uri} must start with {{"prefix": "s3://..."}}')
    prefix = S3Location.parse(str(entries[0].get("prefix", "")))
    base = prefix.key if prefix.key.endswith("/") or not prefix.key else prefix.key + "/"
    return [(S3Location(prefix.bucket, base + str(rel)), str(rel)) for rel in entries[1:]]


def download_objects(
    s3: S3Access,
    objects: Sequence[tuple[S3Location, str]],
    target: Path,
    gzipped: bool,
    budget: VolumeBudget | None = None,
) -> None:
    """Write each object at its relative path under ``target`` (gunzipping ``.gz`` objects when ``gzipped``)."""
    budget = budget or VolumeBudget(None)
    _check_tree(objects)
    for location, relative in objects:
        try:
            path = safe_join(target, relative)
            data = s3.get_bytes(location)
        except S3AccessError as exc:
            raise ChannelError(str(exc)) from exc
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if gzipped and path.suffix == ".gz":
                _write_chunks(path.with_suffix(""), _gunzip(data, location), budget, location)
            else:
                _write_chunks(path, iter((data,)), budget, location)
        except OSError as exc:  # never the host path: the answer names the S3 object
            raise ChannelError(f"cannot write {location.uri} into the channel: {exc.strerror or exc}") from exc
    logger.debug("materialised %d objects into %s", len(objects), target)


def gunzip_limited(data: bytes, limit: int, location: S3Location) -> bytes:
    """Decompress a gzip object in memory, refusing (``ChannelError``) to produce more than ``limit`` bytes."""
    out = io.BytesIO()
    for chunk in _gunzip(data, location):
        if out.tell() + len(chunk) > limit:
            raise ChannelError(
                f"{location.uri} expands to more than {limit // (1024 * 1024)} MiB once decompressed "
                "(SAGESTACK_MAX_TRANSFORM_OBJECT_MB)"
            )
        out.write(chunk)
    return out.getvalue()


def _gunzip(data: bytes, location: S3Location) -> Iterator[bytes]:
    """The decompressed bytes of a (possibly multi-member) gzip object, one bounded chunk at a time."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        while True:
            try:
                chunk = stream.read(_CHUNK_BYTES)
            except (OSError, EOFError, zlib.error) as exc:
                raise ChannelError(f"{location.uri} is not valid gzip: {exc}") from exc
            if not chunk:
                return
            yield chunk


def _write_chunks(path: Path, chunks: Iterator[bytes], budget: VolumeBudget, location: S3Location) -> None:
    try:
        with path.open("wb") as out:
            for chunk in chunks:
                budget.take(len(chunk), location)
                out.write(chunk)
    except ChannelError:
        path.unlink(missing_ok=True)
        raise


def _check_tree(objects: Sequence[tuple[S3Location, str]]) -> None:
    """Refuse keys where one object's path is a folder of another (``a`` and ``a/b.csv``), naming both keys."""
    files = {PurePosixPath(relative).as_posix(): location for location, relative in objects}
    for location, relative in objects:
        parts = PurePosixPath(relative).parts
        for depth in range(1, len(parts)):
            clash = files.get("/".join(parts[:depth]))
            if clash is not None:
                raise ChannelError(
                    f"S3 objects {clash.uri} and {location.uri} cannot both be downloaded: "
                    f"{'/'.join(parts[:depth])!r} would have to be a file and a folder"
                )
