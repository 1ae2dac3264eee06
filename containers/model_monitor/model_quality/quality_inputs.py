"""Model-quality inputs: a baseline dataset's columns, or captured outputs merged with ground truth
(docs/reference/model-monitor-files.md#model-quality).

Attributes (``inference_attribute``, ``probability_attribute``, ``ground_truth_attribute``) are a column name, a
0-based column index (CSV), or a JSON path such as ``predictions[0].score`` / ``$.score`` (JSON). Captures are
joined to ground-truth records on the capture's ``inferenceId`` when present, else its ``eventId``; ground truth
without a capture, and captures without ground truth, are counted and logged.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from containers.model_monitor.config import AnalyzerConfig
from containers.model_monitor.inputs.capture import CaptureTally, decode_payload, iter_records, open_text
from containers.model_monitor.inputs.readers import dataset_files, read_dataset
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["Labels", "baseline_labels", "extract", "monitoring_labels"]

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass
class Labels:
    truth: list[Any]
    prediction: list[Any]
    probability: list[float] | None

    def arrays(self, problem_type: str, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        scores = np.asarray(self.probability, dtype=np.float64) if self.probability is not None else None
        if problem_type == "Regression":
            return _floats(self.truth, "ground truth"), _floats(self.prediction, "prediction"), None
        truth = np.asarray([_label(v) for v in self.truth], dtype=object)
        if problem_type == "BinaryClassification" and (not self.prediction or self.prediction[0] is None):
            if scores is None:
                raise UserError(
                    "A binary model quality job needs inference_attribute or probability_attribute; "
                    "neither gave values."
                )
            prediction = np.where(scores > threshold, 1.0, 0.0).astype(object)
        else:
            prediction = np.asarray([_label(v) for v in self.prediction], dtype=object)
        return truth, prediction, scores


def _floats(values: list[Any], what: str) -> np.ndarray:
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(f"A regression {what} value is not a number ({exc}); check the attribute settings.") from exc


def _label(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number


def extract(value: Any, attribute: str) -> Any:
    """``attribute`` applied to a decoded payload: a CSV row (index) or a JSON value (path)."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        value = value[0]  # a CSV payload: its first row
    path = attribute.strip()
    if path.startswith("$"):
        path = path[1:].lstrip(".")
    if isinstance(value, list) and path.isdigit():
        return value[int(path)]
    current = value
    for name, index in _STEP.findall(path):
        if name:
            current = current[int(name)] if isinstance(current, list) and name.isdigit() else current[name]
        else:
            current = current[int(index)]
    return current


def _column(table_columns: list[str], attribute: str) -> str:
    if attribute in table_columns:
        return attribute
    if attribute.isdigit() and int(attribute) < len(table_columns):
        return table_columns[int(attribute)]
    raise UserError(
        f"Attribute {attribute!r} names no column of the baseline dataset (columns: {', '.join(table_columns[:20])}). "
        "Use a header name or a 0-based column index."
    )


def baseline_labels(config: AnalyzerConfig) -> Labels:
    truth: list[Any] = []
    prediction: list[Any] = []
    probability: list[float] = []
    if not config.ground_truth_attribute:
        raise UserError("A model quality baseline needs ground_truth_attribute (the column holding the true label).")
    for table in read_dataset(config.dataset_source, config.dataset_format):
        names = table.column_names
        truth.extend(table.column(_column(names, config.ground_truth_attribute)).to_pylist())
        if config.inference_attribute:
            prediction.extend(table.column(_column(names, config.inference_attribute)).to_pylist())
        else:
            prediction.extend([None] * table.num_rows)
        if config.probability_attribute:
            probability.extend(float(v) for v in table.column(_column(names, config.probability_attribute)).to_pylist())
    return Labels(truth, prediction, probability if config.probability_attribute else None)


def _ground_truth(source: Path, attribute: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if not source.exists():
        raise UserError(
            f"No ground truth at {source}: a model quality monitoring job needs the GroundTruthS3Input staged there "
            "(or ground_truth_source pointing at it)."
        )
    bad = 0
    for path in dataset_files(source):
        with open_text(path) as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                    decoded = decode_payload(raw["groundTruthData"])
                    value = extract(decoded, attribute or "0") if attribute or isinstance(decoded, list) else decoded
                    found[str(raw["eventMetadata"]["eventId"])] = value
                except (ValueError, KeyError, IndexError, TypeError):
                    bad += 1
    if bad:
        logger.warning("%d ground truth line(s) could not be read and were skipped", bad)
    return found


def monitoring_labels(
    config: AnalyzerConfig, tally: CaptureTally, start: datetime | None, end: datetime | None
) -> Labels:
    truth_by_id = _ground_truth(config.ground_truth_source, config.ground_truth_attribute)
    labels = Labels([], [], [] if config.probability_attribute else None)
    unmatched = 0
    for record in iter_records(config.dataset_source, start, end, tally):
        if record.merge_key not in truth_by_id:
            unmatched += 1
            continue
        payload = record.payloads.get("endpointOutput") or record.payloads.get("batchTransformOutput")
        if payload is None:
            tally.corrupt += 1
            continue
        try:
            decoded = decode_payload(payload)
            predicted = extract(decoded, config.inference_attribute) if config.inference_attribute else None
            score = float(extract(decoded, config.probability_attribute)) if config.probability_attribute else None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            tally.corrupt += 1
            logger.warning("capture %s: output does not hold the configured attributes: %r", record.event_id, exc)
            continue
        labels.truth.append(truth_by_id[record.merge_key])
        labels.prediction.append(predicted)
        if labels.probability is not None and score is not None:
            labels.probability.append(score)
    logger.info(
        "merged %d capture(s) with ground truth; %d capture(s) had no ground truth", len(labels.truth), unmatched
    )
    if not labels.truth:
        raise UserError(
            f"No captured inference in the window matched a ground truth record ({tally.in_window} capture(s), "
            f"{len(truth_by_id)} ground truth record(s), {unmatched} unmatched). Ground truth eventMetadata.eventId "
            "must equal the capture's inferenceId (or eventId when no inference id was sent)."
        )
    return labels
