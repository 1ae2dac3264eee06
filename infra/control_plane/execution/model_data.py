"""Model archives for the control plane: fetch-and-extract for hosting/transform, pack for training outputs.

Both directions use the runtime's one tar implementation (``infra.runtime.model_archive``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.runtime.errors import UnsafeArchiveError
from infra.runtime.model_archive import pack_model, safe_extract

logger = logging.getLogger(__name__)

__all__ = ["ModelDataError", "ModelDownloadError", "fetch_model", "pack_dir"]


class ModelDataError(Exception):
    """The model archive could not be downloaded or is unsafe; the message names the archive."""


class ModelDownloadError(ModelDataError):
    """The model archive could not be downloaded (no such object or bucket)."""


def fetch_model(s3: S3Access, url: str | None, work_dir: Path) -> Path | None:
    """Download ``url`` (a ``model.tar.gz``) and extract it safely into ``work_dir/model``; ``None`` without url."""
    if not url:
        return None
    model_dir = work_dir / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    archive = work_dir / "model.tar.gz"
    try:
        archive.write_bytes(s3.get_bytes(S3Location.parse(url)))
    except S3AccessError as exc:
        raise ModelDownloadError(f"Could not download model data from {url}: {exc}") from exc
    try:
        safe_extract(archive, model_dir)
    except UnsafeArchiveError as exc:
        raise ModelDataError(f"Model archive {archive.name} is not a safe gzip tar: {exc}") from exc
    return model_dir


def pack_dir(source: Path, archive: Path) -> Path:
    """Pack the contents of ``source`` (created empty when missing) into a gzip tar at ``archive``."""
    source.mkdir(parents=True, exist_ok=True)
    return pack_model(source, archive)
