"""Capability skips: tests that skip because this machine lacks something (an engine, namespaces, a tool), made visible.

A test that cannot run here without some capability says so in one of two ways, never with a bare ``pytest.skip``:

* ``@pytest.mark.capability("bubblewrap", ...)`` (also as a module's ``pytestmark``, or added by a conftest's
  ``pytest_collection_modifyitems``): skipped, before its fixtures run, when a named capability's probe says it is
  missing here;
* ``requires_capability("docker-images", available=..., why=...)`` inside a fixture or test, when the test's own
  check is more specific than the probe (one image, one tmp_path); without ``available`` the probe decides.

At the end of the run every capability skip is listed with its reason and what the probe says about this machine
(``pytest_terminal_summary``). The session fails (exit 1) when a capability skip is not honest:

* always, for a capability named in ``SAGESTACK_REQUIRED_CAPABILITIES`` (comma separated): the environment promised
  it, e.g. ``make test-docker`` once its engine step succeeded (docs/ci.md, "Test tiers");
* under CI (``CI`` set, as GitHub Actions and ``.ci/run`` do) also when the probe says the capability IS available
  here (the test's own check is stale or wrong: a tier this machine can run was skipped), or when CI's own set-up
  provides it (``provided_by``, e.g. ``make setup`` installs smclarify).

Other skips (a runtime-specific test, a port in use, an external stack) are about the run's configuration, not the
machine; pytest's ``-ra`` summary lists them as usual.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["CAPABILITIES", "Capability", "requires_capability"]

REQUIRED_ENV = "SAGESTACK_REQUIRED_CAPABILITIES"
PROBE_TIMEOUT_SECONDS = 30
# The Docker tier's images: `make images` (sagestack/*), `python -m infra.images tag-aws` (the AWS URI).
DOCKER_TIER_IMAGES = (
    "sagestack/base:latest",
    "sagestack/xgboost:latest",
    "sagestack/scikit-learn:latest",
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
)
# SDK v3 (`sagemaker` 3.x) cannot share the project's venv with SDK v2 (same distribution): it gets a venv of its own.
SDK3_PYTHON = Path(__file__).resolve().parents[1] / ".venv-sdk3" / "bin" / "python"
_REASON = re.compile(r"^capability (?P<name>[a-z0-9-]+): ")


def _succeeds(*argv: str) -> bool:
    if shutil.which(argv[0]) is None:
        return False
    try:
        done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _docker() -> bool:
    return _succeeds("docker", "info", "--format", "{{.ServerVersion}}")


def _docker_images() -> bool:
    return _docker() and all(_succeeds("docker", "image", "inspect", ref) for ref in DOCKER_TIER_IMAGES)


def _docker_compose() -> bool:
    return _succeeds("docker-compose", "version") or _succeeds("docker", "compose", "version")


def _mount_namespaces() -> bool:
    from infra.runtime.process.isolation import IsolationMode, detect_isolation_mode

    return detect_isolation_mode() is not IsolationMode.ENVIRONMENT


def _unprivileged_containers() -> bool:
    from infra.runtime.process.isolation import detect_isolation_mode, unprivileged_containers

    return unprivileged_containers(detect_isolation_mode())


def _loopback_listeners() -> bool:
    from infra.runtime.process.loopback_bind import loopback_bind_library

    return _mount_namespaces() and loopback_bind_library() is not None


def _installed(*modules: str) -> Callable[[], bool]:
    return lambda: all(importlib.util.find_spec(module) is not None for module in modules)


@dataclass(frozen=True)
class Capability:
    """Something a test needs from this machine, and how to tell whether the machine has it."""

    name: str
    description: str
    probe: Callable[[], bool]
    provided_by: str | None = None  # the CI set-up step that provides it: then a skip under CI is a failure

    def available(self) -> bool:
        return _probed(self.name)


CAPABILITIES: dict[str, Capability] = {
    c.name: c
    for c in (
        Capability("docker", "a Docker engine that answers `docker info`", _docker),
        Capability(
            "docker-images",
            "the Docker tier's images (`make images`, `python -m infra.images tag-aws --region us-east-1`)",
            _docker_images,
        ),
        Capability("docker-compose", "docker compose, for SDK local mode", _docker_compose),
        Capability("docker-registry", "Debian's docker-registry", lambda: shutil.which("docker-registry") is not None),
        Capability("unshare", "util-linux unshare", lambda: shutil.which("unshare") is not None),
        Capability(
            "unshare-namespaces",
            "unprivileged user and mount namespaces through `unshare -rm`",
            lambda: _succeeds("unshare", "-rm", "true"),
        ),
        Capability(
            "mount-namespaces",
            "a private /opt/ml for containers (unshare or bubblewrap works: infra.runtime.process.isolation)",
            _mount_namespaces,
        ),
        Capability(
            "unprivileged-containers",
            "containers that switch to a user of their own inside their namespace (root with setpriv, or a nested "
            "user namespace), who can read the interpreter and the project",
            _unprivileged_containers,
        ),
        Capability(
            "loopback-listeners",
            "a C compiler (cc) for the preload library that moves jobs' wildcard listeners to loopback "
            "(infra.runtime.process.loopback_bind), and mount namespaces",
            _loopback_listeners,
        ),
        Capability(
            "iproute2-ss",
            "iproute2's `ss`, to list the sockets jobs listen on",
            lambda: _succeeds("ss", "-ltnH"),
        ),
        Capability(
            "bubblewrap",
            "bubblewrap that runs (`bwrap --dev-bind / / true`)",
            lambda: _succeeds("bwrap", "--dev-bind", "/", "/", "true"),
        ),
        Capability(
            "chromium",
            "Debian's chromium and chromium-driver with selenium, for the console's browser tests",
            lambda: bool(shutil.which("chromium") and shutil.which("chromedriver")) and _installed("selenium")(),
            provided_by="make setup",
        ),
        Capability(
            "sagemaker-sdk-v3",
            "SDK v3 (sagemaker 3.x) in its own venv, .venv-sdk3 (docs/experiments.md#the-sdk)",
            lambda: _succeeds(str(SDK3_PYTHON), "-c", "import sagemaker.core.experiments"),
        ),
        Capability(
            "smclarify",
            "smclarify 0.5 and pyfunctional (the Clarify oracle)",
            _installed("smclarify", "functional"),
            provided_by="make setup",
        ),
    )
}


@functools.cache
def _probed(name: str) -> bool:
    return CAPABILITIES[name].probe()


def _capability(name: str) -> Capability:
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise pytest.UsageError(f"unknown capability {name!r}: one of {', '.join(CAPABILITIES)}") from None


def requires_capability(name: str, available: bool | None = None, why: str = "") -> None:
    """Skip the calling test (fixture, or module at import) unless ``available`` (default: the probe) holds."""
    __tracebackhide__ = True  # the skip is reported at the caller's line
    if available if available is not None else _capability(name).available():
        return
    pytest.skip(_reason(name, why), allow_module_level=True)


def _reason(name: str, why: str = "") -> str:
    return f"capability {name}: needs {_capability(name).description}{f' ({why})' if why else ''}"


def _is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _required() -> set[str]:
    names = {n.strip() for n in os.environ.get(REQUIRED_ENV, "").split(",") if n.strip()}
    for name in names:
        _capability(name)
    return names


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    if not report.skipped:
        return None
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return None


class CapabilitySkipReport:
    """Collects capability skips (under pytest-xdist on the controller, which gets every report) and judges them."""

    def __init__(self) -> None:
        self.skips: dict[str, list[tuple[str, str]]] = {}

    def dishonest(self) -> dict[str, str]:
        """Capability -> why skipping it fails this session."""
        required, ci, verdicts = _required(), _is_ci(), {}
        for name in self.skips:
            capability = CAPABILITIES[name]
            if name in required:
                verdicts[name] = f"{REQUIRED_ENV} names it"
            elif ci and capability.provided_by:
                verdicts[name] = f"CI provides it ({capability.provided_by})"
            elif ci and capability.available():
                verdicts[name] = "this is CI and the probe says this machine has it"
        return verdicts

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def _record(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        match = _REASON.match(_skip_reason(report) or "")
        if match and match["name"] in CAPABILITIES:
            self.skips.setdefault(match["name"], []).append((report.nodeid, _skip_reason(report) or ""))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.dishonest():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.skips:
            return
        terminalreporter.section("skipped for a machine capability")
        for name, skipped in sorted(self.skips.items()):
            here = "available here" if CAPABILITIES[name].available() else "not available here"
            terminalreporter.line(f"{name} ({here}): {len(skipped)} test(s)")
            for nodeid, reason in skipped:
                terminalreporter.line(f"  {nodeid}: {reason}")
        for name, why in sorted(self.dishonest().items()):
            terminalreporter.line(f"FAILED: capability {name} was skipped although {why}", red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"capability(*names): skip unless this machine has each named capability ({', '.join(CAPABILITIES)})"
    )
    _required()  # an unknown name in the environment is a usage error before any test runs
    if not hasattr(config, "workerinput"):  # a pytest-xdist worker: its controller reports and judges
        config.pluginmanager.register(CapabilitySkipReport(), "sagestack-capability-skips")


@pytest.hookimpl(trylast=True)  # after conftests that add capability markers (tests/docker/conftest.py)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        missing = [
            name for mark in item.iter_markers("capability") for name in mark.args if not _capability(name).available()
        ]
        if missing:
            item.add_marker(pytest.mark.skip(reason=_reason(missing[0])))
