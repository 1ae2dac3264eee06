"""``smspark-submit``: what the SageMaker Spark processing image runs, as a local-mode ``spark-submit``.

The SDK's ``PySparkProcessor`` / ``SparkJarProcessor`` send ``ContainerEntrypoint = ["smspark-submit",
"--py-files", <dir or URIs>, "--jars", ..., "--files", ..., "--local-spark-event-logs-dir", <dir>, <app>]`` and the
app's arguments as ``ContainerArguments``. This module turns that into the venv's ``pyspark/bin/spark-submit`` with
``--master local[*]`` (a job of several hosts submits to its standalone cluster instead: ``spark_cluster``):
directories are expanded into their files (as the AWS image does), ``s3://`` dependencies are downloaded, the
EMR-style ``/opt/ml/processing/input/conf/configuration.json`` becomes ``--conf`` pairs and environment variables,
and event logs go to the local directory the SDK uploads to S3.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containers.processing.spark_cluster import ClusterLayout, cluster_conf

logger = logging.getLogger(__name__)

__all__ = ["SparkCommand", "SubmitError", "build_spark_command", "is_spark_submit", "spark_bin_dir"]

ENTRYPOINT_NAME = "smspark-submit"
CONTAINER_ROOT = "/opt/ml"
CONFIGURATION_PATH = "processing/input/conf/configuration.json"
DEFAULT_MASTER = "local[*]"
# Defaults that suit one machine; any of them can be overridden by the configuration's spark-defaults.
# The driver listens on loopback only (``local`` master), never on the machine's external interface.
DEFAULT_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
_OPTIONS = {"--py-files": "py_files", "--jars": "jars", "--files": "files"}
_PY_SUFFIXES = (".py", ".zip", ".egg")
# Classifications whose properties are Hadoop configuration (Spark reads them as ``spark.hadoop.<key>``).
_HADOOP_SITES = frozenset({"core-site", "hdfs-site", "yarn-site", "hive-site", "spark-hive-site"})
_ENV_CLASSIFICATIONS = frozenset({"spark-env", "hadoop-env", "yarn-env", "hive-env"})


class SubmitError(ValueError):
    """The ``smspark-submit`` command line or its configuration cannot be run; the message names the problem."""


@dataclass
class SubmitRequest:
    app: str
    app_arguments: list[str]
    py_files: list[str] = field(default_factory=list)
    jars: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    event_logs_dir: str | None = None
    verbose: bool = False


@dataclass(frozen=True)
class SparkCommand:
    argv: list[str]
    environment: dict[str, str]
    event_logs_dir: Path | None = None

    def finish(self) -> None:
        """Drop Hadoop's local ``.crc`` side files so only the event logs themselves are uploaded."""
        if self.event_logs_dir is None or not self.event_logs_dir.is_dir():
            return
        for checksum in self.event_logs_dir.rglob(".*.crc"):
            checksum.unlink(missing_ok=True)


def is_spark_submit(argv: Sequence[str]) -> bool:
    return bool(argv) and Path(argv[0]).name == ENTRYPOINT_NAME


def base_dir(env: Mapping[str, str] | None = None) -> Path:
    source = os.environ if env is None else env
    return Path(source.get("SAGEMAKER_BASE_DIR") or CONTAINER_ROOT)


def rebase(path: str, base: Path) -> str:
    """``/opt/ml/...`` inside this host's directory (identity when the container really sees ``/opt/ml``)."""
    if path == CONTAINER_ROOT or path.startswith(CONTAINER_ROOT + "/"):
        return str(base) + path[len(CONTAINER_ROOT) :]
    return path


def parse_submit(argv: Sequence[str]) -> SubmitRequest:
    """Options up to the first non-option word (the app); every later word is an argument of the app."""
    words = list(argv[1:])
    values: dict[str, list[str]] = {"py_files": [], "jars": [], "files": []}
    event_logs: str | None = None
    verbose = False
    index = 0
    while index < len(words) and words[index].startswith("-"):
        option, has_value, inline = words[index].partition("=")
        if option in ("-v", "--verbose"):
            verbose, index = True, index + 1
            continue
        if option not in _OPTIONS and option != "--local-spark-event-logs-dir":
            raise SubmitError(f"ClientError: smspark-submit does not know the option {option!r}")
        if not has_value:
            if index + 1 >= len(words):
                raise SubmitError(f"ClientError: smspark-submit option {option} needs a value")
            inline, index = words[index + 1], index + 1
        index += 1
        if option == "--local-spark-event-logs-dir":
            event_logs = inline
        else:
            values[_OPTIONS[option]].extend(item for item in inline.split(",") if item.strip())
    if index >= len(words):
        raise SubmitError("ClientError: smspark-submit needs an application (a .py file or a .jar)")
    return SubmitRequest(words[index], words[index + 1 :], event_logs_dir=event_logs, verbose=verbose, **values)


def read_configuration(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """EMR application configuration JSON -> (Spark conf, environment variables)."""
    if not path.is_file():
        return {}, {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SubmitError(f"ClientError: {path.name} is not valid JSON: {exc}") from exc
    items = document if isinstance(document, list) else [document]
    conf: dict[str, str] = {}
    env: dict[str, str] = {}
    for item in items:
        if not isinstance(item, Mapping) or "Classification" not in item:
            raise SubmitError(f"ClientError: {path.name}: every entry needs a Classification, got {item!r}")
        _apply_classification(item, conf, env)
    return conf, env


def _apply_classification(item: Mapping[str, Any], conf: dict[str, str], env: dict[str, str]) -> None:
    classification = str(item["Classification"])
    properties = {str(k): str(v) for k, v in (item.get("Properties") or {}).items()}
    if classification == "spark-defaults":
        conf.update(properties)
    elif classification in _HADOOP_SITES:
        conf.update({f"spark.hadoop.{k}": v for k, v in properties.items()})
    elif classification in _ENV_CLASSIFICATIONS or classification == "export":
        env.update(properties)
    else:
        logger.info("configuration classification %s has no effect in local mode; ignored", classification)
    for nested in item.get("Configurations") or []:
        if isinstance(nested, Mapping) and nested.get("Classification") == "export":
            if classification in _ENV_CLASSIFICATIONS:
                env.update({str(k): str(v) for k, v in (nested.get("Properties") or {}).items()})
        elif isinstance(nested, Mapping) and "Classification" in nested:
            _apply_classification(nested, conf, env)


def expand_dependencies(items: Sequence[str], suffixes: tuple[str, ...] | None, base: Path, staging: Path) -> list[str]:
    """Local files stay, directories become their files (sorted, filtered by suffix), S3 objects are downloaded."""
    found: list[str] = []
    for raw in items:
        item = raw.strip()
        if item.startswith(("s3://", "s3a://")):
            found.append(str(download(item, staging)))
            continue
        path = Path(rebase(item.removeprefix("file://"), base))
        if path.is_dir():
            children = sorted(p for p in path.iterdir() if p.is_file())
            found.extend(str(p) for p in children if suffixes is None or p.suffix in suffixes)
        elif path.is_file():
            found.append(str(path))
        else:
            raise SubmitError(f"ClientError: smspark-submit dependency {item} does not exist")
    return found


def download(uri: str, staging: Path) -> Path:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri.split("://", 1)[1].partition("/")
    target = staging / key.rsplit("/", 1)[-1]
    staging.mkdir(parents=True, exist_ok=True)
    try:
        boto3.client("s3").download_file(bucket, key, str(target))
    except (BotoCoreError, ClientError) as exc:
        raise SubmitError(f"ClientError: cannot download dependency {uri}: {exc}") from exc
    return target


def spark_bin_dir() -> Path:
    """pyspark's ``bin/`` (``spark-submit``, ``spark-class``)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SubmitError("ClientError: pyspark is not installed in the processing container's environment")
    return Path(spec.origin).parent / "bin"


def spark_submit_path() -> Path:
    return spark_bin_dir() / "spark-submit"


def build_spark_command(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cluster: ClusterLayout | None = None
) -> SparkCommand:
    """The ``spark-submit`` argv and the extra environment for one ``smspark-submit`` command line.

    With ``cluster`` (a job of several hosts) the app goes to the job's standalone master, else it runs ``local[*]``.
    """
    base = base_dir(env)
    request = parse_submit(argv)
    conf, extra_env = read_configuration(base / CONFIGURATION_PATH)
    cluster_defaults = cluster_conf(cluster, extra_env) if cluster is not None else {}
    conf = {**DEFAULT_CONF, **cluster_defaults, **conf}
    master = conf.pop("spark.master", cluster.master_url if cluster is not None else DEFAULT_MASTER)
    logs: Path | None = None
    if request.event_logs_dir:
        logs = Path(rebase(request.event_logs_dir, base))
        logs.mkdir(parents=True, exist_ok=True)
        conf.setdefault("spark.eventLog.enabled", "true")
        conf.setdefault("spark.eventLog.dir", logs.resolve().as_uri())
        # Spark 4 defaults to rolling, zstd-compressed logs; the 3.x images (and their history server) write one
        # plain JSON-lines file per application, so do that unless the configuration asks otherwise.
        conf.setdefault("spark.eventLog.rolling.enabled", "false")
        conf.setdefault("spark.eventLog.compress", "false")
    staging = Path(tempfile.mkdtemp(prefix="smspark-"))
    command = [str(spark_submit_path()), "--master", master]
    if request.verbose:
        command.append("--verbose")
    for option, items, suffixes in (
        ("--py-files", request.py_files, _PY_SUFFIXES),
        ("--jars", request.jars, (".jar",)),
        ("--files", request.files, None),
    ):
        paths = expand_dependencies(items, suffixes, base, staging / option.strip("-"))
        if paths:
            command += [option, ",".join(paths)]
    for key, value in sorted(conf.items()):
        command += ["--conf", f"{key}={value}"]
    app = request.app
    app = str(download(app, staging / "app")) if app.startswith(("s3://", "s3a://")) else rebase(app, base)
    command += [app, *request.app_arguments]
    # Whatever else the JVM binds (a UI a configuration turns on) stays on the driver's address (docs/security.md).
    local_ip = cluster.bind_address if cluster is not None else "127.0.0.1"
    environment = {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": local_ip,
        **extra_env,
    }
    return SparkCommand(command, environment, logs)
