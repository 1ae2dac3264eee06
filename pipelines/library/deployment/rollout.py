"""One deployment run, in order: a new endpoint config, the blue/green switch, the health check, the rollback when
unhealthy, the approval and the record. ``pipelines.commands.deploy`` builds a :class:`Deployment` from its flags
and calls :func:`deploy`; the SageMaker calls are in ``blue_green.py``, the check in ``deployment_health.py``, the
records in ``deployment_history.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.library.deployment.blue_green import (
    BUSY,
    DeployError,
    EndpointSpec,
    LiveEndpoint,
    Package,
    Say,
    Waiting,
    approve,
    create_config,
    live_endpoint,
    mark_health,
    roll_back,
    stamp,
    switch,
)
from pipelines.library.deployment.deployment_health import HealthCheck, HealthReport, Sample, check_health
from pipelines.library.deployment.deployment_history import DeploymentHistory, DeploymentRecord, Outcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    """Everything one run needs: clients, where to write, what a healthy endpoint is, how long to wait."""

    session: Any  # sagemaker.Session
    role: str
    history: DeploymentHistory
    check: HealthCheck
    sample: Sample | None  # the test rows the health check sends (None: no check)
    waiting: Waiting
    say: Say

    @property
    def sm(self) -> Any:
        return self.session.sagemaker_client

    @property
    def runtime(self) -> Any:
        return self.session.sagemaker_runtime_client


def deploy(run: Deployment, package: Package, spec: EndpointSpec) -> DeploymentRecord | None:
    """Deploy ``package`` to ``spec.endpoint``; None when it is already live (nothing done), else the record."""
    live = live_endpoint(run.sm, spec.endpoint)
    if live is not None and live.status in BUSY:
        raise DeployError(f"Endpoint {spec.endpoint} is {live.status}: another change is under way; retry later.")
    if live is not None and live.serves(package, spec):
        run.say(f"==> {spec.endpoint} already serves {package.arn} ({live.config_name}, healthy): nothing to do")
        return None
    started = _now()
    config = create_config(run.sm, run.role, package, spec, stamp())
    previous = live.config_name if live is not None and live.status != "Failed" else None
    run.say(f"==> {'updating' if previous else 'creating'} endpoint {spec.endpoint}: {previous or '-'} -> {config}")
    failure = switch(run.sm, spec.endpoint, config, live, run.waiting)
    if failure:
        stays = f"traffic stays on {previous}" if previous else "the endpoint serves nothing"
        outcome, reason, health = Outcome.FAILED, f"the update to {config} failed ({failure}); {stays}", None
    else:
        run.say(f"==> {config} InService: health check ({len(run.sample.labels) if run.sample else 0} test rows)")
        health = check_health(run.runtime, spec.endpoint, run.check, run.sample)
        mark_health(run.sm, config, health.passed)
        outcome, reason = _after_check(run, spec.endpoint, live, health)
        if outcome is Outcome.SUCCEEDED:
            approve(run.sm, package, spec.endpoint)
    record = DeploymentRecord(
        endpoint=spec.endpoint,
        endpoint_config=config,
        package_arn=package.arn,
        package_version=package.version,
        started=started,
        finished=_now(),
        outcome=outcome,
        previous_config=previous,
        reason=reason,
        health=health.figures if health else {},
    )
    run.history.record(record)
    return record


def _after_check(
    run: Deployment, endpoint: str, live: LiveEndpoint | None, health: HealthReport
) -> tuple[Outcome, str]:
    if health.passed:
        return Outcome.SUCCEEDED, health.reason
    if live is None or live.status == "Failed":
        return Outcome.UNHEALTHY, f"unhealthy: {health.reason}; no earlier config to roll back to"
    run.say(f"==> unhealthy ({health.reason}): rolling back to {live.config_name}")
    failure = roll_back(run.sm, endpoint, live.config_name, run.waiting)
    if failure:
        return Outcome.ROLLBACK_FAILED, f"unhealthy: {health.reason}; the rollback failed too: {failure}"
    return Outcome.ROLLED_BACK, f"unhealthy: {health.reason}; traffic is back on {live.config_name}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
