"""docker_job_overhead: the one-round XGBoost job in the Docker runtime vs the process runtime.

Both runtimes run the same 100-row CSV through the same container (``sagestack/xgboost`` in Docker, ``python -m
containers.xgboost`` as a process), median of REPEATS jobs each. Measured at the runtime interface: the stack's
``RUNTIME=docker`` switch is wired by the lead (see docs/images.md), and the stack adds the same S3/Logs work to both.
Key ``ratio`` (docker / process), also ``added_s``. For reference, SDK local mode added about 6.5 s per job over
``docker run`` of the same image on this machine.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.common import emit, work_dir
from infra.runtime.api import ChannelSpec, ContainerImage, TrainingOutcome, TrainingSpec
from infra.runtime.docker import DockerRuntime
from infra.runtime.images import resolve_image
from infra.runtime.process import ProcessRuntime

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
HYPERPARAMETERS = {"num_round": "1", "objective": "binary:logistic", "max_depth": "2"}
REPEATS = 5


def _spec(image: ContainerImage, root: Path, name: str, data: Path) -> TrainingSpec:
    return TrainingSpec(
        job_name=name,
        image=image,
        work_dir=root / name,
        hyperparameters=HYPERPARAMETERS,
        channels={"algo-1": [ChannelSpec("train", data, content_type="text/csv")]},
    )


def _median_job_seconds(
    runtime: DockerRuntime | ProcessRuntime, image: ContainerImage, root: Path, data: Path
) -> float:
    times = []
    for index in range(REPEATS + 1):
        start = time.perf_counter()
        result = runtime.start_training(_spec(image, root, f"job-{index}", data)).wait()
        elapsed = time.perf_counter() - start
        if result.outcome is not TrainingOutcome.COMPLETED:
            raise RuntimeError(f"benchmark job failed: {result.failure_reason}")
        if index:  # the first job warms caches (page cache, image layers)
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    root = work_dir("docker_job_overhead")
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.csv").write_text("".join(f"{i % 2},{i / 100:.3f},{(100 - i) / 100:.3f}\n" for i in range(100)))
    process_runtime = ProcessRuntime(root / "process-runtime")
    docker_runtime = DockerRuntime(root / "docker-runtime")
    try:
        process_s = _median_job_seconds(process_runtime, resolve_image(IMAGE), root / "process", data)
        docker_s = _median_job_seconds(docker_runtime, ContainerImage(uri=IMAGE, command=()), root / "docker", data)
    finally:
        process_runtime.shutdown()
        docker_runtime.shutdown()
    emit(
        "docker_job_overhead",
        f"one-round XGBoost, 100 rows, median of {REPEATS}; runtime interface",
        ratio=docker_s / process_s,
        added_s=docker_s - process_s,
        docker_s=docker_s,
        process_s=process_s,
    )


if __name__ == "__main__":
    main()
