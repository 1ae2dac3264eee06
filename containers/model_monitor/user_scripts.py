"""User record pre-processor and post-analytics scripts
(docs/reference/model-monitor-files.md#pre--and-post-processing-scripts).

``preprocess_handler(inference_record[, logger])`` sees an ``InferenceRecord`` with both attribute styles the docs and
the SDK fixtures use (``record.endpoint_input.data`` and ``record.event_data.endpointInput.data``). It returns a flat
dict (one row; ``None`` is missing), a list of dicts (several rows) or ``[]`` (drop the record). Row keys are sorted,
as the service does (hence the docs' zero-padded keys). ``postprocess_handler()`` runs after a successful analysis.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from containers.model_monitor.inputs.capture import CaptureRecord, Row
from containers.model_monitor.inputs.readers import to_text
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["InferenceRecord", "load_preprocessor", "run_postprocessor"]

script_logger = logging.getLogger("containers.model_monitor.user_script")


class EventData:
    """One ``captureData`` entry (``data``, ``encoding``, ``observedContentType``, ``mode``)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.data = raw.get("data")
        self.encoding = raw.get("encoding")
        self.observedContentType = raw.get("observedContentType")
        self.observed_content_type = self.observedContentType
        self.mode = raw.get("mode")


class InferenceRecord:
    def __init__(self, record: CaptureRecord) -> None:
        raw = record.raw
        meta = raw.get("eventMetadata") or {}
        self.event_dict = raw
        self.event_version = raw.get("eventVersion")
        self.event_metadata = SimpleNamespace(
            event_id=meta.get("eventId"),
            event_time=meta.get("inferenceTime"),
            inference_id=meta.get("inferenceId"),
            custom_attribute=meta.get("customAttributes"),
        )
        data = record.payloads
        self.endpoint_input = EventData(data["endpointInput"]) if "endpointInput" in data else None
        self.endpoint_output = EventData(data["endpointOutput"]) if "endpointOutput" in data else None
        self.batch_transform_output = (
            EventData(data["batchTransformOutput"]) if "batchTransformOutput" in data else None
        )
        self.event_data = SimpleNamespace(
            endpointInput=self.endpoint_input,
            endpointOutput=self.endpoint_output,
            batchTransformOutput=self.batch_transform_output,
        )
        ground_truth = raw.get("groundTruthData")
        self.ground_truth = EventData(ground_truth) if isinstance(ground_truth, dict) else None


def _load_module(path: Path, name: str) -> ModuleType:
    if not path.is_file():
        raise UserError(f"The {name} script {path} does not exist; check the job's script input and its env var.")
    spec = importlib.util.spec_from_file_location(f"sagestack_user_{name}", path)
    if spec is None or spec.loader is None:
        raise UserError(f"The {name} script {path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is theirs to fix
        raise UserError(f"The {name} script {path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def load_preprocessor(path: Path) -> Callable[[CaptureRecord], list[Row]]:
    module = _load_module(path, "record_preprocessor")
    handler = getattr(module, "preprocess_handler", None)
    if not callable(handler):
        raise UserError(f"The record preprocessor {path} defines no preprocess_handler(inference_record[, logger]).")
    takes_logger = len(inspect.signature(handler).parameters) >= 2

    def to_rows(record: CaptureRecord) -> list[Row]:
        wrapped = InferenceRecord(record)
        try:
            result = handler(wrapped, script_logger) if takes_logger else handler(wrapped)
        except Exception as exc:  # the user's code
            raise UserError(
                f"preprocess_handler failed on event {record.event_id}: {type(exc).__name__}: {exc}"
            ) from exc
        return _rows(result, path)

    return to_rows


def _rows(result: Any, path: Path) -> list[Row]:
    if result is None or result == []:
        return []
    items = result if isinstance(result, list) else [result]
    rows: list[Row] = []
    for item in items:
        if not isinstance(item, dict):
            raise UserError(
                f"preprocess_handler in {path} returned {type(item).__name__}; return a dict, a list of dicts or []."
            )
        rows.append({str(k): to_text(item[k]) for k in sorted(item, key=str)})
    return rows


def run_postprocessor(path: Path) -> None:
    module = _load_module(path, "post_analytics_processor")
    handler = getattr(module, "postprocess_handler", None)
    if not callable(handler):
        raise UserError(f"The post-analytics processor {path} defines no postprocess_handler().")
    logger.info("running postprocess_handler from %s", path)
    try:
        handler()
    except Exception as exc:  # the user's code
        raise UserError(f"postprocess_handler failed: {type(exc).__name__}: {exc}") from exc
