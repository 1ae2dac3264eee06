"""The execution engine: schedules ready steps in parallel (up to the limit), retries, caches, stops and fails.

One coordinator thread per execution and one thread per running step. A step becomes ready when every upstream step
has Succeeded; a failure or a stop lets running steps finish but starts nothing new. Whatever goes wrong inside the
engine itself ends the execution ``Failed`` with the reason: an execution is never left ``Executing``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.pipeline_engine.cache import StepCache
from infra.control_plane.pipeline_engine.definition import Step, StepType, is_notebook_job
from infra.control_plane.pipeline_engine.expressions import ExpressionError, Scope, evaluate_condition, resolve
from infra.control_plane.pipeline_engine.operations import Operations
from infra.control_plane.pipeline_engine.policies import CachePolicy, RetryPolicy, cache_key, retry_policies
from infra.control_plane.pipeline_engine.resources import Execution, ExecutionStatus, StepRecord, StepStatus
from infra.control_plane.pipeline_engine.step_types.callback_step import CallbackTokens, SendMessage, run_callback_step
from infra.control_plane.pipeline_engine.step_types.check_steps import CHECK_TYPES, run_check_step
from infra.control_plane.pipeline_engine.step_types.emr_step import EmrApi, run_emr_step
from infra.control_plane.pipeline_engine.step_types.lambda_step import LambdaInvoker, run_lambda_step
from infra.control_plane.pipeline_engine.step_types.notebook_job_step import NotebookRunner, run_notebook_job_step
from infra.control_plane.pipeline_engine.step_types.sagemaker_steps import (
    StepContext,
    StepFailed,
    StepOutcome,
    StepStopped,
    child_name,
    run_step,
)

logger = logging.getLogger(__name__)

_DEFAULT_SERVICE_RETRY = RetryPolicy(frozenset({"Step.SERVICE_FAULT", "Step.THROTTLING"}), max_attempts=5)


@dataclass(frozen=True)
class EngineSettings:
    """The stack settings the engine reads (StackSettings.pipeline_*)."""

    poll_seconds: float = 0.1
    parallelism: int = 50
    callback_timeout_seconds: float = 7 * 24 * 3600.0


@dataclass(frozen=True)
class EngineContext:
    operations: Operations
    read_s3: Callable[[str], bytes]
    cache: StepCache
    poll_seconds: float = 0.1
    default_parallelism: int = 50
    write_s3: Callable[[str, bytes], None] | None = None
    invoke_lambda: LambdaInvoker | None = None
    callback_tokens: CallbackTokens = field(default_factory=CallbackTokens)
    send_sqs: SendMessage | None = None
    emr: Callable[[], EmrApi | None] = lambda: None
    notebooks: Callable[[], NotebookRunner | None] = lambda: None


@dataclass
class ExecutionRunner:
    execution: Execution
    ctx: EngineContext
    _done: queue.Queue[str] = field(default_factory=queue.Queue)

    def start(self) -> None:
        thread = threading.Thread(target=self._main, name=f"pipeline-{self.execution.execution_id}", daemon=True)
        thread.start()

    def _main(self) -> None:
        try:
            self._schedule()
        except Exception as exc:  # the engine must never leave an execution Executing
            logger.exception("pipeline execution %s crashed", self.execution.arn)
            self.execution.finish(ExecutionStatus.FAILED, f"Internal error in the pipeline engine: {exc!r}")

    def _schedule(self) -> None:
        execution = self.execution
        limit = execution.max_parallel(self.ctx.default_parallelism)
        running: set[str] = set()
        failure: str | None = None
        while True:
            if failure is None and not execution.stop_requested.is_set():
                for name in self._ready(running):
                    if len(running) >= limit:
                        break
                    running.add(name)
                    threading.Thread(target=self._run_step, args=(name,), daemon=True).start()
            if not running:
                break
            finished = self._done.get()
            running.discard(finished)
            failure = failure or self._failure_of(finished)
        self._finish(failure)

    def _ready(self, running: set[str]) -> list[str]:
        execution, definition = self.execution, self.execution.definition
        with execution.lock:
            succeeded = {n for n, r in execution.steps.items() if r.status is StepStatus.SUCCEEDED}
            for name in definition.order:  # a step downstream of a skipped step is skipped too
                if name not in execution.steps and definition.upstream[name] & execution.skipped:
                    execution.skipped.add(name)
            return [
                name
                for name in definition.order
                if name not in execution.steps
                and name not in running
                and name not in execution.skipped
                and (not execution.selected_steps or name in execution.selected_steps)
                and definition.upstream[name] <= succeeded
            ]

    def _failure_of(self, name: str) -> str | None:
        record = self.execution.steps[name]
        if record.status is StepStatus.FAILED:
            return f"Step {name} failed: {record.failure_reason}"
        return None

    def _finish(self, failure: str | None) -> None:
        if self.execution.stop_requested.is_set():
            self.execution.finish(ExecutionStatus.STOPPED)
        elif failure is not None:
            self.execution.finish(ExecutionStatus.FAILED, failure)
        else:
            self.execution.finish(ExecutionStatus.SUCCEEDED)
        logger.info("pipeline execution %s ended %s", self.execution.arn, self.execution.status.value)

    def _run_step(self, name: str) -> None:
        step = self.execution.definition.steps[name]
        record = StepRecord(name, step.type.value, step.display_name, step.description)
        with self.execution.lock:
            self.execution.steps[name] = record
        try:
            outcome = self._attempts(step, record)
            record.properties, record.metadata = outcome.properties, {**record.metadata, **outcome.metadata}
            record.status = StepStatus.SUCCEEDED
        except StepStopped:
            record.status = StepStatus.STOPPED
        except StepFailed as exc:
            record.status, record.failure_reason = StepStatus.FAILED, exc.reason
            if exc.by_fail_step:
                self.execution.failed_by_fail_step = True
        except Exception as exc:
            logger.exception("step %s of %s crashed", name, self.execution.arn)
            record.status, record.failure_reason = StepStatus.FAILED, f"Internal error running the step: {exc!r}"
        finally:
            record.end_time = utcnow()
            self._done.put(name)

    def _attempts(self, step: Step, record: StepRecord) -> StepOutcome:
        policies = retry_policies(step)
        started = time.monotonic()
        while True:
            try:
                return self._attempt(step, record)
            except StepFailed as exc:
                policy = _matching(policies, exc.exception_type)
                retries = record.attempt_count - 1
                if policy is None or _exhausted(policy, retries, started):
                    raise
                delay = policy.delay(retries + 1)
                logger.info("step %s: retrying in %.1fs after %s", step.name, delay, exc.reason)
                if self.execution.stop_requested.wait(delay):
                    raise StepStopped(step.name) from exc
                record.attempt_count += 1

    def _attempt(self, step: Step, record: StepRecord) -> StepOutcome:
        job_name = child_name(step, self.execution.execution_id)
        scope = self._scope(step, job_name)
        record.status = StepStatus.EXECUTING
        try:
            if step.type is StepType.CONDITION:
                return self._condition(step, scope)
            if step.type is StepType.FAIL:
                message = str(resolve(step.raw.get("Arguments", {}).get("ErrorMessage", ""), scope))
                record.metadata = {"Fail": {"ErrorMessage": message}}
                raise StepFailed(message, by_fail_step=True)
            arguments = resolve(step.arguments, scope)
            fields = resolve(step.check_fields(), scope) if step.type in CHECK_TYPES else {}
            if step.type is StepType.LAMBDA:
                fields = {"FunctionArn": resolve(step.raw.get("FunctionArn"), scope)}
            if step.type is StepType.CALLBACK:
                fields = {"SqsQueueUrl": resolve(step.raw.get("SqsQueueUrl"), scope)}
        except ExpressionError as exc:
            raise StepFailed(f"Step {step.name}: {exc}") from exc
        return self._cached_or_run(step, record, arguments, job_name, fields)

    def _condition(self, step: Step, scope: Scope) -> StepOutcome:
        outcome = all(evaluate_condition(c, scope) for c in step.arguments.get("Conditions") or [])
        with self.execution.lock:
            for other in self.execution.definition.steps.values():
                if other.branch_of == (step.name, not outcome):
                    self.execution.skipped.add(other.name)
        return StepOutcome({"Outcome": outcome}, {"Condition": {"Outcome": "True" if outcome else "False"}})

    def _cached_or_run(
        self, step: Step, record: StepRecord, arguments: Any, job_name: str, fields: dict[str, Any]
    ) -> StepOutcome:
        pipeline = self.execution.pipeline.name
        policy = CachePolicy.of(step)
        key = cache_key(step, {**arguments, **fields}) if policy is not None else None
        if policy is not None and key is not None:
            hit = self.ctx.cache.lookup(pipeline, key, policy.expire_after)
            if hit is not None:
                record.cache_source = hit.execution_arn
                return StepOutcome(hit.properties, hit.metadata)

        def on_metadata(metadata: dict[str, Any]) -> None:
            record.metadata = metadata

        context = StepContext(
            step,
            arguments,
            job_name,
            self.ctx.operations,
            self.execution.stop_requested,
            self.ctx.poll_seconds,
            on_metadata,
            fields,
            self.ctx.read_s3,
            self.ctx.write_s3,
        )
        if step.type is StepType.LAMBDA:
            outcome = run_lambda_step(context, self.ctx.invoke_lambda)
        elif step.type is StepType.CALLBACK:
            outcome = run_callback_step(context, self.execution.arn, self.ctx.callback_tokens, self.ctx.send_sqs)
        elif step.type is StepType.EMR:
            outcome = run_emr_step(context, self.ctx.emr(), self.execution.execution_id)
        elif is_notebook_job(step):
            outcome = run_notebook_job_step(context, self.ctx.notebooks())
        else:
            outcome = run_check_step(context) if step.type in CHECK_TYPES else run_step(context)
        if key is not None:
            self.ctx.cache.record(pipeline, key, self.execution.arn, outcome.properties, outcome.metadata)
        return outcome

    def _scope(self, step: Step, job_name: str) -> Scope:
        execution = self.execution
        with execution.lock:
            properties = {n: r.properties for n, r in execution.steps.items() if r.properties is not None}
        job_variable = {StepType.TRAINING: "TrainingJobName", StepType.PROCESSING: "ProcessingJobName"}.get(step.type)

        def dynamic(name: str) -> Any:
            if name == "CurrentDateTime":
                return datetime.now(tz=UTC).isoformat()
            return job_name if name == job_variable else None

        return Scope(
            parameters=execution.parameters,
            variables=execution_variables(execution),
            properties=properties,
            property_files={s.name: s.property_files for s in execution.definition.steps.values()},
            read_s3=self.ctx.read_s3,
            experiment=execution.experiment,
            dynamic=dynamic,
        )


def execution_variables(execution: Execution) -> dict[str, Any]:
    return {
        "StartDateTime": execution.creation_time.isoformat(),
        "PipelineName": execution.pipeline.name,
        "PipelineArn": execution.pipeline.arn,
        "PipelineExecutionId": execution.execution_id,
        "PipelineExecutionArn": execution.arn,
    }


def _matching(policies: tuple[RetryPolicy, ...], exception_type: str | None) -> RetryPolicy | None:
    if exception_type is None:
        return None
    for policy in policies:
        if exception_type in policy.exception_types:
            return policy
    return _DEFAULT_SERVICE_RETRY if exception_type in _DEFAULT_SERVICE_RETRY.exception_types else None


def _exhausted(policy: RetryPolicy, retries: int, started: float) -> bool:
    if policy.expire_after_minutes is not None:
        return time.monotonic() - started > policy.expire_after_minutes * 60
    return policy.max_attempts is None or retries >= policy.max_attempts
