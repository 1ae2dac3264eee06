"""PCA training: stream the ``train`` channel into the accumulator of the chosen mode, solve, score, save.

With several instances (docs/algorithms/pca.md#distributed-training) every host accumulates its share of the
channel; the leader (``algo-1``) merges the hosts' states (row count, mean, centered scatter matrix or sketch) with
Chan's formula, solves, sends the components back for the test score and alone writes the model. With one host the
same code runs without a socket.

The job logs its own time (``TRAIN_TIME_LOG``, docs/algorithms/pca.md#performance): from :func:`train`'s first line
(the hyperparameters parsed, the channels opened) to the model written, i.e. all of the job's work on the data, but
not the interpreter's start-up and imports, which a process pays whatever its data.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from containers.pca.algorithm import (
    SUBSET_EIGH_MIN_DIM,
    Components,
    ScatterAccumulator,
    SketchAccumulator,
    merge_states,
)
from containers.pca.model import save_model
from containers.pca.parallel import accumulate_in_workers, single_threaded_blas
from containers.pca.spec import PCAConfig, parse_hyperparameters
from containers.toolkit.channels import TEST, TRAIN, DenseChannel, check_finite, open_train_and_test
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.host_exchange import ExchangeSettings, HostGroup, Payload
from containers.toolkit.metrics import MetricsWriter
from containers.toolkit.threads import available_cpus, cgroup_cpu_limit

logger = logging.getLogger(__name__)

_TARGET_BATCH_VALUES = 1 << 21  # read ~16 MB of float64 per batch: BLAS runs far faster on big batches

TRAIN_TIME_LOG = "train time %.4f s (channels read, components solved, model written)"
MAX_WORKERS = 8  # regular mode's accumulating threads (each holds a 16 MB block; two batches each in flight)
Accumulator = ScatterAccumulator | SketchAccumulator


def read_rows(config: PCAConfig) -> int:
    """Rows per batch: at least ``mini_batch_size``; more for narrow data (the result does not depend on it)."""
    return max(config.mini_batch_size, min(65536, _TARGET_BATCH_VALUES // config.feature_dim))


def new_accumulator(config: PCAConfig) -> Accumulator:
    """Every host builds the same one: the sketch's Omega comes from the fixed seed."""
    if config.algorithm_mode == "randomized":
        return SketchAccumulator(config.feature_dim, config.sketch_size, np.random.default_rng(config.seed))
    return ScatterAccumulator(config.feature_dim)


def accumulate(channel: DenseChannel, config: PCAConfig, metrics: MetricsWriter) -> Accumulator:
    """This host's share of the channel, accumulated (regular mode: on every core, docs/algorithms/pca.md#algorithm)."""
    started = time.perf_counter()
    pieces = channel.unchecked_batches(read_rows(config), exact=False, as_float64=False)
    workers = min(MAX_WORKERS, available_cpus(cgroup_limit=cgroup_cpu_limit()))
    accumulator: Accumulator | None = None
    if config.algorithm_mode == "regular" and workers > 1:
        with single_threaded_blas() as single:
            if single:
                accumulator, failed = accumulate_in_workers(pieces, config.feature_dim, workers)
    if accumulator is None:
        accumulator = new_accumulator(config)
        failed = next((piece for piece in pieces if not accumulator.add(piece[2])), None)
    if failed is not None:  # a NaN or infinite value: the accumulator's sums show it
        path, first_row, batch = failed
        check_finite(batch, path, first_row)  # raises, naming the row
        raise UserError(f"Values in {path} are too large: their squares overflow double precision.")
    metrics.progress(100.0)
    metrics.throughput(TRAIN, accumulator.rows / max(time.perf_counter() - started, 1e-9))
    return accumulator


def solving_threads(d: int) -> AbstractContextManager[bool]:
    """Below ``SUBSET_EIGH_MIN_DIM`` the eigendecomposition runs on one BLAS thread (docs/algorithms/pca.md#algorithm):
    at d = 200 it takes ~3 ms on one thread, and a second thread only adds waits (20-250 ms on a busy machine)."""
    return single_threaded_blas() if d < SUBSET_EIGH_MIN_DIM else nullcontext(False)


def solve_merged(accumulator: Accumulator, states: list[Payload], config: PCAConfig) -> Components:
    """The leader's step: merge every host's state into ``accumulator`` and solve."""
    if isinstance(accumulator, SketchAccumulator):
        merged = merge_states(states, "y", accumulator.omega)
    else:
        merged = merge_states(states, "m2")
    if int(merged["n"][0]) == 0:
        raise UserError(f"Channel {TRAIN} is empty on every host: its files hold no rows.")
    accumulator.load(merged)
    with solving_threads(config.feature_dim):
        components = accumulator.solve(config.num_components, config.subtract_mean)
    explained = float((components.s**2).sum()) / components.total_variance if components.total_variance else 1.0
    logger.info(
        "%d rows; the %d components explain %.6f of the variance", components.n, config.num_components, explained
    )
    return components


def fit(channel: DenseChannel, config: PCAConfig, metrics: MetricsWriter, group: HostGroup) -> Components:
    """The components of the whole channel, on every host (docs/algorithms/pca.md#algorithm)."""
    accumulator = accumulate(channel, config, metrics)
    states = group.gather(accumulator.state())
    solved: Payload | None = None
    if states is not None:
        found = solve_merged(accumulator, states, config)
        solved = {
            "mean": found.mean,
            "v": found.v,
            "s": found.s,
            "n": np.asarray([found.n]),
            "total": np.asarray([found.total_variance]),
        }
    shared = group.broadcast(solved)
    return Components(shared["mean"], shared["v"], shared["s"], int(shared["n"][0]), float(shared["total"][0]))


def reconstruction_ssd(channel: DenseChannel, components: Components, batch_rows: int) -> tuple[float, int]:
    """Sum over rows of the squared distance between ``x - mean`` and its projection on the components, and rows."""
    total = 0.0
    rows = 0
    for batch in channel.batches(batch_rows, exact=False):
        centered = batch - components.mean
        residual = centered - (centered @ components.v) @ components.v.T
        total += float(np.einsum("ij,ij->", residual, residual))
        rows += batch.shape[0]
    return total, rows


def _report_test(test: DenseChannel, components: Components, config: PCAConfig, group: HostGroup) -> None:
    """``test reconstruction_msd`` over every host's share of the test channel, printed by the leader."""
    ssd, rows = reconstruction_ssd(test, components, read_rows(config))
    gathered = group.gather({"ssd": np.asarray([ssd]), "rows": np.asarray([rows], dtype=np.int64)})
    if gathered is None:
        return
    total_rows = sum(int(part["rows"][0]) for part in gathered)
    if total_rows == 0:
        raise UserError(f"Channel {TEST} is empty on every host: its files hold no rows.")
    msd = sum(float(part["ssd"][0]) for part in gathered) / total_rows
    MetricsWriter(group.current).quality(TEST, "reconstruction_msd", msd)


def train(env: TrainingEnvironment) -> None:
    started = time.perf_counter()
    config = parse_hyperparameters(dict(env.hyperparameters))
    channel, test = open_train_and_test(env, config.feature_dim)
    logger.info(
        "training PCA (%s): feature_dim=%d, num_components=%d",
        config.algorithm_mode,
        config.feature_dim,
        config.num_components,
    )
    resource = env.resource
    settings = ExchangeSettings.from_environ(env.environ)
    with HostGroup(resource.hosts, resource.current_host, env.job_name, settings) as group:
        components = fit(channel, config, MetricsWriter(resource.current_host), group)
        if test is None:
            logger.info("Test data is not provided.")
        else:
            _report_test(test, components, config, group)
    if group.is_leader:  # only algo-1 writes the model, as AWS's container does
        env.paths.model_dir.mkdir(parents=True, exist_ok=True)
        save_model(env.paths.model_dir, components.mean, components.s, components.v)
    logger.info(TRAIN_TIME_LOG, time.perf_counter() - started)
