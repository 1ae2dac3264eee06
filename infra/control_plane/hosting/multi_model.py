"""Multi-model endpoints (docs/deploy.md#multi-model-endpoints): the models one instance's container has loaded.

A ``Mode: MultiModel`` container gets ``SAGEMAKER_MULTI_MODEL=true`` and no ``/opt/ml/model``; it serves the
multi-model server's API, as AWS's containers do: ``POST /models`` ``{"model_name", "url"}`` loads a model from a
directory, ``DELETE /models/<name>`` unloads it, ``POST /models/<name>/invoke`` predicts. On the first request for
a ``TargetModel`` the archive ``<ModelDataUrl prefix><TargetModel>`` is downloaded and extracted under the
instance's ``/opt/ml/models/<name>/model`` and loaded; the least recently used model is unloaded (and its files
removed) once ``capacity`` models are loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from collections import OrderedDict
from pathlib import Path, PurePosixPath

from urllib3.exceptions import HTTPError

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.errors import RuntimeValidationError
from infra.control_plane.execution.model_data import ModelDataError, ModelDownloadError, fetch_model
from infra.control_plane.hosting.serving_chain import HopFailed, ServingProcess
from infra.runtime.api import ServingContainer

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CAPACITY", "ModelCache", "target_model_url"]

DEFAULT_CAPACITY = 8  # models loaded at once per instance; AWS evicts by memory, we by count (docs/deploy.md)
_LOAD_TIMEOUT_SECONDS = 120.0


def target_model_url(prefix: str, target: str) -> str:
    """``<ModelDataUrl prefix>/<TargetModel>``; a TargetModel that climbs out of the prefix is a ValidationError."""
    parts = PurePosixPath(target).parts
    if not target or target.startswith("/") or ".." in parts:
        raise RuntimeValidationError(f"TargetModel {target!r} is not a relative path under the model prefix.")
    return prefix + target if prefix.endswith("/") else f"{prefix}/{target}"


def _model_name(target: str) -> str:
    """The name the container knows the model by (a TargetModel may hold ``/`` and dots)."""
    return hashlib.sha256(target.encode("utf-8")).hexdigest()[:32]


class ModelCache:
    """The models loaded in one instance's multi-model container, least recently used first."""

    def __init__(self, s3: S3Access, prefix: str, process: ServingProcess, models_dir: Path, capacity: int) -> None:
        self._s3 = s3
        self._prefix = prefix
        self._process = process
        self._models_dir = models_dir  # the container's /opt/ml/models
        self._capacity = max(1, capacity)
        self._state = threading.Lock()  # the loaded set (held briefly: every request takes it)
        self._loading = threading.Lock()  # one download-and-load at a time
        self._loaded: OrderedDict[str, str] = OrderedDict()  # name -> TargetModel
        self._container: ServingContainer | None = process.container

    def invoke_path(self, target: str) -> str:
        """The container path that predicts with ``target``, loading it first when it is not loaded."""
        name = _model_name(target)
        if self._is_loaded(name):
            return f"/models/{name}/invoke"
        with self._loading:
            if not self._is_loaded(name):
                self._load(target, name)
        return f"/models/{name}/invoke"

    def forget(self, target: str) -> None:
        """The container answered 404 for a model we thought loaded: load it again on the next request."""
        with self._state:
            self._loaded.pop(_model_name(target), None)

    def loaded(self) -> list[str]:
        with self._state:
            return list(self._loaded.values())

    def _is_loaded(self, name: str) -> bool:
        with self._state:
            if self._container is not self._process.container:  # restarted by the supervisor: nothing is loaded
                self._container = self._process.container
                self._loaded.clear()
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return True
            return False

    def _load(self, target: str, name: str) -> None:
        url = target_model_url(self._prefix, target)
        while len(self._loaded) >= self._capacity:
            with self._state:
                evicted, _ = self._loaded.popitem(last=False)
            self._unload(evicted)
        try:
            fetch_model(self._s3, url, self._models_dir / name)
        except ModelDownloadError as exc:
            shutil.rmtree(self._models_dir / name, ignore_errors=True)
            raise RuntimeValidationError(_download_message(url)) from exc
        except ModelDataError as exc:  # downloaded, but not a safe gzip tar
            shutil.rmtree(self._models_dir / name, ignore_errors=True)
            raise RuntimeValidationError(f"The model data of TargetModel {target} cannot be used: {exc}") from exc
        (self._models_dir / name / "model.tar.gz").unlink(missing_ok=True)
        request = {"model_name": name, "url": f"/opt/ml/models/{name}/model"}
        response = self._call("POST", "/models", json.dumps(request).encode())
        if response[0] not in (200, 201, 409):  # 409: already loaded (a concurrent load we lost track of)
            shutil.rmtree(self._models_dir / name, ignore_errors=True)
            raise HopFailed(self._process.hostname, response[0], response[1])
        logger.info("multi-model: loaded %s as %s", target, name)
        with self._state:
            self._loaded[name] = target

    def _unload(self, name: str) -> None:
        status, message = self._call("DELETE", f"/models/{name}", None)
        if status not in (200, 404):
            logger.warning("multi-model: unloading %s answered %d: %s", name, status, message)
        shutil.rmtree(self._models_dir / name, ignore_errors=True)

    def _call(self, method: str, path: str, body: bytes | None) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        try:
            response = self._process.pool.urlopen(
                method, path, body=body, headers=headers, timeout=_LOAD_TIMEOUT_SECONDS, retries=False
            )
        except HTTPError as exc:
            raise HopFailed(self._process.hostname, 0, f"Container not reachable: {exc}") from exc
        return response.status, response.data.decode("utf-8", errors="replace")


def _download_message(url: str) -> str:
    try:
        location = S3Location.parse(url)
        where = f"bucket: {location.bucket}, key: {location.key}"
    except S3AccessError:
        where = f"url: {url}"
    return (
        f"Failed to download model data({where}). Please ensure that there is an object located at the URL and "
        "that the role passed to CreateModel has permissions to download the model."
    )
