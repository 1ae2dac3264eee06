"""Make a host directory *be* ``/opt/ml`` for a container process, and give it a read-only view of the rest.

``BUBBLEWRAP`` and ``UNSHARE`` start the process in its own mount namespace where ``/opt`` is a tmpfs holding the
original children of ``/opt`` (re-bound, so ``/opt/wheels`` and friends stay usable) plus ``ml`` bound to the host
directory; a generated hosts file is bound over ``/etc/hosts`` so ``algo-1..N`` resolve to 127.0.0.1. The host's
private temporary directory (:func:`private_tmp`) is bound at ``/tmp``, and every other mount is made read-only
inside the namespace: a job can write only its ``/opt/ml``, its binds, ``/tmp`` and ``/dev`` (docs/security.md). The
process starts in ``/opt/ml`` (the host directory it was started in may lie under the host's ``/tmp``, now hidden).
Inside the namespace the container then runs as an unprivileged user where the machine allows it
(:mod:`infra.runtime.process.container_user`; probed once). ``ENVIRONMENT`` uses no namespace: ``SAGEMAKER_BASE_DIR``
points at the host directory, which our toolkit honours, and nothing stops the process from writing elsewhere.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infra.runtime.api import IsolationMode
from infra.runtime.errors import InvalidSpecError, IsolationError
from infra.runtime.process.container_user import ContainerUser, hand_over, hidden_ancestors
from infra.runtime.process.layout import CONTAINER_ROOT, HostLayout, host_path

logger = logging.getLogger(__name__)

__all__ = [
    "Isolation",
    "detect_isolation_mode",
    "private_tmp",
    "resolve_isolation",
    "unprivileged_containers",
    "write_hosts_file",
]

_PROBE_TIMEOUT_SECONDS = 20.0
_PYTHON_NAMES = frozenset({"python", "python3", "python3.11"})
# The probe passes when /opt/ml is the host directory, /tmp is writable and the rest of the file system is not; run as
# the container user (argv: user PROJECT_DIR) also when that user is not root and can read the project.
_PROBE_CHECK = """
import os, sys
ok = open('/opt/ml/probe').read() == 'ok'
if sys.argv[1:2] == ['user']:
    ok = ok and os.getuid() != 0 and os.getgid() != 0 and bool(os.listdir(sys.argv[2]))
    ok = ok and sys.base_prefix == sys.argv[3]
open('/tmp/probe', 'w').close()
try:
    open('/sagestack-read-only-probe', 'w').close()
except OSError:
    sys.exit(0 if ok else 3)
os.remove('/sagestack-read-only-probe')
sys.exit(4)
"""

# argv: sh -c SCRIPT <name> JOB_DIR HOSTS_FILE TMP_DIR N_BINDS [SRC DST]*N N_KEEP [HOST_DIR]*N
#       N_HIDDEN [HIDDEN N_NEEDED [NEEDED]*N]*N COMMAND...
# HOST_DIRs are directories under the host's /tmp that the container needs (a venv or checkout there): the private /tmp
# would hide them, so they are bound back at the same path, read-only. A HIDDEN directory (one the container's user
# cannot search, e.g. /root holding the interpreter) is covered by a tmpfs holding only its NEEDED directories.
_MOUNT_SCRIPT = r"""
set -eu
job=$1 hosts=$2 tmp=$3 nbinds=$4
shift 4
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
[ -z "$hosts" ] || mount --bind "$hosts" /etc/hosts
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
exec "$@"
"""


@dataclass(frozen=True)
class Isolation:
    """One isolation mode and how it turns a host layout plus argv into the command to start."""

    mode: IsolationMode
    unprivileged: bool = False  # containers run as a user of their own (namespaced modes only)

    @property
    def namespaced(self) -> bool:
        return self.mode is not IsolationMode.ENVIRONMENT

    def base(self, root: Path) -> PurePosixPath:
        """The path the container sees as ``/opt/ml``."""
        return CONTAINER_ROOT if self.namespaced else PurePosixPath(root)

    def environment(self, root: Path) -> dict[str, str]:
        tmp = "/tmp" if self.namespaced else str(private_tmp(root))
        env = {"SAGEMAKER_BASE_DIR": str(self.base(root)), "TMPDIR": tmp}
        if not self.namespaced:
            # No /etc/hosts of our own: tell the toolkit that algo-N hosts all live on this machine.
            env["SAGESTACK_LOCAL_HOSTS"] = "1"
        return env

    def wrap(
        self, argv: Sequence[str], layout: HostLayout, hosts_file: Path | None, job_dir: Path | None = None
    ) -> list[str]:
        """The full command that runs ``argv`` with ``layout.root`` at ``/opt/ml``.

        ``job_dir`` is the directory common to every host or instance of the job (default ``layout.root``); its
        path picks the job's unprivileged user, to whom ``layout.root`` and the binds are handed.
        """
        command = _python_interpreter(argv)
        if self.mode is IsolationMode.ENVIRONMENT:
            _link_binds(layout)
            return [_rebase(arg, layout.root) for arg in command]
        hidden: dict[str, list[str]] = {}
        if self.unprivileged:
            user = ContainerUser.for_job(job_dir or layout.root)
            hand_over([layout.root, *layout.binds.values()], user)
            command = [*user.command(), *command]
            hidden = hidden_ancestors(interpreter_dirs())
        if self.mode is IsolationMode.BUBBLEWRAP:
            return _bwrap_command(command, layout, hosts_file, hidden)
        return _unshare_command(command, layout, hosts_file, hidden)


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


def resolve_isolation(forced: IsolationMode | None) -> Isolation:
    """The forced mode once checked to work here, or the best mode that works (probed once per process)."""
    if forced is None:
        mode = detect_isolation_mode()
    elif forced is not IsolationMode.ENVIRONMENT and not _probe(Isolation(forced)):
        raise IsolationError(
            f"isolation mode {forced.value!r} does not work on this machine (needs "
            f"{'bwrap' if forced is IsolationMode.BUBBLEWRAP else 'unshare and mount namespaces'}); "
            f"use IsolationMode.ENVIRONMENT or leave the mode unset to detect one"
        )
    else:
        mode = forced
    return Isolation(mode, unprivileged=unprivileged_containers(mode))


@functools.cache
def unprivileged_containers(mode: IsolationMode) -> bool:
    """Whether containers under ``mode`` can run as a user of their own here (probed once; a WARNING if not)."""
    if mode is IsolationMode.ENVIRONMENT:
        return False
    if _probe(Isolation(mode, unprivileged=True)):
        logger.info("containers run as an unprivileged user of their own")
        return True
    logger.warning(
        "containers cannot switch to an unprivileged user here (setpriv, a nested user namespace, or read access "
        "to the interpreter and the project is missing): they run as the stack's user inside their namespace"
    )
    return False


@functools.cache
def detect_isolation_mode() -> IsolationMode:
    """unshare, else bubblewrap, else the environment fallback (logged once as a WARNING).

    unshare comes first because it *execs* the container: the process we signal is the container itself, so a
    SIGTERM on Stop reaches it alone and it can save its model. bubblewrap stays a parent process that dies of the
    SIGTERM (taking the container with it, ``--die-with-parent``), so a graceful stop is not possible under it.
    """
    for mode in (IsolationMode.UNSHARE, IsolationMode.BUBBLEWRAP):
        if _probe(Isolation(mode)):
            logger.info("container isolation: %s", mode.value)
            return mode
    logger.warning(
        "neither bwrap nor unshare can give containers their own /opt/ml here; falling back to "
        "SAGEMAKER_BASE_DIR (scripts that hard-code /opt/ml paths and algo-N host names will not work)"
    )
    return IsolationMode.ENVIRONMENT


def write_hosts_file(path: Path, hosts: Sequence[str], original: Path = Path("/etc/hosts")) -> Path:
    """Write a hosts file: the machine's entries plus every ``algo-N`` at 127.0.0.1."""
    try:
        existing = original.read_text(encoding="utf-8")
    except OSError:
        existing = "127.0.0.1\tlocalhost\n"
    if existing and not existing.endswith("\n"):
        existing += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{existing}127.0.0.1\t{' '.join(hosts)}\n", encoding="utf-8")
    return path


def _probe(isolation: Isolation) -> bool:
    mode = isolation.mode
    tool = "bwrap" if mode is IsolationMode.BUBBLEWRAP else "unshare"
    if shutil.which(tool) is None:
        return False
    with tempfile.TemporaryDirectory(prefix="sagestack-probe-") as scratch:
        root = Path(scratch) / "ml"
        root.mkdir()
        (root / "probe").write_text("ok", encoding="utf-8")
        hosts_file = write_hosts_file(Path(scratch) / "hosts", ["algo-1"])
        check = [sys.executable, "-c", _PROBE_CHECK]
        if isolation.unprivileged:
            check += ["user", str(Path(__file__).resolve().parents[3]), sys.base_prefix]
        argv = isolation.wrap(check, HostLayout("algo-1", root), hosts_file)
        try:
            done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT_SECONDS, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            logger.debug("isolation probe %s failed: %s", mode.value, exc)
            return False
    if done.returncode != 0:
        logger.debug("isolation probe %s exited %s: %s", mode.value, done.returncode, done.stderr[-500:])
    return done.returncode == 0


def _unshare_command(
    argv: Sequence[str], layout: HostLayout, hosts_file: Path | None, hidden: Mapping[str, Sequence[str]]
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
        str(hosts_file.resolve()) if hosts_file is not None else "",
        str(private_tmp(layout.root).resolve()),
        str(len(layout.binds)),
        *binds,
        str(len(keep)),
        *keep,
        str(len(hidden)),
        *[arg for folder, needed in hidden.items() for arg in (folder, str(len(needed)), *needed)],
        *argv,
    ]


def _bwrap_command(
    argv: Sequence[str], layout: HostLayout, hosts_file: Path | None, hidden: Mapping[str, Sequence[str]]
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
    if hosts_file is not None:
        command += ["--ro-bind", str(hosts_file.resolve()), "/etc/hosts"]
    for folder, needed in hidden.items():
        command += ["--tmpfs", folder]
        for path in needed:
            command += ["--ro-bind", path, path]
    return [*command, "--chdir", str(CONTAINER_ROOT), "--die-with-parent", "--", *argv]


def _link_binds(layout: HostLayout) -> None:
    """Without a namespace, a bind becomes a symlink at the container path inside the host directory."""
    for container_path, source in layout.binds.items():
        target = host_path(layout.root, container_path)
        if target.is_symlink():
            target.unlink()
        elif target.is_dir():
            if any(target.iterdir()):
                raise InvalidSpecError(f"cannot link {source} at {container_path}: {target} is not empty")
            target.rmdir()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.resolve(), target_is_directory=True)


def _rebase(arg: str, root: Path) -> str:
    """``/opt/ml/...`` arguments point into the host directory when there is no namespace."""
    prefix = str(CONTAINER_ROOT)
    if arg == prefix or arg.startswith(prefix + "/"):
        return str(root.resolve()) + arg[len(prefix) :]
    return arg


def _python_interpreter(argv: Sequence[str]) -> list[str]:
    """A bare ``python3`` (as in SageMaker processing entrypoints) means the interpreter our images run on."""
    command = list(argv)
    if command and command[0] in _PYTHON_NAMES:
        command[0] = sys.executable
    return command
