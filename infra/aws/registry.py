"""A real Docker registry on 127.0.0.1 for the local stack's ECR (moto's ECR keeps metadata and has no registry).

Decision: ``make publish-images TARGET=local`` pushes to Debian's ``docker-registry`` (the CNCF Distribution
registry, ``apt-get install docker-registry``) started here as a background process on 127.0.0.1 (Docker allows
plain HTTP to loopback registries), storing under ``<data dir>/registry``; then it records each image in the local
ECR with ``PutImage`` (the registry's manifest and the tag), so ``DescribeImages`` lists what was pushed.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.aws.errors import PublishError

logger = logging.getLogger(__name__)

__all__ = ["MANIFEST_TYPES", "LocalRegistry"]

BINARY = "docker-registry"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
_START_SECONDS = 20.0


@dataclass(frozen=True)
class LocalRegistry:
    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def ensure(self) -> str:
        """Start the registry unless one answers on the port; returns ``host:port``."""
        if self.answers():
            return self.address
        binary = shutil.which(BINARY)
        if binary is None:
            raise PublishError(
                f"no registry answers on {self.address} and `{BINARY}` is not installed: "
                "apt-get install docker-registry (or run any registry on that port)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n"
        )
        log = (self.root / "registry.log").open("ab")
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        (self.root / "registry.pid").write_text(str(process.pid))
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PublishError(f"{BINARY} exited at start; see {self.root / 'registry.log'}")
            if self.answers():
                logger.info("local registry on %s (pid %d)", self.address, process.pid)
                return self.address
            time.sleep(0.2)
        raise PublishError(f"{BINARY} did not answer on {self.address} within {_START_SECONDS:.0f} s")

    def manifest(self, repository: str, tag: str) -> tuple[str, str]:
        """The manifest of ``repository:tag`` as the registry stores it, and its media type."""
        request = urllib.request.Request(
            f"http://{self.address}/v2/{repository}/manifests/{tag}", headers={"Accept": ", ".join(MANIFEST_TYPES)}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read().decode()
                media_type = response.headers.get("Content-Type") or json.loads(body).get("mediaType", "")
        except OSError as exc:
            raise PublishError(f"the local registry has no manifest for {repository}:{tag}: {exc}") from exc
        return body, str(media_type)
