"""Lambda functions and layer versions of one account/region, and their invocation (the operations, as plain data).

Operation methods take and return the API's JSON documents (``FunctionConfiguration``, ``GetFunctionResponse``...);
errors carry Lambda's codes. The code itself runs in :mod:`process_runtime` (docs/pipelines.md#lambda-steps).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ServiceError
from infra.control_plane.core.store import DurableMap
from infra.control_plane.lambda_functions.code_packages import InvalidParameterValueException, unpack_zip
from infra.control_plane.lambda_functions.process_runtime import (
    InvocationResult,
    InvocationSpec,
    log_tail,
    run_invocation,
)
from infra.control_plane.lambda_functions.standby_processes import StandbyProcesses

logger = logging.getLogger(__name__)

PYTHON_RUNTIMES = frozenset({"python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13"})
_NAME = re.compile(r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?(?P<name>[A-Za-z0-9_-]{1,64})(:[^:]+)?$")
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:(?P<name>[A-Za-z0-9_-]+):(?P<version>\d+)$")
_RESERVED_VARIABLES = re.compile(r"^(AWS_REGION|AWS_DEFAULT_REGION|AWS_LAMBDA_.*|_HANDLER|LAMBDA_TASK_ROOT)$")


class ResourceNotFoundException(ServiceError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceConflictException(ServiceError):
    code = "ResourceConflictException"
    status = 409


@dataclass
class LambdaFunction:
    name: str
    arn: str
    config: dict[str, Any]
    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()


@dataclass
class LayerVersion:
    arn: str
    version: int
    folder: Path
    document: dict[str, Any]


@dataclass
class LambdaFunctions:
    account_id: str
    region: str
    s3: S3Access
    work_root: Path
    stack_url: str
    # Durable under the backend's record binding (docs/local-stack.md, "What persists"): the configuration is a row,
    # the unpacked code stays under ``work_root``. Layer versions are keyed by their version ARN.
    functions: MutableMapping[str, LambdaFunction] = field(
        default_factory=lambda: DurableMap("lambda-function", LambdaFunction)
    )
    layer_versions: MutableMapping[str, LayerVersion] = field(
        default_factory=lambda: DurableMap("lambda-layer-version", LayerVersion)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    standby: StandbyProcesses = field(default_factory=StandbyProcesses)  # each function's next invocation process

    def close(self) -> None:
        """Stack stop: the standby invocation processes end."""
        self.standby.close()

    def recover_after_restart(self) -> None:
        """A function or layer whose unpacked code is gone from the data directory is reported, never half-run:
        the function's ``State`` becomes ``Failed`` with the reason (docs/local-stack.md, "Restart semantics")."""
        for arn, layer in list(self.layer_versions.items()):
            if not layer.folder.is_dir():
                logger.error("lambda layer version %s: its code %s is missing; it is not restored", arn, layer.folder)
                del self.layer_versions[arn]
        for name, function in list(self.functions.items()):
            missing = [str(p) for p in (function.code_dir, *function.layer_dirs) if not p.is_dir()]
            if missing:
                logger.error("lambda function %s: its code is missing (%s)", name, ", ".join(missing))
                function.config.update(
                    {
                        "State": "Failed",
                        "StateReasonCode": "InvalidCode",
                        "StateReason": f"{RESTART_REASON} Its code is missing from the data directory: {missing}",
                    }
                )
                self.functions[name] = function

    # --- functions ---------------------------------------------------------------------------------------------

    def create_function(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params.get("FunctionName") or "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise InvalidParameterValueException(f"Function name {name!r} must match [A-Za-z0-9_-]{{1,64}}.")
        runtime = str(params.get("Runtime") or "")
        if runtime not in PYTHON_RUNTIMES:
            raise InvalidParameterValueException(
                f"Runtime {runtime or '(none)'!r} is not supported locally; use one of {sorted(PYTHON_RUNTIMES)}."
            )
        if not params.get("Handler"):
            raise InvalidParameterValueException("Handler is required for a zip package function.")
        with self.lock:
            if name in self.functions:
                raise ResourceConflictException(f"Function already exist: {name}")
            arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
            function = LambdaFunction(name, arn, {}, self.work_root / "functions" / name / uuid.uuid4().hex)
            self._install_code(function, params.get("Code") or {})
            function.config = {
                "FunctionName": name,
                "FunctionArn": arn,
                "Runtime": runtime,
                "Role": params.get("Role"),
                "Handler": params.get("Handler"),
                "Description": params.get("Description", ""),
                "Timeout": 3,
                "MemorySize": 128,
                "Version": "$LATEST",
                "PackageType": "Zip",
                "Architectures": params.get("Architectures") or ["x86_64"],
                "State": "Active",
                "LastUpdateStatus": "Successful",
                "TracingConfig": {"Mode": "PassThrough"},
                "RevisionId": str(uuid.uuid4()),
            }
            self._configure(function, params)
            self._stamp(function)
            self.functions[name] = function
        logger.info("created lambda function %s", arn)
        return dict(function.config)

    def get_function(self, params: Mapping[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        return {
            "Configuration": dict(function.config),
            "Code": {"RepositoryType": "S3", "Location": f"{self.stack_url}/_sagestack/lambda/{function.name}"},
        }

    def get_function_configuration(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._function(params).config)

    def list_functions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"Functions": [dict(f.config) for f in sorted(self.functions.values(), key=lambda f: f.name)]}

    def update_function_code(self, params: Mapping[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        with self.lock:
            old = function.code_dir
            function.code_dir = old.parent / uuid.uuid4().hex
            self._install_code(function, params)
            shutil.rmtree(old, ignore_errors=True)
            self._stamp(function)
            function.config.pop("StateReason", None)
            function.config.pop("StateReasonCode", None)
            function.config["State"] = "Active"
            self.functions[function.name] = function  # stored again at once
        return dict(function.config)

    def update_function_configuration(self, params: Mapping[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        with self.lock:
            self._configure(function, params)
            self._stamp(function)
            self.functions[function.name] = function  # stored again at once
        return dict(function.config)

    def delete_function(self, params: Mapping[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        with self.lock:
            self.functions.pop(function.name, None)
        self.standby.discard_function(function.arn)
        shutil.rmtree(function.code_dir.parent, ignore_errors=True)
        logger.info("deleted lambda function %s", function.arn)
        return {}

    def invoke_function(self, name_or_arn: str, payload: bytes) -> InvocationResult:
        """Run the function on ``payload`` (``Invoke`` with ``RequestResponse``; also the pipeline's Lambda step)."""
        function = self._function({"FunctionName": name_or_arn})
        config = function.config
        spec = InvocationSpec(
            function_name=function.name,
            function_arn=function.arn,
            handler=str(config["Handler"]),
            code_dir=function.code_dir,
            layer_dirs=function.layer_dirs,
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
            timeout_seconds=int(config["Timeout"]),
            memory_mb=int(config["MemorySize"]),
            region=self.region,
            stack_url=self.stack_url,
            request_id=str(uuid.uuid4()),
        )
        return run_invocation(spec, payload or b"{}", self.standby)

    # --- layers --------------------------------------------------------------------------------------------------

    def publish_layer_version(self, layer_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", layer_name):
            raise InvalidParameterValueException(f"Layer name {layer_name!r} must match [A-Za-z0-9_-]{{1,64}}.")
        data = self._code_bytes(params.get("Content") or {})
        with self.lock:
            prefix = f"arn:aws:lambda:{self.region}:{self.account_id}:layer:{layer_name}:"
            number = 1 + max((v.version for arn, v in self.layer_versions.items() if arn.startswith(prefix)), default=0)
            arn = f"arn:aws:lambda:{self.region}:{self.account_id}:layer:{layer_name}:{number}"
            folder = unpack_zip(data, self.work_root / "layers" / layer_name / str(number))
            document = {
                "LayerArn": arn.rsplit(":", 1)[0],
                "LayerVersionArn": arn,
                "Version": number,
                "Description": params.get("Description", ""),
                "CreatedDate": _now(),
                "CompatibleRuntimes": params.get("CompatibleRuntimes") or [],
                "Content": {"CodeSha256": _sha(data), "CodeSize": len(data)},
            }
            self.layer_versions[arn] = LayerVersion(arn, number, folder, document)
        return document

    def get_layer_version(self, layer_name: str, version: int) -> dict[str, Any]:
        return dict(
            self._layer(f"arn:aws:lambda:{self.region}:{self.account_id}:layer:{layer_name}:{version}").document
        )

    # --- helpers -------------------------------------------------------------------------------------------------

    def _function(self, params: Mapping[str, Any]) -> LambdaFunction:
        raw = str(params.get("FunctionName") or "")
        match = _NAME.match(raw)
        function = self.functions.get(match.group("name")) if match else None
        if function is None:
            arn = raw if raw.startswith("arn:") else f"arn:aws:lambda:{self.region}:{self.account_id}:function:{raw}"
            raise ResourceNotFoundException(f"Function not found: {arn}")
        return function

    def _layer(self, arn: str) -> LayerVersion:
        layer = self.layer_versions.get(arn) if _LAYER_ARN.match(arn) else None
        if layer is not None:
            return layer
        raise ResourceNotFoundException(f"Layer version {arn} does not exist.")

    def _install_code(self, function: LambdaFunction, code: Mapping[str, Any]) -> None:
        data = self._code_bytes(code)
        unpack_zip(data, function.code_dir)
        function.config.update({"CodeSha256": _sha(data), "CodeSize": len(data)})

    def _code_bytes(self, code: Mapping[str, Any]) -> bytes:
        if code.get("ZipFile"):
            raw = code["ZipFile"]
            return raw if isinstance(raw, bytes) else base64.b64decode(str(raw))
        if code.get("S3Bucket") and code.get("S3Key"):
            try:
                return self.s3.get_bytes(S3Location(str(code["S3Bucket"]), str(code["S3Key"])))
            except S3AccessError as exc:
                raise InvalidParameterValueException(
                    f"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: {exc}"
                ) from exc
        if code.get("ImageUri"):
            raise InvalidParameterValueException("Container image functions are not supported locally; use a zip.")
        raise InvalidParameterValueException("Code must have ZipFile or S3Bucket and S3Key.")

    def _configure(self, function: LambdaFunction, params: Mapping[str, Any]) -> None:
        config = function.config
        timeout = int(params.get("Timeout", config.get("Timeout", 3)))
        memory = int(params.get("MemorySize", config.get("MemorySize", 128)))
        if not 1 <= timeout <= 900:
            raise InvalidParameterValueException("Timeout must be between 1 and 900 seconds.")
        if not 128 <= memory <= 10240:
            raise InvalidParameterValueException("MemorySize must be between 128 and 10240 MB.")
        variables = ((params.get("Environment") or {}).get("Variables")) or None
        for key in variables or {}:
            if _RESERVED_VARIABLES.match(key):
                raise InvalidParameterValueException(
                    f"Lambda was unable to configure your environment variables because the environment variables "
                    f"you have provided contains reserved keys that are currently not supported for modification. "
                    f"Reserved keys used in this request: {key}"
                )
        if "Environment" in params:
            config["Environment"] = {"Variables": dict(variables or {})}
        if "Layers" in params:
            layers = [self._layer(str(arn)) for arn in params.get("Layers") or []]
            function.layer_dirs = tuple(layer.folder for layer in layers)
            config["Layers"] = [
                {"Arn": layer.arn, "CodeSize": layer.document["Content"]["CodeSize"]} for layer in layers
            ]
        for key in ("Handler", "Runtime", "Role", "Description"):
            if params.get(key):
                config[key] = params[key]
        config.update({"Timeout": timeout, "MemorySize": memory})

    def _stamp(self, function: LambdaFunction) -> None:
        function.config.update({"LastModified": _now(), "RevisionId": str(uuid.uuid4())})
        self.standby.discard_function(function.arn)


def invocation_log(result: InvocationResult) -> str:
    """``X-Amz-Log-Result``: the log tail, base64."""
    return base64.b64encode(log_tail(result.log).encode()).decode()


def _sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
