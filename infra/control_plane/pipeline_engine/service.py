"""The Pipelines API handlers of one account/region (CreatePipeline ... RetryPipelineExecution)."""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Mapping, MutableMapping
from typing import Any

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location, SqsAccess
from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ResourceNotFound, ValidationException
from infra.control_plane.core.idempotency import IdempotencyTokens
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, not_found, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.pipeline_engine.cache import StepCache, open_model_reuse
from infra.control_plane.pipeline_engine.definition import (
    Definition,
    DefinitionError,
    StepType,
    parse_definition,
)
from infra.control_plane.pipeline_engine.engine import (
    EngineContext,
    EngineSettings,
    ExecutionRunner,
    execution_variables,
)
from infra.control_plane.pipeline_engine.expressions import ExpressionError, Scope, resolve
from infra.control_plane.pipeline_engine.operations import Operations, Services
from infra.control_plane.pipeline_engine.pipeline_requests import (
    CreatePipelineRequest,
    ParallelismConfiguration,
    StartPipelineExecutionRequest,
    UpdatePipelineRequest,
    parameter_text,
    resolve_parameters,
)
from infra.control_plane.pipeline_engine.pipeline_versions import PipelineVersions
from infra.control_plane.pipeline_engine.policies import CachePolicy, retry_policies
from infra.control_plane.pipeline_engine.property_paths import check_property_references
from infra.control_plane.pipeline_engine.resources import (
    Execution,
    ExecutionStatus,
    Pipeline,
    PipelineVersion,
    StepRecord,
    StepStatus,
)
from infra.control_plane.pipeline_engine.selective_execution import selective_start
from infra.control_plane.pipeline_engine.step_types.callback_step import CallbackTokens
from infra.control_plane.pipeline_engine.step_types.emr_step import EmrApi
from infra.control_plane.pipeline_engine.step_types.lambda_step import LambdaAnswer, LambdaInvoker
from infra.control_plane.pipeline_engine.step_types.notebook_job_step import NotebookRunner

logger = logging.getLogger(__name__)

RUNNABLE = frozenset(
    {StepType.PROCESSING, StepType.TRAINING, StepType.TRANSFORM, StepType.MODEL, StepType.REGISTER_MODEL}
    | {StepType.CONDITION, StepType.FAIL, StepType.CLARIFY_CHECK, StepType.QUALITY_CHECK, StepType.LAMBDA}
    | {StepType.CALLBACK, StepType.ENDPOINT_CONFIG, StepType.ENDPOINT, StepType.EMR}
)
_LATER = {
    StepType.TUNING: "needs CreateHyperParameterTuningJob, which this stack does not implement yet",
    StepType.AUTO_ML: "the stack serves no CreateAutoMLJob",
}
_ID_CHARS = string.ascii_lowercase + string.digits

_PIPELINES: ListSpec[Pipeline] = ListSpec(
    name=lambda p: p.name, creation_time=lambda p: p.creation_time, last_modified=lambda p: p.last_modified
)
_EXECUTIONS: ListSpec[Execution] = ListSpec(
    name=lambda e: e.arn,
    creation_time=lambda e: e.creation_time,
    extra_sort_keys={"PipelineExecutionArn": lambda e: e.arn},
)
_STEPS: ListSpec[StepRecord] = ListSpec(
    name=lambda s: s.name, creation_time=lambda s: s.start_time, default_max_results=100
)


class Pipelines:
    def __init__(
        self,
        account_id: str,
        region: str,
        services: Services,
        s3: S3Access,
        settings: EngineSettings,
        sqs: SqsAccess | None = None,
    ) -> None:
        self._account_id, self._region, self._s3 = account_id, region, s3
        self.operations = Operations(services)
        open_model_reuse(self.operations)  # here, inside the backend's record binding: its entries are stored
        self.store: Store[Pipeline] = Store(
            "pipeline", not_found("Pipeline '{name}' does not exist.", ResourceNotFound), Pipeline
        )
        self.executions: MutableMapping[str, Execution] = DurableMap("pipeline-execution", Execution)
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("pipeline-tags", list)
        self._tokens = IdempotencyTokens("pipeline-request-token")
        self.invoke_lambda: LambdaInvoker | None = None  # set by the composition root (the Lambda room's invoke)
        self.emr: EmrApi | None = None  # set by the composition root (the EMR room)
        self.notebooks: NotebookRunner | None = None  # set by the composition root (runs NotebookJobStep)
        self._engine = EngineContext(
            self.operations,
            self._read_s3,
            StepCache(),
            settings.poll_seconds,
            settings.parallelism,
            write_s3=self._write_s3,
            invoke_lambda=self._invoke_lambda,
            callback_tokens=CallbackTokens(settings.callback_timeout_seconds),
            send_sqs=sqs.send if sqs is not None else None,
            emr=lambda: self.emr,
            notebooks=lambda: self.notebooks,
        )
        self.callbacks = self._engine.callback_tokens  # answers SendPipelineExecutionStep{Success,Failure}
        self.versions = PipelineVersions(self._pipeline, lambda: list(self.executions.values()))

    # --- pipelines -------------------------------------------------------------------------------------------

    def create_pipeline(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._tokens.answer(
            "CreatePipeline", params, lambda: self._create(parse_request(CreatePipelineRequest, params), params)
        )

    def _create(self, request: CreatePipelineRequest, params: Mapping[str, Any]) -> dict[str, Any]:
        name = request.pipeline_name
        if self.store.find(name) is not None:
            raise ValidationException(
                "Pipeline names must be unique within an AWS account and region. "
                f"Pipeline with name ({name}) already exists."
            )
        text, definition = self._definition(request)
        pipeline = Pipeline(
            name=name,
            arn=arn_for("pipeline", name, self._account_id, self._region),
            role_arn=request.role_arn,
            versions=[PipelineVersion(1, text, definition)],
            display_name=request.pipeline_display_name,
            description=request.pipeline_description,
            parallelism=request.parallelism_configuration,
        )
        self.store.add(name, pipeline, lambda n: ValidationException(f"Pipeline with name ({n}) already exists."))
        self.tags[pipeline.arn] = tags_from(params)
        logger.info("created pipeline %s (%d steps)", name, len(definition.steps))
        return {"PipelineArn": pipeline.arn}

    def update_pipeline(self, params: Mapping[str, Any]) -> dict[str, Any]:
        request = parse_request(UpdatePipelineRequest, params)
        pipeline = self._pipeline(request.pipeline_name)
        if request.pipeline_definition is not None or request.pipeline_definition_s3_location is not None:
            text, definition = self._definition(request)
            pipeline.versions.append(PipelineVersion(pipeline.latest.version_id + 1, text, definition))
        if request.pipeline_display_name is not None:
            pipeline.display_name = request.pipeline_display_name
        if request.pipeline_description is not None:
            pipeline.description = request.pipeline_description
        if request.role_arn is not None:
            pipeline.role_arn = request.role_arn
        if request.parallelism_configuration is not None:
            pipeline.parallelism = request.parallelism_configuration
        pipeline.last_modified = utcnow()
        return {"PipelineArn": pipeline.arn, "PipelineVersionId": pipeline.latest.version_id}

    def describe_pipeline(self, params: Mapping[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline(str(params["PipelineName"]))
        version = pipeline.version(params.get("PipelineVersionId"))
        if version is None:
            raise ResourceNotFound(
                f"Pipeline version {params.get('PipelineVersionId')} of {pipeline.name} does not exist."
            )
        return pipeline.to_api(version)

    def list_pipelines(self, params: Mapping[str, Any]) -> dict[str, Any]:
        prefix = str(params.get("PipelineNamePrefix") or "")
        pipelines = [p for p in self.store.values() if p.name.startswith(prefix)]
        page, token = paginate(pipelines, params, _PIPELINES)
        return {"PipelineSummaries": [p.summary() for p in page], "NextToken": token}

    def delete_pipeline(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._tokens.answer("DeletePipeline", params, lambda: self._delete(params))

    def _delete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline(str(params["PipelineName"]))
        for arn, execution in list(self.executions.items()):
            if execution.pipeline is pipeline:
                execution.stop_requested.set()
                del self.executions[arn]
        self.store.remove(pipeline.name)
        self.tags.pop(pipeline.arn, None)
        self._engine.cache.forget(pipeline.name)
        return {"PipelineArn": pipeline.arn}

    # --- executions ------------------------------------------------------------------------------------------

    def start_pipeline_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._tokens.answer(
            "StartPipelineExecution", params, lambda: self._start(parse_request(StartPipelineExecutionRequest, params))
        )

    def _start(self, request: StartPipelineExecutionRequest) -> dict[str, Any]:
        pipeline = self._pipeline(request.pipeline_name)
        version = pipeline.version(request.pipeline_version_id)
        if version is None:
            raise ValidationException(f"Pipeline version {request.pipeline_version_id} does not exist.")
        execution_id = "".join(secrets.choice(_ID_CHARS) for _ in range(12))
        selective = request.selective_execution_config
        chosen, reused = selective_start(version.definition, selective, pipeline.arn, self._execution_by_arn)
        execution = Execution(
            arn=f"{pipeline.arn}/execution/{execution_id}",
            execution_id=execution_id,
            pipeline=pipeline,
            version=version,
            parameters=resolve_parameters(version.definition, request.pipeline_parameters),
            display_name=request.pipeline_execution_display_name,
            description=request.pipeline_execution_description,
            parallelism=request.parallelism_configuration,
            steps=reused,
            selected_steps=chosen,
            selective_source=selective.source_pipeline_execution_arn if selective is not None else None,
        )
        execution.experiment = self._experiment(execution)
        self.executions[execution.arn] = execution
        pipeline.last_run_time = execution.creation_time
        ExecutionRunner(execution, self._engine).start()
        return {"PipelineExecutionArn": execution.arn}

    def describe_pipeline_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._execution(params).to_api()

    def list_pipeline_executions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline(str(params["PipelineName"]))
        executions = [e for e in self.executions.values() if e.pipeline is pipeline]
        page, token = paginate(executions, params, _EXECUTIONS)
        return {"PipelineExecutionSummaries": [e.summary() for e in page], "NextToken": token}

    def list_pipeline_execution_steps(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        with execution.lock:
            records = list(execution.steps.values())
        page, token = paginate(records, params, _STEPS)
        return {"PipelineExecutionSteps": [r.to_api() for r in page], "NextToken": token}

    def list_pipeline_parameters_for_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        values = [{"Name": k, "Value": parameter_text(v)} for k, v in execution.parameters.items()]
        return {"PipelineParameters": values}

    def describe_pipeline_definition_for_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        return {"PipelineDefinition": execution.version.definition_text, "CreationTime": execution.creation_time}

    def stop_pipeline_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._tokens.answer("StopPipelineExecution", params, lambda: self._stop(params))

    def _stop(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        with execution.lock:
            if execution.status is not ExecutionStatus.EXECUTING:
                raise ValidationException(
                    f"Pipeline execution {execution.arn} is {execution.status.value}; "
                    "only an Executing one can be stopped."
                )
            execution.status = ExecutionStatus.STOPPING
            for record in execution.steps.values():
                if record.status in (StepStatus.STARTING, StepStatus.EXECUTING):
                    record.status = StepStatus.STOPPING
        execution.stop_requested.set()
        return {"PipelineExecutionArn": execution.arn}

    def recover_after_restart(self) -> None:
        """Executions point at their stored pipeline again; running ones end Failed with the restart reason and
        their running steps Failed, so ``RetryPipelineExecution`` resumes them after the succeeded steps."""
        for arn in list(self.executions):
            execution = self.executions[arn]
            with execution.lock:
                pipeline = self.store.find(execution.pipeline.name)
                if pipeline is not None:
                    execution.pipeline = pipeline
                    execution.version = pipeline.version(execution.version.version_id) or execution.version
                if execution.status not in (ExecutionStatus.EXECUTING, ExecutionStatus.STOPPING):
                    continue
                stopping = execution.status is ExecutionStatus.STOPPING
                for record in execution.steps.values():
                    if record.status in (StepStatus.STARTING, StepStatus.EXECUTING, StepStatus.STOPPING):
                        record.status = StepStatus.STOPPED if stopping else StepStatus.FAILED
                        record.failure_reason, record.end_time = RESTART_REASON, utcnow()
                execution.finish(ExecutionStatus.STOPPED if stopping else ExecutionStatus.FAILED, RESTART_REASON)

    def retry_pipeline_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._tokens.answer("RetryPipelineExecution", params, lambda: self._retry(params))

    def _retry(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        with execution.lock:
            if execution.status is not ExecutionStatus.FAILED:
                raise ValidationException(
                    f"Pipeline execution {execution.arn} is {execution.status.value}; only a Failed one can be retried."
                )
            if execution.failed_by_fail_step:
                raise ValidationException(
                    f"Pipeline execution {execution.arn} ended in a Fail step and cannot be retried."
                )
            execution.steps = {n: r for n, r in execution.steps.items() if r.status is StepStatus.SUCCEEDED}
            execution.status, execution.failure_reason = ExecutionStatus.EXECUTING, None
            if params.get("ParallelismConfiguration"):
                execution.parallelism = parse_request(ParallelismConfiguration, params["ParallelismConfiguration"])
            execution.last_modified = utcnow()
        ExecutionRunner(execution, self._engine).start()
        return {"PipelineExecutionArn": execution.arn}

    def update_pipeline_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        with execution.lock:
            execution.description = params.get("PipelineExecutionDescription", execution.description)
            execution.display_name = params.get("PipelineExecutionDisplayName", execution.display_name)
            if "ParallelismConfiguration" in params:
                execution.parallelism = parse_request(ParallelismConfiguration, params["ParallelismConfiguration"])
        return {"PipelineExecutionArn": execution.arn}

    # --- helpers ---------------------------------------------------------------------------------------------

    def _pipeline(self, name_or_arn: str) -> Pipeline:
        if name_or_arn.startswith("arn:"):
            for pipeline in self.store.values():
                if pipeline.arn == name_or_arn.lower():
                    return pipeline
            raise ResourceNotFound(f"Pipeline '{name_or_arn}' does not exist.")
        return self.store.get_or_raise(name_or_arn)

    def _execution(self, params: Mapping[str, Any]) -> Execution:
        if params.get("PipelineExecutionArn") is None:
            raise ValidationException("PipelineExecutionArn is required.")
        return self._execution_by_arn(str(params["PipelineExecutionArn"]))

    def _execution_by_arn(self, arn: str) -> Execution:
        execution = self.executions.get(arn)
        if execution is None:
            raise ResourceNotFound(f"Pipeline execution '{arn}' does not exist.")
        return execution

    def _definition(self, request: UpdatePipelineRequest) -> tuple[str, Definition]:
        text, location = request.pipeline_definition, request.pipeline_definition_s3_location
        if text is None and location is None:
            raise ValidationException("One of PipelineDefinition or PipelineDefinitionS3Location is required.")
        if text is not None and location is not None:
            raise ValidationException("Give PipelineDefinition or PipelineDefinitionS3Location, not both.")
        if text is None and location is not None:
            uri = location.uri
            try:
                text = self._read_s3(uri).decode("utf-8")
            except (S3AccessError, UnicodeDecodeError) as exc:
                raise ValidationException(f"PipelineDefinitionS3Location {uri} cannot be read: {exc}") from exc
        try:
            definition = parse_definition(str(text))
            self._check_supported(definition)
            check_property_references(definition)
            for step in definition.steps.values():
                CachePolicy.of(step)
                retry_policies(step)
        except DefinitionError as exc:
            raise ValidationException(str(exc)) from exc
        return str(text), definition

    def _check_supported(self, definition: Definition) -> None:
        tuning = self.operations.supports("CreateHyperParameterTuningJob")
        supported = ", ".join(t.value for t in StepType if t in RUNNABLE or (t is StepType.TUNING and tuning))
        for step in definition.steps.values():
            if step.type in RUNNABLE or (step.type is StepType.TUNING and tuning):
                continue
            why = _LATER.get(step.type, "the Sagestack local control plane does not run it")
            raise DefinitionError(
                f"Step {step.name}: step type {step.type.value} is not supported locally yet ({why}). "
                f"Supported: {supported}."
            )

    def _experiment(self, execution: Execution) -> dict[str, Any]:
        config = execution.definition.experiment_config
        if not isinstance(config, Mapping):
            return {}
        scope = Scope(execution.parameters, execution_variables(execution), {}, {}, self._read_s3)
        try:
            return {k: str(v) for k, v in resolve(dict(config), scope).items() if v is not None}
        except ExpressionError:
            return {}

    def _invoke_lambda(self, arn: str, payload: bytes) -> LambdaAnswer:
        if self.invoke_lambda is None:
            raise LookupError("no Lambda functions are served by this stack")
        return self.invoke_lambda(arn, payload)

    def _read_s3(self, uri: str) -> bytes:
        return self._s3.get_bytes(S3Location.parse(uri))

    def _write_s3(self, uri: str, data: bytes) -> None:
        self._s3.put_bytes(S3Location.parse(uri), data)
