"""The serving app every container shares: ``GET /ping``, ``POST /invocations``, ``GET /execution-parameters``.

An algorithm supplies an ``InferenceHandler`` (which content types it reads, which it writes, how it predicts).
This module does the contract: content negotiation *before* compute (415 / 406 with a message), the payload limit
(413), typed errors mapped to statuses in one place, and a production server (gunicorn, threaded workers) bound to
``SAGEMAKER_BIND_TO_ADDRESS``:``SAGEMAKER_BIND_TO_PORT`` (127.0.0.1:8080 unless set; images set 0.0.0.0), and also
to the unix socket ``SAGESTACK_BIND_TO_UNIX_SOCKET`` names when set (mode 0600; the local stack's process runtime sets
it: docs/performance.md#the-runtime-front).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from containers.toolkit.codecs.content_types import MediaType, negotiate_accept, parse_media_type
from containers.toolkit.environment import Paths
from containers.toolkit.errors import (
    BadRequestError,
    InferenceError,
    ModelAlreadyLoadedError,
    ModelLoadError,
    ModelNotFoundError,
    PayloadTooLargeError,
    ToolkitError,
    UnsupportedMediaTypeError,
    UserError,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONTENT_LENGTH = 6 * 1024 * 1024
# What a client sends when it names no type (the stack's runtime and batch transform send this for a request without
# ContentType): read as the handler's ``default_content_type`` where it has one.
GENERIC_CONTENT_TYPES = ("application/octet-stream",)
MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"
UNIX_SOCKET_ENV = "SAGESTACK_BIND_TO_UNIX_SOCKET"  # a second listener, for the local stack's runtime front
_UNIX_SOCKET_UMASK = 0o177  # the socket is the container user's alone (0600)
# What a handler answers: the body (in the negotiated Accept type), or the body and the content type it chose.
InvocationResult = bytes | tuple[bytes, str]


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ToolkitError(f"environment variable {name}={raw!r} is not an integer") from exc


def _env_bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class ServingConfig:
    """Serving settings, read once from the environment SageMaker gives the container."""

    model_dir: Path
    address: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 4
    timeout_seconds: int = 60
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    default_accept: str | None = None
    batch: bool = False
    multi_model: bool = False  # SAGEMAKER_MULTI_MODEL=true: models are loaded and unloaded on request
    unix_socket: str | None = None  # a unix socket path to listen on as well (SAGESTACK_BIND_TO_UNIX_SOCKET)
    environ: Mapping[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingConfig:
        env = dict(os.environ if env is None else env)
        cpus = os.cpu_count() or 1
        return cls(
            model_dir=Paths.from_env(env).model_dir,
            address=env.get("SAGEMAKER_BIND_TO_ADDRESS", "127.0.0.1"),
            port=_env_int(env, "SAGEMAKER_BIND_TO_PORT", 8080),
            workers=_env_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", cpus),
            threads=_env_int(env, "SAGESTACK_SERVER_THREADS", 4),
            timeout_seconds=_env_int(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60),
            max_content_length=_env_int(env, "MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH),
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None,
            batch=_env_bool(env, "SAGEMAKER_BATCH"),
            multi_model=_env_bool(env, MULTI_MODEL_ENV),
            unix_socket=env.get(UNIX_SOCKET_ENV, "").strip() or None,
            environ=env,
        )


class InferenceHandler(ABC):
    """What an algorithm plugs into the serving app. The model is loaded once per worker, on first use."""

    content_types: ClassVar[tuple[str, ...]]
    accepts: ClassVar[tuple[str, ...]]
    default_accept: ClassVar[str]
    default_content_type: ClassVar[str | None] = None  # for a missing or generic Content-Type; None: 415

    def __init__(self, config: ServingConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._loaded = False

    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            try:
                self.load(self.config.model_dir)
            except ToolkitError:
                raise
            except Exception as exc:
                raise ModelLoadError(f"Unable to load model: {exc}") from exc
            self._loaded = True

    @abstractmethod
    def load(self, model_dir: Path) -> None:
        """Load the model from ``model_dir``; raise ModelLoadError with a readable message."""

    @abstractmethod
    def invoke(self, body: bytes, content_type: MediaType, accept: str) -> InvocationResult:
        """Predict on one request body; raise InferenceError subclasses for bad input."""

    def execution_parameters(self) -> dict[str, Any]:
        return {
            "MaxConcurrentTransforms": max(1, self.config.workers),
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": max(1, self.config.max_content_length // (1024 * 1024)),
        }

    def resolve_accept(self, header: str | None) -> str:
        default = self.config.default_accept or self.default_accept
        return negotiate_accept(header, self.accepts, default)

    def check_content_type(self, header: str | None) -> MediaType:
        generic = not header or parse_media_type(header).type in GENERIC_CONTENT_TYPES
        if generic and self.default_content_type is not None:
            return parse_media_type(self.default_content_type)
        if not header:
            raise UnsupportedMediaTypeError(
                "Content-Type header is required; supported: " + ", ".join(self.content_types)
            )
        media = parse_media_type(header)
        if media.type not in self.content_types:
            raise UnsupportedMediaTypeError(f"Content-type {header} is not supported.")
        return media


def _register_error_handlers(app: Flask) -> None:
    """Typed errors -> statuses, in one place."""

    @app.errorhandler(InferenceError)
    def _inference_error(exc: InferenceError) -> Response:
        if exc.status >= 500:
            logger.error("%s", exc.message)
        return Response(exc.message + "\n", status=exc.status, mimetype="text/plain")

    @app.errorhandler(ToolkitError)
    def _toolkit_error(exc: ToolkitError) -> Response:
        # A shared decoder's UserError (bad rows) is the caller's fault; anything else is ours.
        status = 400 if isinstance(exc, UserError) else 500
        logger.log(logging.WARNING if status < 500 else logging.ERROR, "%s", exc.failure_text())
        return Response(exc.message + "\n", status=status, mimetype="text/plain")

    @app.errorhandler(Exception)
    def _unexpected_error(exc: Exception) -> Response | HTTPException:
        if isinstance(exc, HTTPException):
            return exc  # 404, 405, ... keep their own answers
        logger.exception("unexpected error while serving")
        return Response(f"Internal server error: {type(exc).__name__}: {exc}\n", status=500, mimetype="text/plain")


def _invoke(handler: InferenceHandler) -> Response:
    """One ``/invocations`` request (or a multi-model ``/models/<name>/invoke``) through ``handler``."""
    content_type = handler.check_content_type(request.headers.get("Content-Type"))
    accept = handler.resolve_accept(request.headers.get("Accept"))
    length = request.content_length
    if length is not None and length > handler.config.max_content_length:
        raise PayloadTooLargeError(
            f"Payload of {length} bytes exceeds the limit of {handler.config.max_content_length} bytes "
            "(MAX_CONTENT_LENGTH)."
        )
    body = request.stream.read(handler.config.max_content_length + 1)  # bounded, also for chunked bodies
    if len(body) > handler.config.max_content_length:
        raise PayloadTooLargeError(f"Payload exceeds the limit of {handler.config.max_content_length} bytes.")
    if not body:
        return Response(b"", status=204)
    handler.ensure_loaded()
    result = handler.invoke(body, content_type, accept)
    payload, response_type = result if isinstance(result, tuple) else (result, accept)
    response = Response(payload, status=200, content_type=response_type)
    custom = request.headers.get("X-Amzn-SageMaker-Custom-Attributes")
    if custom is not None:
        response.headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
    return response


def create_app(handler: InferenceHandler) -> Flask:
    """The WSGI app for one worker; in multi-model mode ``handler`` is the template each loaded model copies."""
    app = Flask(handler.__class__.__module__)
    app.config["MAX_CONTENT_LENGTH"] = None  # the limit is enforced in _invoke, with our message

    _register_error_handlers(app)

    @app.get("/ping")
    def ping() -> Response:
        if not handler.config.multi_model:  # a multi-model server is healthy with no model loaded
            handler.ensure_loaded()
        return Response(b"", status=200)

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return Response(json.dumps(handler.execution_parameters()), mimetype="application/json")

    @app.post("/invocations")
    def invocations() -> Response:
        return _invoke(handler)

    if handler.config.multi_model:
        _add_model_routes(app, ModelRegistry(handler))
    return app


class ModelRegistry:
    """The multi-model server's models (docs/containers.md#multi-model-serving): one handler per loaded model."""

    def __init__(self, template: InferenceHandler) -> None:
        self._template = template
        self._lock = threading.Lock()
        self._handlers: dict[str, tuple[str, InferenceHandler]] = {}  # name -> (url, handler)

    def load(self, name: str, url: str) -> None:
        with self._lock:
            if name in self._handlers:
                raise ModelAlreadyLoadedError(f"Model {name} is already loaded.")
        handler = type(self._template)(replace(self._template.config, model_dir=self._local_path(url)))
        handler.ensure_loaded()
        with self._lock:
            self._handlers[name] = (url, handler)
        logger.info("model %s loaded from %s", name, url)

    def unload(self, name: str) -> None:
        with self._lock:
            if self._handlers.pop(name, None) is None:
                raise ModelNotFoundError(f"Model not found: {name}")
        logger.info("model %s unloaded", name)

    def handler(self, name: str) -> InferenceHandler:
        with self._lock:
            found = self._handlers.get(name)
        if found is None:
            raise ModelNotFoundError(f"Model not found: {name}")
        return found[1]

    def describe(self, name: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            items = [(n, u) for n, (u, _) in self._handlers.items() if name is None or n == name]
        return [{"modelName": n, "modelUrl": u} for n, u in sorted(items)]

    def _local_path(self, url: str) -> Path:
        """``/opt/ml/...`` as this container sees it (``SAGEMAKER_BASE_DIR`` may move the root)."""
        base = Paths.from_env(self._template.config.environ).base
        path = Path(url)
        if path.is_relative_to("/opt/ml"):
            path = base / path.relative_to("/opt/ml")
        if not path.is_dir():
            raise ModelNotFoundError(f"Model directory {url} does not exist.")
        return path


def _add_model_routes(app: Flask, registry: ModelRegistry) -> None:
    """The multi-model server's management API, as AWS's multi-model containers serve it."""

    @app.post("/models")
    def load_model() -> Response:
        request_body = request.get_json(silent=True) or {}
        name, url = request_body.get("model_name"), request_body.get("url")
        if not isinstance(name, str) or not isinstance(url, str) or not name or not url:
            raise BadRequestError("model_name and url are required.")
        registry.load(name, url)
        return Response(json.dumps({"status": f"Model {name} loaded."}), mimetype="application/json")

    @app.get("/models")
    def list_models() -> Response:
        return Response(json.dumps({"models": registry.describe()}), mimetype="application/json")

    @app.get("/models/<name>")
    def describe_model(name: str) -> Response:
        registry.handler(name)
        return Response(json.dumps(registry.describe(name)), mimetype="application/json")

    @app.delete("/models/<name>")
    def unload_model(name: str) -> Response:
        registry.unload(name)
        return Response(json.dumps({"status": f"Model {name} unloaded."}), mimetype="application/json")

    @app.post("/models/<name>/invoke")
    def invoke_model(name: str) -> Response:
        return _invoke(registry.handler(name))


HandlerFactory = Callable[[ServingConfig], InferenceHandler]


def gunicorn_binds(settings: ServingConfig) -> list[str]:
    """The TCP address, and the unix socket when one is asked for (a stale socket file there is replaced)."""
    binds = [f"{settings.address}:{settings.port}"]
    if settings.unix_socket is not None:
        binds.append(f"unix:{settings.unix_socket}")
    return binds


def load_factory(path: str) -> HandlerFactory:
    """``"package.module:ClassName"`` -> the handler class."""
    module_name, _, attr = path.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    if not callable(factory):
        raise ToolkitError(f"{path} is not callable")
    return factory


def serve(handler_path: str, config: ServingConfig | None = None) -> int:
    """Load the model once (exit 1 with the loader's error when it cannot be loaded), then run the production server
    (gunicorn) for ``handler_path``; blocks until stopped."""
    from gunicorn.app.base import BaseApplication  # imported here: only the serve entry needs it

    settings = config or ServingConfig.from_env()
    if settings.multi_model:  # the models live in one process, as in AWS's multi-model server (threads serve)
        settings = replace(settings, workers=1)

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", gunicorn_binds(settings))
            if settings.unix_socket is not None:
                self.cfg.set("umask", _UNIX_SOCKET_UMASK)  # gunicorn applies it to the socket's bind only
            self.cfg.set("workers", settings.workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", settings.threads)
            self.cfg.set("timeout", settings.timeout_seconds)
            self.cfg.set("keepalive", 60)
            self.cfg.set("accesslog", None)
            self.cfg.set("errorlog", "-")
            self.cfg.set("loglevel", "info")

        def load(self) -> Flask:
            return create_app(load_factory(handler_path)(settings))

    try:  # a model that cannot be loaded stops the container at once, with the loader's error as its last line
        if not settings.multi_model:
            load_factory(handler_path)(settings).ensure_loaded()
    except ToolkitError as exc:
        logger.error("%s", exc.message)
        return 1
    logger.info(
        "serving %s on %s:%d%s with %d worker(s)",
        handler_path,
        settings.address,
        settings.port,
        " and a unix socket" if settings.unix_socket is not None else "",
        settings.workers,
    )
    _Server().run()
    return 0
