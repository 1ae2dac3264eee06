"""Where jobs write: a local directory or ``s3://bucket/prefix``, from the driver or from executors, through boto3.

Spark has no S3A jars here (and none are needed on AWS either), so every object is written by our own code: a local
file is written in place; an S3 object is staged in a local temp file and uploaded with ``upload_file`` (multipart
for large parts), with the client pointed at ``AwsSettings.endpoint_url`` (``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from spark_jobs.config import AwsSettings
from spark_jobs.errors import FeatureJobError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """A local directory or an S3 prefix; picklable, so executors get the same one."""

    uri: str
    aws: AwsSettings = field(default_factory=AwsSettings)

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    def child(self, *parts: str) -> Destination:
        return Destination("/".join([self.uri.rstrip("/"), *parts]), self.aws)

    def local_path(self) -> Path:
        parsed = urlparse(self.uri)
        if parsed.scheme not in ("", "file"):
            raise FeatureJobError(
                f"unsupported output location {self.uri!r}",
                why="only local paths, file:// and s3:// are supported",
                fix="pass a directory or an s3://bucket/prefix URI",
            )
        return Path(parsed.path if parsed.scheme == "file" else self.uri)

    def bucket_key(self) -> tuple[str, str]:
        parsed = urlparse(self.uri)
        return parsed.netloc, parsed.path.lstrip("/")

    def put_file(self, source: Path) -> None:
        """Move a finished local file to this location (rename locally, upload to S3)."""
        if self.is_s3:
            bucket, key = self.bucket_key()
            _s3(self.aws).upload_file(str(source), bucket, key)
            return
        target = self.local_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), target)

    def put_bytes(self, data: bytes) -> None:
        if self.is_s3:
            bucket, key = self.bucket_key()
            _s3(self.aws).put_object(Bucket=bucket, Key=key, Body=data)
            return
        target = self.local_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def clear(self) -> None:
        """Remove what is under this prefix, so a rerun does not leave stale parts next to new ones."""
        if not self.is_s3:
            shutil.rmtree(self.local_path(), ignore_errors=True)
            return
        bucket, key = self.bucket_key()
        client = _s3(self.aws)
        prefix = key.rstrip("/") + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects})


def staging_file(suffix: str) -> Path:
    """A temp file on the executor's local disk for one part."""
    handle, name = tempfile.mkstemp(prefix="sagestack-part-", suffix=suffix)
    os.close(handle)
    return Path(name)


_CLIENTS: dict[AwsSettings, Any] = {}


def _s3(aws: AwsSettings) -> Any:
    """One S3 client per settings per worker process (clients are thread-safe and costly to build)."""
    if aws not in _CLIENTS:
        _CLIENTS[aws] = aws.client("s3")
    return _CLIENTS[aws]
