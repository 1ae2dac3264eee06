"""Local-stack bootstrap for the commands on ``--target local`` (the only place ``pipelines`` touches infra).

Layering: ``pipelines`` never imports ``infra``. This module starts the stack the way a user would, as subprocesses
(``python -m infra.cli up`` / ``env``), and copies the printed ``export`` lines into this process's environment, so
everything after it is plain boto3/SDK against ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable

from pipelines.library import console
from pipelines.library.run_settings import RunSettings, Target

logger = logging.getLogger(__name__)


class BootstrapError(RuntimeError):
    """The local stack could not be started or reached."""


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/_sagestack/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def ensure_local_stack() -> str:
    """Use the stack at ``$AWS_ENDPOINT_URL`` if it answers, else ``infra.cli up``; returns the endpoint URL."""
    current = os.environ.get("AWS_ENDPOINT_URL")
    if current and healthy(current) and os.environ.get("SAGEMAKER_USER_CONFIG_OVERRIDE"):
        logger.info("using the running stack at %s", current)
        return current
    up = subprocess.run([sys.executable, "-m", "infra.cli", "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        raise BootstrapError(f"could not start the local stack: {up.stderr.strip() or up.stdout.strip()}")
    logger.info("%s", up.stdout.strip())
    env = subprocess.run([sys.executable, "-m", "infra.cli", "env"], capture_output=True, text=True, check=False)
    if env.returncode != 0:
        raise BootstrapError(f"could not read the stack's environment: {env.stderr.strip()}")
    for line in env.stdout.splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep and not line.startswith("#"):
            os.environ[key.strip()] = value.strip()
    return os.environ["AWS_ENDPOINT_URL"]


def target_settings(target: Target, say: Callable[[str], None] = console.say) -> RunSettings:
    """What every CLI does first: on ``local`` the stack (started when needed, announced with ``say``), then the
    settings of the target. Raises :class:`BootstrapError` or ``SettingsError``."""
    if target is Target.LOCAL:
        say(f"==> local stack: {ensure_local_stack()}")
    return RunSettings.from_env(target)
