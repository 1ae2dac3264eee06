"""PCA training: stream the ``train`` channel into the accumulator of the chosen mode, solve, score, save."""

from __future__ import annotations

import logging
import time

import numpy as np

from containers.pca.algorithm import Components, ScatterAccumulator, SketchAccumulator
from containers.pca.model import save_model
from containers.pca.spec import PCAConfig, parse_hyperparameters
from containers.toolkit.channels import TEST, TRAIN, DenseChannel, open_train_and_test, require_single_host
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.metrics import MetricsWriter

logger = logging.getLogger(__name__)

_TARGET_BATCH_VALUES = 1 << 21  # read ~16 MB of float64 per batch: BLAS runs far faster on big batches


def read_rows(config: PCAConfig) -> int:
    """Rows per batch: at least ``mini_batch_size``; more for narrow data (the result does not depend on it)."""
    return max(config.mini_batch_size, min(65536, _TARGET_BATCH_VALUES // config.feature_dim))


def fit(channel: DenseChannel, config: PCAConfig, metrics: MetricsWriter) -> Components:
    accumulator: ScatterAccumulator | SketchAccumulator
    if config.algorithm_mode == "randomized":
        accumulator = SketchAccumulator(config.feature_dim, config.sketch_size, np.random.default_rng(config.seed))
    else:
        accumulator = ScatterAccumulator(config.feature_dim)
    started = time.perf_counter()
    for batch in channel.batches(read_rows(config), exact=False):
        accumulator.add(batch)
    rows = accumulator.moments.n
    metrics.progress(100.0)
    metrics.throughput(TRAIN, rows / max(time.perf_counter() - started, 1e-9))
    components = accumulator.solve(config.num_components, config.subtract_mean)
    explained = float((components.s**2).sum()) / components.total_variance if components.total_variance else 1.0
    logger.info("%d rows; the %d components explain %.6f of the variance", rows, config.num_components, explained)
    return components


def reconstruction_msd(channel: DenseChannel, components: Components, batch_rows: int) -> float:
    """Mean over rows of the squared distance between ``x - mean`` and its projection on the components."""
    total = 0.0
    rows = 0
    for batch in channel.batches(batch_rows, exact=False):
        centered = batch - components.mean
        residual = centered - (centered @ components.v) @ components.v.T
        total += float(np.einsum("ij,ij->", residual, residual))
        rows += batch.shape[0]
    return total / rows


def train(env: TrainingEnvironment) -> None:
    config = parse_hyperparameters(dict(env.hyperparameters))
    require_single_host(env.resource.hosts, "PCA")
    channel, test = open_train_and_test(env, config.feature_dim)
    logger.info(
        "training PCA (%s): feature_dim=%d, num_components=%d",
        config.algorithm_mode,
        config.feature_dim,
        config.num_components,
    )
    metrics = MetricsWriter(env.resource.current_host)
    components = fit(channel, config, metrics)
    if test is None:
        logger.info("Test data is not provided.")
    else:
        metrics.quality(TEST, "reconstruction_msd", reconstruction_msd(test, components, read_rows(config)))
    env.paths.model_dir.mkdir(parents=True, exist_ok=True)
    save_model(env.paths.model_dir, components.mean, components.s, components.v)
