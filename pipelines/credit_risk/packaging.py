"""The ``spark_jobs`` package as a zip for ``PySparkProcessor.run(submit_py_files=[...])``.

The SDK hashes the step's ``submit_app`` and ``submit_py_files`` (their paths and bytes) into the S3 location it
uploads them to, and that location is part of the Processing step's cache key. So the zip is built byte for byte
reproducibly — sorted entries, fixed timestamps and permissions, ``.py`` files only — at a fixed path: an unchanged
package gives the same hash, hence a cache hit on the next run; an edited module gives a new one.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SPARK_JOBS = ROOT / "spark_jobs"
BUILD_DIR = ROOT / "build" / "py-files"
_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--


def zip_bytes(package: Path) -> bytes:
    """Every ``.py`` file under ``package`` (no ``__pycache__``), named ``<package>/<relative path>``."""
    sources = sorted(
        (path.relative_to(package.parent).as_posix(), path)
        for path in package.rglob("*.py")
        if "__pycache__" not in path.parts
    )
    if not sources:
        raise FileNotFoundError(f"no Python files under {package}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sources:
            entry = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.create_system = 3  # Unix, whatever the building platform
            entry.external_attr = _FILE_MODE
            archive.writestr(entry, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_py_files(package: Path = SPARK_JOBS, target_dir: Path = BUILD_DIR) -> Path:
    """``<target_dir>/<package>.zip``, rewritten only when its bytes change (atomically: builds may run at once)."""
    target = target_dir / f"{package.name}.zip"
    content = zip_bytes(package)
    if target.is_file() and target.read_bytes() == content:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.write_bytes(content)
    os.replace(staging, target)
    logger.info("built %s (%d bytes)", target, len(content))
    return target
