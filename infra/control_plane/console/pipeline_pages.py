"""Pipeline pages: the list, a pipeline's executions, an execution's live graph, a step's details."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import ConsoleApi
from infra.control_plane.console.execution_graph import BOX_HEIGHT, BOX_WIDTH, build_graph

Render = Callable[..., Response]
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
        }

    def pipelines(self, request: Request) -> Response:
        listed = self._api.list_all("ListPipelines", "PipelineSummaries", SortBy="CreationTime", SortOrder="Descending")
        return self._render("pipelines.html", section="pipelines", pipelines=listed)

    def pipeline(self, request: Request, pipeline: str) -> Response:
        described = self._api.call("DescribePipeline", PipelineName=pipeline)
        executions = self._api.list_all(
            "ListPipelineExecutions", "PipelineExecutionSummaries", limit=100, PipelineName=pipeline
        )
        for summary in executions:
            summary["Id"] = str(summary["PipelineExecutionArn"]).rsplit("/", 1)[-1]
        return self._render("pipeline.html", section="pipelines", pipeline=described, executions=executions)

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
        self._api.call("StopPipelineExecution", PipelineExecutionArn=arn, ClientRequestToken=request.form["token"][:64])
        return Response("", status=303, headers={"Location": f"{request.script_root}{request.path.rsplit('/', 1)[0]}"})

    def _steps(self, arn: str) -> dict[str, dict[str, Any]]:
        listed = self._api.list_all(
            "ListPipelineExecutionSteps", "PipelineExecutionSteps", PipelineExecutionArn=arn, SortOrder="Ascending"
        )
        return {str(step["StepName"]): step for step in listed}
