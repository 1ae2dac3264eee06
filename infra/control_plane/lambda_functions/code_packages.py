"""Deployment packages and layers: zip archives checked and unpacked safely into a function's folder."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

from infra.control_plane.core.errors import ServiceError

MAX_ZIPPED_BYTES = 50 * 1024 * 1024  # direct upload limit (docs/pipelines.md#lambda-steps)
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024


class InvalidParameterValueException(ServiceError):
    code = "InvalidParameterValueException"


def unpack_zip(data: bytes, dest: Path) -> Path:
    """Extract a zip package into ``dest``; refuse absolute names, ``..``, links and archives past Lambda's limits."""
    if len(data) > MAX_ZIPPED_BYTES:
        raise InvalidParameterValueException(f"Unzipped size must be smaller than {MAX_ZIPPED_BYTES} bytes (zipped).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InvalidParameterValueException("Could not unzip uploaded file. Please check your file.") from exc
    with archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
            raise InvalidParameterValueException(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes.")
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for member in members:
            _check_member(member, root)
        archive.extractall(root)
    return dest


def _check_member(member: zipfile.ZipInfo, root: Path) -> None:
    name = member.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    drive = bool(pure.parts) and ":" in pure.parts[0]
    if pure.is_absolute() or ".." in pure.parts or drive:
        raise InvalidParameterValueException(f"Package entry {name!r} would be written outside the function folder.")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise InvalidParameterValueException(f"Package entry {name!r} is a symbolic link, which is not accepted.")
    if not (root / pure).resolve().is_relative_to(root):
        raise InvalidParameterValueException(f"Package entry {name!r} would be written outside the function folder.")
