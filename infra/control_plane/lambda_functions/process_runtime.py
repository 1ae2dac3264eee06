"""Runs one invocation as a local Python process: timeout enforced, memory size as the address-space limit.

The function's folder and its layers' ``python/`` folders are put on ``sys.path`` (as ``/var/task`` and ``/opt/python``
are on AWS); the environment is the function's variables plus the ``AWS_LAMBDA_*`` ones Lambda sets, and the stack's
URL as ``AWS_ENDPOINT_URL`` so boto3 inside the function talks to the stack (docs/pipelines.md#lambda-steps).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
_LOG_TAIL_BYTES = 4096
# The interpreter itself maps shared libraries before the function runs: added to the memory size so a 128 MB
# function has about 128 MB for its own data.
_INTERPRETER_ALLOWANCE_MB = 256


@dataclass(frozen=True)
class InvocationSpec:
    function_name: str
    function_arn: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    region: str
    stack_url: str
    request_id: str


@dataclass(frozen=True)
class InvocationResult:
    payload: bytes
    function_error: str | None  # "Unhandled" when the function raised, timed out or returned no JSON
    log: str


def run_invocation(spec: InvocationSpec, event: bytes) -> InvocationResult:
    """Run the handler on ``event`` (JSON bytes) in a fresh process and return its answer."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="lambda-") as scratch:
        result_file = Path(scratch) / "result.json"
        # -S: no site start-up (.pth files cost ~0.1 s); the interpreter's site-packages are appended by the bootstrap.
        command = [sys.executable, "-S", str(_BOOTSTRAP), str(result_file), spec.handler, *_search_path(spec)]
        env = _environment(spec, started + spec.timeout_seconds, scratch)
        limit = (spec.memory_mb + _INTERPRETER_ALLOWANCE_MB) * 1024 * 1024
        try:
            done = subprocess.run(
                command,
                input=event,
                capture_output=True,
                cwd=spec.code_dir,
                env=env,
                timeout=spec.timeout_seconds,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            log = _text(exc.stdout) + _text(exc.stderr)
            message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
            return _error(spec, message, "Sandbox.Timedout", log)
        log = _text(done.stdout) + _text(done.stderr)
        if not result_file.exists():
            return _crashed(spec, done.returncode, log)
        answer: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    logger.info("lambda %s request %s ran in %.3fs", spec.function_name, spec.request_id, time.time() - started)
    if "error" in answer:
        return InvocationResult(json.dumps(answer["error"]).encode(), "Unhandled", log)
    return InvocationResult(str(answer["payload"]).encode(), None, log)


def _crashed(spec: InvocationSpec, returncode: int, log: str) -> InvocationResult:
    if "MemoryError" in log:
        return _error(
            spec, f"Runtime exited: the function ran out of memory ({spec.memory_mb} MB)", "Runtime.OutOfMemory", log
        )
    return _error(spec, f"Runtime exited with error: exit status {returncode}", "Runtime.ExitError", log)


def _error(spec: InvocationSpec, message: str, error_type: str, log: str) -> InvocationResult:
    body = {"errorMessage": f"{spec.request_id} {message}".strip(), "errorType": error_type}
    return InvocationResult(json.dumps(body).encode(), "Unhandled", log)


def _search_path(spec: InvocationSpec) -> list[str]:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    folders = [str(spec.code_dir)]
    for layer in spec.layer_dirs:
        folders += [str(layer / "python"), str(layer / "python" / "lib" / version / "site-packages")]
    return folders


def _environment(spec: InvocationSpec, deadline: float, scratch: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_ENDPOINT_URL": spec.stack_url,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": spec.request_id,
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "SAGESTACK_LAMBDA_FUNCTION_ARN": spec.function_arn,
        "SAGESTACK_LAMBDA_REQUEST_ID": spec.request_id,
        "SAGESTACK_LAMBDA_DEADLINE": repr(deadline),
        "SAGESTACK_LAMBDA_SITE_PACKAGES": os.pathsep.join(site.getsitepackages()),
    }
    return {**env, **spec.environment}


def log_tail(log: str) -> str:
    """The last 4 KB of the invocation's log (``LogType: Tail``)."""
    return log.encode()[-_LOG_TAIL_BYTES:].decode("utf-8", "replace")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
