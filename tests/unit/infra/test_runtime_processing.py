from __future__ import annotations

from pathlib import Path

from infra.runtime.api import ContainerImage, ProcessingSpec, TrainingOutcome
from infra.runtime.process import ProcessRuntime
from tests.unit.infra.support import LogCollector

OUTPUT = "/opt/ml/processing/output"


def processing_spec(
    image: ContainerImage, tmp_path: Path, name: str, count: int = 1, arguments: list[str] | None = None
) -> ProcessingSpec:
    source = tmp_path / f"{name}-input"
    source.mkdir()
    (source / "rows.txt").write_text("abc")
    return ProcessingSpec(
        job_name=name,
        image=image,
        work_dir=tmp_path / name,
        inputs={"/opt/ml/processing/input/data": source},
        outputs=[OUTPUT],
        arguments=arguments,
        instance_count=count,
    )


def test_processing_single_host_output_is_the_host_directory(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, logs: LogCollector
) -> None:
    spec = processing_spec(fake_image, tmp_path, "proc-one", arguments=["--mode", "upper"])

    result = runtime.start_processing(spec, logs).wait()

    assert result.outcome is TrainingOutcome.COMPLETED
    output = result.outputs[OUTPUT]
    assert output == tmp_path / "proc-one" / "algo-1" / "processing" / "output"
    assert (output / "algo-1-rows.txt").read_text() == "ABC"
    assert "algo-1 processing proc-one args=['--mode', 'upper']" in logs.texts()


def test_processing_several_hosts_merge_outputs_with_the_master_last(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = processing_spec(fake_image, tmp_path, "proc-two", count=2)

    result = runtime.start_processing(spec).wait()

    assert result.outcome is TrainingOutcome.COMPLETED
    output = result.outputs[OUTPUT]
    assert {p.name for p in output.iterdir()} == {"algo-1-rows.txt", "algo-2-rows.txt", "shared.txt"}
    assert (output / "shared.txt").read_text() == "algo-1"


def test_processing_failure_reason_comes_from_the_failure_file(
    env_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    spec = processing_spec(fake_image, tmp_path, "proc-fail", arguments=["fail"])

    result = env_runtime.start_processing(spec).wait()

    assert result.outcome is TrainingOutcome.FAILED
    assert result.hosts[0].exit_code == 2
    assert result.failure_reason == "processing failed on purpose"


def test_processing_script_entrypoint_with_python3_and_opt_ml_paths(
    any_mode_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "script.py").write_text(
        "import os, sys, pathlib\n"
        "base = pathlib.Path(os.environ['SAGEMAKER_BASE_DIR'])\n"
        "(base / 'processing/output/argv.txt').write_text(' '.join(sys.argv[1:]))\n"
    )
    spec = ProcessingSpec(
        job_name="proc-script",
        image=fake_image,
        work_dir=tmp_path / "proc-script",
        inputs={"/opt/ml/processing/input/code": code},
        outputs=[OUTPUT],
        entrypoint=["python3", "/opt/ml/processing/input/code/script.py"],
        arguments=["--out", "/opt/ml/processing/output"],
    )

    result = any_mode_runtime.start_processing(spec).wait()

    assert result.outcome is TrainingOutcome.COMPLETED, result.failure_reason
    written = (result.outputs[OUTPUT] / "argv.txt").read_text()
    assert written.startswith("--out ")
    assert written.endswith("/processing/output")
