"""``sagestack`` command line: serve, up, down, status, env, console."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from infra.config import LOCAL_ACCESS_KEY_ID, StackSettings
from infra.console_command import cmd_console

logger = logging.getLogger(__name__)

PID_FILE = "stack.pid"
LOG_FILE = "stack.log"
SDK_CONFIG_FILE = "sagemaker-config.yaml"
_START_TIMEOUT_SECONDS = 60.0


def _health(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/_sagestack/health", timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _read_pid(settings: StackSettings) -> int | None:
    path = settings.data_dir / PID_FILE
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def cmd_serve(settings: StackSettings) -> int:
    from infra.control_plane.server import LocalStack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stack = LocalStack(settings)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping the stack and every container it started", signum)
        stack.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.serve_forever()
    return 0


def cmd_up(settings: StackSettings) -> int:
    if _read_pid(settings) is not None and _health(settings.url):
        print(f"Sagestack is already running on {settings.url}")
        return 0
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.data_dir / LOG_FILE).open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **serve_environment(settings)},
    )
    (settings.data_dir / PID_FILE).write_text(str(process.pid))
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"Sagestack failed to start; see {settings.data_dir / LOG_FILE}", file=sys.stderr)
            return 1
        if _health(settings.url):
            print(f"Sagestack is running on {settings.url} (pid {process.pid}, log {settings.data_dir / LOG_FILE})")
            print("Point your shell at it with: eval $(sagestack env)")
            return 0
        time.sleep(0.2)
    print(f"Sagestack did not become healthy in {_START_TIMEOUT_SECONDS:.0f}s", file=sys.stderr)
    return 1


def serve_environment(settings: StackSettings) -> dict[str, str]:
    """The settings ``up`` passes to its ``serve`` process (access keys travel in the caller's environment)."""
    return {
        "SAGESTACK_DATA_DIR": str(settings.data_dir),
        "SAGESTACK_PORT": str(settings.port),
        "SAGESTACK_HOST": settings.host,
        "SAGESTACK_REQUIRE_AUTH": "1" if settings.require_auth else "0",
        "SAGESTACK_ALLOWED_HOSTS": ",".join(settings.allowed_hosts),
        "SAGESTACK_ALLOWED_ORIGINS": ",".join(settings.allowed_origins),
        "SAGESTACK_REQUEST_TIMEOUT": str(settings.request_timeout_seconds),
        "SAGESTACK_PERSISTENCE": "1" if settings.persistence else "0",
    }


def client_credentials(settings: StackSettings) -> tuple[str, str]:
    """The keys the CLI signs with: the first configured access key, else any key (authentication is then off)."""
    for key_id, secret in settings.access_keys.items():
        return key_id, secret
    return LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_ID


def cmd_down(settings: StackSettings) -> int:
    pid = _read_pid(settings)
    if pid is None:
        print("Sagestack is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)  # the server leads its own session: this also reaps its containers
    (settings.data_dir / PID_FILE).unlink(missing_ok=True)
    print("Sagestack stopped")
    return 0


# What `reset` removes: the durable state (docs/local-stack.md, "What persists") and the jobs' and endpoints' files.
_STATE_ENTRIES = ("state", "s3", "training-jobs", "processing-jobs", "transform-jobs", "endpoints")


def cmd_reset(settings: StackSettings) -> int:
    """Empty the data directory's state (the stack must be stopped): the next start begins from nothing."""
    import shutil

    if _read_pid(settings) is not None:
        print("Sagestack is running on this data directory: stop it first (sagestack down)", file=sys.stderr)
        return 1
    for entry in _STATE_ENTRIES:
        path = settings.data_dir / entry
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    print(f"Sagestack state removed from {settings.data_dir}")
    return 0


def cmd_status(settings: StackSettings) -> int:
    import boto3

    if not _health(settings.url):
        print(f"Sagestack is not running on {settings.url}")
        return 1
    key_id, secret = client_credentials(settings)
    client = boto3.client(
        "sagemaker",
        endpoint_url=settings.url,
        region_name=settings.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    from infra.control_plane.execution.work_retention import directory_size

    print(f"Sagestack is running on {settings.url}")
    print(f"Data directory: {settings.data_dir} ({directory_size(settings.data_dir) / 2**20:.1f} MiB)")
    jobs = client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    print(f"Training jobs ({len(jobs)}):")
    for job in jobs:
        print(f"  {job['TrainingJobName']:<50} {job['TrainingJobStatus']:<12} {job.get('SecondaryStatus', '')}")
    for label, operation, key, prefix in (
        ("Processing jobs", "list_processing_jobs", "ProcessingJobSummaries", "ProcessingJob"),
        ("Transform jobs", "list_transform_jobs", "TransformJobSummaries", "TransformJob"),
    ):
        summaries = getattr(client, operation)(MaxResults=100)[key]
        print(f"{label} ({len(summaries)}):")
        for summary in summaries:
            print(f"  {summary[prefix + 'Name']:<50} {summary[prefix + 'Status']}")
    endpoints = client.list_endpoints(MaxResults=100)["Endpoints"]
    print(f"Endpoints ({len(endpoints)}):")
    for endpoint in endpoints:
        print(f"  {endpoint['EndpointName']:<50} {endpoint['EndpointStatus']}")
    return 0


def default_bucket(settings: StackSettings) -> str:
    return f"sagemaker-{settings.region}-{settings.account_id}"


def write_sdk_config(settings: StackSettings, bucket: str) -> Path:
    path = settings.data_dir / SDK_CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  PythonSDK:\n"
        "    Modules:\n"
        "      TelemetryOptOut: true\n"
        "      Session:\n"
        f"        DefaultS3Bucket: {bucket}\n"
    )
    return path


def env_lines(settings: StackSettings, config_path: Path) -> list[str]:
    key_id, secret = client_credentials(settings)
    return [
        f"export AWS_ENDPOINT_URL={settings.url}",
        f"export AWS_DEFAULT_REGION={settings.region}",
        f"export AWS_REGION={settings.region}",
        f"export AWS_ACCESS_KEY_ID={key_id}",
        f"export AWS_SECRET_ACCESS_KEY={secret}",
        f"export SAGEMAKER_USER_CONFIG_OVERRIDE={config_path}",
        "export SAGEMAKER_SUPPRESS_V2_WARNING=1",
        "export SAGEMAKER_VALIDATE_ROLE=false",
        # The sagemaker-mlflow plugin's host: a tracking server's ARN as MLflow tracking URI reaches the stack
        # (docs/experiments.md#the-sagemaker-mlflow-plugin).
        f"export SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT={settings.url}",
    ]


def cmd_env(settings: StackSettings) -> int:
    import boto3

    bucket = default_bucket(settings)
    if _health(settings.url):
        key_id, secret = client_credentials(settings)
        s3 = boto3.client(
            "s3",
            endpoint_url=settings.url,
            region_name=settings.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception:
            s3.create_bucket(Bucket=bucket)
    else:
        print(f"# warning: no stack on {settings.url}; bucket {bucket} not created (run: make up)", file=sys.stderr)
    for line in env_lines(settings, write_sdk_config(settings, bucket)):
        print(line)
    return 0


_COMMANDS = {
    "serve": cmd_serve,
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "reset": cmd_reset,
    "console": cmd_console,
}


# Commands served by a container's own CLI. infra never imports containers, so these run as a subprocess.
_CONTAINER_COMMANDS = {"deepracer": "containers.rl.local_cli"}


def run_container_cli(module: str, args: list[str]) -> int:
    """``sagestack deepracer validate reward.py`` -> ``python -m containers.rl.local_cli validate reward.py``."""
    return subprocess.run([sys.executable, "-m", module, *args], check=False).returncode


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in and args_in[0] in _CONTAINER_COMMANDS:
        return run_container_cli(_CONTAINER_COMMANDS[args_in[0]], args_in[1:])
    if args_in and args_in[0] == "experiments":
        from infra.experiments_cli import default_clients, run

        settings = StackSettings.from_env()
        return run(args_in[1:], default_clients(settings, client_credentials(settings)))
    parser = argparse.ArgumentParser(
        prog="sagestack",
        description="The Sagestack local SageMaker stack",
        epilog="Also: sagestack deepracer {train,validate,evaluate,export} ... (the RL container's CLI), "
        "sagestack experiments {list,show,compare} ...",
    )
    parser.add_argument("command", choices=sorted(_COMMANDS))
    parser.add_argument("--port", type=int, help="port of the edge endpoint (default 4566 or $SAGESTACK_PORT)")
    parser.add_argument("--data-dir", help="state directory (default .sagestack or $SAGESTACK_DATA_DIR)")
    parser.add_argument(
        "--no-persistence",
        action="store_true",
        help="keep the state in memory only, nothing across restarts (SAGESTACK_PERSISTENCE=0)",
    )
    _add_security_flags(parser)
    args = parser.parse_args(args_in)
    env = dict(os.environ)
    if args.port is not None:
        env["SAGESTACK_PORT"] = str(args.port)
    if args.data_dir:
        env["SAGESTACK_DATA_DIR"] = args.data_dir
    if args.host:
        env["SAGESTACK_HOST"] = args.host
    if args.require_auth:
        env["SAGESTACK_REQUIRE_AUTH"] = "1"
    if args.allowed_host:
        env["SAGESTACK_ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    if args.allowed_origin:
        env["SAGESTACK_ALLOWED_ORIGINS"] = ",".join(args.allowed_origin)
    if args.no_persistence:
        env["SAGESTACK_PERSISTENCE"] = "0"
    if args.request_timeout is not None:
        env["SAGESTACK_REQUEST_TIMEOUT"] = str(args.request_timeout)
    return _COMMANDS[args.command](StackSettings.from_env(env))


def _add_security_flags(parser: argparse.ArgumentParser) -> None:
    """The edge's guards (docs/security.md); access keys are read from $SAGESTACK_ACCESS_KEYS, never from argv."""
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; any other requires SigV4 access keys)")
    parser.add_argument(
        "--require-auth",
        action="store_true",
        help="SigV4-verify every request against $SAGESTACK_ACCESS_KEYS (<key id>:<secret>,...)",
    )
    parser.add_argument("--allowed-host", action="append", help="another Host name the stack answers (repeatable)")
    parser.add_argument("--allowed-origin", action="append", help="a browser Origin allowed to call it (repeatable)")
    parser.add_argument("--request-timeout", type=float, help="seconds a silent connection is kept (default 60)")


if __name__ == "__main__":
    sys.exit(main())
