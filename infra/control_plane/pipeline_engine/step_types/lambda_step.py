"""The Lambda step: invokes the function named by ``FunctionArn`` with the resolved ``Arguments`` as the event.

Its properties are ``OutputParameters`` (each declared output read from the function's JSON answer and typed by
``OutputType``); its metadata is ``Lambda: {Arn, OutputParameters: [{Name, Value}]}``, as DescribePipelineExecution
steps show on AWS. A function that raises, times out or answers something other than a JSON object fails the step
with the function's error (docs/pipelines.md#lambda-steps).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.pipeline_engine.step_types.sagemaker_steps import StepContext, StepFailed, StepOutcome


class LambdaAnswer(Protocol):
    @property
    def payload(self) -> bytes: ...

    @property
    def function_error(self) -> str | None: ...


LambdaInvoker = Callable[[str, bytes], LambdaAnswer]

_TYPES: Mapping[str, Callable[[Any], Any]] = {
    "String": str,
    "Integer": int,
    "Float": float,
    "Boolean": lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true",
}


def run_lambda_step(ctx: StepContext, invoke: LambdaInvoker | None) -> StepOutcome:
    arn = str(ctx.step_fields.get("FunctionArn") or "")
    if not arn:
        raise StepFailed(f"Step {ctx.step.name}: a Lambda step needs a FunctionArn.")
    if invoke is None:
        raise StepFailed(f"Step {ctx.step.name}: this stack serves no Lambda functions.")
    metadata: dict[str, Any] = {"Lambda": {"Arn": arn}}
    ctx.on_metadata(metadata)
    try:
        answer = invoke(arn, json.dumps(ctx.arguments or {}).encode())
    except ServiceError as exc:
        raise StepFailed(f"Lambda function {arn}: {exc.code}: {exc.message}") from exc
    if answer.function_error:
        raise StepFailed(f"Lambda function {arn} failed: {_error_text(answer.payload)}")
    try:
        document = json.loads(answer.payload or b"null")
    except ValueError as exc:
        raise StepFailed(f"Lambda function {arn} returned a response that is not JSON: {exc}") from exc
    outputs = ctx.step.raw.get("OutputParameters") or []
    if outputs and not isinstance(document, dict):
        raise StepFailed(
            f"Lambda function {arn} returned {type(document).__name__} {document!r:.200}; "
            "a Lambda step with OutputParameters needs a JSON object."
        )
    values = {str(o["OutputName"]): _typed(arn, o, document) for o in outputs}
    metadata["Lambda"]["OutputParameters"] = [{"Name": k, "Value": _wire(v)} for k, v in values.items()]
    return StepOutcome({"OutputParameters": values}, metadata)


def _typed(arn: str, output: Mapping[str, Any], document: Mapping[str, Any]) -> Any:
    name, kind = str(output["OutputName"]), str(output.get("OutputType") or "String")
    if name not in document:
        raise StepFailed(f"Lambda function {arn} returned no output {name!r} (it returned keys {sorted(document)}).")
    try:
        return _TYPES.get(kind, str)(document[name])
    except (TypeError, ValueError) as exc:
        raise StepFailed(f"Lambda function {arn}: output {name!r} = {document[name]!r} is not a {kind}.") from exc


def _error_text(payload: bytes) -> str:
    try:
        error = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")
    if isinstance(error, dict):
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    return str(error)


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
