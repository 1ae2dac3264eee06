"""K-fold cross-validation (``_kfold``, ``_num_cv_round``; docs/algorithms/xgboost.md#training): k·r boosters and
out-of-fold predictions.

Train and validation are joined; folds are stratified for classification. Each booster is saved as
``xgboost-model-<i>`` (serving averages them), each fold checkpoints into ``<checkpoints>/model-<i>/``, a summary line
``[<num_round>]\\t<data>-<metric>:<mean>`` follows each repetition, and the out-of-fold predictions (mean over the
repetitions) go to ``<output data dir>/predictions.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import xgboost as xgb
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold
from xgboost.callback import TrainingCallback

from containers.toolkit.codecs import Batch, concat_batches
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.metrics import MetricsWriter
from containers.xgboost import data
from containers.xgboost.callbacks import MODEL_NAME, EvalsLog
from containers.xgboost.model_format.model_files import model_format, write_model
from containers.xgboost.train import TrainSettings, load_matrices, read_resume_point, train_booster

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.csv"


class LastValues(TrainingCallback):
    """Remembers the metric values of the last round."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[str, str, float]] = []

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: EvalsLog) -> bool:
        self.values = [
            (name, metric, float(history[-1] if not isinstance(history[-1], tuple) else history[-1][0]))
            for name, metrics in evals_log.items()
            for metric, history in metrics.items()
        ]
        return False


def is_classification(values: Mapping[str, Any]) -> bool:
    return "num_class" in values or str(values.get("objective") or "").startswith("binary:")


def _splits(values: Mapping[str, Any], labels: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    k, repeats = int(values["_kfold"]), int(values.get("_num_cv_round") or 1)
    seed = int(values.get("seed") or 0)
    if is_classification(values):
        splitter: Any = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    else:
        splitter = RepeatedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    try:
        yield from splitter.split(np.zeros(len(labels)), labels)
    except ValueError as exc:
        raise UserError(f"Cannot make {k} folds of the data: {exc}") from exc


def _rows(batch: Batch, index: np.ndarray) -> Batch:
    features = sp.csr_matrix(batch.features)[index] if sp.issparse(batch.features) else batch.features[index]
    assert batch.labels is not None
    weights = None if batch.weights is None else batch.weights[index]
    return Batch(features, batch.labels[index], weights)


def _summary(writer: MetricsWriter, num_round: int, fold_values: list[list[tuple[str, str, float]]]) -> None:
    if not fold_values or not fold_values[0]:
        return
    keys = [(name, metric) for name, metric, _ in fold_values[0]]
    means = [float(np.mean([values[i][2] for values in fold_values])) for i in range(len(keys))]
    writer.rounds(num_round, [(name, metric, mean) for (name, metric), mean in zip(keys, means, strict=True)])


def run_kfold(env: TrainingEnvironment, values: Mapping[str, Any], channels: Mapping[str, data.ChannelData]) -> None:
    if len(env.resource.hosts) > 1:
        raise UserError("_kfold cross-validation runs on one instance only; set instance_count=1.")
    train, valid = load_matrices(channels, values)
    whole = concat_batches([train, valid]) if valid is not None else train
    assert whole.labels is not None
    k = int(values["_kfold"])
    writer = MetricsWriter(env.resource.current_host)
    oof_sum: np.ndarray | None = None
    fold_values: list[list[tuple[str, str, float]]] = []
    for index, (train_rows, test_rows) in enumerate(_splits(values, whole.labels)):
        checkpoint_dir = env.checkpoint_dir / f"model-{index}" if env.checkpoint_dir is not None else None
        recorder = LastValues()
        settings = TrainSettings(
            checkpoint_dir=checkpoint_dir,
            host=env.resource.current_host,
            resume=read_resume_point(checkpoint_dir),
            extra_callbacks=(recorder,),
        )
        dtest = data.to_dmatrix(_rows(whole, test_rows))
        booster = train_booster(values, data.to_dmatrix(_rows(whole, train_rows)), dtest, settings)
        write_model(booster, env.paths.model_dir / f"{MODEL_NAME}-{index}", model_format(env.environ))
        predictions = booster.predict(dtest).reshape(len(test_rows), -1)
        if oof_sum is None:
            oof_sum = np.zeros((whole.n_rows, predictions.shape[1]))
        oof_sum[test_rows] += predictions
        fold_values.append(recorder.values)
        if (index + 1) % k == 0:
            _summary(writer, int(values["num_round"]), fold_values)
            fold_values = []
    assert oof_sum is not None
    repeats = int(values.get("_num_cv_round") or 1)
    env.paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    np.savetxt(env.paths.output_data_dir / PREDICTIONS_FILE, oof_sum / repeats, fmt="%f", delimiter=",")
    logger.info("Saved %d fold models and out-of-fold predictions", k * repeats)
