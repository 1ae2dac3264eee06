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
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infra.runtime.api import IsolationMode
from infra.runtime.errors import InvalidSpecError, IsolationError
from infra.runtime.process.container_user import HOME as CONTAINER_HOME
from infra.runtime.process.container_user import ContainerUser, account_files, hand_over, hidden_ancestors
from infra.runtime.process.layout import CONTAINER_ROOT, HostLayout, host_path
from infra.runtime.process.loopback_bind import CONTAINER_PATH as LOOPBACK_LIBRARY
from infra.runtime.process.loopback_bind import loopback_bind_library
from infra.runtime.process.namespace_commands import (
    bwrap_command,
    interpreter_dirs,
    private_tmp,
    unshare_command,
)

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


@dataclass(frozen=True)
class Isolation:
    """One isolation mode and how it turns a host layout plus argv into the command to start."""

    mode: IsolationMode
    unprivileged: bool = False  # containers run as a user of their own (namespaced modes only)
    preload: Path | None = None  # the loopback-bind library preloaded in containers (namespaced modes only)

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
        if self.namespaced and self.preload is not None:
            env["SAGESTACK_PRELOAD"] = LOOPBACK_LIBRARY
        if self.unprivileged:
            env["HOME"] = CONTAINER_HOME  # the stack's home is not the job user's (and is read-only)
        return env

    def hand_over(self, layout: HostLayout, job_dir: Path | None = None, *files: Path) -> ContainerUser | None:
        """Give the job's user ``layout.root``, its binds and ``files`` (a FIFO the container reads); the user, or
        ``None`` when containers keep the stack's user. Call it again for files the stack adds after :meth:`wrap`
        that the container must write (a warm host's directory filled when a job claims it)."""
        if not self.unprivileged:
            return None
        user = ContainerUser.for_job(job_dir or layout.root)
        hand_over([layout.root, *layout.binds.values(), *files], user)
        return user

    def wrap(
        self, argv: Sequence[str], layout: HostLayout, hosts_file: Path | None, job_dir: Path | None = None
    ) -> list[str]:
        """The full command that runs ``argv`` with ``layout.root`` at ``/opt/ml``.

        ``job_dir`` is the directory common to every host or instance of the job (default ``layout.root``); its
        path picks the job's unprivileged user, to whom ``layout.root`` and the binds are handed (:meth:`hand_over`).
        """
        command = _python_interpreter(argv)
        if self.mode is IsolationMode.ENVIRONMENT:
            _link_binds(layout)
            return [_rebase(arg, layout.root) for arg in command]
        hidden: dict[str, list[str]] = {}
        etc = {"/etc/hosts": hosts_file} if hosts_file is not None else {}
        if self.preload is not None:
            etc[LOOPBACK_LIBRARY] = self.preload
        user = self.hand_over(layout, job_dir)
        if user is not None:
            command = [*user.command(), *command]
            hidden = hidden_ancestors(interpreter_dirs())
            etc.update(account_files(user, layout.root.with_name(layout.root.name + ".etc")))
        if self.mode is IsolationMode.BUBBLEWRAP:
            wrapped = bwrap_command(command, layout, etc, hidden)
        else:
            wrapped = unshare_command(command, layout, etc, hidden)
        if user is not None:  # its private /tmp (made by the command above) is the job's too, as /opt/ml is
            hand_over([layout.root.with_name(layout.root.name + ".tmp")], user)
        return wrapped


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
    namespaced = mode is not IsolationMode.ENVIRONMENT
    return Isolation(
        mode,
        unprivileged=unprivileged_containers(mode),
        preload=loopback_bind_library() if namespaced else None,
    )


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
