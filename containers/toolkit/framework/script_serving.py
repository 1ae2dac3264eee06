"""Serving a user's inference script, as the SageMaker framework inference toolkits do (docs/containers.md,
"Framework containers").

The script is ``SAGEMAKER_PROGRAM`` (default ``inference.py``) in the model's ``code/`` directory (the layout the SDK
repacks ``model.tar.gz`` into) or else in the bundle ``SAGEMAKER_SUBMIT_DIRECTORY`` names (a directory, a tarball or
``s3://.../sourcedir.tar.gz``). Its ``requirements.txt`` is installed once, into a directory of the container, not
into the image's Python. The script may define ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn`` or
``transform_fn`` (not both kinds); what it leaves out comes from the framework's :class:`FrameworkDefaults`. A
function may take one extra argument, the request context, which is ``None`` here.

Content types are the functions' business: the default ``input_fn`` reads JSON, CSV and NPY and answers 415 for
anything else, the default ``output_fn`` writes the same types (406 or 415 for others, as the framework's toolkit
does); a user's ``input_fn`` sees every request.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from containers.toolkit.codecs.content_types import MediaType, parse_media_type
from containers.toolkit.environment import Paths
from containers.toolkit.errors import (
    BadRequestError,
    InferenceError,
    ModelLoadError,
    NotAcceptableError,
    ToolkitError,
    UnsupportedMediaTypeError,
    UserError,
)
from containers.toolkit.framework.framework_codecs import JSON, UTF8_TYPES, UnsupportedFormatError
from containers.toolkit.framework.script_mode import InstallRequirementsError, fill_code_dir
from containers.toolkit.framework.user_packages import install_requirements
from containers.toolkit.model_server.serving import (
    InferenceHandler,
    InvocationResult,
    ServingConfig,
    load_factory,
    serve,
)

logger = logging.getLogger(__name__)

__all__ = ["FrameworkDefaults", "ScriptModeHandler", "UserFunctions", "serve_user_script", "user_functions"]

PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIR_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
DEFAULT_MODULE = "inference"
MODEL_CODE_DIR = "code"
SERVING_PACKAGES_DIR = "user-packages"
Function = Callable[..., Any]


class FrameworkDefaults(ABC):
    """One framework's default inference functions (used for whatever the user's script does not define)."""

    # The status a default output_fn's unsupported Accept gets: 406 (scikit-learn, XGBoost), 415 (PyTorch).
    unsupported_accept: ClassVar[type[InferenceError]] = NotAcceptableError

    @abstractmethod
    def model_fn(self, model_dir: str) -> Any: ...

    @abstractmethod
    def input_fn(self, input_data: str | bytes, content_type: str) -> Any: ...

    @abstractmethod
    def predict_fn(self, data: Any, model: Any) -> Any: ...

    @abstractmethod
    def output_fn(self, prediction: Any, accept: str) -> Any: ...


@dataclass(frozen=True)
class UserFunctions:
    """The functions a request goes through: the user's where defined, else the framework's."""

    model_fn: Function
    input_fn: Function
    predict_fn: Function
    output_fn: Function
    transform_fn: Function | None = None


def user_functions(module: ModuleType | None, defaults: FrameworkDefaults) -> UserFunctions:
    """Pick the user's functions over the defaults; ``transform_fn`` excludes the other three, as in the toolkits."""

    def pick(name: str) -> Function | None:
        found = getattr(module, name, None) if module is not None else None
        return found if callable(found) else None

    transform_fn = pick("transform_fn")
    parts = {name: pick(name) for name in ("input_fn", "predict_fn", "output_fn")}
    if transform_fn is not None and any(parts.values()):
        raise UserError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
    return UserFunctions(
        model_fn=pick("model_fn") or defaults.model_fn,
        input_fn=parts["input_fn"] or defaults.input_fn,
        predict_fn=parts["predict_fn"] or defaults.predict_fn,
        output_fn=parts["output_fn"] or defaults.output_fn,
        transform_fn=transform_fn,
    )


def call_user_function(function: Function, *args: Any) -> Any:
    """Call ``function`` with ``args``, or with ``args`` and a context (``None``) when it takes one more."""
    try:
        count = len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        count = len(args)
    return function(*args, None) if count == len(args) + 1 else function(*args)


def _install_run(command: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    sys.stderr.write(done.stdout + done.stderr)
    if done.returncode != 0:
        raise InstallRequirementsError(done.returncode, " ".join(command), done.stderr.strip()[-2000:])


def prepare_user_code(model_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """The directory holding the user's script, filled and with its requirements installed (idempotent)."""
    paths = Paths.from_env(environ)
    packages = paths.base / SERVING_PACKAGES_DIR
    if str(packages) not in sys.path:
        sys.path.insert(0, str(packages))  # before the requirement check: what an earlier worker installed counts
        importlib.invalidate_caches()
    model_code = model_dir / MODEL_CODE_DIR
    source = environ.get(SUBMIT_DIR_ENV, "")
    if model_code.is_dir():
        code_dir: Path | None = model_code
    elif source:
        code_dir = fill_code_dir(source, paths.code_dir, environ, paths.base)
    else:
        code_dir = None
    if code_dir is not None:
        install_requirements(code_dir, packages, _install_run, environ)
        if str(code_dir) in sys.path:  # first, also when loaded before (a multi-model server's models take turns)
            sys.path.remove(str(code_dir))
        sys.path.insert(0, str(code_dir))
        importlib.invalidate_caches()
    return code_dir


def import_user_module(environ: Mapping[str, str], code_dir: Path | None) -> ModuleType | None:
    """The user's module (``SAGEMAKER_PROGRAM`` without ``.py``), or None when there is none to import."""
    program = environ.get(PROGRAM_ENV, "").strip()
    name = program.removesuffix(".py") if program else DEFAULT_MODULE
    if code_dir is None:
        if program:
            raise UserError(
                f"{PROGRAM_ENV}={program} is set, but neither the model's code/ directory nor "
                f"{SUBMIT_DIR_ENV} holds it."
            )
        return None
    if importlib.util.find_spec(name) is None:
        if program:
            raise UserError(f"The inference script {program} is not in {code_dir}.")
        logger.info("no %s.py in %s: the framework's default functions serve the model", name, code_dir)
        return None
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", None) or "/").parent != code_dir:
        del sys.modules[name]  # a multi-model server's other model's script of the same name
    logger.info("importing the inference script %s from %s", name, code_dir)
    return importlib.import_module(name)


def _body_for(content_type: str, body: bytes) -> str | bytes:
    if content_type not in UTF8_TYPES:
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"The {content_type} request is not UTF-8: {exc}") from exc


def _response(result: Any, accept: str) -> InvocationResult:
    """What a transform/output function returned, as body bytes and content type."""
    if isinstance(result, tuple) and len(result) == 2:
        body, content_type = result
        return _response(body, str(content_type))
    if hasattr(result, "get_data") and hasattr(result, "mimetype"):  # a Flask/werkzeug Response
        return bytes(result.get_data()), str(result.mimetype or accept)
    if isinstance(result, str):
        return result.encode("utf-8"), accept
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result), accept
    raise InferenceError(
        f"output_fn/transform_fn returned {type(result).__name__}; return bytes, str or (data, content_type)."
    )


class ScriptModeHandler(InferenceHandler):
    """``/invocations`` through the user's functions. A framework container subclasses it with its defaults."""

    content_types: ClassVar[tuple[str, ...]] = ()  # any: the input function decides
    accepts: ClassVar[tuple[str, ...]] = ()
    default_accept: ClassVar[str] = JSON
    defaults_class: ClassVar[type[FrameworkDefaults]]

    def __init__(self, config: ServingConfig) -> None:
        super().__init__(config)
        self._defaults = self.defaults_class()
        self._functions: UserFunctions | None = None
        self._model: Any = None

    def load(self, model_dir: Path) -> None:
        environ = self.config.environ or {}
        try:
            code_dir = prepare_user_code(model_dir, environ)
            functions = user_functions(import_user_module(environ, code_dir), self._defaults)
            self._model = call_user_function(functions.model_fn, str(model_dir))
        except ToolkitError as exc:  # the user's script or bundle: still a model that cannot be served (500)
            raise ModelLoadError(f"Unable to load model: {exc.message}") from exc
        self._functions = functions
        logger.info("model loaded from %s", model_dir)

    def check_content_type(self, header: str | None) -> MediaType:
        return parse_media_type(header) if header else MediaType("")

    def resolve_accept(self, header: str | None) -> str:
        if not header or header.strip() == "*/*":
            return self.config.default_accept or self.default_accept
        return header.strip()

    def invoke(self, body: bytes, content_type: MediaType, accept: str) -> InvocationResult:
        functions = self._functions
        assert functions is not None, "ensure_loaded runs before invoke"
        data = _body_for(content_type.type, body)
        if functions.transform_fn is not None:
            return _response(
                call_user_function(functions.transform_fn, self._model, data, content_type.type, accept), accept
            )
        try:
            decoded = call_user_function(functions.input_fn, data, content_type.type)
        except UnsupportedFormatError as exc:
            raise UnsupportedMediaTypeError(exc.message) from exc
        prediction = call_user_function(functions.predict_fn, decoded, self._model)
        try:
            result = call_user_function(functions.output_fn, prediction, accept)
        except UnsupportedFormatError as exc:
            raise self._defaults.unsupported_accept(exc.message) from exc
        return _response(result, accept)


def serve_user_script(handler_path: str) -> int:
    """The framework containers' ``serve``: load the script and the model once up front, so a model that cannot be
    loaded stops the container at once with the reason in its log; then start the server (each worker loads its own).
    """
    config = ServingConfig.from_env()
    try:
        if not config.multi_model:  # a multi-model server loads each model on request
            load_factory(handler_path)(config).ensure_loaded()
    except ToolkitError as exc:
        logger.error("%s", exc.failure_text())
        return 1
    return serve(handler_path, config)
