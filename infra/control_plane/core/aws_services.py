"""In-process access to the embedded moto S3, CloudWatch Logs and SQS backends (through moto's registry, not HTTP)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from moto.backends import get_backend

logger = logging.getLogger(__name__)

# S3's https URL forms that SageMaker accepts for ModelDataUrl and S3 URIs: virtual-hosted
# (``<bucket>.s3[.-]<region>.amazonaws.com/<key>``, ``<bucket>.s3.amazonaws.com/<key>``) and path-style
# (``s3[.-]<region>.amazonaws.com/<bucket>/<key>``, ``s3.amazonaws.com/<bucket>/<key>``), dualstack too; ``.com.cn``.
_S3_HOST = r"s3(?:[.-]dualstack)?(?:[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?"
_VIRTUAL_HOSTED = re.compile(rf"^https://(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.{_S3_HOST}(?::443)?/(?P<key>.*)$")
_PATH_STYLE = re.compile(rf"^https://{_S3_HOST}(?::443)?/(?P<bucket>[^/]+)/(?P<key>.*)$")


class S3AccessError(Exception):
    """An S3 location is missing, malformed or unsafe."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """``s3://bucket/key`` or one of S3's https URL forms (virtual-hosted, path-style, with or without region)."""
        if uri.startswith("https://"):
            return cls._parse_https(uri)
        if not uri.startswith("s3://"):
            raise S3AccessError(f"not an S3 URI: {uri}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket:
            raise S3AccessError(f"S3 URI without a bucket: {uri}")
        return cls(bucket, key)

    @classmethod
    def _parse_https(cls, url: str) -> S3Location:
        text = url.split("?", 1)[0].split("#", 1)[0]
        match = _PATH_STYLE.match(text) or _VIRTUAL_HOSTED.match(text)
        if match is None:
            raise S3AccessError(f"not an S3 URL (https://<bucket>.s3.<region>.amazonaws.com/<key>, path-style): {url}")
        return cls(unquote(match.group("bucket")), unquote(match.group("key")))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, *parts: str) -> S3Location:
        base = self.key.rstrip("/")
        joined = "/".join(p.strip("/") for p in parts if p)
        return S3Location(self.bucket, f"{base}/{joined}" if base else joined)


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths, ``..`` and anything that resolves outside ``root``."""
    pure = PurePosixPath(relative)
    if not relative or pure.is_absolute() or ".." in pure.parts or relative.startswith("\\"):
        raise S3AccessError(f"unsafe key {relative!r}: would be written outside {root}")
    target = (root / pure).resolve()
    if not target.is_relative_to(root.resolve()):
        raise S3AccessError(f"unsafe key {relative!r}: would be written outside {root}")
    return target


class S3Access:
    """Reads and writes objects in moto's S3 backend for one account."""

    def __init__(self, account_id: str) -> None:
        self._account_id = account_id

    def _backend(self) -> Any:
        return get_backend("s3")[self._account_id]["aws"]

    def ensure_bucket(self, bucket: str, region: str) -> None:
        backend = self._backend()
        try:
            backend.get_bucket(bucket)
        except Exception:  # moto raises MissingBucket
            backend.create_bucket(bucket, region)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._backend().get_bucket(bucket)
        except Exception:  # moto raises MissingBucket
            return False
        return True

    def list_keys(self, location: S3Location) -> list[tuple[str, int]]:
        """Every key under the prefix, sorted, as ``(key, size)``; folder markers skipped."""
        backend = self._backend()
        try:
            bucket = backend.get_bucket(location.bucket)
        except Exception as exc:
            raise S3AccessError(f"bucket {location.bucket} does not exist") from exc
        keys, _, _, _ = backend.list_objects(bucket, location.key, None, None, None)
        found = [(k.name, k.size) for k in keys if hasattr(k, "name") and not k.name.endswith("/")]
        return sorted(found)

    def get_bytes(self, location: S3Location) -> bytes:
        backend = self._backend()
        try:
            key = backend.get_object(location.bucket, location.key)
        except Exception as exc:
            raise S3AccessError(f"cannot read {location.uri}: {exc}") from exc
        if key is None:
            raise S3AccessError(f"no such object: {location.uri}")
        return bytes(key.value)

    def object_exists(self, location: S3Location) -> bool:
        try:
            return self._backend().get_object(location.bucket, location.key) is not None
        except Exception:  # moto raises MissingBucket
            return False

    def delete_object(self, location: S3Location) -> None:
        try:
            self._backend().delete_object(location.bucket, location.key)
        except Exception as exc:
            raise S3AccessError(f"cannot delete {location.uri}: {exc}") from exc

    def put_bytes(self, location: S3Location, data: bytes) -> None:
        try:
            stored = self._backend().put_object(location.bucket, location.key, data)
        except Exception as exc:
            raise S3AccessError(f"cannot write {location.uri}: {exc}") from exc
        locked_etag(stored)  # computed now, under the key's lock, before a reader can race it

    def put_file(self, location: S3Location, path: Path) -> None:
        self.put_bytes(location, path.read_bytes())

    def download_prefix(self, location: S3Location, dest: Path) -> list[Path]:
        """Copy every object under the prefix into ``dest`` keeping the key's path below the prefix."""
        written = []
        for key, _ in self.list_keys(location):
            target = safe_join(dest, relative_key(location.key, key))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.get_bytes(S3Location(location.bucket, key)))
            written.append(target)
        return written

    def upload_dir(self, source: Path, location: S3Location) -> int:
        count = 0
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            self.put_file(location.child(path.relative_to(source).as_posix()), path)
            count += 1
        return count


def locked_etag(key: Any) -> str:
    """A moto key's ETag, computed (first use) under the key's lock.

    moto 5.2.5 reads the key's one shared buffer for its ETag without the lock that ``FakeKey.value`` holds, so an
    ETag computed beside a read moves that read's position: the read comes back shifted and the ETag is wrong. Every
    ETag the stack itself asks for goes through here
    (docs/local-stack.md#durable-state-objects-read-while-they-are-mirrored).
    """
    with key.lock:
        return str(key.etag)


def relative_key(prefix: str, key: str) -> str:
    """Where SageMaker puts ``key`` below a channel dir for an ``S3Prefix`` of ``prefix``."""
    if key == prefix:
        return PurePosixPath(key).name
    if prefix.endswith("/") or key.startswith(prefix + "/"):
        return key[len(prefix) :].lstrip("/")
    return key[prefix.rfind("/") + 1 :]


class LogsAccess:
    """Writes CloudWatch Logs events into moto's Logs backend for one account/region."""

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region
        self._lock = threading.Lock()
        self._known: set[tuple[str, str]] = set()

    def _backend(self) -> Any:
        return get_backend("logs")[self._account_id][self._region]

    def ensure_stream(self, group: str, stream: str) -> None:
        with self._lock:
            if (group, stream) in self._known:
                return
            backend = self._backend()
            if group not in backend.groups:
                backend.create_log_group(group, {})
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            self._known.add((group, stream))

    def put(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Append ``(epoch millis, message)`` events; failures are logged, never raised into a job."""
        if not events:
            return
        try:
            self.ensure_stream(group, stream)
            payload = [{"timestamp": ts, "message": msg or " "} for ts, msg in events]
            with self._lock:
                self._backend().put_log_events(group, stream, payload)
        except Exception:
            logger.exception("could not write %d log events to %s/%s", len(events), group, stream)

    def read(self, group: str, stream_prefix: str, limit: int) -> list[tuple[str, int, str]]:
        """The last ``limit`` ``(stream, epoch millis, message)`` events of the streams starting with the prefix."""
        with self._lock:
            found = self._backend().groups.get(group)
            if found is None:
                return []
            events = [
                (name, event.timestamp, event.message)
                for name, stream in sorted(found.streams.items())
                if name.startswith(stream_prefix)
                for event in list(stream.events)
            ]
        return sorted(events, key=lambda event: event[1])[-limit:]

    def stream_arn(self, group: str, stream: str) -> str:
        return f"arn:aws:logs:{self._region}:{self._account_id}:log-group:{group}:log-stream:{stream}"


class SqsAccessError(Exception):
    """The queue a message is for does not exist or refused it."""


class SqsAccess:
    """Sends messages to queues in moto's SQS backend (a callback step's token message)."""

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region

    def send(self, queue_url: str, body: str) -> str:
        """Send ``body`` to the queue ``queue_url`` names (its last two path parts are account and queue name)."""
        parts = [p for p in urlsplit(queue_url).path.split("/") if p]
        if len(parts) < 2:
            raise SqsAccessError(f"{queue_url!r} is not an SQS queue URL (…/<account id>/<queue name>)")
        account, name = parts[-2], parts[-1]
        region = _sqs_region(queue_url) or self._region
        try:
            message = get_backend("sqs")[account][region].send_message(name, body)
        except Exception as exc:  # moto raises QueueDoesNotExist and friends
            raise SqsAccessError(f"cannot send to {queue_url}: {exc}") from exc
        return str(message.id)


def _sqs_region(queue_url: str) -> str | None:
    match = re.match(r"^https?://sqs\.([a-z0-9-]+)\.", queue_url)
    return match.group(1) if match else None


# ----------------------------------------------------------------------------------------------- CloudWatch

_METRIC_BATCH = 20
_METRIC_DATUM_KEYS = ("MetricName", "Dimensions", "Value", "StatisticValues", "Unit")


def put_metric_records(
    account_id: str, region: str, records: Sequence[Mapping[str, Any]], default_namespace: str
) -> int:
    """Store ``records`` (PutMetricData data points, each with an optional ``Namespace`` and ``Timestamp``); returns
    how many were stored. Records without a ``MetricName`` are skipped; a failure is logged, never raised."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        datum = {key: record[key] for key in _METRIC_DATUM_KEYS if key in record}
        if "MetricName" not in datum:
            continue
        datum["Timestamp"] = naive_utc(record.get("Timestamp"))
        by_namespace.setdefault(str(record.get("Namespace") or default_namespace), []).append(datum)
    stored = 0
    try:
        backend = get_backend("cloudwatch")[account_id][region]
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), _METRIC_BATCH):
                backend.put_metric_data(namespace, data[start : start + _METRIC_BATCH])
                stored += len(data[start : start + _METRIC_BATCH])
    except Exception:  # metrics never fail what publishes them
        logger.exception("publishing CloudWatch metrics stopped after %d record(s)", stored)
    return stored


def naive_utc(value: Any) -> datetime:
    """moto's CloudWatch compares naive UTC datetimes."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else datetime.now(UTC)
        except ValueError:
            moment = datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
