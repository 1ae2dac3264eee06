from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.runtime.api import IsolationMode
from infra.runtime.errors import IsolationError
from infra.runtime.process import isolation
from infra.runtime.process.isolation import Isolation, detect_isolation_mode, resolve_isolation, write_hosts_file
from infra.runtime.process.layout import HostLayout


@pytest.fixture
def fresh_detection() -> Iterator[None]:
    detect_isolation_mode.cache_clear()
    yield
    detect_isolation_mode.cache_clear()


def test_without_bwrap_or_unshare_detection_falls_back_with_one_warning(
    fresh_detection: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)

    with caplog.at_level(logging.WARNING, logger="infra.runtime.process.isolation"):
        first = detect_isolation_mode()
        second = detect_isolation_mode()

    assert first is second is IsolationMode.ENVIRONMENT
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "infra.runtime.process.isolation"
    ]
    assert len(warnings) == 1


def test_forcing_a_mode_that_does_not_work_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)

    with pytest.raises(IsolationError, match="bubblewrap"):
        resolve_isolation(IsolationMode.BUBBLEWRAP)


def test_forcing_the_environment_mode_needs_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "_probe", lambda mode: pytest.fail("probed"))

    assert resolve_isolation(IsolationMode.ENVIRONMENT).mode is IsolationMode.ENVIRONMENT


def test_hosts_file_keeps_the_original_entries_and_adds_every_host(tmp_path: Path) -> None:
    original = tmp_path / "hosts.orig"
    original.write_text("127.0.0.1 localhost\n10.0.0.5 db")

    path = write_hosts_file(tmp_path / "hosts", ["algo-1", "algo-2"], original)

    assert path.read_text().splitlines() == ["127.0.0.1 localhost", "10.0.0.5 db", "127.0.0.1\talgo-1 algo-2"]


def test_environment_mode_rebases_opt_ml_arguments_and_links_binds(tmp_path: Path) -> None:
    root = tmp_path / "algo-1"
    (root / "checkpoints").mkdir(parents=True)
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    layout = HostLayout("algo-1", root, {"/opt/ml/checkpoints": checkpoints})

    argv = Isolation(IsolationMode.ENVIRONMENT).wrap(
        ["python3", "/opt/ml/code/train.py", "--x", "/opt/mlx"], layout, None
    )

    assert argv == [sys.executable, f"{root.resolve()}/code/train.py", "--x", "/opt/mlx"]
    assert (root / "checkpoints").resolve() == checkpoints.resolve()
    assert Isolation(IsolationMode.ENVIRONMENT).environment(root) == {
        "SAGEMAKER_BASE_DIR": str(root),
        "SAGESTACK_LOCAL_HOSTS": "1",  # no /etc/hosts of its own: algo-N resolve to 127.0.0.1 in the toolkit
        "TMPDIR": str(tmp_path / "algo-1.tmp"),  # its private temporary directory
    }


@pytest.mark.capability("unshare")
def test_unshare_command_binds_the_job_dir_and_hosts_file(tmp_path: Path) -> None:
    layout = HostLayout("algo-1", tmp_path / "root")

    argv = Isolation(IsolationMode.UNSHARE).wrap(["cmd", "arg"], layout, tmp_path / "hosts")

    assert argv[0] == "unshare" and "--mount" in argv
    assert argv[-2:] == ["cmd", "arg"]
    assert str((tmp_path / "root").resolve()) in argv
    assert Isolation(IsolationMode.UNSHARE).environment(tmp_path) == {"SAGEMAKER_BASE_DIR": "/opt/ml", "TMPDIR": "/tmp"}
