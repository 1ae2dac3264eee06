"""The commands that start a container in its own mount namespace: util-linux ``unshare`` with a mount script, or
bubblewrap (docs/security.md#what-a-job-can-touch). :mod:`infra.runtime.process.isolation` decides what to bind."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra.runtime.process.layout import CONTAINER_ROOT, HostLayout
from infra.runtime.process.loopback_bind import CONTAINER_PATH as LOOPBACK_LIBRARY

__all__ = ["bwrap_command", "host_dirs_under_tmp", "interpreter_dirs", "private_tmp", "unshare_command"]

# argv: sh -c SCRIPT <name> JOB_DIR TMP_DIR N_BINDS [SRC DST]*N N_ETC [FILE /etc/NAME]*N N_KEEP [HOST_DIR]*N
#       N_HIDDEN [HIDDEN N_NEEDED [NEEDED]*N]*N COMMAND...
# ETC files (hosts; passwd and group naming the container's user; the loopback preload library) are bound
# read-only over the machine's (created in the namespace when missing).
# HOST_DIRs are directories under the host's /tmp that the container needs (a venv or checkout there): the private /tmp
# would hide them, so they are bound back at the same path, read-only. A HIDDEN directory (one the container's user
# cannot search, e.g. /root holding the interpreter) is covered by a tmpfs holding only its NEEDED directories.
_MOUNT_SCRIPT = r"""
set -eu
job=$1 tmp=$2 nbinds=$3
shift 3
writable=" /opt/ml /tmp "
[ -d /opt ] || mkdir /opt
saved=$(mktemp -d)
mount --rbind /opt "$saved"
mount -t tmpfs -o mode=0755 sagestack-opt /opt
for child in "$saved"/* "$saved"/.[!.]* "$saved"/..?*; do
  [ -e "$child" ] || [ -L "$child" ] || continue
  name=${child##*/}
  [ "$name" = ml ] && continue
  if [ -L "$child" ]; then cp -P "$child" "/opt/$name"; continue; fi
  if [ -d "$child" ]; then mkdir "/opt/$name"; else : > "/opt/$name"; fi
  mount --rbind "$child" "/opt/$name"
done
mkdir /opt/ml
mount --bind "$job" /opt/ml
while [ "$nbinds" -gt 0 ]; do
  mkdir -p "$2"
  mount --bind "$1" "$2"
  writable="$writable$2 "
  shift 2
  nbinds=$((nbinds - 1))
done
netc=$1
shift
while [ "$netc" -gt 0 ]; do
  [ -e "$2" ] || { mkdir -p "${2%/*}"; : > "$2"; }
  mount --bind "$1" "$2"
  shift 2
  netc=$((netc - 1))
done
umount -l "$saved"
rmdir "$saved"
nkeep=$1
shift
mkdir /opt/.sagestack-host-tmp
mount --rbind /tmp /opt/.sagestack-host-tmp
mount --bind "$tmp" /tmp
while [ "$nkeep" -gt 0 ]; do
  rel=${1#/tmp/}
  mkdir -p "/tmp/$rel"
  mount --rbind "/opt/.sagestack-host-tmp/$rel" "/tmp/$rel"
  mount -o remount,bind,ro "/tmp/$rel" 2>/dev/null || mount -o remount,ro,bind "/tmp/$rel"
  shift
  nkeep=$((nkeep - 1))
done
umount -l /opt/.sagestack-host-tmp
rmdir /opt/.sagestack-host-tmp
ngroups=$1
shift
while [ "$ngroups" -gt 0 ]; do
  hidden=$1 count=$2
  shift 2
  saved=$(mktemp -d)
  mount --rbind "$hidden" "$saved"
  mount -t tmpfs -o mode=0755 sagestack-reveal "$hidden"
  while [ "$count" -gt 0 ]; do
    rel=${1#"$hidden"/}
    mkdir -p "$hidden/$rel"
    mount --rbind "$saved/$rel" "$hidden/$rel"
    shift
    count=$((count - 1))
  done
  umount -l "$saved"
  rmdir "$saved"
  ngroups=$((ngroups - 1))
done
for point in $(cut -d' ' -f5 /proc/self/mountinfo | sort -u); do
  case "$point" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/opt/ml/*|/tmp/*) continue ;; esac
  case "$writable" in *" $point "*) continue ;; esac
  mount -o remount,bind,ro "$point" 2>/dev/null || mount -o remount,ro,bind "$point"
done
cd /opt/ml
[ -z "${SAGESTACK_PRELOAD:-}" ] || export LD_PRELOAD="$SAGESTACK_PRELOAD${LD_PRELOAD:+ $LD_PRELOAD}"
exec "$@"
"""


def private_tmp(root: Path) -> Path:
    """The host directory a container started on ``root`` sees as ``/tmp`` (created empty)."""
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tmp.chmod(0o1777)
    return tmp


def host_dirs_under_tmp() -> list[str]:
    """Directories under the host's ``/tmp`` that a container needs: the interpreter's prefix (a venv), the
    project's checkout and ``PYTHONPATH`` entries. The private ``/tmp`` would hide them (a CI checkout may live
    under ``/tmp``), so the isolation binds them back at the same path, read-only; nested ones are covered by their
    outermost directory."""
    tmp = Path("/tmp").resolve()
    candidates = interpreter_dirs()
    found = sorted({str(c.resolve()) for c in candidates if c.exists() and c.resolve().is_relative_to(tmp)})
    found = [d for d in found if Path(d) != tmp]
    return [d for d in found if not any(d != o and Path(d).is_relative_to(o) for o in found)]


def interpreter_dirs() -> list[Path]:
    """The directories a container needs to run our images: the interpreter's prefixes, the project, PYTHONPATH."""
    candidates = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent]
    candidates += [Path(__file__).resolve().parents[3]]
    candidates += [Path(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return candidates


def unshare_command(
    argv: Sequence[str], layout: HostLayout, etc: Mapping[str, Path], hidden: Mapping[str, Sequence[str]]
) -> list[str]:
    if os.geteuid() == 0:
        prefix = ["unshare", "--mount", "--propagation", "private"]
    else:
        prefix = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
    binds: list[str] = []
    for container_path, source in layout.binds.items():
        binds += [str(source.resolve()), container_path]
    keep = host_dirs_under_tmp()
    return [
        *prefix,
        "sh",
        "-c",
        _MOUNT_SCRIPT,
        "sagestack-isolate",
        str(layout.root.resolve()),
        str(private_tmp(layout.root).resolve()),
        str(len(layout.binds)),
        *binds,
        str(len(etc)),
        *[arg for target, source in etc.items() for arg in (str(source.resolve()), target)],
        str(len(keep)),
        *keep,
        str(len(hidden)),
        *[arg for folder, needed in hidden.items() for arg in (folder, str(len(needed)), *needed)],
        *argv,
    ]


def bwrap_command(
    argv: Sequence[str], layout: HostLayout, etc: Mapping[str, Path], hidden: Mapping[str, Sequence[str]]
) -> list[str]:
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/opt"]
    opt = Path("/opt")
    children = sorted(opt.iterdir()) if opt.is_dir() else []
    for child in children:
        if child.name == "ml":
            continue
        if child.is_symlink():
            command += ["--symlink", os.readlink(child), str(child)]
        else:
            command += ["--ro-bind", str(child), str(child)]
    command += ["--bind", str(layout.root.resolve()), str(CONTAINER_ROOT)]
    for container_path, source in layout.binds.items():
        command += ["--bind", str(source.resolve()), container_path]
    command += ["--bind", str(private_tmp(layout.root).resolve()), "/tmp"]
    for kept in host_dirs_under_tmp():
        command += ["--ro-bind", kept, kept]
    for target, source in etc.items():
        command += ["--ro-bind", str(source.resolve()), target]
    if LOOPBACK_LIBRARY in etc:
        command += ["--setenv", "LD_PRELOAD", LOOPBACK_LIBRARY]
    for folder, needed in hidden.items():
        command += ["--tmpfs", folder]
        for path in needed:
            command += ["--ro-bind", path, path]
    return [*command, "--chdir", str(CONTAINER_ROOT), "--die-with-parent", "--", *argv]
