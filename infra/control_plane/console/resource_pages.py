"""Endpoints and the model registry: the endpoints (paginated), an endpoint's invocations and latency over time and
its recent data-capture records; model package groups, versions and approvals."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Request, Response

from infra.control_plane.console.console_api import ConsoleApi
from infra.control_plane.console.svg_charts import LineChart, line_chart

Render = Callable[..., Response]
PAGE_SIZE = 50
CAPTURE_FILES_READ = 5  # the newest capture files read for an endpoint's recent records
CAPTURE_RECORDS_SHOWN = 20
DEPLOYMENTS_SHOWN = 20  # the newest records of `make deploy`'s history (docs/deploy.md)
ENDPOINT_NAMESPACE = "AWS/SageMaker"  # the invocation metrics of an endpoint's variants, as on AWS

_DECISIONS = {"approve": "Approved", "reject": "Rejected"}


class ResourcePages:
    def __init__(self, api: ConsoleApi, render: Render) -> None:
        self._api = api
        self._render = render

    def pages(self) -> dict[str, Callable[..., Response]]:
        return {
            "endpoint": self.endpoint,
            "endpoints": self.endpoints,
            "model_groups": self.model_groups,
            "model_group": self.model_group,
            "approval": self.approval,
        }

    def endpoints(self, request: Request) -> Response:
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "CreationTime", "SortOrder": "Descending"}
        if request.args.get("page"):
            params["NextToken"] = request.args["page"]
        page = self._api.call("ListEndpoints", **params)
        described = [self._api.call("DescribeEndpoint", EndpointName=e["EndpointName"]) for e in page["Endpoints"]]
        return self._render(
            "endpoints.html", section="endpoints", endpoints=described, next_token=page.get("NextToken")
        )

    def endpoint(self, request: Request, name: str) -> Response:
        described = self._api.call("DescribeEndpoint", EndpointName=name)
        variants = [str(v["VariantName"]) for v in described.get("ProductionVariants") or []]
        return self._render(
            "endpoint.html",
            section="endpoints",
            endpoint=described,
            charts=self._invocation_charts(name, variants),
            captures=self._captures(name, described.get("DataCaptureConfig") or {}),
            deployments=self._deployments(name),
        )

    def _deployments(self, name: str) -> list[dict[str, Any]]:
        """The deployment history ``make deploy`` writes for the endpoint, newest first: one JSON object per attempt
        at ``s3://<the SDK's default bucket>/deployments/<endpoint>/<endpoint config>.json`` (docs/deploy.md)."""
        prefix = f"s3://sagemaker-{self._api.region}-{self._api.account_id}/deployments/{name}/"
        keys = sorted(uri for uri, _ in self._api.s3_keys(prefix) if uri.endswith(".json"))
        records = [self._api.s3_json(uri) for uri in reversed(keys[-DEPLOYMENTS_SHOWN:])]
        return [record for record in records if isinstance(record, dict)]

    def _invocation_charts(self, name: str, variants: list[str]) -> list[LineChart]:
        charts = []
        for metric, unit in (("Invocations", "count"), ("ModelLatency", "microseconds")):
            series = [
                (v, self._api.metric_data(ENDPOINT_NAMESPACE, metric, {"EndpointName": name, "VariantName": v}))
                for v in variants
            ]
            charts.append(line_chart(f"{metric} ({unit})", series, "time", x_is_time=True))
        return charts

    def _captures(self, name: str, config: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The newest data-capture records of the endpoint (newest first), read from its capture files in S3."""
        destination = str(config.get("DestinationS3Uri") or "")
        if not destination:
            return []
        files = self._api.s3_keys(f"{destination.rstrip('/')}/{name}/")
        newest = sorted(files, key=lambda item: _capture_order(item[0]))[-CAPTURE_FILES_READ:]
        records: list[dict[str, Any]] = []
        for uri, _ in reversed(newest):
            data = self._api.s3_bytes(uri) or b""
            for line in reversed(data.decode("utf-8", "replace").splitlines()):
                record = _capture_record(line, uri)
                if record is not None:
                    records.append(record)
            if len(records) >= CAPTURE_RECORDS_SHOWN:
                break
        return records[:CAPTURE_RECORDS_SHOWN]

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


def _capture_order(uri: str) -> str:
    """Capture files sort by ``<variant>/yyyy/mm/dd/hh/mm-ss-mmm-<uuid>.jsonl``: order by the time part."""
    parts = uri.rsplit("/", 5)
    return "/".join(parts[-5:]) if len(parts) >= 6 else uri


def _capture_record(line: str, uri: str) -> dict[str, Any] | None:
    try:
        loaded = json.loads(line)
    except ValueError:
        return None
    if not isinstance(loaded, dict):
        return None
    data = loaded.get("captureData") or {}
    metadata = loaded.get("eventMetadata") or {}
    return {
        "time": metadata.get("inferenceTime"),
        "event_id": metadata.get("eventId"),
        "input": (data.get("endpointInput") or {}).get("data", ""),
        "output": (data.get("endpointOutput") or {}).get("data", ""),
        "encoding": (data.get("endpointInput") or {}).get("encoding", ""),
        "file": uri,
    }
