"""mlflow_log_overhead: 1,000 metric points logged through a managed MLflow tracking server of the stack, against
MLflow's own local file store in the same run.

The stack runs in-process; CreateMlflowTrackingServer starts its ``mlflow server`` (SQLite backend store, artifacts
in the stack's S3) and the benchmark waits for ``Created``. Each side then logs 1,000 points of one metric to a new
run as 10 ``MlflowClient.log_batch`` calls of 100 points (the batch path is what a fair client uses on both sides),
``ROUNDS`` times, from one client process of its own (as a user's script runs beside the stack); the figure is
the median time of a round. The sides' rounds are interleaved in a rotating order (managed, server URL, file store;
then server URL, file store, managed; ...), so that a busy machine's load drifting during the run weighs on every
side alike rather than on whichever side ran while the machine was busiest. The managed side logs as on AWS: the
server's ARN is the tracking URI and the sagemaker-mlflow plugin signs each call and sends it to the stack's edge
(``SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT``, as ``sagestack env`` exports it), which relays it to the server. ``ratio`` =
managed server / local file store (goal <= 1.5); ``managed_ms``, ``server_url_ms`` (the same logging to the
server's own URL, no edge) and ``file_store_ms`` are the medians. MLflow 3 refuses its file store unless
``MLFLOW_ALLOW_FILE_STORE`` is set: the benchmark sets it for itself.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from benchmarks.common import emit
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

POINTS = 1_000
BATCH = 100
ROUNDS = 9
SERVER = "bench-mlflow"


def _log_round(client: Any, experiment_id: str) -> float:
    from mlflow.entities import Metric

    run_id = client.create_run(experiment_id).info.run_id
    now = int(time.time() * 1000)
    batches = [
        [Metric("loss", 1.0 / (step + 1), now + step, step) for step in range(start, start + BATCH)]
        for start in range(0, POINTS, BATCH)
    ]
    started = time.perf_counter()
    for metrics in batches:
        client.log_batch(run_id, metrics=metrics)
    elapsed = time.perf_counter() - started
    assert len(client.get_metric_history(run_id, "loss")) == POINTS
    return elapsed


def _interleaved_medians(tracking_uris: list[str]) -> list[float]:
    """The median round of each side, the sides' rounds interleaved in a rotating order: on a busy machine the load
    drifts over a run, and timing all rounds of one side before the next would charge the drift to one side."""
    from mlflow import MlflowClient

    sides = []
    for uri in tracking_uris:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = client.create_experiment(f"bench-{time.time_ns()}")
        _log_round(client, experiment_id)  # connection, schema and caches out of the timing
        sides.append((client, experiment_id))
    rounds: list[list[float]] = [[] for _ in sides]
    for round_number in range(ROUNDS):
        for offset in range(len(sides)):
            side = (round_number + offset) % len(sides)
            rounds[side].append(_log_round(*sides[side]))
    return [statistics.median(times) for times in rounds]


def _managed_server(url: str) -> tuple[str, str]:
    """The server's ARN (what a user sets as tracking URI on AWS, with the plugin) and its own URL."""
    sm = boto3.client(
        "sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b"
    )
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
    s3.create_bucket(Bucket="bench-mlflow")
    sm.create_mlflow_tracking_server(
        TrackingServerName=SERVER, ArtifactStoreUri="s3://bench-mlflow/runs", RoleArn="arn:aws:iam::123456789012:role/b"
    )
    while (described := sm.describe_mlflow_tracking_server(TrackingServerName=SERVER))["TrackingServerStatus"] in (
        "Creating",
    ):
        time.sleep(0.5)
    if described["TrackingServerStatus"] != "Created":
        raise RuntimeError(f"the tracking server ended {described['TrackingServerStatus']}")
    return str(described["TrackingServerArn"]), str(described["TrackingServerUrl"])


def _client_process_rounds(stack_url: str, uris: list[str]) -> list[float]:
    """All sides timed in one client process of their own, as a user's script is (the stack's threads would
    otherwise compete for this process's GIL at every HTTP round trip), with what ``sagestack env`` exports."""
    os.environ.update(
        {
            "MLFLOW_ALLOW_FILE_STORE": "true",  # MLflow 3 keeps its file store behind this switch (the anchor)
            "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT": stack_url,
            "AWS_ACCESS_KEY_ID": "b",
            "AWS_SECRET_ACCESS_KEY": "b",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    import boto3
    import mlflow
    import sagemaker_mlflow

    # As on AWS: the server's ARN is the current tracking URI (the sagemaker-mlflow plugin signs for, routes by, and
    # adds its header from it), and the plugin signs with one boto3 session rather than a new one per call.
    mlflow.set_tracking_uri(uris[0])
    sagemaker_mlflow.set_session(boto3.Session())
    return _interleaved_medians(uris)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlflow_log_overhead-") as scratch:
        stack = LocalStack(StackSettings(data_dir=Path(scratch) / "stack", port=0))
        url = stack.start()
        try:
            arn, server_url = _managed_server(url)
            uris = [arn, server_url, (Path(scratch) / "mlruns").as_uri()]
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                managed, direct, local = pool.apply(_client_process_rounds, (url, uris))
        finally:
            stack.stop()
    emit(
        "mlflow_log_overhead",
        f"{POINTS} points as {POINTS // BATCH} log_batch calls, median of {ROUNDS} rounds; anchor: MLflow's local"
        " file store in the same run",
        ratio=managed / local,
        managed_ms=managed * 1000,
        server_url_ms=direct * 1000,
        file_store_ms=local * 1000,
    )


if __name__ == "__main__":
    main()
