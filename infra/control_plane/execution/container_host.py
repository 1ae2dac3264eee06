"""The stack's one container runtime and image resolution (built-in URIs plus configured extra images)."""

from __future__ import annotations

import logging
import threading

from infra.config import StackSettings
from infra.runtime.api import ContainerImage, ImageNotFoundError, IsolationMode, Runtime
from infra.runtime.images import resolve_image

logger = logging.getLogger(__name__)


class ContainerHost:
    """Owns the runtime every job and endpoint of the stack runs on, so shutdown stops them all."""

    def __init__(self, settings: StackSettings, runtime: Runtime | None = None) -> None:
        self._settings = settings
        self._runtime = runtime
        self._lock = threading.Lock()

    @property
    def runtime(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                load = self._load_docker_runtime if self._settings.runtime == "docker" else self._load_process_runtime
                self._runtime = load()
            return self._runtime

    def _load_docker_runtime(self) -> Runtime:
        from infra.runtime.docker import DockerRuntime  # only when asked for: it probes the engine

        return DockerRuntime(self._settings.data_dir / "runtime")

    def _load_process_runtime(self) -> Runtime:
        from infra.runtime.process import ProcessRuntime

        isolation = IsolationMode(self._settings.isolation) if self._settings.isolation else None
        return ProcessRuntime(self._settings.data_dir / "runtime", isolation=isolation)

    def role_environment(self, region: str) -> dict[str, str]:
        """What a container needs to reach AWS as its execution role would let it: the stack's endpoint and region.

        Training and processing jobs set the same variables; serving containers need them for script-mode code
        bundles (``SAGEMAKER_SUBMIT_DIRECTORY=s3://...``) and for whatever a user's inference script reads from S3.
        """
        return {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": self._settings.url,
            "AWS_ACCESS_KEY_ID": "sagestack",
            "AWS_SECRET_ACCESS_KEY": "sagestack",
        }

    def resolve(self, uri: str) -> ContainerImage:
        """Resolve ``uri``; raises :class:`ImageNotFoundError` naming the image when nothing can run it."""
        extra = self._settings.extra_images.get(uri)
        if extra is not None:
            return ContainerImage(uri=uri, command=extra)
        try:
            image = resolve_image(uri)
        except ImageNotFoundError:
            if self._settings.runtime != "docker":
                raise
            # A user's own image: the Docker runtime runs it if it is present in the local engine (never pulls).
            return ContainerImage(uri=uri, command=())
        return image

    def release_warm_pool(self, pool: str) -> None:
        """End a warm pool's pre-started hosts (nothing to do before the runtime has started anything)."""
        with self._lock:
            runtime = self._runtime
        if runtime is not None:
            runtime.release_warm_pool(pool)

    def shutdown(self) -> None:
        with self._lock:
            runtime = self._runtime
        if runtime is not None:
            runtime.shutdown()
