"""The EMR step: its ``StepConfig`` runs on the stack's EMR (a real local Spark standalone cluster).

``ClusterId``: ``AddJobFlowSteps`` on that cluster (``ActionOnFailure: CONTINUE``, the cluster outlives the step).
``ClusterConfig``: ``RunJobFlow`` with the step as its only step, so the cluster is created for the step and
terminates after it. The step waits for the EMR step to end; its properties are ``DescribeStep``'s ``Step`` (plus
``ClusterId``), its metadata ``EMR: {ClusterId, StepId, StepName, LogFilePath}``. An EMR step that fails fails the
pipeline step with the driver's error (docs/pipelines.md#emr-steps).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol

import botocore.session
from botocore.model import ServiceModel

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request
from infra.control_plane.pipeline_engine.step_types.sagemaker_steps import (
    StepContext,
    StepFailed,
    StepOutcome,
    StepStopped,
)

logger = logging.getLogger(__name__)

_ENDED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})


class EmrApi(Protocol):
    """The EMR operations the step calls (the stack's EMR room, in-process)."""

    def run_job_flow(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def add_job_flow_steps(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def describe_step(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def list_steps(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def cancel_steps(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def terminate_job_flows(self, params: Mapping[str, Any]) -> dict[str, Any]: ...


@lru_cache(maxsize=1)
def _emr_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("emr")


def run_emr_step(ctx: StepContext, emr: EmrApi | None, execution_id: str) -> StepOutcome:
    if emr is None:
        raise StepFailed(f"Step {ctx.step.name}: this stack serves no EMR API.")
    arguments = ctx.arguments or {}
    step_config = {"Name": ctx.step.name, **(arguments.get("StepConfig") or {})}
    if arguments.get("ClusterId"):
        cluster_id = str(arguments["ClusterId"])
        request = {"JobFlowId": cluster_id, "Steps": [{**step_config, "ActionOnFailure": "CONTINUE"}]}
        step_id = str(_call(ctx, emr.add_job_flow_steps, "AddJobFlowSteps", request)["StepIds"][0])
        owned = False
    elif arguments.get("ClusterConfig"):
        request = _run_job_flow_request(ctx, arguments["ClusterConfig"], step_config, execution_id)
        cluster_id = str(_call(ctx, emr.run_job_flow, "RunJobFlow", request)["JobFlowId"])
        step_id = str(_call(ctx, emr.list_steps, "ListSteps", {"ClusterId": cluster_id})["Steps"][0]["Id"])
        owned = True
    else:
        raise StepFailed(f"Step {ctx.step.name}: an EMR step needs ClusterId or ClusterConfig.")
    return _follow(ctx, emr, cluster_id, step_id, owned)


def _run_job_flow_request(
    ctx: StepContext, config: Mapping[str, Any], step_config: Mapping[str, Any], execution_id: str
) -> dict[str, Any]:
    instances = {**(config.get("Instances") or {}), "KeepJobFlowAliveWhenNoSteps": False}
    return {
        **config,
        "Name": f"sagemaker-{ctx.step.name}-{execution_id}"[:256],
        "Instances": instances,
        "Steps": [{**step_config, "ActionOnFailure": "TERMINATE_CLUSTER"}],
    }


def _follow(ctx: StepContext, emr: EmrApi, cluster_id: str, step_id: str, owned: bool) -> StepOutcome:
    step: dict[str, Any] = {}
    stop_sent = False
    while True:
        step = _call(ctx, emr.describe_step, "DescribeStep", {"ClusterId": cluster_id, "StepId": step_id})["Step"]
        ctx.on_metadata(_metadata(cluster_id, step))
        if step["Status"]["State"] in _ENDED:
            break
        if ctx.stop.is_set() and not stop_sent:
            stop_sent = True
            _stop(emr, cluster_id, step_id, owned)
        if stop_sent:
            time.sleep(ctx.poll_seconds)
        else:
            ctx.stop.wait(ctx.poll_seconds)
    if stop_sent:
        raise StepStopped(f"EMR step {step_id} on {cluster_id} was stopped")
    state = step["Status"]["State"]
    if state != "COMPLETED":
        details = step["Status"].get("FailureDetails") or {}
        reason = details.get("Reason") or f"the EMR step ended {state}"
        log = f" (logs: {details['LogFile']})" if details.get("LogFile") else ""
        raise StepFailed(f"EMR step {step_id} on cluster {cluster_id} {state}: {reason}{log}")
    return StepOutcome({**step, "ClusterId": cluster_id}, _metadata(cluster_id, step))


def _metadata(cluster_id: str, step: Mapping[str, Any]) -> dict[str, Any]:
    emr = {"ClusterId": cluster_id, "StepId": step["Id"], "StepName": step["Name"]}
    if step.get("LogUri"):
        emr["LogFilePath"] = step["LogUri"]
    return {"EMR": emr}


def _stop(emr: EmrApi, cluster_id: str, step_id: str, owned: bool) -> None:
    try:
        if owned:
            emr.terminate_job_flows({"JobFlowIds": [cluster_id]})
        else:
            emr.cancel_steps({"ClusterId": cluster_id, "StepIds": [step_id]})
    except ServiceError as exc:
        logger.info("stopping EMR step %s on %s: %s", step_id, cluster_id, exc.message)


def _call(ctx: StepContext, handler: Any, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """One EMR operation, validated and shaped as over HTTP (timestamps become epoch numbers)."""
    op_model = _emr_model().operation_model(operation)
    try:
        validate_request(dict(params), op_model.input_shape)
        answer = handler(params)
    except ServiceError as exc:
        raise StepFailed(f"Step {ctx.step.name}: EMR {operation}: {exc.code}: {exc.message}") from exc
    shaped: dict[str, Any] = json.loads(json.dumps(shape_response(answer, op_model.output_shape), default=str))
    return shaped
