"""Jobs, endpoints and the model registry: paginated lists with status filters, a job's details and logs, approvals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import ConsoleApi

Render = Callable[..., Response]
PAGE_SIZE = 50


@dataclass(frozen=True)
class JobKind:
    """How one job family is listed and described through the API."""

    title: str
    list_operation: str
    list_key: str
    describe_operation: str
    name_key: str
    status_key: str
    end_key: str
    statuses: tuple[str, ...]
    log_group: str | None


_JOB_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
JOB_KINDS = {
    "training": JobKind(
        "Training", "ListTrainingJobs", "TrainingJobSummaries", "DescribeTrainingJob", "TrainingJobName",
        "TrainingJobStatus", "TrainingEndTime", _JOB_STATUSES, "/aws/sagemaker/TrainingJobs",
    ),
    "processing": JobKind(
        "Processing", "ListProcessingJobs", "ProcessingJobSummaries", "DescribeProcessingJob", "ProcessingJobName",
        "ProcessingJobStatus", "ProcessingEndTime", _JOB_STATUSES, "/aws/sagemaker/ProcessingJobs",
    ),
    "transform": JobKind(
        "Transform", "ListTransformJobs", "TransformJobSummaries", "DescribeTransformJob", "TransformJobName",
        "TransformJobStatus", "TransformEndTime", _JOB_STATUSES, "/aws/sagemaker/TransformJobs",
    ),
    "tuning": JobKind(
        "Tuning", "ListHyperParameterTuningJobs", "HyperParameterTuningJobSummaries",
        "DescribeHyperParameterTuningJob", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus",
        "HyperParameterTuningEndTime", _JOB_STATUSES, None,
    ),
}  # fmt: skip
_DECISIONS = {"approve": "Approved", "reject": "Rejected"}


class ResourcePages:
    def __init__(self, api: ConsoleApi, render: Render) -> None:
        self._api = api
        self._render = render

    def pages(self) -> dict[str, Callable[..., Response]]:
        return {
            "jobs_home": lambda request: Response("", status=303, headers={"Location": "/console/jobs/training"}),
            "jobs": self.jobs,
            "job": self.job,
            "endpoints": self.endpoints,
            "model_groups": self.model_groups,
            "model_group": self.model_group,
            "approval": self.approval,
        }

    def jobs(self, request: Request, kind: str) -> Response:
        spec = _kind(kind)
        status = request.args.get("status") or ""
        if status and status not in spec.statuses:
            raise BadRequest(f"Status {status!r} is not one of {', '.join(spec.statuses)}.")
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if status:
            params["StatusEquals"] = status
        token = request.args.get("page")
        if token:
            params["NextToken"] = token
        page = self._api.call(spec.list_operation, **params)
        return self._render(
            "jobs.html",
            section="jobs",
            kind=kind,
            kinds=JOB_KINDS,
            spec=spec,
            status_filter=status,
            jobs=page.get(spec.list_key) or [],
            next_token=page.get("NextToken"),
        )

    def job(self, request: Request, kind: str, name: str) -> Response:
        spec = _kind(kind)
        described = self._api.call(spec.describe_operation, **{spec.name_key: name})
        logs = self._api.log_events(spec.log_group, f"{name}/") if spec.log_group else []
        return self._render(
            "job.html",
            section="jobs",
            kind=kind,
            spec=spec,
            job=described,
            name=name,
            metrics=described.get("FinalMetricDataList") or [],
            hyperparameters=described.get("HyperParameters") or {},
            logs=logs,
        )

    def endpoints(self, request: Request) -> Response:
        listed = self._api.list_all("ListEndpoints", "Endpoints", limit=200, SortBy="CreationTime")
        described = [self._api.call("DescribeEndpoint", EndpointName=e["EndpointName"]) for e in listed]
        return self._render("endpoints.html", section="endpoints", endpoints=described)

    def model_groups(self, request: Request) -> Response:
        groups = self._api.list_all("ListModelPackageGroups", "ModelPackageGroupSummaryList", SortBy="CreationTime")
        return self._render("model_groups.html", section="models", groups=groups)

    def model_group(self, request: Request, group: str) -> Response:
        described = self._api.call("DescribeModelPackageGroup", ModelPackageGroupName=group)
        versions = self._api.list_all(
            "ListModelPackages",
            "ModelPackageSummaryList",
            ModelPackageGroupName=group,
            SortBy="CreationTime",
            SortOrder="Descending",
        )
        packages = [self._api.call("DescribeModelPackage", ModelPackageName=v["ModelPackageArn"]) for v in versions]
        return self._render("model_group.html", section="models", group=described, packages=packages)

    def approval(self, request: Request, group: str) -> Response:
        """Approve or reject one version with a comment: the UpdateModelPackage call a user would make."""
        decision = _DECISIONS.get(request.form.get("decision") or "")
        arn = request.form.get("arn") or ""
        if decision is None or not arn:
            raise BadRequest("An approval needs a package and a decision (approve or reject).")
        update: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": decision}
        comment = (request.form.get("comment") or "").strip()
        if comment:
            update["ApprovalDescription"] = comment
        self._api.call("UpdateModelPackage", **update)
        return Response("", status=303, headers={"Location": f"/console/models/{group}"})


def _kind(kind: str) -> JobKind:
    spec = JOB_KINDS.get(kind)
    if spec is None:
        raise NotFound(f"No job kind {kind!r}: training, processing, transform or tuning.")
    return spec
