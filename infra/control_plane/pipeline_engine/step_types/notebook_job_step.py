"""The notebook job step: the SDK's ``NotebookJobStep`` (a Training step whose container runs
``amazon_sagemaker_scheduler``) executed headlessly with papermill, as SageMaker's notebook jobs do.

The contract the SDK sends (``sagemaker/workflow/notebook_job_step.py``) and what is done with it here:

* the input channel ``sagemaker_headless_execution_pipelinestep`` (the notebook, the init script, extra files) is
  copied from S3 into the job's working folder, the notebook's own folder when it runs;
* ``SM_INIT_SCRIPT`` (when set) runs first with ``bash``; a failing script fails the step;
* ``SM_INPUT_NOTEBOOK_NAME`` runs on the ``SM_KERNEL_NAME`` kernel with ``HyperParameters`` as papermill
  parameters (typed as papermill's ``-p`` does: ``3`` is an int, ``0.5`` a float, ``True`` a bool);
* the executed copy ``SM_OUTPUT_NOTEBOOK_NAME`` and every file the notebook wrote go to
  ``<S3OutputPath>/<job name>/output/output.tar.gz`` — also when a cell raises, so the error can be read;
* ``StoppingCondition.MaxRuntimeInSeconds`` ends the run; the job's ``Environment`` is the kernel's, with the stack's
  URL as ``AWS_ENDPOINT_URL``.

The properties are the Training job description fields the SDK's step reads (``TrainingJobName``,
``TrainingJobStatus``, ``InputDataConfig``, ``OutputDataConfig``, ``Environment``, ...). A cell that raises fails
the step naming the cell (docs/pipelines.md#notebook-job-steps).
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.pipeline_engine.step_types.sagemaker_steps import (
    StepContext,
    StepFailed,
    StepOutcome,
    StepStopped,
)

logger = logging.getLogger(__name__)

INPUT_CHANNEL = "sagemaker_headless_execution_pipelinestep"
DEFAULT_MAX_RUNTIME_SECONDS = 2 * 24 * 3600
_PAPERMILL_TAGS = frozenset({"injected-parameters", "papermill-error-cell-tag"})
_OUTPUT_LIMIT_BYTES = 1024 * 1024 * 1024  # the output archive, as a job's output volume would bound it


@dataclass(frozen=True)
class NotebookRunner:
    """Where notebook jobs run and what they reach: the stack's S3 and URL."""

    work_root: Path
    s3: S3Access
    stack_url: str
    region: str


def run_notebook_job_step(ctx: StepContext, runner: NotebookRunner | None) -> StepOutcome:
    if runner is None:
        raise StepFailed(f"Step {ctx.step.name}: this stack runs no notebook jobs.")
    arguments = dict(ctx.arguments or {})
    name = ctx.child_name
    env = {str(k): str(v) for k, v in (arguments.get("Environment") or {}).items()}
    work = runner.work_root / name
    input_dir = work / "input"
    _download_input(runner.s3, arguments, input_dir, ctx.step.name)
    output_uri = f"{str((arguments.get('OutputDataConfig') or {}).get('S3OutputPath', '')).rstrip('/')}/{name}/output"
    limit = float((arguments.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME_SECONDS)
    process_env = _environment(runner, env)
    try:
        _init_script(env, input_dir, process_env, ctx, limit)
        failure = _execute(env, input_dir, process_env, arguments.get("HyperParameters") or {}, ctx, limit)
    finally:
        _upload_outputs(runner.s3, input_dir, output_uri)
    if failure:
        raise StepFailed(f"Notebook job {name} failed: {failure}")
    properties = {
        **arguments,
        "TrainingJobName": name,
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": f"{output_uri}/output.tar.gz"},
    }
    return StepOutcome(properties, {})


def _download_input(s3: S3Access, arguments: dict[str, Any], input_dir: Path, step: str) -> None:
    channels = {c.get("ChannelName"): c for c in arguments.get("InputDataConfig") or []}
    channel = channels.get(INPUT_CHANNEL)
    if channel is None:
        raise StepFailed(f"Step {step}: a notebook job needs the input channel {INPUT_CHANNEL}.")
    uri = str(channel["DataSource"]["S3DataSource"]["S3Uri"])
    input_dir.mkdir(parents=True, exist_ok=True)
    try:
        if not s3.download_prefix(S3Location.parse(uri), input_dir):
            raise StepFailed(f"Step {step}: the notebook job's input {uri} is empty.")
    except S3AccessError as exc:
        raise StepFailed(f"Step {step}: the notebook job's input cannot be read: {exc}") from exc


def _environment(runner: NotebookRunner, env: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": runner.stack_url,
        "AWS_REGION": runner.region,
        "AWS_DEFAULT_REGION": runner.region,
        **env,
    }


def _init_script(
    env: dict[str, str], folder: Path, process_env: dict[str, str], ctx: StepContext, limit: float
) -> None:
    script = env.get("SM_INIT_SCRIPT")
    if not script:
        return
    code, log = _run(["bash", script], folder, process_env, ctx, limit, folder / "init-script.log")
    if code != 0:
        raise StepFailed(f"the initialization script {script} exited with code {code}: {log[-500:]}")


def _execute(
    env: dict[str, str],
    folder: Path,
    process_env: dict[str, str],
    parameters: dict[str, Any],
    ctx: StepContext,
    limit: float,
) -> str | None:
    """Run the notebook; ``None`` when every cell ran, else the failure naming the cell."""
    source, output = env.get("SM_INPUT_NOTEBOOK_NAME", ""), env.get("SM_OUTPUT_NOTEBOOK_NAME", "")
    if not source or not (folder / source).is_file():
        return f"the input notebook {source!r} is not in the job's input"
    output = output or source.replace(".ipynb", "-output.ipynb")
    command = [sys.executable, "-m", "papermill", source, output, "-k", env.get("SM_KERNEL_NAME") or "python3"]
    command += ["--cwd", str(folder), "--no-progress-bar", "--log-output"]
    for key, value in parameters.items():
        command += ["-p", str(key), str(value)]
    code, log = _run(command, folder, process_env, ctx, limit, folder / "papermill.log")
    if code == 0:
        return None
    return failed_cell(folder / output) or f"papermill exited with code {code}: {log[-500:]}"


def failed_cell(notebook: Path) -> str | None:
    """``cell 3 (In [4]: 'if fail:') raised ValueError: ...``: the first cell whose outputs hold an error, numbered
    as in the user's notebook (papermill's injected parameters and error-marker cells are not counted)."""
    try:
        document = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    number = 0
    for cell in document.get("cells") or []:
        if _PAPERMILL_TAGS & set((cell.get("metadata") or {}).get("tags") or []):
            continue
        number += 1
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                source = cell.get("source") or ""
                first = ("".join(source) if isinstance(source, list) else source).strip().splitlines()[:1]
                where = f"In [{cell.get('execution_count')}]: {first[0]!r}" if first else "empty"
                return f"cell {number} ({where}) raised {output.get('ename')}: {output.get('evalue')}"
    return None


def _run(
    command: list[str], folder: Path, env: dict[str, str], ctx: StepContext, limit: float, log_path: Path
) -> tuple[int, str]:
    """Run ``command`` in ``folder`` to its end; the execution's stop or ``limit`` seconds kill it."""
    deadline = time.monotonic() + limit
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        while True:
            try:
                code = process.wait(timeout=ctx.poll_seconds)
                break
            except subprocess.TimeoutExpired:
                if ctx.stop.is_set() or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    if ctx.stop.is_set():
                        raise StepStopped(f"the notebook job was stopped: {command[0]}") from None
                    raise StepFailed(f"the notebook job exceeded its MaxRuntimeInSeconds ({limit:.0f} s)") from None
    return int(code), log_path.read_text(encoding="utf-8", errors="replace")


def _upload_outputs(s3: S3Access, folder: Path, output_uri: str) -> None:
    """``output.tar.gz``: the executed notebook and every file of the working folder (logs included)."""
    if not output_uri.startswith("s3://"):
        return
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            archive.add(path, arcname=path.relative_to(folder).as_posix())
            if buffer.tell() > _OUTPUT_LIMIT_BYTES:
                raise StepFailed(f"the notebook job's outputs exceed {_OUTPUT_LIMIT_BYTES} bytes")
    try:
        s3.put_bytes(S3Location.parse(f"{output_uri}/output.tar.gz"), buffer.getvalue())
    except S3AccessError as exc:
        raise StepFailed(f"the notebook job's outputs could not be uploaded: {exc}") from exc
