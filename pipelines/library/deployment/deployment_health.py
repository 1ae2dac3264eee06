"""The health check a deployment must pass before it keeps its traffic: score test rows, check the answers.

The rows come from the pipeline's own test split: the ``labelled_test`` output of the credit-risk ``Features`` step
(``s3://<bucket>/<pipeline>/features/labelled_test/``: CSV with a header, the label first, then the model's input
columns in the model's order; rows the model never trained on). The first ``rows`` of them go to the endpoint in one
``text/csv`` request. The check passes when the endpoint answers, with one probability in [0, 1] per row, and the
AUC of those answers against the rows' labels is at least ``min_auc`` (a model that answers but ranks no better than
chance fails).
"""

from __future__ import annotations

import io
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)


class HealthDataError(RuntimeError):
    """The test split to check with cannot be read; the message names the location and what to do."""


@dataclass(frozen=True)
class HealthCheck:
    """What a healthy deployment must do; ``rows = 0`` turns the check off (the endpoint only has to be InService)."""

    rows: int = 100
    min_auc: float = 0.6
    attempts: int = 3  # InvokeEndpoint tries (2 s apart) before an invocation error counts as unhealthy
    retry_seconds: float = 2.0


@dataclass(frozen=True)
class HealthReport:
    passed: bool
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    lines: list[str]  # model input rows as CSV lines
    labels: list[int]  # 1 = good credit risk


def health_data_uri(bucket: str, pipeline: str) -> str:
    """Where ``pipeline``'s Features step writes its labelled test split."""
    from pipelines.credit_risk.pipeline import FEATURE_OUTPUTS

    return f"s3://{bucket}/{pipeline}/features/{FEATURE_OUTPUTS['labelled_test']}/"


def read_sample(s3: Any, uri: str, rows: int) -> Sample:
    """The first ``rows`` rows of the labelled CSV files under the S3 prefix ``uri`` (in key order)."""
    import pandas as pd

    from pipelines.library.monitor_demo.monitor_data import csv_lines

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".csv"))
        texts = [s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode() for key in keys]
    except ClientError as exc:
        raise HealthDataError(f"cannot read the health check's test split {uri}: {exc}") from exc
    frames = [pd.read_csv(io.StringIO(text)) for text in texts if text.strip()]
    if not frames:
        raise HealthDataError(
            f"no test split under {uri}: run `make pipeline` first, or name one with --health-data "
            "(or turn the check off with --health-rows 0)"
        )
    table = pd.concat(frames, ignore_index=True).head(rows)
    return Sample(lines=csv_lines(table.iloc[:, 1:]), labels=[int(v) for v in table.iloc[:, 0]])


def check_health(runtime: Any, endpoint: str, check: HealthCheck, sample: Sample | None) -> HealthReport:
    """Invoke ``endpoint`` (a ``sagemaker-runtime`` client) with the sample and judge the answers."""
    if check.rows <= 0 or sample is None:
        return HealthReport(True, "health check off (--health-rows 0)")
    body = ("\n".join(sample.lines) + "\n").encode()
    try:
        answer = _invoke(runtime, endpoint, body, check)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return HealthReport(False, f"InvokeEndpoint failed: {error.get('Code')}: {error.get('Message')}")
    return judge(answer, sample.labels, check.min_auc)


def _invoke(runtime: Any, endpoint: str, body: bytes, check: HealthCheck) -> str:
    for attempt in range(1, max(1, check.attempts) + 1):
        try:
            response = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv")
            return str(response["Body"].read().decode())
        except ClientError:
            if attempt >= check.attempts:
                raise
            logger.info("health check: InvokeEndpoint attempt %d failed, retrying", attempt, exc_info=True)
            time.sleep(check.retry_seconds)
    raise AssertionError("unreachable")  # pragma: no cover


def judge(answer: str, labels: list[int], min_auc: float) -> HealthReport:
    """One finite score in [0, 1] per label, and an AUC of at least ``min_auc``."""
    cells = [cell for cell in re.split(r"[,\s]+", answer.strip()) if cell]
    try:
        scores = [float(cell) for cell in cells]
    except ValueError:
        return HealthReport(False, f"the answer is not a list of scores: {answer[:120]!r}")
    if len(scores) != len(labels):
        return HealthReport(False, f"{len(scores)} scores answered for {len(labels)} rows")
    bad = [s for s in scores if not math.isfinite(s) or not 0.0 <= s <= 1.0]
    if bad:
        return HealthReport(False, f"{len(bad)} scores are not probabilities in [0, 1] (e.g. {bad[0]})")
    auc = roc_auc(labels, scores)
    figures = {"rows": len(labels), "auc": round(auc, 4), "min_auc": min_auc}
    if auc < min_auc:
        return HealthReport(False, f"AUC {auc:.3f} on {len(labels)} test rows is below {min_auc}", figures)
    return HealthReport(True, f"AUC {auc:.3f} on {len(labels)} test rows (>= {min_auc})", figures)


def roc_auc(labels: list[int], scores: list[float]) -> float:
    """Area under the ROC curve (ties count half); 0.5 when the labels hold one class only."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    negatives = [s for s, y in zip(scores, labels, strict=True) if y != 1]
    if not positives or not negatives:
        return 0.5
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return float(wins) / (len(positives) * len(negatives))
