"""The wheelhouse: every wheel an image needs, downloaded on the host, pinned by ``requirements.lock``.

Each image has a requirements file in ``containers/docker/requirements/<name>.txt`` naming only what its container
imports (``base.txt`` is the toolkit's share); ``requirements.lock`` is passed as a constraint, so versions match the
project venv exactly. The wheel list of an image is resolved once per (requirements, lock) content and cached, so a
warm build never runs pip.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.images.catalog import ImagePaths

logger = logging.getLogger(__name__)

__all__ = ["WheelhouseError", "requirements_digest", "resolve_wheels"]


class WheelhouseError(RuntimeError):
    """pip could not download or resolve an image's wheels."""


@dataclass(frozen=True)
class _Pip:
    python: str = sys.executable

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.python, "-m", "pip", *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise WheelhouseError(f"`pip {' '.join(args)}` failed:\n{done.stderr.strip()[-3000:]}")
        return done


def requirements_digest(paths: ImagePaths, name: str) -> str:
    """Hash of the image's requirements file, the base file it includes and the lock file."""
    digest = hashlib.sha256()
    for path in (paths.requirements / "base.txt", paths.requirements / f"{name}.txt", paths.lock_file):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def resolve_wheels(paths: ImagePaths, name: str) -> tuple[Path, ...]:
    """The wheel files image ``name`` installs, downloading whatever the wheelhouse lacks."""
    requirements = paths.requirements / f"{name}.txt"
    if not requirements.is_file():
        raise WheelhouseError(f"no requirements file {requirements}")
    cache = paths.state_dir / "resolved" / f"{name}-{requirements_digest(paths, name)}.json"
    if cache.is_file():
        wheels = tuple(paths.wheelhouse / file for file in json.loads(cache.read_text(encoding="utf-8")))
        if all(wheel.is_file() for wheel in wheels):
            return wheels
    paths.wheelhouse.mkdir(parents=True, exist_ok=True)
    pip = _Pip()
    logger.info("downloading wheels for %s into %s", name, paths.wheelhouse)
    common = ("-r", str(requirements), "-c", str(paths.lock_file))
    pip.run("download", "--quiet", "--only-binary=:all:", "-d", str(paths.wheelhouse), *common)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        pip.run(
            "install", "--quiet", "--dry-run", "--ignore-installed", "--no-index", "--find-links",
            str(paths.wheelhouse), "--report", str(report), *common,
        )  # fmt: skip
        files = _report_files(json.loads(report.read_text(encoding="utf-8")))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(files, indent=1) + "\n", encoding="utf-8")
    logger.info("%s needs %d wheels", name, len(files))
    return tuple(paths.wheelhouse / file for file in files)


def _report_files(report: dict[str, object]) -> list[str]:
    files: list[str] = []
    install = report.get("install")
    if not isinstance(install, list):
        raise WheelhouseError("pip's installation report has no 'install' list")
    for item in install:
        url = str(item.get("download_info", {}).get("url", ""))
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if path.suffix != ".whl":
            raise WheelhouseError(f"{url} is not a wheel: images install wheels only")
        files.append(path.name)
    return sorted(files)
