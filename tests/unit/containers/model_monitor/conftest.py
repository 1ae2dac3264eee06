"""Helpers for the analyzer tests: capture records, host directories, running the analyzer as a process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[4]


def capture_line(
    features: str | dict[str, Any] | None,
    output: str | dict[str, Any] | None,
    event_id: str,
    when: str = "2024-05-01T10:15:00Z",
    encoding: str = "CSV",
    inference_id: str | None = None,
) -> str:
    """One captured record; ``encoding`` is CSV, JSON or BASE64 (the payload text is base64-encoded)."""

    def entry(value: str | dict[str, Any], mode: str) -> dict[str, str]:
        is_json = isinstance(value, dict)
        text = json.dumps(value) if is_json else str(value)
        content_type = "application/json" if is_json else "text/csv"
        data = base64.b64encode(text.encode()).decode() if encoding == "BASE64" else text
        kind = encoding if encoding == "BASE64" else ("JSON" if is_json else "CSV")
        return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": kind}

    capture: dict[str, Any] = {}
    if features is not None:
        capture["endpointInput"] = entry(features, "INPUT")
    if output is not None:
        capture["endpointOutput"] = entry(output, "OUTPUT")
    meta: dict[str, Any] = {"eventId": event_id, "inferenceTime": when}
    if inference_id:
        meta["inferenceId"] = inference_id
    return json.dumps({"captureData": capture, "eventMetadata": meta, "eventVersion": "0"})


def run_analyzer(base: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m containers.model_monitor`` with ``SAGEMAKER_BASE_DIR=base`` and the job's environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    full = {**clean, "SAGEMAKER_BASE_DIR": str(base), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "containers.model_monitor"],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
