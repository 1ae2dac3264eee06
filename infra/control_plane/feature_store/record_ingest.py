"""The stack's bulk ingest request: many records of one feature group in one call, as rows under shared names.

``POST /_sagestack/feature-store/ingest`` (signed for ``sagemaker`` like the runtime's operations) with a JSON body::

    {"FeatureGroupName": "customers", "TargetStores": ["OnlineStore"],          # TargetStores optional
     "FeatureNames": ["customer_id", "event_time", "age"],
     "Records": [["c1", "1700000000.5", "31"], ["c2", "1700000001", null]]}   # null: the feature is absent

answers ``{"Errors": [{"Index": 1, "ErrorCode": "ValidationError", "ErrorMessage": "..."}]}``. It is not an AWS
operation: Spark ingestion uses it when it talks to the stack (``BatchWriteRecord`` takes 25 records a call) and
falls back to ``BatchWriteRecord`` elsewhere. Each record is checked exactly as ``PutRecord`` checks one; here only
the envelope is (docs/feature-store.md#bulk-ingestion).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infra.control_plane.core.errors import RuntimeValidationError

INGEST_PATH = "/_sagestack/feature-store/ingest"
MAX_INGEST_RECORDS = 10_000
MAX_VALUE_LENGTH = 358400  # ValueAsString's limit in the runtime's model
_STORES = ("OnlineStore", "OfflineStore")


@dataclass(frozen=True)
class IngestRequest:
    feature_group_name: str
    target_stores: list[str] | None
    feature_names: list[str]
    records: list[list[str | list[str] | None]]


def parse_ingest(body: bytes) -> IngestRequest:
    """The request of ``body``; raises ``RuntimeValidationError`` (AWS's wording) for what does not fit."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RuntimeValidationError(f"Request body is not valid JSON: {type(exc).__name__}") from exc
    if not isinstance(document, dict):
        raise RuntimeValidationError("Request body must be a JSON object.")
    name = document.get("FeatureGroupName")
    if not isinstance(name, str) or not 1 <= len(name) <= 150:
        raise _constraint("featureGroupName", "Member must be a string of 1 to 150 characters")
    return IngestRequest(name, _stores(document.get("TargetStores")), _names(document), _records(document))


def _constraint(where: str, what: str) -> RuntimeValidationError:
    return RuntimeValidationError(
        f"1 validation error detected: Value at '{where}' failed to satisfy constraint: {what}"
    )


def _stores(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= 2 or any(v not in _STORES for v in value):
        raise _constraint("targetStores", f"Member must be a list of 1 or 2 of {list(_STORES)}")
    return list(value)


def _names(document: dict[str, Any]) -> list[str]:
    names = document.get("FeatureNames")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise _constraint("featureNames", "Member must be a non-empty list of non-empty strings")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise RuntimeValidationError(f"The feature {duplicate} appears more than once in the record.")
    return names


def _records(document: dict[str, Any]) -> list[list[Any]]:
    records, width = document.get("Records"), len(document["FeatureNames"])
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_INGEST_RECORDS:
        raise _constraint("records", f"Member must be a list of 1 to {MAX_INGEST_RECORDS} records")
    for index, row in enumerate(records):
        if not isinstance(row, list) or len(row) != width:
            raise _constraint(f"records.{index}", f"Member must be a list of {width} values, one per feature name")
        for value in row:
            if value is None or (isinstance(value, str) and len(value) <= MAX_VALUE_LENGTH):
                continue
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                continue
            raise _constraint(
                f"records.{index}",
                f"Member must hold strings of at most {MAX_VALUE_LENGTH} characters, lists of strings or null",
            )
    return records
