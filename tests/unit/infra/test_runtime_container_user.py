"""The process runtime's container user, its hidden directories and the loopback preload library (known answers)."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from infra.runtime.process.container_user import ContainerUser, account_files, hand_over, hidden_ancestors
from infra.runtime.process.loopback_bind import loopback_bind_library


def test_hidden_ancestors_names_the_highest_unsearchable_directory_once_per_needed_tree(tmp_path: Path) -> None:
    private = tmp_path / "home"
    (private / "pyenv" / "3.11" / "lib").mkdir(parents=True)
    private.chmod(0o700)
    try:
        groups = hidden_ancestors([private / "pyenv" / "3.11", private / "pyenv" / "3.11" / "lib", Path("/usr")])
    finally:
        private.chmod(0o755)
    [(hidden, needed)] = groups.items()
    assert private.resolve().is_relative_to(hidden)  # the private home, or a private directory above tmp_path
    assert needed == [str((private / "pyenv" / "3.11").resolve())]  # lib is inside it: not bound twice
    assert hidden_ancestors([Path("/usr/bin")]) == {}


def test_a_needed_directory_others_cannot_search_is_revealed_by_its_subdirectories() -> None:
    """A checkout made by ``mktemp -d`` (mode 0700, under the searchable /tmp): its packages and venv are bound, not
    the closed directory."""
    checkout = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        for name in ("containers", "infra", ".venv"):
            (checkout / name).mkdir()
        (checkout / "pyproject.toml").write_text("")
        groups = hidden_ancestors([checkout, checkout / ".venv"])
    finally:
        shutil.rmtree(checkout)
    expected = [str((checkout / name).resolve()) for name in (".venv", "containers", "infra")]
    assert groups == {str(checkout.resolve()): expected}


def test_jobs_get_distinct_users_and_every_host_of_a_job_the_same(tmp_path: Path) -> None:
    first, second = ContainerUser.for_job(tmp_path / "job-a"), ContainerUser.for_job(tmp_path / "job-b")
    assert ContainerUser.for_job(tmp_path / "job-a") == first
    if os.geteuid() == 0:
        assert first != second and first.uid >= 2**30 and first.gid == first.uid
        assert first.command()[0] == "setpriv" and "--no-new-privs" in first.command()
    else:
        assert first == ContainerUser(os.getuid(), os.getgid())
        assert first.command()[:2] == ["unshare", "--user"]


def test_hand_over_chowns_the_tree_but_not_hard_linked_inputs(tmp_path: Path) -> None:
    user = ContainerUser(2**30 + 5, 2**30 + 5)
    root = tmp_path / "ml"
    (root / "input").mkdir(parents=True)
    (root / "input" / "copy.csv").write_text("1\n")
    store = tmp_path / "store.csv"
    store.write_text("2\n")
    store.chmod(0o600)
    os.link(store, root / "input" / "linked.csv")
    hand_over([root], user)
    if os.geteuid() != 0:  # an ordinary stack's containers are its own user: nothing to hand over
        assert root.stat().st_uid == os.getuid() and stat.S_IMODE(store.stat().st_mode) == 0o600
        return
    assert (root.stat().st_uid, (root / "input").stat().st_uid) == (user.uid, user.uid)
    assert (root / "input" / "copy.csv").stat().st_uid == user.uid
    assert store.stat().st_uid == 0 and stat.S_IMODE(store.stat().st_mode) == 0o644


def test_account_files_add_the_job_user_to_passwd_and_group(tmp_path: Path) -> None:
    user = ContainerUser(2**30 + 7, 2**30 + 7)
    files = account_files(user, tmp_path)
    assert set(files) == {"/etc/passwd", "/etc/group"}
    assert f"sagemaker-job:x:{user.uid}:{user.gid}::/tmp:/bin/sh" in files["/etc/passwd"].read_text().splitlines()
    assert f"sagemaker-job:x:{user.gid}:" in files["/etc/group"].read_text().splitlines()


@pytest.mark.capability("loopback-listeners")
def test_the_preload_library_moves_wildcard_binds_to_loopback() -> None:
    library = loopback_bind_library()
    assert library is not None
    code = (
        "import socket\n"
        "a = socket.socket(); a.bind(('0.0.0.0', 0))\n"
        "b = socket.socket(socket.AF_INET6); b.bind(('::', 0))\n"
        "c = socket.socket(socket.AF_INET6)\n"
        "c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); c.bind(('::', 0))\n"
        "d = socket.socket(); d.bind(('127.0.0.2', 0))\n"
        "print(a.getsockname()[0], b.getsockname()[0], c.getsockname()[0], d.getsockname()[0])\n"
    )
    env = {**os.environ, "LD_PRELOAD": str(library)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["127.0.0.1", "::ffff:127.0.0.1", "::1", "127.0.0.2"]
