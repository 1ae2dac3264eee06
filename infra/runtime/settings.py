"""The process runtime's configuration, read in this one place (never at import time)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from infra.runtime.errors import InvalidSpecError

# Variables the runtime passes from its own environment to containers (a container otherwise gets a clean
# environment, as under Docker). PATH and friends keep the interpreter and its libraries usable.
PASSTHROUGH_VARIABLES: tuple[str, ...] = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SAGEMAKER_SUPPRESS_V2_WARNING",
    "JAVA_TOOL_OPTIONS",  # the host's JVM settings reach the Spark jobs' JVMs, as they reach the stack's own
)

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class RuntimeSettings:
    """Knobs of :class:`infra.runtime.process.ProcessRuntime`."""

    region: str = DEFAULT_REGION
    stop_grace_seconds: float = 120.0  # training/processing: SIGTERM, then SIGKILL (docker stop -t 120)
    # serving: SIGTERM, then SIGKILL 30 s later (docs/reference/container-contract.md#serving-start-and-stop)
    serving_stop_grace_seconds: float = 30.0
    shutdown_grace_seconds: float = 5.0  # ``shutdown()`` / interpreter exit: do not hold the owner for minutes
    link_inputs: bool = False  # hard-link channel files instead of copying (a container writing in place
    # would then change the source files)
    passthrough: tuple[str, ...] = PASSTHROUGH_VARIABLES
    # pre-started warm-pool host sets kept at once (docs/performance.md#warm-pools): each holds an idle interpreter
    # with its image's imports (about 100-200 MB per host)
    warm_host_sets: int = 4
    # the runtime's own standby host sets, for jobs without a warm pool (docs/performance.md#warm-pools): at most
    # this many (0 turns standby hosts off), each ended after ``standby_idle_seconds`` unclaimed
    standby_host_sets: int = 2
    standby_idle_seconds: float = 300.0
    standby_max_instances: int = 4  # a job of more instances leaves no standby set (memory: sets x instances hosts)

    def __post_init__(self) -> None:
        for name in (
            "stop_grace_seconds",
            "serving_stop_grace_seconds",
            "shutdown_grace_seconds",
            "warm_host_sets",
            "standby_host_sets",
            "standby_idle_seconds",
            "standby_max_instances",
        ):
            if not getattr(self, name) >= 0:  # also refuses NaN
                raise InvalidSpecError(f"{name} must not be negative")
        if not math.isfinite(self.standby_idle_seconds):
            raise InvalidSpecError("standby_idle_seconds must be finite")

    @classmethod
    def resolve(cls, settings: RuntimeSettings | None, stop_grace_seconds: float | None = None) -> RuntimeSettings:
        """The settings a runtime was given (else the environment's), with an optional grace-period override."""
        base = settings if settings is not None else cls.from_environment()
        return base if stop_grace_seconds is None else replace(base, stop_grace_seconds=stop_grace_seconds)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        """Defaults, with the region from ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` and the standby hosts from
        ``SAGESTACK_STANDBY_HOST_SETS`` and ``SAGESTACK_STANDBY_IDLE_SECONDS``."""
        env = os.environ if environ is None else environ
        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            standby_host_sets=int(_number(env, "SAGESTACK_STANDBY_HOST_SETS", cls.standby_host_sets)),
            standby_idle_seconds=_number(env, "SAGESTACK_STANDBY_IDLE_SECONDS", cls.standby_idle_seconds),
        )

    def passthrough_environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        env = os.environ if environ is None else environ
        return {name: env[name] for name in self.passthrough if name in env}


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    """A finite number from the environment (an integer when ``default`` is one), else ``default``."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if isinstance(default, int) else float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InvalidSpecError(f"{name} must be a finite {type(default).__name__}, got {text!r}")
    return value
