"""Materialise a training job's input channels from S3 into each host's local channel directory."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from infra.control_plane.core.api_shapes import Channel, S3DataSource
from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location, relative_key, safe_join
from infra.runtime.api import ChannelSpec

logger = logging.getLogger(__name__)


class ChannelError(Exception):
    """A channel cannot be materialised (missing data, bad manifest, unsafe key, unsupported source)."""


def host_names(count: int) -> list[str]:
    return sorted(f"algo-{i}" for i in range(1, count + 1))


def materialise_channels(
    s3: S3Access, channels: Sequence[Channel], hosts: Sequence[str], root: Path
) -> dict[str, list[ChannelSpec]]:
    """Download every channel for every host under ``root/<host>/<channel>``; returns host -> channel specs."""
    by_host: dict[str, list[ChannelSpec]] = {host: [] for host in hosts}
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
            download_objects(s3, mine, target, gzipped)
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


def download_objects(s3: S3Access, objects: Sequence[tuple[S3Location, str]], target: Path, gzipped: bool) -> None:
    for location, relative in objects:
        try:
            path = safe_join(target, relative)
            data = s3.get_bytes(location)
        except S3AccessError as exc:
            raise ChannelError(str(exc)) from exc
        if gzipped and path.suffix == ".gz":
            data, path = gzip.decompress(data), path.with_suffix("")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    logger.debug("materialised %d objects into %s", len(objects), target)
