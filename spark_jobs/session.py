"""Building a SparkSession the way every Sagestack job (and the test suite) needs it."""

from __future__ import annotations

import logging
import os
import sys
import warnings

from pyspark.sql import SparkSession

from spark_jobs.config import SparkSettings

logger = logging.getLogger(__name__)

# pyspark 4.3 warns on every Arrow conversion that pandas >= 3 is "not fully supported", and its own conversion code
# passes ``copy=False`` to ``astype`` (a Pandas4Warning under pandas 3). Neither changes results (see docs/spark.md).
_PANDAS3_WARNINGS = (
    "ignore:PySpark does not yet fully support pandas:FutureWarning",
    "ignore:The copy keyword is deprecated:DeprecationWarning",
)


# The driver's RPC and block manager bind to loopback rather than the machine's external interface.
LOOPBACK_DRIVER = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}


def quiet_pandas3_warnings() -> None:
    """Silence the two pandas-3 warnings in this process and in Python workers started after this call."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    warnings.filterwarnings("ignore", message="The copy keyword is deprecated", category=DeprecationWarning)
    existing = os.environ.get("PYTHONWARNINGS", "")
    wanted = [w for w in _PANDAS3_WARNINGS if w not in existing]
    if wanted:
        os.environ["PYTHONWARNINGS"] = ",".join([p for p in [existing, *wanted] if p])


def build_session(settings: SparkSettings) -> SparkSession:
    """Get or create the SparkSession; Python workers use this interpreter (pyspark needs that for a venv)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    quiet_pandas3_warnings()
    builder = SparkSession.builder.appName(settings.app_name)
    if settings.master:
        builder = builder.master(settings.master)
    conf = {
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.executorEnv.PYTHONWARNINGS": os.environ["PYTHONWARNINGS"],
    }
    if settings.master and settings.master.startswith("local"):
        conf.update(LOOPBACK_DRIVER)  # a local driver listens on loopback only (docs/security.md)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # and so does anything else the JVM binds
    if settings.driver_memory:
        conf["spark.driver.memory"] = settings.driver_memory
    conf.update(dict(settings.extra))
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    logger.info("SparkSession ready (master=%s, spark %s)", session.sparkContext.master, session.version)
    return session
