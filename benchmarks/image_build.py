"""image_build: cold and warm ``make images`` (``python -m infra.images build``). Key ``warm_s``, goal <= 10.

Cold: every image rebuilt from scratch (``--force``, which also passes ``--no-cache`` to ``docker build``); the
imported OS image and the wheelhouse stay, as on any machine that built once.
Warm: a second run with no change, which must only compare content hashes. ``--warm-only`` skips the cold build.
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import emit


def _build(*extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infra.images", "build", *extra], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    cold_s = _build() if "--warm-only" in sys.argv else _build("--force")
    warm_s = _build()
    emit(
        "image_build",
        "7 images + base; cold = --force --no-cache, OS image + wheelhouse kept",
        warm_s=warm_s,
        cold_s=cold_s,
    )


if __name__ == "__main__":
    main()
