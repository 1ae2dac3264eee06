"""online_get_latency: GetRecord p50/p99 through the stack's edge with one boto3 client (goal p50 <= 2 ms).

10,000 records are written with BatchWriteRecord, then ``SAGESTACK_BENCH_GET_CALLS`` (default 5000) GetRecord calls
on random identifiers are timed one by one after 200 warm-up calls.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

from benchmarks._feature_store import client, create_group, start_stack
from benchmarks.common import emit, percentile

RECORDS = 10_000


def main() -> None:
    calls = int(os.environ.get("SAGESTACK_BENCH_GET_CALLS", "5000"))
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "stack")
        try:
            name = create_group(stack.url, offline=False)["FeatureGroupName"]
            fsr = client(stack.url, "sagemaker-featurestore-runtime")
            now = time.time()
            for start in range(0, RECORDS, 25):
                entries = [
                    {
                        "FeatureGroupName": name,
                        "Record": [
                            {"FeatureName": "customer_id", "ValueAsString": f"c{i}"},
                            {"FeatureName": "event_time", "ValueAsString": repr(now)},
                            {"FeatureName": "age", "ValueAsString": str(i % 90)},
                            {"FeatureName": "balance", "ValueAsString": repr(i * 0.5)},
                            {"FeatureName": "segment", "ValueAsString": "ab"[i % 2]},
                        ],
                    }
                    for i in range(start, start + 25)
                ]
                fsr.batch_write_record(Entries=entries)
            rng = random.Random(5)
            for _ in range(200):
                fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=f"c{rng.randrange(RECORDS)}")
            latencies = []
            for _ in range(calls):
                key = f"c{rng.randrange(RECORDS)}"
                begin = time.perf_counter()
                answer = fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=key)
                latencies.append((time.perf_counter() - begin) * 1000)
                assert answer["Record"], key
        finally:
            stack.stop()
    emit(
        "online_get_latency",
        f"{calls} GetRecord calls over {RECORDS} records, one boto3 client",
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


if __name__ == "__main__":
    main()
