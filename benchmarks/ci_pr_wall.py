"""ci_pr_wall: wall time of the pull-request workflow's command sequence from a fresh clone. Goal: seconds <= 900.

A ``git clone`` of this checkout into a temporary directory (plus the working tree's uncommitted changes copied over,
so the figure is for what is about to be pushed; the source checkout is only read), then every ``run:`` step of
``.github/workflows/pr.yml`` in order, verbatim, in the clone: ``make setup`` (a new .venv from requirements.lock),
``make lint``, ``make test``, the small-data pipeline. The ``uses:`` steps (checkout, setup-python/java, the
artifact upload) have no local cost worth measuring and are left out. The clone's stack runs on its own port and is
stopped afterwards (``make down``); the clone is deleted. Takes about as long as CI: 15 minutes or more on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import ROOT, emit

PORT = "4612"
WORKFLOW = ROOT / ".github" / "workflows" / "pr.yml"


def run_steps() -> list[tuple[str, str]]:
    """(name, command) of every ``run:`` step of the pull-request workflow, in order."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = []
    for job in workflow["jobs"].values():
        steps += [(step.get("name") or step["run"], step["run"]) for step in job["steps"] if "run" in step]
    return steps


def fresh_clone(target: Path) -> None:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)], check=True)
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--modified", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        source, copy = ROOT / name, target / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
        else:
            copy.unlink(missing_ok=True)  # deleted in the working tree


def main() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "SAGEMAKER_USER_CONFIG"))}
    env.update(SAGESTACK_PORT=PORT, CI="true")
    figures: dict[str, float | int | str] = {}
    with tempfile.TemporaryDirectory(prefix="ci_pr_wall-") as scratch:
        clone = Path(scratch) / "sagestack"
        started = time.perf_counter()
        fresh_clone(clone)
        figures["clone_s"] = round(time.perf_counter() - started, 1)
        failed = ""
        try:
            for name, command in run_steps():
                began = time.perf_counter()
                done = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=clone, env=env, check=False)
                figures[_key(command)] = round(time.perf_counter() - began, 1)
                if done.returncode != 0:
                    failed = f"; step '{name}' failed with exit code {done.returncode}"
                    break
        finally:
            seconds = time.perf_counter() - started
            subprocess.run(["make", "down"], cwd=clone, env=env, capture_output=True, check=False)
    note = f"pr.yml run: steps from a fresh clone, {os.cpu_count()} cores{failed}"
    emit("ci_pr_wall", note, seconds=round(seconds, 1), **figures)


def _key(command: str) -> str:
    """``make pipeline ROWS=500`` -> ``pipeline_s``."""
    words = command.split()
    return f"{words[1] if words[:1] == ['make'] and len(words) > 1 else words[0]}_s".replace("-", "_")


if __name__ == "__main__":
    main()
