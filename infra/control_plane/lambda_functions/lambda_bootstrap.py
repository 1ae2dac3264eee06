"""The child process of one invocation: imports the handler, calls it with the event and a context, writes the answer.

Run by path (``python lambda_bootstrap.py <result file>``) so nothing of the stack is importable by the function;
the request's header line and then the event arrive on stdin (the process may be started ahead of its request);
the function's prints go to the process's stdout/stderr (the invocation's log).
Argument layout and environment: see ``process_runtime.py``.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from typing import Any


class LambdaContext:
    """The handler's ``context`` (the attributes and method Python Lambda functions use)."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("SAGESTACK_LAMBDA_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = os.environ.get("SAGESTACK_LAMBDA_REQUEST_ID", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    import traceback  # only on failure: importing it costs more than the rest of the start-up

    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": os.environ.get("SAGESTACK_LAMBDA_REQUEST_ID", ""),
        "stackTrace": [line.rstrip("\n") for line in traceback.format_list(frames)],
    }


def main() -> int:
    result_path, handler_name = sys.argv[1], sys.argv[2]
    limit = int(os.environ["SAGESTACK_LAMBDA_ADDRESS_SPACE_BYTES"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # before any of the function's code runs
    del sys.path[0]  # this file's folder: nothing of the stack is importable by the function
    for folder in reversed(sys.argv[3:]):
        sys.path.insert(0, folder)
    sys.path += [p for p in os.environ.get("SAGESTACK_LAMBDA_SITE_PACKAGES", "").split(os.pathsep) if p]
    # Started ahead of its request (standby_processes.py): wait for the header line, then the event until EOF.
    header_line = sys.stdin.buffer.readline()
    if not header_line:
        return 0  # stopped unused (the stack stopped, or the function changed)
    header = json.loads(header_line)
    deadline = float(header["deadline"])
    os.environ["SAGESTACK_LAMBDA_REQUEST_ID"] = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = str(header["request_id"])
    answer: dict[str, Any]
    try:
        event = json.loads(sys.stdin.buffer.read() or b"{}")
        module_name, _, function_name = handler_name.rpartition(".")
        if not module_name:
            raise ValueError(f"Bad handler '{handler_name}': not enough values to unpack (expected 2, got 1)")
        try:
            module = importlib.import_module(module_name.replace("/", "."))
        except ImportError as exc:
            answer = {"error": _error(exc, "Runtime.ImportModuleError")}
            answer["error"]["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
            return _write(result_path, answer)
        handler = getattr(module, function_name, None)
        if handler is None:
            message = f"Handler '{function_name}' missing on module '{module_name}'"
            return _write(result_path, {"error": {"errorMessage": message, "errorType": "Runtime.HandlerNotFound"}})
        value = handler(event, LambdaContext(deadline))
    except Exception as exc:
        return _write(result_path, {"error": _error(exc)})
    try:
        answer = {"payload": json.dumps(value)}
    except (TypeError, ValueError) as exc:
        message = f"Unable to marshal response: {exc}"
        answer = {"error": {"errorMessage": message, "errorType": "Runtime.MarshalError"}}
    return _write(result_path, answer)


def _write(path: str, answer: dict[str, Any]) -> int:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(answer, handle)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # no interpreter finalisation (it costs more than the no-op function): on Lambda an environment is frozen after
    # the answer, so the function's atexit handlers do not run at the end of an invocation there either
    os._exit(code)
