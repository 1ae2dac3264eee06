"""Run a GitHub Actions workflow file's jobs here, the way a runner would, against the local stack.

Jobs run in ``needs`` order; a job runs when every job it needs succeeded and its ``if:`` holds. Each ``run:`` step
is executed verbatim with ``bash --noprofile --norc -eo pipefail`` in the repository (GitHub's default shell), with
the job's and step's ``env:``, a fresh ``$GITHUB_OUTPUT`` whose ``key=value`` lines become ``steps.<id>.outputs``,
and the test's environment overrides. ``uses:`` steps are emulated by name (``ACTIONS`` in the caller): an action
the caller does not know fails the run, so a new action in a workflow cannot slip past the test.

Expressions: ``${{ <context.path> }}`` for ``vars``, ``github``, ``steps``, ``needs`` and ``env``; ``if:`` accepts
``always()``, ``success()``, ``failure()`` and ``<path> != ''`` / ``<path> == ''``. Anything else raises.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_COMPARISON = re.compile(r"^([\w.\-]+)\s*(==|!=)\s*''$")


@dataclass
class StepResult:
    name: str
    status: str  # success | failure | skipped (if: false, or an earlier step failed) | not-run (the caller's list)
    command: str | None = None
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    name: str
    status: str  # success | failure | skipped
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


@dataclass
class Context:
    """What expressions see, and what the emulated actions may change (``env`` of the job)."""

    variables: dict[str, str]
    github: dict[str, str]
    env: dict[str, str]
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    needs: dict[str, JobResult] = field(default_factory=dict)

    def lookup(self, path: str) -> str:
        head, _, rest = path.partition(".")
        if head == "vars":
            return self.variables.get(rest, "")
        if head == "github":
            return self.github.get(rest, "")
        if head == "env":
            return self.env.get(rest, "")
        if head == "steps" and rest.count(".") == 2 and ".outputs." in rest:
            step, _, key = rest.partition(".outputs.")
            return self.steps.get(step, {}).get(key, "")
        if head == "needs" and ".outputs." in rest:
            job, _, key = rest.partition(".outputs.")
            return self.needs[job].outputs.get(key, "")
        raise ValueError(f"expression not supported by the test runner: {path}")

    def render(self, text: str) -> str:
        return _EXPRESSION.sub(lambda match: self.lookup(match.group(1)), str(text))


Action = Callable[[dict[str, str], Context], None]


def condition(expression: str | None, ctx: Context, failed: bool) -> bool:
    """A step's or job's ``if:`` (default ``success()``)."""
    text = _EXPRESSION.sub(lambda match: match.group(1), (expression or "success()").strip()).strip()
    if text == "always()":
        return True
    if text == "success()":
        return not failed
    if text == "failure()":
        return failed
    match = _COMPARISON.match(text)
    if match:
        value = ctx.lookup(match.group(1))
        return (value == "") == (match.group(2) == "==") and not failed
    raise ValueError(f"if: not supported by the test runner: {expression}")


@dataclass
class WorkflowRunner:
    path: Path
    env: dict[str, str]  # the environment of every step (the test's overrides included)
    actions: dict[str, Action]  # "owner/name" (without @version) -> emulation
    not_run: frozenset[str] = frozenset()  # run: commands the caller runs elsewhere (documented by the caller)
    variables: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)  # win over the workflow's own env (e.g. TARGET=local)

    @property
    def workflow(self) -> dict:
        return yaml.safe_load(self.path.read_text())

    def run(self) -> dict[str, JobResult]:
        workflow = self.workflow
        results: dict[str, JobResult] = {}
        for name in _job_order(workflow["jobs"]):
            job = workflow["jobs"][name]
            needs = [job["needs"]] if isinstance(job.get("needs"), str) else list(job.get("needs") or [])
            ctx = self._context(workflow, job, {n: results[n] for n in needs})
            blocked = any(results[n].status != "success" for n in needs)
            if blocked or not condition(job.get("if"), ctx, failed=False):
                results[name] = JobResult(name, "skipped")
                continue
            results[name] = self._run_job(name, job, ctx)
        return results

    def _context(self, workflow: dict, job: dict, needs: dict[str, JobResult]) -> Context:
        ctx = Context(self.variables, {"run_id": "1", "repository": "sagestack/sagestack"}, {}, needs=needs)
        for scope in (workflow.get("env") or {}, job.get("env") or {}):
            ctx.env.update({key: ctx.render(value) for key, value in scope.items()})
        ctx.env.update(self.overrides)
        return ctx

    def _run_job(self, name: str, job: dict, ctx: Context) -> JobResult:
        result = JobResult(name, "success")
        for index, step in enumerate(job["steps"]):
            label = step.get("name") or step.get("uses") or step.get("run", "")
            failed = result.status == "failure"
            if not condition(step.get("if"), ctx, failed):
                result.steps.append(StepResult(label, "skipped", step.get("run")))
                continue
            outcome = self._run_step(step, label, ctx)
            result.steps.append(outcome)
            if outcome.status == "failure":
                result.status = "failure"
            ctx.steps[step.get("id") or f"step{index}"] = outcome.outputs
        result.outputs = {key: ctx.render(value) for key, value in (job.get("outputs") or {}).items()}
        return result

    def _run_step(self, step: dict, label: str, ctx: Context) -> StepResult:
        if "uses" in step:
            action = self.actions[step["uses"].split("@", 1)[0]]  # KeyError: an action the test does not emulate
            action({key: ctx.render(value) for key, value in (step.get("with") or {}).items()}, ctx)
            return StepResult(label, "success")
        command = step["run"]
        if command.strip() in self.not_run:
            return StepResult(label, "not-run", command)
        with tempfile.TemporaryDirectory() as scratch:
            output_file = Path(scratch) / "github_output"
            output_file.touch()
            env = {**self.env, **ctx.env, **{k: ctx.render(v) for k, v in (step.get("env") or {}).items()}}
            env.update(self.overrides, GITHUB_OUTPUT=str(output_file))
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        status = "success" if done.returncode == 0 else "failure"
        return StepResult(label, status, command, done.stdout + done.stderr, outputs)


def _job_order(jobs: dict) -> list[str]:
    ordered: list[str] = []
    while len(ordered) < len(jobs):
        for name, job in jobs.items():
            needs = [job["needs"]] if isinstance(job.get("needs"), str) else list(job.get("needs") or [])
            if name not in ordered and all(n in ordered for n in needs):
                ordered.append(name)
                break
        else:
            raise ValueError("jobs with circular needs")
    return ordered


def clean_environment() -> dict[str, str]:
    """This process's environment without AWS/SageMaker/Sagestack settings (the caller adds the stack's) and
    without an enclosing make's variables (``make test`` runs this suite; a runner's steps are not inside make)."""
    prefixes = ("AWS_", "SAGEMAKER_", "SAGESTACK_", "GITHUB_")
    outer_make = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in outer_make}
