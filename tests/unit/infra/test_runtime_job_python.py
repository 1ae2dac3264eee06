"""A job's own Python environment over the image's interpreter (images that install packages, such as the
remote-function image): pip installs and upgrades land in the job, never in the interpreter's environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

from infra.runtime.api import ChannelSpec, ContainerImage, TrainingOutcome, TrainingSpec
from infra.runtime.process.layout import JOB_PYTHON_DIR, lay_out_job_python
from infra.runtime.process.process_runtime import ProcessRuntime
from tests.unit.infra.conftest import FAKE_CONTAINER
from tests.unit.infra.support import PROBE, LogCollector, probe_wheel


def run_python(interpreter: Path, *args: str) -> str:
    return subprocess.run([str(interpreter), *args], capture_output=True, text=True, check=True).stdout.strip()


def pip_install(interpreter: Path, wheels: Path, *options: str) -> None:
    command = ["-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), *options, "sagestack-probe"]
    run_python(interpreter, *command)


def probe_version(interpreter: Path) -> str:
    return run_python(interpreter, "-c", f"import {PROBE}; print({PROBE}.VERSION)")


def test_the_environment_runs_the_interpreter_with_every_package_it_has(tmp_path: Path) -> None:
    root = tmp_path / "opt-ml"

    bin_dir = lay_out_job_python(root, PurePosixPath("/opt/ml"), sys.executable)

    assert bin_dir == f"/opt/ml/{JOB_PYTHON_DIR}/bin"
    python = root / JOB_PYTHON_DIR / "bin" / "python"
    prefix, numpy_file = run_python(python, "-c", "import sys, numpy; print(sys.prefix); print(numpy.__file__)").split()
    assert Path(prefix) == root / JOB_PYTHON_DIR
    assert Path(numpy_file).is_relative_to(Path(sys.prefix))  # the interpreter's own numpy, not a copy
    assert probe_version_or_none(Path(sys.executable)) is None


def test_an_upgrade_lands_in_the_job_and_leaves_the_images_environment_alone(tmp_path: Path) -> None:
    """The image's environment (here one laid out over this interpreter) has sagestack-probe 1.0; the job's
    `pip install -U` finds 2.0, installs it in the job's environment, and the image keeps 1.0."""
    image_python = tmp_path / "image" / JOB_PYTHON_DIR / "bin" / "python"
    lay_out_job_python(tmp_path / "image", tmp_path / "image", sys.executable)
    pip_install(image_python, probe_wheel(tmp_path / "index-1", "1.0").parent)
    job = tmp_path / "job"
    lay_out_job_python(job, job, str(image_python))
    job_python = job / JOB_PYTHON_DIR / "bin" / "python"
    assert probe_version(job_python) == "1.0"  # the image's packages are the job's

    pip_install(job_python, probe_wheel(tmp_path / "index-2", "2.0").parent, "-U")

    assert probe_version(job_python) == "2.0"
    assert probe_version(image_python) == "1.0"
    installed = list((job / JOB_PYTHON_DIR / "lib").glob(f"python*/site-packages/{PROBE}-2.0.dist-info"))
    assert len(installed) == 1


def test_a_job_on_an_image_that_installs_packages_installs_into_its_own_environment(
    any_mode_runtime: ProcessRuntime, tmp_path: Path, logs: LogCollector
) -> None:
    wheels = probe_wheel(tmp_path / "wheels", "2.0").parent
    script = (
        'python -m pip install -q --no-index --find-links "$SAGEMAKER_BASE_DIR/input/data/wheels" sagestack-probe'
        f" && python -c \"import {PROBE}, sys; print('probe', {PROBE}.VERSION, sys.prefix)\""
    )
    image = ContainerImage("sagestack/fake:test", (sys.executable, str(FAKE_CONTAINER)), installs_packages=True)
    spec = TrainingSpec(
        job_name="job-pip",
        image=image,
        work_dir=tmp_path / "job-pip",
        hyperparameters={},
        channels={"algo-1": [ChannelSpec("wheels", wheels)]},
        entrypoint=["/bin/sh", "-c", script],
    )

    result = any_mode_runtime.start_training(spec, logs).wait()

    printed = [line.text for line in logs.lines if line.text.startswith("probe ")]
    assert result.outcome is TrainingOutcome.COMPLETED, (result.failure_reason, [line.text for line in logs.lines])
    assert len(printed) == 1 and printed[0].startswith("probe 2.0 ")
    assert printed[0].endswith(f"/{JOB_PYTHON_DIR}")  # the job's own environment ran it
    assert probe_version_or_none(Path(sys.executable)) is None  # the stack's environment is unchanged


def probe_version_or_none(interpreter: Path) -> str | None:
    try:
        return probe_version(interpreter)
    except subprocess.CalledProcessError:
        return None
