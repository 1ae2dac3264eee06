"""metrics_ingest: BatchPutMetrics points per second, and Search latency over 10,000 trial components.

On the in-process stack: 4 client threads, in one client process of their own (as a user's script logs beside the
stack), each send BatchPutMetrics requests of 10 points (the API's maximum, as the SDK's ``Run.log_metric`` batches
them) for a fixed number of requests; points_per_s is the sustained rate. The anchor, measured in the same run from
the same process with the same threads, is DescribeTrialComponent on the same component: ``edge_ratio`` is the ingest
request rate over that rate (1.0 = ingest costs no more than the cheapest call through the edge). Then 10,000 trial
components, each with a parameter and a metric, are created in one experiment (in-process, through the backend's
handlers) and ``Search`` is timed through boto3 with a parent filter, a metric filter and a sort by the metric, 10
results. Goals: points_per_s >= 10000, search_p50_ms <= 50.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from benchmarks.common import emit, percentile
from infra.config import StackSettings
from infra.control_plane.server import LocalStack

THREADS = 4
REQUESTS_PER_THREAD = 250
COMPONENTS = 10_000
SEARCHES = 40


def _client(url: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b"
    )


def _threaded_rate(url: str, service: str, call: str, kwargs: dict[str, Any]) -> float:
    """Requests per second of ``THREADS`` threads each making ``REQUESTS_PER_THREAD`` calls."""
    clients = [_client(url, service) for _ in range(THREADS)]
    for client in clients:
        getattr(client, call)(**kwargs)  # connection and model loading out of the timing

    def work(client: Any) -> None:
        method = getattr(client, call)
        for _ in range(REQUESTS_PER_THREAD):
            method(**kwargs)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return THREADS * REQUESTS_PER_THREAD / (time.perf_counter() - started)


def ingest(url: str) -> tuple[float, float]:
    """Both rates measured from one client process of its own, as a user's script (a notebook, a training job)
    logs beside the stack: in the stack's process, the client's threads would compete with the stack for one GIL
    and the client's own botocore work (about half a millisecond a call) would count as the stack's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        rates: tuple[float, float] = pool.apply(_client_process_rates, (url,))
    return rates


def _client_process_rates(url: str) -> tuple[float, float]:
    sm = _client(url, "sagemaker")
    sm.create_trial_component(TrialComponentName="ingest")
    points = [
        {"MetricName": "loss", "Value": 1.0 / (i + 1), "Step": i, "Timestamp": datetime.now(tz=UTC)} for i in range(10)
    ]
    put_rate = _threaded_rate(
        url, "sagemaker-metrics", "batch_put_metrics", {"TrialComponentName": "ingest", "MetricData": points}
    )
    describe_rate = _threaded_rate(url, "sagemaker", "describe_trial_component", {"TrialComponentName": "ingest"})
    return put_rate * len(points), put_rate / describe_rate


def search_latency(stack: LocalStack, url: str) -> list[float]:
    backend = stack.backend()
    backend.experiments.create_experiment({"ExperimentName": "scale"})
    backend.experiments.create_trial({"TrialName": "scale-trial", "ExperimentName": "scale"})
    now = datetime.now(tz=UTC).timestamp()
    for i in range(COMPONENTS):
        name = f"scale-{i:05d}"
        backend.trial_components.create_trial_component(
            {"TrialComponentName": name, "Parameters": {"eta": {"NumberValue": (i % 100) / 100}}}
        )
        backend.experiments.associate_trial_component({"TrialComponentName": name, "TrialName": "scale-trial"})
        backend.sagemaker_metrics.batch_put_metrics(
            {
                "TrialComponentName": name,
                "MetricData": [{"MetricName": "auc", "Value": (i % 997) / 997, "Timestamp": now}],
            }
        )
    sm = _client(url, "sagemaker")
    request = {
        "Resource": "ExperimentTrialComponent",
        "SearchExpression": {
            "Filters": [
                {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": "scale"},
                {"Name": "Metrics.auc.Max", "Operator": "GreaterThan", "Value": "0.5"},
            ]
        },
        "SortBy": "Metrics.auc.Max",
        "SortOrder": "Descending",
        "MaxResults": 10,
    }
    sm.search(**request)
    timings = []
    for _ in range(SEARCHES):
        started = time.perf_counter()
        results = sm.search(**request)["Results"]
        timings.append((time.perf_counter() - started) * 1000)
        assert len(results) == 10
    return timings


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="metrics_ingest-") as scratch:
        stack = LocalStack(StackSettings(data_dir=Path(scratch) / "stack", port=0))
        url = stack.start()
        try:
            points_per_s, ratio = ingest(url)
            timings = search_latency(stack, url)
        finally:
            stack.stop()
    emit(
        "metrics_ingest",
        f"{THREADS} threads x {REQUESTS_PER_THREAD} BatchPutMetrics of 10 points; Search over {COMPONENTS} components;"
        " anchor: DescribeTrialComponent through the same edge",
        points_per_s=points_per_s,
        edge_ratio=ratio,
        search_p50_ms=percentile(timings, 50),
        search_p95_ms=percentile(timings, 95),
    )


if __name__ == "__main__":
    main()
