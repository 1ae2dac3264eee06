"""``python -m benchmarks [name ...]``: run every benchmark, or the named ones, each in its own process."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    modules = pkgutil.iter_modules([str(HERE)])
    return sorted(info.name for info in modules if not info.name.startswith("_") and info.name != "common")


# Benchmarks that start the local stack talk to it with boto3, which insists on some credentials and a region.
LOCAL_AWS_DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "sagestack",
    "AWS_SECRET_ACCESS_KEY": "sagestack",
    "AWS_DEFAULT_REGION": "us-east-1",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
}


def main(argv: list[str]) -> int:
    names = [a for a in argv if a] or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        print(f"# running {name}", file=sys.stderr, flush=True)
        env = {**LOCAL_AWS_DEFAULTS, **os.environ}
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False, env=env)
        if result.returncode != 0:
            print(f"bench {name} error=exit_{result.returncode} (the benchmark failed; see above)", flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
