"""A code bundle's ``requirements.txt``, installed the way the SageMaker toolkits do, but never into the image's own
environment (docs/containers.md, "Framework containers").

The training and inference toolkits run ``pip install -r requirements.txt`` in the container's Python. Here the
container's Python is shared with the project, so the packages go to a per-job target directory that is put on the
user process's ``PYTHONPATH`` (``pip install --target``). Requirements the environment already satisfies are left
out first (pip's ``--target`` would otherwise download and copy them again), so a bundle that only names what the
image has needs no package registry at all. A requirement that cannot be installed fails with its name in the first
line of the message.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "REQUIREMENTS_FILE",
    "install_requirements",
    "pending_requirements",
    "pip_install_command",
    "unsatisfied_package",
    "with_python_path",
]

REQUIREMENTS_FILE = "requirements.txt"
PIP_OPTIONS = ("--disable-pip-version-check", "--no-input", "--retries", "1", "--timeout", "15")
_NOT_FOUND = (
    re.compile(r"No matching distribution found for (?P<name>\S+)"),
    re.compile(r"Could not find a version that satisfies the requirement (?P<name>\S+)"),
    re.compile(r"Invalid requirement: '?(?P<name>[^'\s]+)"),
    re.compile(r"(?:Directory|File) '?(?P<name>[^'\s]+)'? (?:is not installable|does not exist)"),
)


def _satisfied(line: str) -> bool:
    """Whether ``line`` is a plain requirement the running environment already satisfies."""
    from packaging.requirements import InvalidRequirement, Requirement  # pip's own parser, vendored by the venv

    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return False  # an option, a path or a URL: pip decides
    if requirement.url or requirement.extras:
        return False
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True  # not for this interpreter
    try:
        version = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return False
    return requirement.specifier.contains(version, prereleases=True)


def pending_requirements(requirements: Path) -> list[str]:
    """The lines of ``requirements`` the environment does not satisfy yet (comments and blank lines dropped)."""
    pending = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if _satisfied(line):
            logger.info("requirement %s is already installed", line)
            continue
        pending.append(line)
    return pending


def pip_install_command(target: Path, *, requirements: Path | None = None, package: str | None = None) -> list[str]:
    """``python -m pip install --target <target> (-r <file> | <package>)`` with short retries and time-outs."""
    what = ["-r", str(requirements)] if requirements is not None else [str(package)]
    return [sys.executable, "-m", "pip", "install", *PIP_OPTIONS, "--target", str(target), *what]


def unsatisfied_package(pip_output: str) -> str | None:
    """The requirement pip could not install, read from its output (``No matching distribution found for X``)."""
    for pattern in _NOT_FOUND:
        found = pattern.search(pip_output)
        if found is not None:
            return found.group("name").rstrip(".'\"")
    return None


def install_requirements(
    code_dir: Path,
    target: Path,
    run: Callable[[list[str], Path, Mapping[str, str]], None],
    env: Mapping[str, str],
) -> bool:
    """Install ``code_dir/requirements.txt`` into ``target`` with ``run(command, cwd, env)``; True when pip ran.

    ``run`` raises on a non-zero exit (script mode's :class:`InstallRequirementsError`, which names the package).
    """
    requirements = code_dir / REQUIREMENTS_FILE
    if not requirements.is_file():
        return False
    pending = pending_requirements(requirements)
    if not pending:
        logger.info("every requirement of %s is already installed", requirements)
        return False
    target.mkdir(parents=True, exist_ok=True)
    filtered = target.parent / f"{target.name}-{REQUIREMENTS_FILE}"
    filtered.write_text("\n".join(pending) + "\n", encoding="utf-8")
    logger.info("installing %s into %s", ", ".join(pending), target)
    run(pip_install_command(target, requirements=filtered), code_dir, env)
    return True


def with_python_path(env: Mapping[str, str], *first: Path) -> dict[str, str]:
    """``env`` with ``first`` put in front of ``PYTHONPATH``."""
    out = dict(env)
    existing = out.get("PYTHONPATH")
    parts = [str(path) for path in first] + ([existing] if existing else [])
    out["PYTHONPATH"] = ":".join(parts)
    return out
