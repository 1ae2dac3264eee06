"""The EMR API of one account/region as far as clusters and Spark steps go (docs/spark.md#8-emr-clusters-locally).

``RunJobFlow`` starts a real Spark standalone cluster (master + one worker per core/task instance) and a thread that
runs the cluster's steps one at a time, in order, as EMR does with ``StepConcurrencyLevel`` 1. A cluster without
``KeepJobFlowAliveWhenNoSteps`` terminates once its steps are done; ``TerminateJobFlows`` ends the running step and
the cluster. Clusters live in memory: a stack restart ends them (their Spark processes die with the stack).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.emr.emr_resources import (
    ENDED_STEP,
    ActionOnFailure,
    ClusterState,
    EmrCluster,
    EmrStep,
    InvalidRequestException,
    StepState,
    new_id,
)
from infra.control_plane.emr.spark_steps import RunningStep, StepEnvironment, run_spark_step, upload_step_logs
from infra.control_plane.emr.standalone_cluster import SparkClusterError, StandaloneCluster

logger = logging.getLogger(__name__)

MAX_WORKERS_PER_CLUSTER = 8
MAX_ACTIVE_CLUSTERS = 4
MAX_STEPS_PER_CLUSTER = 256
PAGE_SIZE = 50
_WORKER_ROLES = ("CORE", "TASK")
_CLUSTERS: ListSpec[EmrCluster] = ListSpec(name=lambda c: c.id, creation_time=lambda c: c.created)
_Ending = tuple[ClusterState, str, str]  # the cluster's end state, StateChangeReason code and message


@dataclass(frozen=True)
class EmrSettings:
    work_root: Path
    stack_url: str
    startup_timeout_seconds: float = 180.0


class EmrClusters:
    def __init__(self, account_id: str, region: str, environment: StepEnvironment, settings: EmrSettings) -> None:
        self._account_id, self._region = account_id, region
        self._environment, self._settings = environment, settings
        self._clusters: dict[str, EmrCluster] = {}
        self._running: dict[str, RunningStep] = {}
        self._spark: dict[str, StandaloneCluster] = {}
        self._lock = threading.Lock()

    # --- clusters ------------------------------------------------------------------------------------------------

    def run_job_flow(self, params: Mapping[str, Any]) -> dict[str, Any]:
        instances = params.get("Instances") or {}
        workers = worker_count(instances)
        cluster_id = new_id("j-")
        cluster = EmrCluster(
            id=cluster_id,
            arn=f"arn:aws:elasticmapreduce:{self._region}:{self._account_id}:cluster/{cluster_id}",
            name=str(params["Name"]),
            request=dict(params),
            worker_count=workers,
            keep_alive=bool(instances.get("KeepJobFlowAliveWhenNoSteps", False)),
            termination_protected=bool(instances.get("TerminationProtected", False)),
            log_uri=params.get("LogUri"),
        )
        cluster.steps = [self._new_step(cluster, s) for s in params.get("Steps") or []]
        with self._lock:
            active = [c for c in self._clusters.values() if not c.is_ended]
            if len(active) >= MAX_ACTIVE_CLUSTERS:
                raise ValidationException(
                    f"This stack runs at most {MAX_ACTIVE_CLUSTERS} EMR clusters at once; terminate one first "
                    f"(active: {', '.join(c.id for c in active)})."
                )
            self._clusters[cluster_id] = cluster
        threading.Thread(target=self._lifecycle, args=(cluster,), name=f"emr-{cluster_id}", daemon=True).start()
        return {"JobFlowId": cluster_id, "ClusterArn": cluster.arn}

    def describe_cluster(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"Cluster": self._cluster(str(params["ClusterId"])).to_api()}

    def list_clusters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        states = set(params.get("ClusterStates") or [])
        after, before = params.get("CreatedAfter"), params.get("CreatedBefore")
        with self._lock:
            clusters = [
                c
                for c in self._clusters.values()
                if (not states or c.state.value in states) and _within(c.created, after, before)
            ]
        page, marker = paginate(clusters, _page(params), _CLUSTERS)
        return {"Clusters": [c.summary() for c in page], **({"Marker": marker} if marker else {})}

    def terminate_job_flows(self, params: Mapping[str, Any]) -> dict[str, Any]:
        clusters = [self._cluster(str(i)) for i in params["JobFlowIds"]]
        protected = [c.id for c in clusters if c.termination_protected and not c.is_ended]
        if protected:
            raise ValidationException(
                "Could not shut down one or more job flows since they are termination protected: "
                + ", ".join(protected)
            )
        for cluster in clusters:
            self._request_termination(cluster)
        return {}

    def set_termination_protection(self, params: Mapping[str, Any]) -> dict[str, Any]:
        for cluster_id in params["JobFlowIds"]:
            cluster = self._cluster(str(cluster_id))
            with cluster.lock:
                cluster.termination_protected = bool(params["TerminationProtected"])
        return {}

    # --- steps ---------------------------------------------------------------------------------------------------

    def add_job_flow_steps(self, params: Mapping[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(str(params["JobFlowId"]))
        with cluster.lock:
            if cluster.is_ended or cluster.state is ClusterState.TERMINATING:
                raise ValidationException(
                    f"A job flow that is shutting down, terminated, or finished may not be "
                    f"modified: {cluster.id} is {cluster.state.value}."
                )
            active = [s for s in cluster.steps if s.state not in ENDED_STEP]
            if len(active) + len(params["Steps"]) > MAX_STEPS_PER_CLUSTER:
                raise ValidationException(f"A cluster has at most {MAX_STEPS_PER_CLUSTER} active steps.")
            steps = [self._new_step(cluster, s) for s in params["Steps"]]
            cluster.steps.extend(steps)
            cluster.lock.notify_all()
        return {"StepIds": [s.id for s in steps]}

    def describe_step(self, params: Mapping[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(str(params["ClusterId"]))
        step_id = str(params["StepId"])
        with cluster.lock:
            for step in cluster.steps:
                if step.id == step_id:
                    return {"Step": step.to_api()}
        raise InvalidRequestException(f"Step id '{step_id}' is not valid for cluster {cluster.id}.")

    def list_steps(self, params: Mapping[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(str(params["ClusterId"]))
        states, ids = set(params.get("StepStates") or []), set(params.get("StepIds") or [])
        with cluster.lock:  # newest first, as EMR lists them
            steps = [
                s
                for s in reversed(cluster.steps)
                if (not states or s.state.value in states) and (not ids or s.id in ids)
            ]
            start = int(params.get("Marker") or 0) if str(params.get("Marker") or "0").isdigit() else 0
            page = [s.to_api() for s in steps[start : start + PAGE_SIZE]]
        more = start + PAGE_SIZE < len(steps)
        return {"Steps": page, **({"Marker": str(start + PAGE_SIZE)} if more else {})}

    def cancel_steps(self, params: Mapping[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(str(params["ClusterId"]))
        answers = []
        with cluster.lock:
            by_id = {s.id: s for s in cluster.steps}
            for step_id in params["StepIds"]:
                step = by_id.get(str(step_id))
                running = self._running.get(cluster.id)
                if step is not None and step.state is StepState.PENDING:
                    step.finish(StepState.CANCELLED)
                    answers.append({"StepId": step_id, "Status": "SUBMITTED"})
                elif step is not None and step.state is StepState.RUNNING and running is not None:
                    running.kill()  # the step ends CANCELLED once its spark-submit has exited
                    answers.append({"StepId": step_id, "Status": "SUBMITTED"})
                else:
                    reason = "the step has ended" if step is not None else "no such step"
                    answers.append({"StepId": step_id, "Status": "FAILED", "Reason": reason})
        return {"CancelStepsInfoList": answers}

    # --- for tests and the pipeline engine ----------------------------------------------------------------------

    def spark_cluster(self, cluster_id: str) -> StandaloneCluster | None:
        return self._spark.get(cluster_id)

    def close(self) -> None:
        """Stack stop: end every running step and Spark cluster."""
        for cluster in list(self._clusters.values()):
            self._request_termination(cluster)
        for spark in list(self._spark.values()):
            spark.stop()

    # --- internals ----------------------------------------------------------------------------------------------

    def _cluster(self, cluster_id: str) -> EmrCluster:
        with self._lock:
            cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise InvalidRequestException(f"Cluster id '{cluster_id}' is not valid.")
        return cluster

    def _new_step(self, cluster: EmrCluster, config: Mapping[str, Any]) -> EmrStep:
        step_id = new_id("s-")
        log_uri = f"{cluster.log_uri.rstrip('/')}/{cluster.id}/steps/{step_id}/" if cluster.log_uri else None
        action = ActionOnFailure(config.get("ActionOnFailure") or "TERMINATE_CLUSTER")
        return EmrStep(step_id, str(config["Name"]), dict(config["HadoopJarStep"]), action, log_uri=log_uri)

    def _request_termination(self, cluster: EmrCluster) -> None:
        with cluster.lock:
            if cluster.is_ended:
                return
            cluster.termination_requested = True
            running = self._running.get(cluster.id)
            cluster.lock.notify_all()
        if running is not None:
            running.kill()

    def _lifecycle(self, cluster: EmrCluster) -> None:
        spark = StandaloneCluster(cluster.worker_count, self._settings.work_root / cluster.id / "spark")
        try:
            spark.start(self._settings.startup_timeout_seconds)
            self._spark[cluster.id] = spark
            with cluster.lock:
                cluster.state, cluster.ready = ClusterState.WAITING, utcnow()
            ending = self._run_steps(cluster, spark)
        except SparkClusterError as exc:
            logger.warning("EMR cluster %s did not start: %s", cluster.id, exc)
            ending = (ClusterState.TERMINATED_WITH_ERRORS, "BOOTSTRAP_FAILURE", f"Spark: {exc}")
        except Exception as exc:  # a cluster must end, whatever happened
            logger.exception("EMR cluster %s crashed", cluster.id)
            ending = (ClusterState.TERMINATED_WITH_ERRORS, "INTERNAL_ERROR", repr(exc))
        with cluster.lock:
            cluster.state = ClusterState.TERMINATING
        spark.stop()
        self._spark.pop(cluster.id, None)
        self._end(cluster, *ending)

    def _run_steps(self, cluster: EmrCluster, spark: StandaloneCluster) -> _Ending:
        while True:
            with cluster.lock:
                step = self._next_step(cluster)
                if step is None:
                    if cluster.termination_requested:
                        return ClusterState.TERMINATED, "USER_REQUEST", "Terminated by user request"
                    if not cluster.keep_alive:
                        return ClusterState.TERMINATED, "ALL_STEPS_COMPLETED", "Steps completed"
                    cluster.state = ClusterState.WAITING
                    cluster.lock.wait()
                    continue
                cluster.state, step.state, step.started = ClusterState.RUNNING, StepState.RUNNING, utcnow()
                running = RunningStep(self._settings.work_root / cluster.id / "steps" / step.id)
                self._running[cluster.id] = running
            failure = run_spark_step(running, step.config, spark.master_url, self._environment)
            if step.log_uri:
                upload_step_logs(running.step_dir, step.log_uri, self._environment.s3)
            ending = self._after_step(cluster, step, failure, running)
            if ending is not None:
                return ending

    def _next_step(self, cluster: EmrCluster) -> EmrStep | None:
        pending = [s for s in cluster.steps if s.state is StepState.PENDING]
        if cluster.termination_requested:
            for step in pending:
                step.finish(StepState.CANCELLED)
            return None
        return pending[0] if pending else None

    def _after_step(
        self, cluster: EmrCluster, step: EmrStep, failure: dict[str, str] | None, running: RunningStep
    ) -> _Ending | None:
        """Record the step's end; the cluster's ending when the step's ActionOnFailure ends it."""
        with cluster.lock:
            self._running.pop(cluster.id, None)
            if failure is None:
                step.finish(StepState.COMPLETED)
                return None
            if step.log_uri:
                failure = {**failure, "LogFile": f"{step.log_uri}{failure['LogFile']}.gz"}
            step.finish(StepState.CANCELLED if running.killed.is_set() else StepState.FAILED, failure)
            if step.action_on_failure is ActionOnFailure.CONTINUE or running.killed.is_set():
                return None
            for other in cluster.steps:
                if other.state is StepState.PENDING:
                    other.finish(StepState.CANCELLED)
            if step.action_on_failure is ActionOnFailure.CANCEL_AND_WAIT:
                return None
            return ClusterState.TERMINATED_WITH_ERRORS, "STEP_FAILURE", f"Shut down as step failed: {step.name}"

    def _end(self, cluster: EmrCluster, state: ClusterState, code: str, message: str) -> None:
        with cluster.lock:
            cluster.state = state
            cluster.reason = {"Code": code, "Message": message}
            cluster.ended = utcnow()
            for step in cluster.steps:
                if step.state is StepState.PENDING:
                    step.finish(StepState.CANCELLED)
            cluster.lock.notify_all()
        logger.info("EMR cluster %s ended %s (%s)", cluster.id, state.value, code)


def worker_count(instances: Mapping[str, Any]) -> int:
    """Spark workers for the cluster's core and task instances (one when the master runs alone, as EMR does)."""
    groups = instances.get("InstanceGroups") or []
    fleets = instances.get("InstanceFleets") or []
    if groups:
        count = sum(int(g.get("InstanceCount") or 0) for g in groups if g.get("InstanceRole") in _WORKER_ROLES)
    elif fleets:
        count = sum(
            int(f.get("TargetOnDemandCapacity") or 0) + int(f.get("TargetSpotCapacity") or 0)
            for f in fleets
            if f.get("InstanceFleetType") in _WORKER_ROLES
        )
    else:
        count = int(instances.get("InstanceCount") or 1) - 1
    count = max(1, count)
    if count > MAX_WORKERS_PER_CLUSTER:
        raise ValidationException(
            f"This stack runs at most {MAX_WORKERS_PER_CLUSTER} Spark workers per cluster (one per core or task "
            f"instance); the request asks for {count}."
        )
    return count


def _page(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"NextToken": params.get("Marker"), "MaxResults": PAGE_SIZE, "SortOrder": "Descending"}


def _within(created: datetime, after: Any, before: Any) -> bool:
    return (after is None or created >= _as_datetime(after)) and (before is None or created <= _as_datetime(before))


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value), tz=UTC)
