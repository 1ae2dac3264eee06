"""Pipeline pages: the list, a pipeline's executions and a form to start one with parameters, an execution's live graph
with Stop and Retry, a step's details. Actions are the Start/Stop/RetryPipelineExecution calls a user makes, each with
the idempotency token its form was rendered with (a double submit starts one execution)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import ConsoleApi
from infra.control_plane.console.execution_graph import BOX_HEIGHT, BOX_WIDTH, build_graph

Render = Callable[..., Response]
PAGE_SIZE = 50
_TERMINAL = {"Succeeded", "Failed", "Stopped"}
# Metadata key of a step -> the console's job kind, for the link to the job the step ran.
_JOB_KINDS = {
    "TrainingJob": "training",
    "ProcessingJob": "processing",
    "TransformJob": "transform",
    "TuningJob": "tuning",
}


class PipelinePages:
    def __init__(self, api: ConsoleApi, render: Render) -> None:
        self._api = api
        self._render = render

    def pages(self) -> dict[str, Callable[..., Response]]:
        return {
            "pipelines": self.pipelines,
            "pipeline": self.pipeline,
            "execution": self.execution,
            "execution_status": self.execution_status,
            "step": self.step,
            "stop_execution": self.stop_execution,
            "retry_execution": self.retry_execution,
            "start_execution": self.start_execution,
        }

    def pipelines(self, request: Request) -> Response:
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if request.args.get("page"):
            params["NextToken"] = request.args["page"]
        page = self._api.call("ListPipelines", **params)
        return self._render(
            "pipelines.html", section="pipelines", pipelines=page["PipelineSummaries"], next_token=page.get("NextToken")
        )

    def pipeline(self, request: Request, pipeline: str) -> Response:
        described = self._api.call("DescribePipeline", PipelineName=pipeline)
        params: dict[str, Any] = {"PipelineName": pipeline, "MaxResults": PAGE_SIZE, "SortOrder": "Descending"}
        if request.args.get("page"):
            params["NextToken"] = request.args["page"]
        page = self._api.call("ListPipelineExecutions", **params)
        executions = page.get("PipelineExecutionSummaries") or []
        for summary in executions:
            summary["Id"] = str(summary["PipelineExecutionArn"]).rsplit("/", 1)[-1]
        definition = _definition(described.get("PipelineDefinition"))
        return self._render(
            "pipeline.html",
            section="pipelines",
            pipeline=described,
            executions=executions,
            next_token=page.get("NextToken"),
            parameters=[p for p in definition.get("Parameters") or [] if isinstance(p, dict) and p.get("Name")],
            request_token=secrets.token_hex(16),
        )

    def start_execution(self, request: Request, pipeline: str) -> Response:
        """StartPipelineExecution with the parameters the form sets (a blank field keeps the default)."""
        values = [
            {"Name": key.removeprefix("parameter."), "Value": value}
            for key, value in request.form.items()
            if key.startswith("parameter.") and value != ""
        ]
        start: dict[str, Any] = {"PipelineName": pipeline, "ClientRequestToken": _request_token(request.form)}
        if values:
            start["PipelineParameters"] = values
        display = (request.form.get("display_name") or "").strip()
        if display:
            start["PipelineExecutionDisplayName"] = display
        arn = str(self._api.call("StartPipelineExecution", **start)["PipelineExecutionArn"])
        return _see(f"/console/pipelines/{pipeline}/executions/{arn.rsplit('/', 1)[-1]}")

    def execution(self, request: Request, pipeline: str, execution: str) -> Response:
        arn = self._api.execution_arn(pipeline, execution)
        described = self._api.call("DescribePipelineExecution", PipelineExecutionArn=arn)
        definition = self._api.call("DescribePipelineDefinitionForExecution", PipelineExecutionArn=arn)
        graph = build_graph(json.loads(definition.get("PipelineDefinition") or "{}"))
        steps = self._steps(arn)
        parameters = self._api.list_all(
            "ListPipelineParametersForExecution", "PipelineParameters", PipelineExecutionArn=arn
        )
        return self._render(
            "execution.html",
            section="pipelines",
            pipeline_name=pipeline,
            execution_id=execution,
            execution=described,
            graph=graph,
            box=(BOX_WIDTH, BOX_HEIGHT),
            steps=steps,
            parameters=parameters,
            terminal=described.get("PipelineExecutionStatus") in _TERMINAL,
            request_token=secrets.token_hex(16),
        )

    def execution_status(self, request: Request, pipeline: str, execution: str) -> Response:
        """The live part of the execution page, polled by ``console.js`` until the execution ends."""
        arn = self._api.execution_arn(pipeline, execution)
        described = self._api.call("DescribePipelineExecution", PipelineExecutionArn=arn)
        steps = self._steps(arn)
        body = {
            "status": described.get("PipelineExecutionStatus"),
            "terminal": described.get("PipelineExecutionStatus") in _TERMINAL,
            "steps": {name: step.get("StepStatus") for name, step in steps.items()},
        }
        return Response(json.dumps(body), content_type="application/json")

    def step(self, request: Request, pipeline: str, execution: str, step: str) -> Response:
        arn = self._api.execution_arn(pipeline, execution)
        found = self._steps(arn).get(step)
        if found is None:
            return self._render("error.html", 404, message=f"Step {step} has not started in execution {execution}.")
        jobs = [
            (key, _JOB_KINDS[key], str(value.get("Arn") or "").rsplit("/", 1)[-1])
            for key, value in (found.get("Metadata") or {}).items()
            if key in _JOB_KINDS and isinstance(value, dict)
        ]
        return self._render(
            "step.html",
            section="pipelines",
            pipeline_name=pipeline,
            execution_id=execution,
            step=found,
            jobs=jobs,
            metadata=json.dumps(found.get("Metadata") or {}, indent=2),
        )

    def stop_execution(self, request: Request, pipeline: str, execution: str) -> Response:
        arn = self._api.execution_arn(pipeline, execution)
        token = _request_token(request.form)
        self._api.call("StopPipelineExecution", PipelineExecutionArn=arn, ClientRequestToken=token)
        return _see(f"/console/pipelines/{pipeline}/executions/{execution}")

    def retry_execution(self, request: Request, pipeline: str, execution: str) -> Response:
        arn = self._api.execution_arn(pipeline, execution)
        self._api.call(
            "RetryPipelineExecution", PipelineExecutionArn=arn, ClientRequestToken=_request_token(request.form)
        )
        return _see(f"/console/pipelines/{pipeline}/executions/{execution}")

    def _steps(self, arn: str) -> dict[str, dict[str, Any]]:
        listed = self._api.list_all(
            "ListPipelineExecutionSteps", "PipelineExecutionSteps", PipelineExecutionArn=arn, SortOrder="Ascending"
        )
        return {str(step["StepName"]): step for step in listed}


def _definition(text: Any) -> dict[str, Any]:
    try:
        loaded = json.loads(str(text or "{}"))
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _request_token(form: Mapping[str, str]) -> str:
    """The idempotency token the form was rendered with (SageMaker's ClientRequestToken: 32 to 128 characters)."""
    token = str(form.get("request_token") or "")
    if not 32 <= len(token) <= 128:
        raise BadRequest("The form has no request token; reload the page.")
    return token


def _see(location: str) -> Response:
    return Response("", status=303, headers={"Location": location})
