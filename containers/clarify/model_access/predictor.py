"""The model behind the analysis: an endpoint reached with ``InvokeEndpoint`` (boto3, honouring
``AWS_ENDPOINT_URL``), or a shadow endpoint created from ``predictor.model_name`` and deleted afterwards.

Rows are sent in large batches under the payload limit, several requests at a time; the answer is parsed by
``accept_type`` with ``predictor.label`` / ``predictor.probability`` (column indices for CSV, JMESPath for JSON).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import pandas as pd

from containers.clarify.config import PredictorConfig
from containers.clarify.model_access.predictor_codec import ModelOutput, decode_response, request_encoder
from containers.toolkit.errors import PlatformError, UserError

logger = logging.getLogger(__name__)

__all__ = ["EndpointModel", "Model", "ModelOutput", "connect_model", "predicted_labels"]

MAX_PAYLOAD_BYTES = 5 * 1024 * 1024
MAX_ROWS_PER_REQUEST = 100_000
PARALLEL_REQUESTS = 4
ENDPOINT_WAIT_SECONDS = 1800.0
_POLL_SECONDS = 1.0


class Model(Protocol):
    """What the analyses call; ``predict`` may be called from several threads at once (Kernel SHAP overlaps its
    batches)."""

    def predict(self, frame: pd.DataFrame) -> ModelOutput: ...


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _client(service: str) -> Any:
    import boto3  # lazily: only jobs with a predictor need it
    from botocore.config import Config

    config = Config(read_timeout=300, retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=16)
    return boto3.client(service, region_name=_region(), config=config)


class EndpointModel:
    """``InvokeEndpoint`` on ``endpoint_name`` with the predictor's content types and output paths; at most
    ``PARALLEL_REQUESTS`` requests are encoded or in flight at a time, whatever the number of ``predict`` calls."""

    def __init__(self, endpoint_name: str, config: PredictorConfig, runtime: Any | None = None) -> None:
        self.endpoint_name = endpoint_name
        self.config = config
        self._runtime = runtime if runtime is not None else _client("sagemaker-runtime")
        self._in_flight = threading.BoundedSemaphore(PARALLEL_REQUESTS)

    def predict(self, frame: pd.DataFrame) -> ModelOutput:
        if frame.empty:
            return ModelOutput(np.zeros((0, 1)), None, self.config.label_headers)
        encode = request_encoder(frame, self.config)
        ranges = list(_row_ranges(len(frame), encode))

        def invoke(rows: range) -> ModelOutput:  # encoded in the request's thread: Arrow gathers without the GIL
            with self._in_flight:
                return self._invoke(encode(rows.start, rows.stop), len(rows))

        with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(ranges))) as pool:
            parts = list(pool.map(invoke, ranges))
        return _combine(parts, self.config.label_headers)

    def _invoke(self, body: bytes, records: int) -> ModelOutput:
        request: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "Body": body,
            "ContentType": self.config.content_type,
            "Accept": self.config.accept_type,
        }
        if self.config.target_model:
            request["TargetModel"] = self.config.target_model
        if self.config.custom_attributes:
            request["CustomAttributes"] = self.config.custom_attributes
        try:
            response = self._runtime.invoke_endpoint(**request)
        except Exception as exc:  # botocore raises many types; all mean the model could not answer
            raise UserError(f"InvokeEndpoint on '{self.endpoint_name}' failed: {exc}") from exc
        payload = response["Body"].read()
        output = decode_response(payload, self.config)
        rows = len(output)
        if rows != records:
            raise UserError(
                f"Endpoint '{self.endpoint_name}' returned {rows} predictions for {records} records. "
                "Fix: the model must answer one prediction per input record."
            )
        return output


def _row_ranges(rows: int, encode: Callable[[int, int], bytes]) -> Iterator[range]:
    """Row ranges whose bodies stay under the payload limit (sized from the first rows' body)."""
    sample = min(rows, 200)
    per_row = max(1.0, len(encode(0, sample)) / sample)
    size = int(max(1, min(MAX_ROWS_PER_REQUEST, (MAX_PAYLOAD_BYTES * 0.8) // per_row)))
    for start in range(0, rows, size):
        yield range(start, min(start + size, rows))


def _combine(parts: Sequence[ModelOutput], headers: tuple[str, ...] | None) -> ModelOutput:
    score_parts = [p.scores for p in parts if p.scores is not None]
    label_parts = [p.labels for p in parts if p.labels is not None]
    scores = np.vstack(score_parts) if len(score_parts) == len(parts) else None
    labels = np.concatenate(label_parts) if len(label_parts) == len(parts) else None
    return ModelOutput(scores, labels, headers)


def predicted_labels(output: ModelOutput, threshold: float) -> tuple[pd.Series, bool]:
    """The predicted label per row, and whether it came from a score and ``probability_threshold``.

    A label from the model wins; several scores with ``label_headers`` give the argmax header; one score gives
    ``1`` when it is ``> probability_threshold`` else ``0``.
    """
    if output.labels is not None:
        return pd.Series(output.labels, name="predicted_label"), False
    assert output.scores is not None
    if output.scores.shape[1] == 1:
        return pd.Series((output.scores[:, 0] > threshold).astype(np.int64), name="predicted_label"), True
    if not output.label_headers or len(output.label_headers) != output.scores.shape[1]:
        raise UserError(
            f"The model returns {output.scores.shape[1]} scores per record but 'predictor.label_headers' does not "
            "name them. Fix: set ModelPredictedLabelConfig(label_headers=[...]) or return one score."
        )
    headers = np.array(output.label_headers, dtype=object)
    return pd.Series(headers[np.argmax(output.scores, axis=1)], name="predicted_label"), False


def _wait_in_service(sagemaker: Any, name: str) -> None:
    deadline = time.monotonic() + ENDPOINT_WAIT_SECONDS
    while time.monotonic() < deadline:
        described = sagemaker.describe_endpoint(EndpointName=name)
        status = described.get("EndpointStatus")
        if status == "InService":
            return
        if status in ("Failed", "OutOfService"):
            raise PlatformError(f"shadow endpoint {name} is {status}: {described.get('FailureReason', '')}")
        time.sleep(_POLL_SECONDS)
    raise PlatformError(f"shadow endpoint {name} was not InService after {ENDPOINT_WAIT_SECONDS:.0f} s")


def _shadow_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"[:63]


@contextmanager
def shadow_endpoint(config: PredictorConfig, sagemaker: Any | None = None) -> Iterator[str]:
    """Create ``<prefix>-<random>`` from ``model_name``, wait until InService, delete it at the end (always)."""
    client = sagemaker if sagemaker is not None else _client("sagemaker")
    name = _shadow_name(config.endpoint_name_prefix)
    variant: dict[str, Any] = {
        "VariantName": "AllTraffic",
        "ModelName": config.model_name,
        "InitialInstanceCount": config.initial_instance_count,
        "InstanceType": config.instance_type or "ml.m5.xlarge",
    }
    if config.accelerator_type:
        variant["AcceleratorType"] = config.accelerator_type
    logger.info("creating shadow endpoint %s for model %s", name, config.model_name)
    try:
        client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
        client.create_endpoint(EndpointName=name, EndpointConfigName=name)
    except Exception as exc:
        _delete_quietly(client, name)
        raise UserError(f"Could not create a shadow endpoint for model '{config.model_name}': {exc}") from exc
    try:
        _wait_in_service(client, name)
        yield name
    finally:
        _delete_quietly(client, name)


def _delete_quietly(client: Any, name: str) -> None:
    for call, key in ((client.delete_endpoint, "EndpointName"), (client.delete_endpoint_config, "EndpointConfigName")):
        try:
            call(**{key: name})
        except Exception as exc:  # best effort: the job's own result matters more than the clean-up
            logger.warning("could not delete %s %s: %s", key, name, exc)
    logger.info("deleted shadow endpoint %s", name)


@contextmanager
def connect_model(config: PredictorConfig) -> Iterator[Model]:
    """The model to call: the named endpoint, or a shadow endpoint for ``model_name`` (deleted on exit)."""
    if config.endpoint_name:
        yield EndpointModel(config.endpoint_name, config)
        return
    with shadow_endpoint(config) as name:
        yield EndpointModel(name, config)
