"""Runs one invocation as a local Python process: timeout enforced, memory size as the address-space limit.

The function's folder and its layers' ``python/`` folders are put on ``sys.path`` (as ``/var/task`` and ``/opt/python``
are on AWS); the environment is the function's variables plus the ``AWS_LAMBDA_*`` ones Lambda sets, and the stack's
URL as ``AWS_ENDPOINT_URL`` so boto3 inside the function talks to the stack (docs/pipelines.md#lambda-steps).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.control_plane.lambda_functions.standby_processes import InvocationProcess, StandbyProcesses

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


def run_invocation(spec: InvocationSpec, event: bytes, standby: StandbyProcesses | None = None) -> InvocationResult:
    """Run the handler on ``event`` (JSON bytes) in a fresh process and return its answer.

    With ``standby``, the process started ahead for this configuration is used when there is one, and a new one
    is started for the next invocation afterwards.
    """
    started = time.time()
    key = _configuration_key(spec)
    process = (standby.take(key) if standby is not None else None) or _start_process(spec)
    header = json.dumps({"request_id": spec.request_id, "deadline": started + spec.timeout_seconds})
    try:
        try:
            stdout, stderr = process.popen.communicate(header.encode() + b"\n" + event, timeout=spec.timeout_seconds)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            stdout, stderr = process.popen.communicate()
            message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
            return _error(spec, message, "Sandbox.Timedout", _text(stdout) + _text(stderr))
        log = _text(stdout) + _text(stderr)
        if not process.result_file.exists():
            return _crashed(spec, process.popen.returncode, log)
        answer: dict[str, Any] = json.loads(process.result_file.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(process.scratch, ignore_errors=True)
        if standby is not None:
            standby.refill(key, lambda: _start_process(spec))
    logger.info("lambda %s request %s ran in %.3fs", spec.function_name, spec.request_id, time.time() - started)
    if "error" in answer:
        return InvocationResult(json.dumps(answer["error"]).encode(), "Unhandled", log)
    return InvocationResult(str(answer["payload"]).encode(), None, log)


def _start_process(spec: InvocationSpec) -> InvocationProcess:
    """The bootstrap started for ``spec``'s function, waiting on stdin for its request."""
    scratch = Path(tempfile.mkdtemp(prefix="lambda-"))
    result_file = scratch / "result.json"
    # -S: no site start-up (.pth files cost ~0.1 s); the interpreter's site-packages are appended by the bootstrap.
    command = [sys.executable, "-S", str(_BOOTSTRAP), str(result_file), spec.handler, *_search_path(spec)]
    env = _environment(spec, str(scratch))
    # the bootstrap sets RLIMIT_AS itself before importing the handler: no preexec_fn, so the child is
    # spawned (vfork) rather than forked from the stack's large process
    env["SAGESTACK_LAMBDA_ADDRESS_SPACE_BYTES"] = str((spec.memory_mb + _INTERPRETER_ALLOWANCE_MB) * 1024 * 1024)
    popen = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=spec.code_dir,
        env=env,
    )
    return InvocationProcess(popen, scratch)


def _configuration_key(spec: InvocationSpec) -> str:
    """Everything but the request: the function ARN first, then the rest of its configuration."""
    return f"{spec.function_arn}\n{dataclasses.replace(spec, request_id='')!r}"


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


def _environment(spec: InvocationSpec, scratch: str) -> dict[str, str]:
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
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "SAGESTACK_LAMBDA_FUNCTION_ARN": spec.function_arn,
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
