"""Bias and explainability monitoring executions: the capture window turned into a Clarify job
(docs/reference/model-monitor-files.md#bias-and-explainability-monitors).

The Clarify container reads CSV, so the control plane stages the window as one: every captured record whose
``inferenceTime`` falls in the window gives one row per CSV line of its request (JSON requests through
``FeaturesAttribute``). Bias adds the ground-truth label (joined on ``inferenceId``, else ``eventId``, with the
``eventMetadata.eventId`` of the ``GroundTruthS3Input`` records) and the predicted label taken from the captured
response (``InferenceAttribute``, else the score at ``ProbabilityAttribute`` or the first value compared with
``ProbabilityThresholdAttribute``). The job definition's ``ConfigUri`` config is completed with ``dataset_type``,
the staged headers, ``predicted_label`` and every method (bias: all pre- and post-training metrics; explainability:
the config's SHAP) plus a report.

Explainability calls the model, and never through the monitored endpoint: every request there would be captured and
then monitored as traffic (a later data-quality run would see the SHAP job's synthetic rows). As on AWS, the Clarify
job creates a shadow endpoint from ``predictor.model_name`` (the SDK's ``ModelConfig``); a config without a model
gets the monitored endpoint's model (its first production variant's ``ModelName`` and ``InstanceType``, one
instance). A ``predictor.endpoint_name`` naming another endpoint is kept; one naming the monitored endpoint is
replaced by the shadow endpoint too.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.jsonpath import JsonPathError, select
from infra.control_plane.hosting.hosting_requests import ProductionVariant
from infra.control_plane.monitoring.monitoring_api_requests import EndpointInput
from infra.control_plane.monitoring.monitoring_definitions import MonitoringJob, MonitoringType
from infra.control_plane.monitoring.monitoring_time import hours_between, window_text

__all__ = ["CLARIFY_TYPES", "ClarifySetupError", "ClarifyStage", "EmptyWindow", "stage"]

CLARIFY_TYPES = frozenset({MonitoringType.MODEL_BIAS, MonitoringType.MODEL_EXPLAINABILITY})
DATA_PATH = "/opt/ml/processing/input/data"
CONFIG_PATH = "/opt/ml/processing/input/config"
OUTPUT_PATH = "/opt/ml/processing/output"
PREDICTED_COLUMN = "sagestack_predicted_label"
_BIAS_METHODS = {"pre_training_bias": {"methods": "all"}, "post_training_bias": {"methods": "all"}}
_REPORT = {"name": "report", "title": "Analysis Report"}


class ClarifySetupError(Exception):
    """The window cannot be turned into a Clarify job; the message (``ClientError: …``) becomes the FailureReason."""


class EmptyWindow(Exception):
    """No usable record in the window: the execution completes without a job, with this message."""


@dataclass(frozen=True)
class ClarifyStage:
    """What was staged for one execution: where its inputs are and the baseline to compare with."""

    data_uri: str
    config_uri: str
    rows: int
    baseline: Mapping[str, Any] | None


@dataclass(frozen=True)
class _Row:
    key: str
    features: list[str]
    output: str | None  # the captured response line (CSV) or JSON document text for this row


def stage(
    s3: S3Access,
    job: MonitoringJob,
    capture_root: S3Location,
    window: tuple[datetime, datetime],
    staging: S3Location,
    baseline_uri: str | None,
    *,
    endpoint_variant: ProductionVariant | None = None,
) -> ClarifyStage:
    """Read the window's captures, build the dataset and config, upload both under ``staging``."""
    config = _read_json(s3, job.app.config_uri or "", "analysis config (ConfigUri)")
    baseline = _read_json(s3, baseline_uri, "baseline constraints") if baseline_uri else None
    rows = list(_window_rows(s3, job, capture_root, window))
    if not rows:
        raise EmptyWindow("Job inputs had no data: no captured record in the analysis window.")
    if job.monitoring_type is MonitoringType.MODEL_BIAS:
        header, table, analysis = _bias_dataset(s3, job, config, rows)
    else:
        header, table, analysis = _explainability_dataset(job, config, rows, endpoint_variant)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(table)
    data = staging.child("dataset", "data.csv")
    config_location = staging.child("config", "analysis_config.json")
    s3.put_bytes(data, buffer.getvalue().encode("utf-8"))
    s3.put_bytes(config_location, json.dumps(analysis, indent=2).encode("utf-8"))
    return ClarifyStage(
        data_uri=staging.child("dataset").uri + "/",
        config_uri=staging.child("config").uri + "/",
        rows=len(table),
        baseline=baseline,
    )


def _read_json(s3: S3Access, uri: str | None, what: str) -> dict[str, Any]:
    if not uri:
        raise ClarifySetupError(f"ClientError: the job definition names no {what}.")
    try:
        document = json.loads(s3.get_bytes(S3Location.parse(uri)))
    except (S3AccessError, ValueError) as exc:
        raise ClarifySetupError(f"ClientError: the {what} file {uri} cannot be read: {exc}") from exc
    if not isinstance(document, dict):
        raise ClarifySetupError(f"ClientError: the {what} file {uri} is not a JSON object.")
    return document


# -- the captures of the window --------------------------------------------------------------------------------


def _window_rows(
    s3: S3Access, job: MonitoringJob, root: S3Location, window: tuple[datetime, datetime]
) -> Iterator[_Row]:
    prefix = root.key.rstrip("/") + "/"
    hours = {hour.strftime("%Y/%m/%d/%H") for hour in hours_between(*window)}
    try:
        keys = sorted(key for key, _ in s3.list_keys(S3Location(root.bucket, prefix)))
    except S3AccessError as exc:
        raise ClarifySetupError(f"ClientError: cannot list the captured data under {root.uri}: {exc}") from exc
    start, end = (_capture_time(text) for text in window_text(*window))  # the end rounded up to the second
    for key in keys:
        parts = key[len(prefix) :].split("/")
        if len(parts) < 6 or "/".join(parts[1:5]) not in hours:
            continue
        for line in s3.get_bytes(S3Location(root.bucket, key)).decode("utf-8", errors="replace").splitlines():
            record = _json_line(line)
            metadata = (record or {}).get("eventMetadata") or {}
            if record is None or not start <= str(metadata.get("inferenceTime", "")) < end:
                continue
            yield from _record_rows(job, record, str(metadata.get("inferenceId") or metadata.get("eventId") or ""))


def _capture_time(text: str) -> str:
    """``inferenceTime`` form (``2024-01-02T03:04:05Z``) of an ISO-8601 instant, so the two compare as text."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None  # a corrupt line is skipped, as the analyzer does
    return value if isinstance(value, dict) else None


def _decoded(part: Mapping[str, Any] | None) -> str | None:
    if not part:
        return None
    data = str(part.get("data") or "")
    if str(part.get("encoding") or "").upper() == "BASE64":
        return base64.b64decode(data).decode("utf-8", errors="replace")
    return data


def _record_rows(job: MonitoringJob, record: Mapping[str, Any], key: str) -> Iterator[_Row]:
    capture = record.get("captureData") or {}
    request, response = _decoded(capture.get("endpointInput")), _decoded(capture.get("endpointOutput"))
    if request is None:
        return
    attribute = job.endpoint_input.features_attribute if job.endpoint_input else None
    if request.lstrip().startswith(("{", "[")):
        features = _json_features(request, attribute)
    else:
        features = [row for row in csv.reader(io.StringIO(request)) if row]
    outputs = _split_output(response, len(features))
    for index, row in enumerate(features):
        yield _Row(key if len(features) == 1 else f"{key}#{index}", row, outputs[index])


def _json_features(request: str, attribute: Any) -> list[list[str]]:
    try:
        document = json.loads(request)
        value = select(str(attribute), document) if attribute else document
    except (ValueError, JsonPathError) as exc:
        raise ClarifySetupError(
            f"ClientError: FeaturesAttribute {attribute!r} does not select the features of a captured JSON request: "
            f"{exc}"
        ) from exc
    rows = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    return [[_text(cell) for cell in (row if isinstance(row, list) else [row])] for row in rows]


def _split_output(response: str | None, count: int) -> list[str | None]:
    if response is None:
        return [None] * count
    text = response.strip()
    if count == 1:
        return [text]
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == count:
        return list(lines)
    cells = text.split(",")
    return list(cells) if len(cells) == count else [None] * count


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


# -- bias ------------------------------------------------------------------------------------------------------


def _feature_headers(config: Mapping[str, Any], width: int, label: str | None) -> list[str]:
    headers = [str(h) for h in config.get("headers") or [] if str(h) != label]
    if len(headers) != width:
        if headers:
            raise ClarifySetupError(
                f"ClientError: the analysis config has {len(headers)} feature headers but the captured requests "
                f"carry {width} features; fix 'headers' in ConfigUri (features, then the label)."
            )
        headers = [f"column_{index}" for index in range(width)]
    return headers


def _bias_dataset(
    s3: S3Access, job: MonitoringJob, config: Mapping[str, Any], rows: Sequence[_Row]
) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    label = str(config.get("label") or "label")
    truth = _ground_truth(s3, job)
    joined = [(row, truth[row.key]) for row in rows if row.key in truth]
    if not joined:
        raise ClarifySetupError(
            f"ClientError: none of the {len(rows)} captured records in the window has ground truth in "
            f"{job.ground_truth_uri} (joined on the request's inferenceId, else eventId, with eventMetadata.eventId)."
        )
    features = _feature_headers(config, len(joined[0][0].features), label)
    predict = _Predictor(job.endpoint_input, config, [value for _, value in joined])
    table = [[*row.features, value, predict(row.output)] for row, value in joined]
    analysis = {key: value for key, value in config.items() if key not in ("methods", "predictor")}
    analysis.update(
        dataset_type="text/csv",
        headers=[*features, label, PREDICTED_COLUMN],
        label=label,
        predicted_label=PREDICTED_COLUMN,
        methods={**_BIAS_METHODS, "report": _REPORT},
    )
    return [*features, label, PREDICTED_COLUMN], table, analysis


def _ground_truth(s3: S3Access, job: MonitoringJob) -> dict[str, str]:
    if not job.ground_truth_uri:
        raise ClarifySetupError("ClientError: a model bias execution needs GroundTruthS3Input.S3Uri.")
    root = S3Location.parse(str(job.ground_truth_uri).rstrip("/") + "/")
    truth: dict[str, str] = {}
    try:
        for key, _ in sorted(s3.list_keys(root)):
            for line in s3.get_bytes(S3Location(root.bucket, key)).decode("utf-8", errors="replace").splitlines():
                record = _json_line(line)
                event = str(((record or {}).get("eventMetadata") or {}).get("eventId") or "")
                value = _decoded((record or {}).get("groundTruthData"))
                if not event or value is None:
                    continue
                values = [v for v in value.strip().splitlines() if v.strip()]
                if len(values) == 1:
                    truth[event] = values[0].strip()
                for index, item in enumerate(values):
                    truth[f"{event}#{index}"] = item.strip()
    except S3AccessError as exc:
        raise ClarifySetupError(f"ClientError: cannot read the ground truth under {root.uri}: {exc}") from exc
    return truth


class _Predictor:
    """The predicted label of one captured response line
    (docs/reference/model-monitor-files.md#bias-and-explainability-monitors)."""

    def __init__(self, endpoint_input: EndpointInput | None, config: Mapping[str, Any], labels: Sequence[str]) -> None:
        self.inference = endpoint_input.inference_attribute if endpoint_input else None
        self.probability = endpoint_input.probability_attribute if endpoint_input else None
        sent = endpoint_input.probability_threshold_attribute if endpoint_input else None
        threshold = sent if sent is not None else config.get("probability_threshold")
        self.threshold = float(threshold) if threshold is not None else 0.5
        wanted = config.get("label_values_or_threshold")
        self.positive: str | None = None
        self.negative = "0"
        if isinstance(wanted, list) and wanted:
            self.positive = _text(wanted[0])
            others = [value for value in labels if value not in {_text(w) for w in wanted}]
            self.negative = others[0] if others else ("0" if self.positive != "0" else "1")

    def __call__(self, output: str | None) -> str:
        if output is None:
            raise ClarifySetupError(
                "ClientError: a captured record has no endpointOutput: capture the responses (CaptureOptions "
                "Output) for model bias monitoring."
            )
        if self.inference is not None:
            return self._pick(output, self.inference)
        score = self._pick(output, self.probability if self.probability is not None else 0)
        if self.positive is None:
            return score  # a continuous label: Clarify applies label_values_or_threshold itself
        try:
            return self.positive if float(score) > self.threshold else self.negative
        except ValueError as exc:
            raise ClarifySetupError(
                f"ClientError: the captured response {output[:80]!r} gives the score {score!r}, not a number; set "
                "ProbabilityAttribute or InferenceAttribute."
            ) from exc

    @staticmethod
    def _pick(output: str, attribute: Any) -> str:
        text = output.strip()
        try:
            if text.startswith(("{", "[")):
                return _text(select(str(attribute), json.loads(text)))
            return next(csv.reader([text]))[int(attribute)].strip()
        except (ValueError, JsonPathError, IndexError) as exc:
            raise ClarifySetupError(
                f"ClientError: attribute {attribute!r} does not select a value in the captured response "
                f"{text[:80]!r}: {exc}"
            ) from exc


# -- explainability --------------------------------------------------------------------------------------------


def _explainability_dataset(
    job: MonitoringJob, config: Mapping[str, Any], rows: Sequence[_Row], variant: ProductionVariant | None
) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    features = _feature_headers(config, len(rows[0].features), None)
    methods = config.get("methods") or {}
    if not isinstance(methods, Mapping) or "shap" not in methods:
        raise ClarifySetupError("ClientError: the explainability analysis config (ConfigUri) has no methods.shap.")
    analysis = {key: value for key, value in config.items() if key not in ("methods", "predictor", "label")}
    analysis.update(
        dataset_type="text/csv",
        headers=features,
        methods={"shap": methods["shap"], "report": _REPORT},
        predictor=_shadow_predictor(config.get("predictor") or {}, str(job.endpoint_name), variant),
    )
    return features, [row.features for row in rows], analysis


def _shadow_predictor(predictor: Mapping[str, Any], endpoint: str, variant: ProductionVariant | None) -> dict[str, Any]:
    """The config's predictor, made to reach the model through a shadow endpoint, never the monitored one."""
    chosen = dict(predictor)
    chosen.setdefault("content_type", "text/csv")
    if chosen.get("model_name"):
        chosen.pop("endpoint_name", None)
        return chosen
    if chosen.get("endpoint_name") and chosen["endpoint_name"] != endpoint:
        return chosen
    model = variant.model_name if variant is not None else None
    if not model:
        raise ClarifySetupError(
            f"ClientError: the explainability analysis config names no predictor.model_name and endpoint {endpoint} "
            "has no production variant with a ModelName to create a shadow endpoint from; set "
            "ModelConfig(model_name=...) in the analysis config."
        )
    chosen.pop("endpoint_name", None)
    chosen.update(model_name=model, initial_instance_count=1)
    if variant is not None and variant.instance_type:
        chosen["instance_type"] = variant.instance_type
    return chosen
