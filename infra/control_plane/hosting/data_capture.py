"""Endpoint data capture (docs/reference/formats.md#data-capture-records), done in the invoke front, not the container.

``record`` is on the hot path: a sampling draw and an append under a lock. A background thread turns the buffer
into JSON Lines files every ``flush_seconds`` under
``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<MM>-<SS>-<mmm>-<uuid>.jsonl``; ``flush`` also
runs on endpoint delete and ``close`` on stack stop.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.hosting.hosting_requests import DataCaptureConfig

logger = logging.getLogger(__name__)

__all__ = ["CaptureConfig", "CaptureWriter", "Captured"]


@dataclass(frozen=True)
class CaptureConfig:
    destination: str
    sampling_percentage: float
    capture_input: bool
    capture_output: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]

    @classmethod
    def from_request(cls, config: DataCaptureConfig | None) -> CaptureConfig | None:
        """The endpoint config's ``DataCaptureConfig``, or ``None`` when absent or disabled."""
        if config is None or not config.enable_capture:
            return None
        modes = {option.capture_mode for option in config.capture_options}
        header = config.capture_content_type_header
        return cls(
            destination=config.destination_s3_uri,
            sampling_percentage=float(config.initial_sampling_percentage),
            capture_input=bool(modes & {"Input", "InputAndOutput"}),
            capture_output=bool(modes & {"Output", "InputAndOutput"}),
            csv_types=frozenset(_media(t) for t in header.csv_content_types),
            json_types=frozenset(_media(t) for t in header.json_content_types),
        )

    def sampled(self) -> bool:
        return self.sampling_percentage >= 100 or random.random() * 100 < self.sampling_percentage

    def encode(self, content_type: str, data: bytes) -> tuple[str, str]:
        """``(encoding, data)``: CSV/JSON content types as text, anything else base64."""
        media = _media(content_type)
        if media in self.csv_types or media in self.json_types:
            try:
                return ("CSV" if media in self.csv_types else "JSON"), data.decode("utf-8")
            except UnicodeDecodeError:
                logger.debug("capture: %s body is not UTF-8; stored as BASE64", media)
        return "BASE64", base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Captured:
    """One sampled invocation, turned into a record only when flushed."""

    endpoint: str
    variant: str
    config: CaptureConfig
    request_type: str
    request: bytes
    response_type: str
    response: bytes
    inference_id: str | None
    custom_attributes: str | None
    time: datetime

    def to_record(self) -> dict[str, Any]:
        capture: dict[str, Any] = {}
        if self.config.capture_input:
            capture["endpointInput"] = self._part(self.request_type, self.request, "INPUT")
        if self.config.capture_output:
            capture["endpointOutput"] = self._part(self.response_type, self.response, "OUTPUT")
        metadata: dict[str, Any] = {
            "eventId": str(uuid.uuid4()),
            "inferenceTime": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if self.inference_id:
            metadata["inferenceId"] = self.inference_id
        if self.custom_attributes:
            metadata["customAttributes"] = self.custom_attributes
        return {"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}

    def _part(self, content_type: str, data: bytes, mode: str) -> dict[str, str]:
        encoding, text = self.config.encode(content_type, data)
        return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


class CaptureWriter:
    """Buffers captures per (endpoint, variant) and writes them to S3 in the background."""

    def __init__(self, s3: S3Access, flush_seconds: float) -> None:
        self._s3 = s3
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()  # the buffer (held briefly: ``record`` is on the hot path)
        self._flushing = threading.Lock()  # one flush at a time, from taking the buffer to the last write
        self._buffer: list[Captured] = []
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, captured: Captured) -> None:
        with self._lock:
            self._buffer.append(captured)
            if self._thread is None and not self._stopped.is_set():
                self._thread = threading.Thread(target=self._loop, name="sagestack-data-capture", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self._flush_seconds):
            self.flush()

    def flush(self, endpoint: str | None = None) -> int:
        """Write what is buffered (for one endpoint, or all); returns the number of records written.

        On return every record captured before the call is in S3, including those a concurrent flush (the
        background thread's) had already taken from the buffer: flushes are serialised from taking to writing, so a
        monitoring execution that flushes and then lists the window never misses records still being written.
        """
        with self._flushing:
            with self._lock:
                taken = [c for c in self._buffer if endpoint is None or c.endpoint == endpoint]
                self._buffer = [c for c in self._buffer if endpoint is not None and c.endpoint != endpoint]
            groups: dict[tuple[str, str, str, str], list[Captured]] = defaultdict(list)
            for item in taken:
                hour = item.time.strftime("%Y/%m/%d/%H")
                groups[(item.config.destination, item.endpoint, item.variant, hour)].append(item)
            for (destination, endpoint_name, variant, hour), items in groups.items():
                self._write(destination, f"{endpoint_name}/{variant}/{hour}", items)
            return len(taken)

    def _write(self, destination: str, partition: str, items: Sequence[Captured]) -> None:
        now = utcnow()
        name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
        body = "".join(json.dumps(item.to_record(), separators=(",", ":")) + "\n" for item in items)
        try:
            location = S3Location.parse(destination).child(partition, name)
            self._s3.put_bytes(location, body.encode("utf-8"))
        except S3AccessError:
            logger.exception("data capture: could not write %d records under %s", len(items), destination)

    def close(self) -> None:
        self._stopped.set()
        self.flush()


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()
