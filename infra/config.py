"""Typed settings of the local stack, read from the environment in one place (never at import time)."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account; STS GetCallerIdentity answers it
_MIB = 1024 * 1024


class SettingsError(ValueError):
    """An environment variable holds a value the stack cannot use."""


def _machine_memory_mib() -> int:
    """The machine's physical memory in MiB (4096 when it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // _MIB
    except (ValueError, OSError, AttributeError):
        return 4096


def default_running_instances() -> int:
    """Instances (container processes) of jobs and endpoints at once: one per 512 MiB of memory, at least 16."""
    return max(16, _machine_memory_mib() // 512)


LOCAL_ACCESS_KEY_ID = "sagestack"  # what the CLI signs with when no access key is configured (authentication is off)


@dataclass(frozen=True)
class JobCredentials:
    """The access key a stack hands its jobs' containers: random for each start, accepted only from loopback peers."""

    key_id: str
    secret: str

    @classmethod
    def generate(cls) -> JobCredentials:
        return cls(key_id="SAGESTACKJOB" + secrets.token_hex(4).upper(), secret=secrets.token_urlsafe(30))

    def environment(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret}


@dataclass(frozen=True)
class ServiceQuotas:
    """The stack's service quotas (docs/security.md#quotas): like AWS's defaults, sized to this machine.

    Every Create request is checked against them; a request over a quota gets ``ResourceLimitExceeded``.
    """

    instances_per_job: int = 20  # InstanceCount of a training, processing or transform job; an endpoint variant's
    concurrent_jobs: int = 20  # in-progress jobs of each kind (training, processing, transform)
    running_instances: int = field(default_factory=default_running_instances)  # all jobs' and endpoints' instances
    endpoints: int = 50  # endpoints that exist at once
    transform_object_mib: int = 1024  # a transform input object once decompressed (CompressionType=Gzip)

    def __post_init__(self) -> None:
        for name in ("instances_per_job", "concurrent_jobs", "running_instances", "endpoints", "transform_object_mib"):
            if getattr(self, name) < 1:
                raise SettingsError(f"quota {name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceQuotas:
        defaults = cls()
        return cls(
            instances_per_job=_parse_int(env, "SAGESTACK_MAX_INSTANCES_PER_JOB", defaults.instances_per_job),
            concurrent_jobs=_parse_int(env, "SAGESTACK_MAX_CONCURRENT_JOBS", defaults.concurrent_jobs),
            running_instances=_parse_int(env, "SAGESTACK_MAX_RUNNING_INSTANCES", defaults.running_instances),
            endpoints=_parse_int(env, "SAGESTACK_MAX_ENDPOINTS", defaults.endpoints),
            transform_object_mib=_parse_int(env, "SAGESTACK_MAX_TRANSFORM_OBJECT_MB", defaults.transform_object_mib),
        )


@dataclass(frozen=True)
class StackSettings:
    """Everything the stack needs to start; build it with :meth:`from_env` or directly in tests."""

    data_dir: Path = field(default_factory=lambda: Path(".sagestack").resolve())
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    # Test-only and user-provided images: URI -> argv standing for the image's ENTRYPOINT.
    extra_images: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    isolation: str | None = None  # passed to the process runtime; None lets it choose
    runtime: str = "process"  # "process" (default, no Docker) or "docker" (SAGESTACK_RUNTIME)
    invoke_timeout_seconds: float = 60.0
    endpoint_startup_timeout_seconds: float = 240.0
    capture_flush_seconds: float = 5.0  # how often endpoint data capture buffers are written to S3
    endpoint_metrics_seconds: float = 10.0  # the period of endpoints' AWS/SageMaker invocation metrics
    restart_check_seconds: float = 0.1  # how often endpoint containers are checked (a dead one is restarted)
    pipeline_poll_seconds: float = 0.1  # how often a pipeline step polls its child job
    pipeline_max_parallel_steps: int = 50  # when neither the pipeline nor the execution sets ParallelismConfiguration
    pipeline_callback_timeout_seconds: float = 7 * 24 * 3600.0  # a Callback step's token unanswered this long fails
    tuning_cores: int = field(default_factory=lambda: os.cpu_count() or 1)  # shared by a tuning job's parallel jobs
    tuning_max_parallel_jobs: int = 10  # AWS's default quota of parallel training jobs per tuning job
    monitor_tick_seconds: float = 30.0  # how often the monitoring scheduler looks for due cron schedules
    feature_store_flush_seconds: float = 5.0  # how often buffered offline-store records are written to S3
    # The edge's guards (docs/security.md): extra Host names and browser origins allowed, SigV4 keys, limits.
    allowed_hosts: tuple[str, ...] = ()  # besides the bind address, localhost and the machine's own IP addresses
    allowed_origins: tuple[str, ...] = ()  # browser Origins allowed to call the stack (CORS); none by default
    access_keys: Mapping[str, str] = field(default_factory=dict)  # access key id -> secret, for SigV4 checks
    require_auth: bool = False  # SigV4-verify every request (always on when bound to a non-loopback address)
    request_timeout_seconds: float = 60.0  # a connection silent this long (stalled request, idle keep-alive) ends
    max_api_request_bytes: int = 16 * 1024 * 1024  # largest SageMaker API request body
    # State kept in the data directory across restarts (docs/local-stack.md); off: everything in memory, as before.
    persistence: bool = True
    state_flush_seconds: float = 0.25  # how often changed control-plane records are written
    quotas: ServiceQuotas = field(default_factory=ServiceQuotas)  # checked at every Create (docs/security.md#quotas)
    job_credentials: JobCredentials = field(default_factory=JobCredentials.generate)  # new for every start
    # Retention of job directories (docs/local-stack.md, "Processes and disk"); outputs are in S3 either way.
    keep_completed_jobs_hours: float = 0.0
    keep_failed_jobs_hours: float = 24.0  # Failed and Stopped jobs' directories, to debug them
    retention_sweep_seconds: float = 300.0  # how often the rule is applied

    def __post_init__(self) -> None:
        if self.auth_required and not self.access_keys:
            reason = "SAGESTACK_REQUIRE_AUTH is set" if self.require_auth else f"the stack binds to {self.host}"
            raise SettingsError(f"{reason}: set SAGESTACK_ACCESS_KEYS=<key id>:<secret> so requests can be verified")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth_required(self) -> bool:
        """SigV4 is checked when asked for, and always when anything but this machine can reach the stack."""
        return self.require_auth or not is_loopback(self.host)

    def with_port(self, port: int) -> StackSettings:
        return replace(self, port=port)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackSettings:
        source = os.environ if env is None else env
        return cls(
            data_dir=Path(source.get("SAGESTACK_DATA_DIR", ".sagestack")).resolve(),
            host=source.get("SAGESTACK_HOST", DEFAULT_HOST),
            port=_parse_int(source, "SAGESTACK_PORT", DEFAULT_PORT),
            region=source.get("SAGESTACK_REGION", DEFAULT_REGION),
            account_id=source.get("SAGESTACK_ACCOUNT_ID", DEFAULT_ACCOUNT_ID),
            extra_images=parse_extra_images(source.get("SAGESTACK_EXTRA_IMAGES", "")),
            isolation=source.get("SAGESTACK_ISOLATION") or None,
            runtime=_parse_runtime(source.get("SAGESTACK_RUNTIME") or "process"),
            invoke_timeout_seconds=_parse_float(source, "SAGESTACK_INVOKE_TIMEOUT", 60.0),
            capture_flush_seconds=_parse_float(source, "SAGESTACK_CAPTURE_FLUSH_SECONDS", 5.0),
            endpoint_metrics_seconds=_parse_float(source, "SAGESTACK_ENDPOINT_METRICS_SECONDS", 10.0),
            pipeline_poll_seconds=_parse_float(source, "SAGESTACK_PIPELINE_POLL_SECONDS", 0.1),
            tuning_cores=_parse_int(source, "SAGESTACK_TUNING_CORES", os.cpu_count() or 1),
            tuning_max_parallel_jobs=_parse_int(source, "SAGESTACK_TUNING_MAX_PARALLEL_JOBS", 10),
            pipeline_max_parallel_steps=_parse_int(source, "SAGESTACK_PIPELINE_MAX_PARALLEL_STEPS", 50),
            pipeline_callback_timeout_seconds=_parse_float(
                source, "SAGESTACK_PIPELINE_CALLBACK_TIMEOUT_SECONDS", 7 * 24 * 3600.0
            ),
            monitor_tick_seconds=_parse_float(source, "SAGESTACK_MONITOR_TICK_SECONDS", 30.0),
            feature_store_flush_seconds=_parse_float(source, "SAGESTACK_FEATURE_STORE_FLUSH_SECONDS", 5.0),
            allowed_hosts=_parse_list(source.get("SAGESTACK_ALLOWED_HOSTS", "")),
            allowed_origins=_parse_list(source.get("SAGESTACK_ALLOWED_ORIGINS", "")),
            access_keys=parse_access_keys(source.get("SAGESTACK_ACCESS_KEYS", "")),
            require_auth=_parse_flag(source, "SAGESTACK_REQUIRE_AUTH"),
            request_timeout_seconds=_parse_float(source, "SAGESTACK_REQUEST_TIMEOUT", 60.0),
            max_api_request_bytes=_parse_int(source, "SAGESTACK_MAX_API_REQUEST_BYTES", 16 * 1024 * 1024),
            keep_completed_jobs_hours=_parse_float(source, "SAGESTACK_KEEP_COMPLETED_JOBS_HOURS", 0.0),
            keep_failed_jobs_hours=_parse_float(source, "SAGESTACK_KEEP_FAILED_JOBS_HOURS", 24.0),
            retention_sweep_seconds=_parse_float(source, "SAGESTACK_RETENTION_SWEEP_SECONDS", 300.0),
            persistence=_parse_flag(
                {"SAGESTACK_PERSISTENCE": source.get("SAGESTACK_PERSISTENCE") or "1"}, "SAGESTACK_PERSISTENCE"
            ),
            quotas=ServiceQuotas.from_env(source),
        )


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (``127.0.0.0/8``, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_access_keys(raw: str) -> dict[str, str]:
    """Parse ``SAGESTACK_ACCESS_KEYS``: ``<key id>:<secret>`` pairs separated by commas."""
    keys: dict[str, str] = {}
    for pair in _parse_list(raw):
        key_id, colon, secret = pair.partition(":")
        if not colon or not key_id or not secret:
            raise SettingsError("SAGESTACK_ACCESS_KEYS must be <key id>:<secret>[,<key id>:<secret>...]")
        keys[key_id] = secret
    return keys


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


RUNTIMES = ("process", "docker")


def _parse_runtime(raw: str) -> str:
    if raw not in RUNTIMES:
        raise SettingsError(f"SAGESTACK_RUNTIME={raw!r}: expected one of {', '.join(RUNTIMES)}")
    return raw


def parse_extra_images(raw: str) -> dict[str, tuple[str, ...]]:
    """Parse ``SAGESTACK_EXTRA_IMAGES``: a JSON object mapping an image URI to an argv list."""
    if not raw.strip():
        return {}
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"SAGESTACK_EXTRA_IMAGES is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SettingsError("SAGESTACK_EXTRA_IMAGES must be a JSON object {image_uri: [argv...]}")
    images: dict[str, tuple[str, ...]] = {}
    for uri, argv in loaded.items():
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise SettingsError(f"SAGESTACK_EXTRA_IMAGES[{uri!r}] must be a non-empty list of strings")
        images[str(uri)] = tuple(argv)
    return images


def _parse_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _parse_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
