"""The unprivileged user a container of the process runtime runs as (docs/security.md#what-a-job-can-touch).

Under a namespaced isolation mode, the mount script ends by exec'ing the container through
:meth:`ContainerUser.command`:

* when the stack runs as root, ``setpriv`` switches to a uid and gid of the job's own (derived from the job's
  directory, far above the machine's users), with no supplementary groups, no capabilities, an empty bounding set
  and ``no_new_privs`` (a set-user-ID binary cannot win root back). The job's directories are handed to that user
  first (:func:`hand_over`); the stack, as root, still reads everything the job writes;
* when the stack runs as an ordinary user (its namespace maps that user to root so it can mount), a nested user
  namespace maps the container back to the stack's own uid and gid: the job is that unprivileged user inside and out.

The user must reach the interpreter and the project. When one of their directories lies under a directory that others
cannot search (``/root``, a home at 0750), :func:`hidden_ancestors` names it; the isolation then covers that directory,
inside the namespace only, with a tmpfs that holds just the needed directories, bound back at their own paths.

Jobs of one stack get different uids, so one job cannot signal, trace or reach into another through ``/proc``.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import stat
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["ContainerUser", "account_files", "hand_over", "hidden_ancestors"]

_UID_BASE = 0x4000_0000  # 1,073,741,824: above the machine's users and the usual subordinate-id ranges
_UID_SPAN = 0x1000_0000
ACCOUNT_NAME = "sagemaker-job"
_READABLE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
HOME = "/tmp"  # the container's private /tmp: writable (Java takes user.home from the passwd entry, not HOME)


@dataclass(frozen=True)
class ContainerUser:
    """A uid and gid, and how to run a command as them from inside the container's mount namespace."""

    uid: int
    gid: int

    @classmethod
    def for_job(cls, key: Path) -> ContainerUser:
        """The user of the job whose directory is ``key`` (every host and instance of one job shares it)."""
        if os.geteuid() != 0:
            return cls(os.getuid(), os.getgid())
        uid = _UID_BASE + zlib.crc32(str(key.resolve()).encode()) % _UID_SPAN
        return cls(uid, uid)

    def command(self) -> list[str]:
        """The prefix that execs the rest of the argv as this user (same pid: the stack still signals it)."""
        if os.geteuid() == 0:
            return [
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.gid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--pdeathsig=keep",  # the kernel clears the parent-death signal when credentials change
                "--",
            ]
        return ["unshare", "--user", f"--map-user={self.uid}", f"--map-group={self.gid}", "--"]


def hand_over(paths: Iterable[Path], user: ContainerUser) -> None:
    """Make ``user`` the owner of the job's directories and of the files the stack staged there.

    A file with more than one link (an input hard-linked from the stack's download, ``link_inputs``) keeps its owner
    and is made readable: the job reads it and cannot change the original through it. Nothing is done when the
    stack is not root.
    """
    if os.geteuid() != 0:
        return
    for top in paths:
        os.lchown(top, user.uid, user.gid)
        for folder, dirs, files in os.walk(top):
            for name in (*dirs, *files):
                path = os.path.join(folder, name)
                info = os.lstat(path)
                if stat.S_ISDIR(info.st_mode) or info.st_nlink == 1:
                    os.lchown(path, user.uid, user.gid)
                elif stat.S_ISREG(info.st_mode) and not info.st_mode & stat.S_IROTH:
                    os.chmod(path, stat.S_IMODE(info.st_mode) | _READABLE)  # under the private data dir


def hidden_ancestors(needed: Iterable[Path]) -> dict[str, list[str]]:
    """The highest ancestor of each ``needed`` directory that others cannot search -> the needed directories under it.

    A needed directory under another needed one of the same ancestor is left out (binding the outer one brings it).
    A needed directory that others cannot search itself (a checkout made by ``mktemp -d``, mode 0700) under
    searchable ones is revealed by its subdirectories (``containers/``, ``infra/``, ``.venv``, ...).
    """
    groups: dict[str, list[str]] = {}

    def keep(ancestor: Path, path: Path) -> None:
        kept = groups.setdefault(str(ancestor), [])
        if not any(path.is_relative_to(outer) for outer in kept):
            kept.append(str(path))

    for path in sorted({entry.resolve() for entry in needed if entry.exists()}):
        hiding = next((a for a in reversed(path.parents) if not os.stat(a).st_mode & stat.S_IXOTH), None)
        if hiding is not None:
            keep(hiding, path)
        elif path.is_dir() and not os.stat(path).st_mode & stat.S_IXOTH:
            for child in sorted(path.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    keep(path, child)
    return groups


def account_files(user: ContainerUser, directory: Path) -> dict[str, Path]:
    """``/etc/passwd`` and ``/etc/group`` with an entry for ``user`` (written into ``directory``), to bind over the
    machine's: programs that look their user up (Java's ``user.home``, ``whoami``) find one."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, known, entry in (
        ("passwd", _known(pwd.getpwuid, user.uid), f"{ACCOUNT_NAME}:x:{user.uid}:{user.gid}::{HOME}:/bin/sh"),
        ("group", _known(grp.getgrgid, user.gid), f"{ACCOUNT_NAME}:x:{user.gid}:"),
    ):
        source, target = Path("/etc") / name, directory / name
        try:
            text = source.read_text(encoding="utf-8")
        except OSError:
            text = ""
        if text and not text.endswith("\n"):
            text += "\n"
        target.write_text(text if known else f"{text}{entry}\n", encoding="utf-8")
        target.chmod(0o644)
        files[str(source)] = target
    return files


def _known(lookup: Callable[[int], object], number: int) -> bool:
    try:
        lookup(number)
    except KeyError:
        return False
    return True
