"""The serving containers of one model on one instance, and a request passed through them in series.

A model with one container (``PrimaryContainer``) runs one; a model with several ``Containers`` is an inference
pipeline (docs/deploy.md#inference-pipelines): each container's answer is the next one's request, with the answer's
Content-Type as the request's, and only the last container gets the caller's Accept (the others answer in their own
default type, which is what ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` sets). Endpoints and batch transform share this.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ReadTimeoutError

from infra.control_plane.core.aws_services import S3Access
from infra.control_plane.execution.container_host import ContainerHost
from infra.control_plane.execution.model_data import fetch_model
from infra.control_plane.hosting.hosting_requests import ContainerDefinition
from infra.runtime.api import ContainerImage, LogCallback, ServingContainer, ServingSpec

logger = logging.getLogger(__name__)

__all__ = [
    "HopFailed",
    "PreparedContainer",
    "ServingProcess",
    "connection_pool",
    "hop_headers",
    "invoke_in_series",
    "prepare_containers",
]

# What SageMaker sets for a MultiModel container (docs/deploy.md#multi-model-endpoints).
MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"


@dataclass(frozen=True)
class PreparedContainer:
    """One container of a model, ready to start: its image resolved and its model archive extracted."""

    hostname: str  # ContainerHostname, or what AWS's messages call it ("primary", "container-<n>")
    image: ContainerImage
    model_dir: Path | None
    environment: Mapping[str, str]
    multi_model: bool = False
    model_data_url: str | None = None  # a MultiModel container's S3 prefix


def container_hostnames(definitions: Sequence[ContainerDefinition]) -> list[str]:
    if len(definitions) == 1:
        return [definitions[0].container_hostname or "primary"]
    return [d.container_hostname or f"container-{i + 1}" for i, d in enumerate(definitions)]


def prepare_containers(
    host: ContainerHost, s3: S3Access, region: str, definitions: Sequence[ContainerDefinition], work_dir: Path
) -> list[PreparedContainer]:
    """Resolve every container's image and fetch its model (raises ``ContainerRuntimeError`` / ``ModelDataError``)."""
    prepared = []
    for index, (definition, hostname) in enumerate(zip(definitions, container_hostnames(definitions), strict=True)):
        image = host.resolve(definition.image or "")
        environment = {**host.role_environment(region), **definition.environment}
        multi_model = definition.mode == "MultiModel"
        if multi_model:
            environment[MULTI_MODEL_ENV] = "true"
            model_dir = None  # models are loaded on request, from under the ModelDataUrl prefix
        else:
            target = work_dir if len(definitions) == 1 else work_dir / f"container-{index + 1}"
            model_dir = fetch_model(s3, definition.model_data_url, target)
        prepared.append(
            PreparedContainer(hostname, image, model_dir, environment, multi_model, definition.model_data_url)
        )
    return prepared


@dataclass
class ServingProcess:
    """One started container of an instance; the supervisor swaps ``container`` and ``pool`` when it restarts it."""

    hostname: str
    container: ServingContainer
    pool: urllib3.HTTPConnectionPool
    spec: ServingSpec | None = None
    on_log: LogCallback | None = None
    restarts: int = 0
    failed_restarts: int = 0  # consecutive failed restart attempts


def connection_pool(url: str) -> urllib3.HTTPConnectionPool:
    """Kept-alive connections to one container (``block=False``: bursts open extra connections)."""
    parts = urlsplit(url)
    return urllib3.HTTPConnectionPool(parts.hostname or "127.0.0.1", parts.port, maxsize=32, block=False, retries=False)


class HopFailed(Exception):
    """A container of the chain answered an error, timed out or could not be reached."""

    def __init__(
        self, hostname: str, status: int, message: str, timed_out: bool = False, connect_failed: bool = False
    ) -> None:
        super().__init__(message)
        self.hostname, self.status, self.message, self.timed_out = hostname, status, message, timed_out
        self.connect_failed = connect_failed  # no server took the connection: nothing was delivered


def invoke_in_series(
    processes: Sequence[ServingProcess],
    body: bytes,
    headers: Mapping[str, str],
    timeout: urllib3.Timeout | float,
    last_path: str = "/invocations",
) -> urllib3.BaseHTTPResponse:
    """POST ``body`` through every container in order; the last one's answer (``HopFailed`` on any error).

    ``headers`` are the caller's (Content-Type, Accept, custom attributes, ...); the last container is posted at
    ``last_path`` (a multi-model container's ``/models/<name>/invoke``).
    """
    content_type = headers.get("Content-Type", "application/octet-stream")
    response: urllib3.BaseHTTPResponse | None = None
    for index, process in enumerate(processes):
        last = index == len(processes) - 1
        hop = hop_headers(headers, content_type, last)
        response = _post_once(process, last_path if last else "/invocations", body, hop, timeout)
        if response.status >= 400:
            raise HopFailed(process.hostname, response.status, response.data.decode("utf-8", errors="replace"))
        body = response.data
        content_type = response.headers.get("Content-Type", "application/octet-stream")
    assert response is not None, "a model has at least one container"
    return response


def hop_headers(headers: Mapping[str, str], content_type: str, last: bool) -> dict[str, str]:
    """One container's request headers: the caller's, with the previous answer's Content-Type; Accept only for the
    last container (the others answer in their own default type)."""
    hop = dict(headers) if last else {k: v for k, v in headers.items() if k != "Accept"}
    hop["Content-Type"] = content_type
    return hop


def _post_once(
    process: ServingProcess, path: str, body: bytes, headers: Mapping[str, str], timeout: urllib3.Timeout | float
) -> urllib3.BaseHTTPResponse:
    """POST to one container; a connection failure is retried once on a fresh connection (a kept-alive connection
    the container closed, or a container the supervisor just restarted). A read timeout is never retried."""
    try:
        try:
            return process.pool.urlopen("POST", path, body=body, headers=dict(headers), timeout=timeout, retries=False)
        except ReadTimeoutError:
            raise
        except HTTPError as exc:
            logger.info("POST %s to %s: %s; retrying on a fresh connection", path, process.hostname, exc)
            with connection_pool(process.container.url) as fresh:
                return fresh.urlopen("POST", path, body=body, headers=dict(headers), timeout=timeout, retries=False)
    except ReadTimeoutError as exc:
        raise HopFailed(process.hostname, 0, "timed out", timed_out=True) from exc
    except NewConnectionError as exc:
        raise HopFailed(process.hostname, 0, f"Container not reachable: {exc}", connect_failed=True) from exc
    except HTTPError as exc:
        raise HopFailed(process.hostname, 0, f"Container not reachable: {exc}") from exc
