"""The managed servers' bulk ``log_batch`` writes what MLflow's own SqlAlchemyStore writes (docs/experiments.md).

Each scenario runs twice, on two SQLite databases: through MLflow's stock ``SqlAlchemyStore`` and through
``BulkMetricSqlAlchemyStore``; a stock store then reads both databases, and the tables are compared row for row.
"""

import math
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from infra.control_plane.mlflow_servers import mlflow_process
from infra.control_plane.mlflow_servers.bulk_metric_store import BulkMetricSqlAlchemyStore, is_plain_metric_batch

T0 = 1_700_000_000_000
INF = float("inf")
NAN = float("nan")


def _stores(tmp_path: Path) -> list[tuple[SqlAlchemyStore, str]]:
    made = []
    for name, cls in (("stock", SqlAlchemyStore), ("bulk", BulkMetricSqlAlchemyStore)):
        uri = f"sqlite:///{tmp_path / name}.db"
        made.append((cls(uri, str(tmp_path / f"{name}-artifacts")), uri))
    return made


def _new_run(store: SqlAlchemyStore) -> str:
    experiment_id = store.create_experiment("parity")
    return store.create_run(experiment_id, "user", T0, [], "run").info.run_id


def _rows(uri: str, table: str) -> list[tuple]:
    with closing(sqlite3.connect(uri.removeprefix("sqlite:///"))) as db:
        columns = "key, value, timestamp, step, is_nan"
        return sorted(db.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)


def _seen_by_stock(uri: str, run_id: str, keys: list[str]) -> tuple[dict, dict]:
    stock = SqlAlchemyStore(uri, "unused")
    run = stock.get_run(run_id)
    history = {key: [(m.value, m.timestamp, m.step) for m in stock.get_metric_history(run_id, key)] for key in keys}
    latest = {key: value for key, value in run.data.metrics.items()}
    return _comparable(history), _comparable(latest)


def _comparable(value):
    """NaN compares unequal to itself: a marker in its place."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_comparable(v) for v in value)
    return value


def _log_everywhere(tmp_path, batches, keys):
    """Logs ``batches`` (lists of (key, value, timestamp offset, step)) on both stores; what each database holds."""
    seen = []
    for store, uri in _stores(tmp_path):
        run_id = _new_run(store)
        for batch in batches:
            store.log_batch(run_id, [Metric(k, v, T0 + t, s) for k, v, t, s in batch], [], [])
        seen.append((_rows(uri, "metrics"), _rows(uri, "latest_metrics"), *_seen_by_stock(uri, run_id, keys)))
    return seen


def test_a_training_loop_of_batches_writes_the_same_rows_and_latest_values(tmp_path):
    batches = [[("loss", 1.0 / (s + 1), s, s) for s in range(start, start + 100)] for start in range(0, 300, 100)]
    stock, bulk = _log_everywhere(tmp_path, batches, ["loss"])
    assert _comparable(stock) == _comparable(bulk)
    assert len(bulk[0]) == 300
    assert bulk[3] == {"loss": pytest.approx(1.0 / 300)}  # the latest: step 299


def test_duplicates_nan_infinities_ties_and_older_steps_are_kept_as_mlflow_keeps_them(tmp_path):
    batches = [
        [("acc", 0.5, 10, 5), ("acc", 0.5, 10, 5), ("loss", NAN, 1, 0), ("loss", NAN, 1, 0), ("gain", INF, 3, 1)],
        [("acc", 0.5, 10, 5), ("acc", 0.9, 5, 2), ("acc", 0.4, 10, 5), ("gain", -INF, 3, 1), ("loss", 2.0, 1, 0)],
        [("acc", 0.7, 10, 5), ("acc", 0.6, 10, 5), ("loss", 0.0, 1, 0), ("lr", 3, 0, -1), ("lr", 0.001, 0, 0)],
    ]
    stock, bulk = _log_everywhere(tmp_path, batches, ["acc", "loss", "gain", "lr"])
    assert _comparable(stock) == _comparable(bulk)
    metrics, latest = bulk[0], bulk[1]
    assert ("loss", 0.0, T0 + 1, 0, 1) in metrics and ("loss", 0.0, T0 + 1, 0, 0) in metrics  # NaN, then 0.0
    assert len([row for row in metrics if row[0] == "acc"]) == 5  # the repeated (0.5, 10, 5) once
    assert ("gain", 1.7976931348623157e308, T0 + 3, 1, 0) in latest  # +inf beats -inf at the same step
    assert ("acc", 0.7, T0 + 10, 5, 0) in latest  # the greatest value of the latest step and timestamp


@pytest.mark.parametrize(
    ("metrics", "params", "tags"),
    [
        ([Metric("bad|key", 1.0, T0, 0)], [], []),
        ([Metric("../escape", 1.0, T0, 0)], [], []),
        ([Metric("loss", 1.0, -1, 0)], [], []),
        ([Metric("loss", True, T0, 0)], [], []),
        ([Metric("loss", 1.0, T0, 0)] * 1001, [], []),
        ([Metric("loss", 1.0, T0, 0)], [Param("eta", "0.3")] * 2 + [Param("eta", "0.4")], []),
    ],
    ids=["bad-character", "path", "negative-timestamp", "bool-value", "too-many", "param-changed"],
)
def test_bad_batches_get_mlflows_own_errors(tmp_path, metrics, params, tags):
    errors = []
    for store, _ in _stores(tmp_path):
        run_id = _new_run(store)
        with pytest.raises(MlflowException) as raised:
            store.log_batch(run_id, metrics, params, tags)
        errors.append((raised.value.error_code, raised.value.message.replace(run_id, "<run>")))
    assert errors[0] == errors[1]
    assert errors[1][0] == "INVALID_PARAMETER_VALUE"


def test_a_missing_or_deleted_run_gets_mlflows_errors_and_nothing_is_written(tmp_path):
    errors = []
    for store, uri in _stores(tmp_path):
        run_id = _new_run(store)
        store.delete_run(run_id)
        with pytest.raises(MlflowException) as deleted:
            store.log_batch(run_id, [Metric("loss", 1.0, T0, 0)], [], [])
        with pytest.raises(MlflowException) as missing:
            store.log_batch("0" * 32, [Metric("loss", 1.0, T0, 0)], [], [])
        errors.append([(e.value.error_code, e.value.message.replace(run_id, "<run>")) for e in (deleted, missing)])
        assert _rows(uri, "metrics") == []
    assert errors[0] == errors[1]
    assert [code for code, _ in errors[1]] == ["INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"]


def test_params_and_tags_with_metrics_are_logged_as_mlflow_logs_them(tmp_path):
    for store, _ in _stores(tmp_path):
        run_id = _new_run(store)
        store.log_batch(run_id, [Metric("auc", 0.8, T0, 1)], [Param("eta", "0.3")], [RunTag("team", "risk")])
        data = SqlAlchemyStore(store.db_uri, "unused").get_run(run_id).data
        assert (data.metrics, data.params, data.tags.get("team")) == ({"auc": 0.8}, {"eta": "0.3"}, "risk")


def test_only_a_plain_batch_of_metrics_takes_the_bulk_path():
    plain = [Metric("train/loss 1:a", 0.5, T0, 3), Metric("acc", 1, T0, -2)]
    assert is_plain_metric_batch("a" * 32, plain, [], [])
    assert not is_plain_metric_batch("a" * 33, plain, [], [])
    assert not is_plain_metric_batch("a-b", plain, [], [])
    assert not is_plain_metric_batch("a" * 32, plain, [Param("eta", "1")], [])
    assert not is_plain_metric_batch("a" * 32, [], [], [])
    assert not is_plain_metric_batch("a" * 32, [Metric("é", 0.5, T0, 0)], [], [])
    assert not is_plain_metric_batch("a" * 32, [Metric("loss", 0.5, T0, 0, model_id="m-1")], [], [])
    assert not is_plain_metric_batch("a" * 32, [Metric("loss", 10**30, T0, 0)], [], [])
    assert not is_plain_metric_batch("a" * 32, [Metric("loss", 0.5, T0, 2**63)], [], [])


def test_the_server_process_builds_the_bulk_store_for_its_sqlite_uri(probe_launch, tmp_path):
    """What the ``mlflow server`` child sees: its PYTHONPATH holds the tracking-store entry point of ``sqlite``."""
    launch = probe_launch
    probe = (
        "import importlib.metadata as m\n"
        "[point] = [p for p in m.entry_points(group='mlflow.tracking_store') if p.name == 'sqlite']\n"
        f"store = point.load()('sqlite:///{tmp_path / 'probe.db'}', None)\n"
        "print(type(store).__name__, store.artifact_root_uri)\n"
    )
    env = mlflow_process.server_environment(launch) | {"_MLFLOW_SERVER_ARTIFACT_ROOT": "s3://bucket/runs"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["BulkMetricSqlAlchemyStore", "s3://bucket/runs"]


def test_concurrent_batches_to_one_run_lose_no_point_and_keep_the_latest_value(tmp_path):
    """The server's 8 threads may log to one run at once: every point is kept, the latest value is the greatest."""
    store = BulkMetricSqlAlchemyStore(f"sqlite:///{tmp_path / 'threads.db'}", str(tmp_path / "artifacts"))
    run_id = _new_run(store)

    def log(worker: int) -> None:
        for start in range(0, 200, 50):
            store.log_batch(
                run_id, [Metric("loss", worker + s / 1000, T0 + s, s) for s in range(start, start + 50)], [], []
            )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(log, range(4)))
    stock = SqlAlchemyStore(store.db_uri, "unused")
    assert len(stock.get_metric_history(run_id, "loss")) == 800
    assert stock.get_run(run_id).data.metrics == {"loss": pytest.approx(3.199)}  # step 199 of worker 3
