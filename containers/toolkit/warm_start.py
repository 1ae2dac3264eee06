"""``python -m containers.toolkit.warm_start <module>``: a pre-started, pre-imported training process (a warm host).

The process runtime starts this on a warm-pool or standby host before any job claims it
(docs/performance.md#warm-pools): it sizes the native thread pools, imports the image's entry module
(``<module>.__main__``, whose main guard does not run) and calls its ``warm_up_training()`` hook when it has one (the
built-in XGBoost imports XGBoost and its training code there), then blocks on the host's start channel, a FIFO in its
private ``/tmp``. A job claims the host by writing one JSON message there: ``{"argv": [...], "env": {...}}``. The
process then takes that environment whole (nothing of the pre-start environment is kept), sets ``sys.argv`` and runs
``<module>`` as ``__main__``, exactly as ``python -m <module> train`` would. A host serves one job: it exits with the
job, and a fresh one is pre-started for the next, so no state passes from one job to the next.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
from pathlib import Path

from containers.toolkit.threads import limit_native_threads

START_CHANNEL = ".sagestack-warm-start"
EXIT_NO_JOB = 3


def start_channel(tmp_dir: str | None = None) -> Path:
    """Where the runtime writes the claiming job's message: the host's private temporary directory."""
    return Path(tmp_dir or os.environ.get("TMPDIR") or "/tmp") / START_CHANNEL


def warm_up(module: str) -> None:
    limit_native_threads()
    entry = importlib.import_module(f"{module}.__main__")
    hook = getattr(entry, "warm_up_training", None)
    if callable(hook):
        hook()


def wait_for_job(channel: Path) -> dict[str, object]:
    with channel.open("r", encoding="utf-8") as fifo:
        text = fifo.read()
    message = json.loads(text) if text.strip() else {}
    if not isinstance(message, dict):
        return {}
    return message


def run_claimed(module: str, message: dict[str, object]) -> None:
    env, argv = message.get("env"), message.get("argv")
    if not isinstance(env, dict) or not isinstance(argv, list):
        sys.exit(EXIT_NO_JOB)  # released without a job (the pool or standby set expired, or the stack stops)
    os.environ.clear()
    os.environ.update({str(key): str(value) for key, value in env.items()})
    sys.argv = [module, *(str(arg) for arg in argv)]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m containers.toolkit.warm_start <container module>")
    module = argv[0]
    channel = start_channel()
    warm_up(module)
    run_claimed(module, wait_for_job(channel))


if __name__ == "__main__":
    main(sys.argv[1:])
