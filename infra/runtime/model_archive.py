"""``model.tar.gz`` helpers (docs/reference/container-contract.md#modeltargz): pack a model directory, and extract an
archive without trusting it.

Only pack a model from a :class:`~infra.runtime.api.TrainingResult` whose ``model_dir`` is non-empty: the process
runtime leaves it empty unless every host exited 0, so a model half-written by a killed container is never packed.
"""

from __future__ import annotations

import logging
import os
import tarfile
from pathlib import Path, PurePosixPath

from infra.runtime.errors import UnsafeArchiveError

logger = logging.getLogger(__name__)

__all__ = ["MODEL_ARCHIVE_COMPRESSLEVEL", "pack_model", "safe_extract"]

# gzip's own default level (and ``tar czf``'s), not tarfile's 9: on a model's float weights level 9 takes twice as
# long for the same size (docs/decisions.md#modeltargz-compression-level).
MODEL_ARCHIVE_COMPRESSLEVEL = 6


def pack_model(model_dir: Path, archive: Path | None = None) -> Path:
    """Pack the *contents* of ``model_dir`` into a gzip tar (members at the archive root, as SageMaker does)."""
    target = archive if archive is not None else model_dir.parent / "model.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz", compresslevel=MODEL_ARCHIVE_COMPRESSLEVEL) as tar:
        for entry in sorted(model_dir.iterdir()):
            tar.add(entry, arcname=entry.name, recursive=True)
    logger.debug("packed %s into %s", model_dir, target)
    return target


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest``; raise :class:`UnsafeArchiveError` before writing anything unsafe.

    Rejected: absolute names, ``..`` components, symlinks or hard links that point outside ``dest``, and members
    that are neither regular files, directories nor links (devices, FIFOs).
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"{archive}: {exc}") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise UnsafeArchiveError(f"{archive} is not a readable tar archive: {exc}") from exc
    return dest


def _check_member(member: tarfile.TarInfo) -> None:
    _check_inside(member.name, member.name, "is outside the destination")
    if member.isreg() or member.isdir():
        return
    if member.issym():
        parent = PurePosixPath(member.name).parent
        if PurePosixPath(member.linkname).is_absolute():
            raise UnsafeArchiveError(f"symlink {member.name!r} points to the absolute path {member.linkname!r}")
        _check_inside(str(parent / member.linkname), member.name, f"links outside ({member.linkname!r})")
        return
    if member.islnk():
        _check_inside(member.linkname, member.name, f"hard-links outside ({member.linkname!r})")
        return
    raise UnsafeArchiveError(f"member {member.name!r} is a device, FIFO or other special file")


def _check_inside(name: str, member_name: str, why: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")):
        raise UnsafeArchiveError(f"member {member_name!r} has an absolute path")
    normalized = os.path.normpath(name)
    if normalized == ".." or normalized.startswith("../") or ".." in PurePosixPath(member_name).parts:
        raise UnsafeArchiveError(f"member {member_name!r} {why}")
