"""K-Means training: validate, stream the ``train`` channel through the web-scale algorithm, score, save.

``model_algo-1`` is written last, as an MXNet NDArray list holding one float32 ``(k, feature_dim)`` array, the
layout of the AWS artifact (docs/algorithms/kmeans.md#model-artifact), so ``mx.nd.load`` and
:func:`containers.kmeans.model.load_centers` both read it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

import numpy as np

from containers.kmeans.algorithm import Scores, StreamingKMeans, reduce_centers
from containers.kmeans.model import save_centers
from containers.kmeans.spec import KMeansConfig, parse_hyperparameters
from containers.toolkit.channels import (
    TEST,
    TRAIN,
    DenseChannel,
    ReplayableBatches,
    open_train_and_test,
    require_single_host,
)
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.metrics import MetricsWriter

logger = logging.getLogger(__name__)

REPLAY_BUDGET_BYTES = 128 << 20  # a train channel that decodes to this much is read from the files only once


def _initial_sample(batches: Iterator[np.ndarray], rows_wanted: int) -> list[np.ndarray]:
    """The first batches of the first epoch, enough to hold ``rows_wanted`` rows (or all of them)."""
    taken: list[np.ndarray] = []
    count = 0
    for batch in batches:
        taken.append(batch)
        count += batch.shape[0]
        if count >= rows_wanted:
            break
    return taken


def _first_epoch(stream: StreamingKMeans, data: ReplayableBatches, config: KMeansConfig) -> None:
    """Initialise from the first mini-batch (more rows when it holds fewer than K), then stream the epoch."""
    batches = iter(data)
    init_rows = max(config.mini_batch_size, config.working_centers)
    head = _initial_sample(batches, init_rows)
    sample = np.concatenate(head) if head else np.empty((0, config.feature_dim))
    if sample.shape[0] < config.k:  # the whole channel is in the sample
        raise UserError(
            f"k={config.k} is larger than the number of rows ({sample.shape[0]}) in channel {data.channel.name}; "
            "choose k <= the number of training records."
        )
    stream.initialize(sample[:init_rows], config.init_method)
    for batch in head:
        stream.partial_fit(batch)
    for batch in batches:
        stream.partial_fit(batch)


def fit(data: ReplayableBatches, config: KMeansConfig, metrics: MetricsWriter) -> np.ndarray:
    """The k final centers (float64) learned from the train channel's mini-batches
    (docs/algorithms/kmeans.md#algorithm)."""
    rng = np.random.default_rng(config.seed)
    stream = StreamingKMeans(config.working_centers, config.half_life_time_size, rng)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        if epoch == 0:
            _first_epoch(stream, data, config)
        else:
            for batch in data:
                stream.partial_fit(batch)
        metrics.progress(100.0 * (epoch + 1) / config.epochs)
    elapsed = max(time.perf_counter() - started, 1e-9)
    metrics.throughput(TRAIN, stream.seen / elapsed)
    assert stream.centers is not None and stream.counts is not None  # set by _first_epoch
    return reduce_centers(
        stream.centers,
        stream.counts,
        config.k,
        trials=config.local_lloyd_num_trials,
        init_method=config.local_lloyd_init_method,
        max_iter=config.local_lloyd_max_iter,
        tol=config.local_lloyd_tol,
        rng=rng,
    )


def score(batches: Iterable[np.ndarray], centers: np.ndarray) -> Scores:
    scores = Scores()
    for batch in batches:
        scores.add(batch, centers)
    return scores


def _report(
    train_data: ReplayableBatches,
    test_channel: DenseChannel | None,
    config: KMeansConfig,
    centers: np.ndarray,
    host: str,
) -> None:
    """``train msd`` (exact: one more pass over the train channel), then the test channel's ``eval_metrics``."""
    metrics = MetricsWriter(host)
    batch_rows = max(config.mini_batch_size, min(65536, (1 << 21) // config.feature_dim))
    metrics.quality(TRAIN, "msd", score(train_data, centers).msd)
    if test_channel is None:
        logger.info("Test data is not provided.")
        return
    test_scores = score(test_channel.batches(batch_rows), centers)
    for name in config.eval_metrics:
        value = test_scores.msd if name == "msd" else test_scores.ssd
        logger.info("#test_score (%s) : ('%s', %r)", host, name, value)
        metrics.quality(TEST, name, value)


def train(env: TrainingEnvironment) -> None:
    """The ``train`` entry: every failure is a typed error turned into the failure file by the toolkit."""
    config = parse_hyperparameters(dict(env.hyperparameters))
    require_single_host(env.resource.hosts, "K-Means")
    train_channel, test_channel = open_train_and_test(env, config.feature_dim)  # checked before training
    logger.info(
        "training K-Means: k=%d, K=%d working centers, feature_dim=%d",
        config.k,
        config.working_centers,
        config.feature_dim,
    )
    metrics = MetricsWriter(env.resource.current_host)
    train_data = ReplayableBatches(train_channel, config.mini_batch_size, REPLAY_BUDGET_BYTES)
    centers = fit(train_data, config, metrics)
    _report(train_data, test_channel, config, centers, env.resource.current_host)
    env.paths.model_dir.mkdir(parents=True, exist_ok=True)
    save_centers(env.paths.model_dir, centers)
