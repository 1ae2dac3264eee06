"""The ``mlflow.tracking_store`` entry point of a managed server's ``sqlite`` scheme.

See docs/experiments.md#managed-mlflow. MLflow loads its tracking-store plugins while ``mlflow.tracking`` is still
being imported: this module imports nothing of MLflow until the server asks for its store. Declared by the
distribution metadata in ``store_plugin/``, which only the managed servers have on their ``PYTHONPATH``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.control_plane.mlflow_servers.bulk_metric_store import BulkMetricSqlAlchemyStore

# Where ``mlflow server`` puts its --default-artifact-root for its worker (mlflow.server.constants, not imported here:
# importing mlflow.server builds MLflow's Flask app); MLflow's own builder falls back to it too.
_SERVER_ARTIFACT_ROOT_VARIABLE = "_MLFLOW_SERVER_ARTIFACT_ROOT"
_DEFAULT_ARTIFACT_ROOT = "./mlruns"  # MLflow's default without a server
# The server's backend store URI, set by the stack for the server process: the store server_app's hook writes to.
BACKEND_STORE_VARIABLE = "SAGESTACK_MLFLOW_BACKEND_STORE_URI"
# The stores built in this process by URI: the app's plain log_batch hook writes through its server's backend store
# (server_app.py), never a store another part of MLflow built for another URI.
_BUILT: dict[str, BulkMetricSqlAlchemyStore] = {}


def build_store(store_uri: str, artifact_uri: str | None = None) -> BulkMetricSqlAlchemyStore:
    """The store of ``store_uri`` with ``artifact_uri`` (else the server's artifact root), as MLflow's registry
    asks for it."""
    from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    from infra.control_plane.mlflow_servers.bulk_metric_store import BulkMetricSqlAlchemyStore

    if MLFLOW_ENABLE_WORKSPACES.get():
        raise MlflowException("The stack's MLflow store does not serve workspaces", INVALID_PARAMETER_VALUE)
    artifact_root = artifact_uri or os.environ.get(_SERVER_ARTIFACT_ROOT_VARIABLE) or _DEFAULT_ARTIFACT_ROOT
    store = BulkMetricSqlAlchemyStore(store_uri, artifact_root)
    _BUILT[store_uri] = store
    return store


def built_store(store_uri: str) -> BulkMetricSqlAlchemyStore | None:
    """The store MLflow last built through this entry point for ``store_uri`` in this process, if any."""
    return _BUILT.get(store_uri)
