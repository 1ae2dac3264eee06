"""One bias or explainability execution as a processing job on the Clarify image, and its conclusion.

The window's dataset and the completed analysis config are staged under
``<S3Uri>/<endpoint>/<schedule>/clarify-inputs/<processing job name>/`` and given to the job at
``/opt/ml/processing/input/{data,config}``; the job's ``/opt/ml/processing/output`` (``analysis.json``, the report)
goes to ``<S3Uri>/<endpoint>/<schedule>/yyyy/mm/dd/hh`` of the scheduled time, where the control plane then writes
``constraint_violations.json`` (when there is a baseline) and from where it publishes the CloudWatch metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.hosting.hosting_requests import ProductionVariant
from infra.control_plane.monitoring.clarify.monitoring_clarify import (
    CONFIG_PATH,
    DATA_PATH,
    OUTPUT_PATH,
    ClarifyStage,
    stage,
)
from infra.control_plane.monitoring.clarify.monitoring_clarify_outcome import (
    BaselineMismatch,
    metric_records,
    violations,
)
from infra.control_plane.monitoring.monitoring_definitions import MonitoringJob

__all__ = ["ClarifyParts", "ClarifyRunState", "clarify_request", "conclude_clarify"]


@dataclass(frozen=True)
class ClarifyParts:
    job: MonitoringJob
    job_name: str
    schedule: str
    scheduled_time: datetime
    window: tuple[datetime, datetime]
    capture_root: S3Location
    baseline_uri: str | None
    endpoint_variant: ProductionVariant | None = None  # the monitored endpoint's production variant (its model)


@dataclass(frozen=True)
class ClarifyRunState:
    parts: ClarifyParts
    staged: ClarifyStage


def clarify_request(s3: S3Access, parts: ClarifyParts) -> tuple[dict[str, Any], ClarifyRunState]:
    """Stage the window and build the CreateProcessingJob request of the Clarify job."""
    job = parts.job
    endpoint = str(job.endpoint_name)
    schedule_root = f"{job.output.s3_uri.rstrip('/')}/{endpoint}/{parts.schedule}"
    staging = S3Location.parse(f"{schedule_root}/clarify-inputs/{parts.job_name}")
    staged = stage(
        s3, job, parts.capture_root, parts.window, staging, parts.baseline_uri, endpoint_variant=parts.endpoint_variant
    )
    output_uri = f"{schedule_root}/{parts.scheduled_time:%Y/%m/%d/%H}"
    request: dict[str, Any] = {
        "ProcessingJobName": parts.job_name,
        "ProcessingInputs": [
            s3_input("dataset", staged.data_uri, DATA_PATH),
            s3_input("analysis_config", staged.config_uri, CONFIG_PATH),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "analysis_result",
                    "S3Output": {"S3Uri": output_uri, "LocalPath": OUTPUT_PATH, "S3UploadMode": "EndOfJob"},
                }
            ],
            **({"KmsKeyId": job.output_kms_key} if job.output_kms_key else {}),
        },
        "ProcessingResources": {"ClusterConfig": job.cluster.wire()},
        "AppSpecification": {"ImageUri": job.app.image_uri},
        "Environment": dict(job.environment),
        "StoppingCondition": {"MaxRuntimeInSeconds": job.stopping.max_runtime_in_seconds},
        "RoleArn": job.role,
    }
    if job.network is not None:
        request["NetworkConfig"] = job.network.wire()
    return request, ClarifyRunState(parts, staged)


def conclude_clarify(
    s3: S3Access, state: ClarifyRunState, output_uri: str
) -> tuple[int, str | None, list[dict[str, Any]]]:
    """``(violation count, failure reason or None, CloudWatch records)`` once the Clarify job completed."""
    parts = state.parts
    try:
        analysis = json.loads(s3.get_bytes(S3Location.parse(f"{output_uri}/analysis.json")))
    except (S3AccessError, ValueError) as exc:
        return 0, f"AlgorithmError: the Clarify job left no readable analysis.json in {output_uri}: {exc}", []
    publish = parts.job.environment.get("publish_cloudwatch_metrics", "Enabled").lower() != "disabled"
    records = (
        metric_records(parts.job.monitoring_type, analysis, str(parts.job.endpoint_name), parts.schedule)
        if publish
        else []
    )
    if state.staged.baseline is None:
        return 0, None, records
    try:
        found = violations(parts.job.monitoring_type, analysis, state.staged.baseline)
    except BaselineMismatch as exc:
        return 0, f"ClientError: {exc} ({parts.baseline_uri})", records
    document = {"version": "1.0", "violations": found}
    s3.put_bytes(
        S3Location.parse(f"{output_uri}/constraint_violations.json"), json.dumps(document, indent=2).encode("utf-8")
    )
    return len(found), None, records


def s3_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    """A ``ProcessingInputs`` entry that copies ``uri`` to ``local_path`` (File mode, every host)."""
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }
