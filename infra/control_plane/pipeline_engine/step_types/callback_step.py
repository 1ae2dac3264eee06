"""The Callback step: a token message to the step's SQS queue, then a wait for the token to be answered.

The message body is ``{"token", "pipelineExecutionArn", "arguments", "status": "Executing"}`` with the resolved
``Arguments``. Whoever reads the queue answers with ``SendPipelineExecutionStepSuccess`` (output parameters, typed by
the step's declared ``OutputType``) or ``SendPipelineExecutionStepFailure``; a token never answered fails the step
when the callback timeout passes. A token answered twice, or one the stack never issued, is refused as AWS refuses it
(docs/pipelines.md#callback-steps).
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.control_plane.core.errors import ConflictException, ResourceNotFound, ValidationException
from infra.control_plane.core.idempotency import IdempotencyTokens
from infra.control_plane.pipeline_engine.step_types.sagemaker_steps import (
    StepContext,
    StepFailed,
    StepOutcome,
    StepStopped,
)

SendMessage = Callable[[str, str], str]  # (queue URL, body) -> message id
_TOKEN_CHARS = string.ascii_letters + string.digits
_TOKEN_LENGTH = 10  # CallbackToken: fixed length 10, [a-zA-Z0-9]+ (botocore's model)
_TYPES: Mapping[str, Callable[[str], Any]] = {
    "String": str,
    "Integer": lambda v: int(float(v)),
    "Float": float,
    "Boolean": lambda v: v.strip().lower() == "true",
}


@dataclass
class PendingCallback:
    execution_arn: str
    step_name: str
    declared: Mapping[str, str]  # output name -> OutputType
    answered: threading.Event = field(default_factory=threading.Event)
    outputs: dict[str, str] | None = None
    failure: str | None = None
    closed: str | None = None  # why the token no longer takes answers (the step ended)


class CallbackTokens:
    """The tokens this stack issued and the two API operations that answer them (answers after the step ended are
    refused); the backend lists this object among its services."""

    def __init__(self, timeout_seconds: float = 7 * 24 * 3600.0) -> None:
        self.timeout_seconds = timeout_seconds  # a token unanswered this long fails its step
        self._lock = threading.Lock()
        self._pending: dict[str, PendingCallback] = {}
        self._requests = IdempotencyTokens("callback-request-token")  # the same token gets the same answer

    def send_pipeline_execution_step_success(self, params: Mapping[str, Any]) -> dict[str, Any]:
        token = str(params["CallbackToken"])
        outputs = list(params.get("OutputParameters") or [])
        return self._answer("Success", params, lambda: self.succeed(token, outputs))

    def send_pipeline_execution_step_failure(self, params: Mapping[str, Any]) -> dict[str, Any]:
        token, reason = str(params["CallbackToken"]), str(params.get("FailureReason") or "")
        return self._answer("Failure", params, lambda: self.fail(token, reason))

    def _answer(self, kind: str, params: Mapping[str, Any], action: Callable[[], str]) -> dict[str, Any]:
        operation = f"SendPipelineExecutionStep{kind}/{params['CallbackToken']}"  # a request token per callback
        return self._requests.answer(operation, params, lambda: {"PipelineExecutionArn": action()})

    def issue(self, pending: PendingCallback) -> str:
        with self._lock:
            token = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(_TOKEN_LENGTH))
            while token in self._pending:
                token = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(_TOKEN_LENGTH))
            self._pending[token] = pending
        return token

    def succeed(self, token: str, outputs: list[Mapping[str, Any]]) -> str:
        with self._lock:
            pending = self._open(token)
            values = {str(o["Name"]): str(o["Value"]) for o in outputs}
            unknown = sorted(set(values) - set(pending.declared))
            if unknown:
                raise ValidationException(
                    f"Output parameters {unknown} are not declared by callback step {pending.step_name} "
                    f"(declared: {sorted(pending.declared)})."
                )
            pending.outputs = values
            pending.closed = "Succeeded"
            pending.answered.set()
            return pending.execution_arn

    def fail(self, token: str, reason: str) -> str:
        with self._lock:
            pending = self._open(token)
            pending.failure = reason
            pending.closed = "Failed"
            pending.answered.set()
            return pending.execution_arn

    def close(self, token: str, status: str) -> None:
        with self._lock:
            pending = self._pending.get(token)
            if pending is not None and pending.closed is None:
                pending.closed = status

    def _open(self, token: str) -> PendingCallback:
        pending = self._pending.get(token)
        if pending is None:
            raise ResourceNotFound(f"Callback token {token} does not exist.")
        if pending.closed is not None:
            raise ConflictException(
                f"Callback token {token} of step {pending.step_name} was already used: the step is {pending.closed}."
            )
        return pending


def run_callback_step(
    ctx: StepContext, execution_arn: str, tokens: CallbackTokens, send: SendMessage | None
) -> StepOutcome:
    queue_url = str(ctx.step_fields.get("SqsQueueUrl") or "")
    if not queue_url:
        raise StepFailed(f"Step {ctx.step.name}: a Callback step needs an SqsQueueUrl.")
    if send is None:
        raise StepFailed(f"Step {ctx.step.name}: this stack has no SQS to send the callback message to.")
    declared = {
        str(o["OutputName"]): str(o.get("OutputType") or "String") for o in ctx.step.raw.get("OutputParameters") or []
    }
    pending = PendingCallback(execution_arn, ctx.step.name, declared)
    token = tokens.issue(pending)
    metadata: dict[str, Any] = {"Callback": {"CallbackToken": token, "SqsQueueUrl": queue_url}}
    ctx.on_metadata(metadata)
    body = {"token": token, "pipelineExecutionArn": execution_arn, "arguments": ctx.arguments, "status": "Executing"}
    try:
        send(queue_url, json.dumps(body))
        _wait(ctx, pending, tokens.timeout_seconds)
    except (StepFailed, StepStopped):
        tokens.close(token, "Failed")
        raise
    except Exception as exc:
        tokens.close(token, "Failed")
        raise StepFailed(f"Step {ctx.step.name}: the callback message could not be sent: {exc}") from exc
    if pending.failure is not None:
        raise StepFailed(pending.failure or f"Step {ctx.step.name}: the callback reported a failure.")
    values = {
        name: _typed(ctx.step.name, name, declared[name], value) for name, value in (pending.outputs or {}).items()
    }
    metadata["Callback"]["OutputParameters"] = [{"Name": k, "Value": v} for k, v in (pending.outputs or {}).items()]
    return StepOutcome({"OutputParameters": values}, metadata)


def _wait(ctx: StepContext, pending: PendingCallback, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not pending.answered.is_set():
        if ctx.stop.is_set():
            raise StepStopped(f"callback step {ctx.step.name} was stopped")
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepFailed(
                f"Step {ctx.step.name}: no SendPipelineExecutionStepSuccess or SendPipelineExecutionStepFailure "
                f"for its callback token within {timeout_seconds:g} seconds (the callback timed out)."
            )
        pending.answered.wait(min(left, max(ctx.poll_seconds, 0.05)))


def _typed(step: str, name: str, kind: str, value: str) -> Any:
    try:
        return _TYPES.get(kind, str)(value)
    except ValueError as exc:
        raise StepFailed(f"Step {step}: callback output {name!r} = {value!r} is not a {kind}.") from exc
