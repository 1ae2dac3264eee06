"""K-Means training: validate, stream the ``train`` channel through the web-scale algorithm, score, save.

With several instances (docs/algorithms/kmeans.md#distributed-training) every host streams its share of the channel
and the hosts advance together, one mini-batch each per round: each sends its batch's per-center counts and sums to
the leader (``algo-1``), which applies them as one mini-batch update and sends the centers back. The leader alone
runs the local Lloyd reduction, prints the metrics (scores summed over the hosts) and writes the model. With one
host the same code runs without a socket.

``model_algo-1`` is written last, as an MXNet NDArray list holding one float32 ``(k, feature_dim)`` array, the
layout of the AWS artifact (docs/algorithms/kmeans.md#model-artifact), so ``mx.nd.load`` and
:func:`containers.kmeans.model.load_centers` both read it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Iterator

import numpy as np

from containers.kmeans.algorithm import Scores, StreamingKMeans, reduce_centers
from containers.kmeans.model import save_centers
from containers.kmeans.spec import KMeansConfig, parse_hyperparameters
from containers.toolkit.channels import TEST, TRAIN, DenseChannel, ReplayableBatches, open_train_and_test
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.host_exchange import ExchangeSettings, HostGroup, Payload
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


def _sample_plan(counts: list[int], rows_wanted: int) -> np.ndarray:
    """Rows each host gives to the initial sample: the leader's first, then the others' in host order."""
    plan = []
    for count in counts:
        take = min(count, rows_wanted)
        plan.append(take)
        rows_wanted -= take
    return np.asarray(plan, dtype=np.int64)


def _joint_sample(own: np.ndarray, rows_wanted: int, group: HostGroup) -> np.ndarray | None:
    """On the leader, the initial sample drawn from every host (its own rows first); ``None`` elsewhere.

    Raises UserError on the leader when all hosts together hold fewer rows than ``k`` needs (then every host's
    whole share is in ``own``, so the counts are the channel's size)."""
    counts = group.gather({"rows": np.asarray([own.shape[0]], dtype=np.int64)})
    plan = None if counts is None else {"take": _sample_plan([int(c["rows"][0]) for c in counts], rows_wanted)}
    take = int(group.broadcast(plan)["take"][group.hosts.index(group.current)])
    parts = group.gather({"sample": own[:take] if take else own[:0]})
    if parts is None:
        return None
    if counts is not None and group.size > 1:
        logger.info("initial sample rows per host: %s", [int(c["rows"][0]) for c in counts])
    return np.concatenate([part["sample"].reshape(-1, own.shape[1]) for part in parts])


def _first_epoch_head(
    stream: StreamingKMeans, data: ReplayableBatches, config: KMeansConfig, group: HostGroup
) -> Iterator[np.ndarray]:
    """Initialise the working centers from the first rows (more than a mini-batch when it holds fewer than K);
    returns this host's batches of the first epoch, the sampled ones included."""
    batches = iter(data)
    init_rows = max(config.mini_batch_size, config.working_centers)
    head = _initial_sample(batches, init_rows)
    own = np.concatenate(head) if head else np.empty((0, config.feature_dim))
    sample = _joint_sample(own, init_rows, group)
    centers: Payload | None = None
    if sample is not None:
        if sample.shape[0] == 0:
            raise UserError(f"Channel {data.channel.name} is empty on every host: its files hold no rows.")
        if sample.shape[0] < config.k:  # every host's whole share is in the sample
            raise UserError(
                f"k={config.k} is larger than the number of rows ({sample.shape[0]}) in channel "
                f"{data.channel.name}; choose k <= the number of training records."
            )
        stream.initialize(sample[:init_rows], config.init_method)
        assert stream.centers is not None  # set by initialize
        centers = {"centers": stream.centers}
    stream.follow(group.broadcast(centers)["centers"])
    return itertools.chain(head, batches)


def _no_statistics() -> Payload:
    return {"rows": np.zeros(1, dtype=np.int64), "counts": np.zeros(0), "sums": np.zeros(0)}


def _stream_epoch(stream: StreamingKMeans, batches: Iterator[np.ndarray], group: HostGroup) -> None:
    """Rounds of one mini-batch per host until every host's share is used up."""
    while True:
        batch = next(batches, None)
        local = _no_statistics()
        if batch is not None and batch.shape[0]:
            counts, sums = stream.statistics(batch)
            local = {"rows": np.asarray([batch.shape[0]], dtype=np.int64), "counts": counts, "sums": sums}
        elif batch is not None:
            continue
        gathered = group.gather(local)
        update = None
        if gathered is not None:
            update = _apply_round(stream, gathered)
        update = group.broadcast(update)
        if not update["more"][0]:
            return
        if not group.is_leader:
            stream.follow(update["centers"])


def _apply_round(stream: StreamingKMeans, gathered: list[Payload]) -> Payload:
    """The leader's step of a round: the hosts' statistics as one mini-batch update."""
    parts = [part for part in gathered if int(part["rows"][0]) > 0]
    if not parts:
        return {"more": np.zeros(1, dtype=np.int64)}
    rows = sum(int(part["rows"][0]) for part in parts)
    counts = np.sum([part["counts"] for part in parts], axis=0)
    sums = np.sum([part["sums"] for part in parts], axis=0)
    stream.apply(counts, sums, rows)
    assert stream.centers is not None  # initialised before the first round
    return {"more": np.ones(1, dtype=np.int64), "centers": stream.centers}


def fit(data: ReplayableBatches, config: KMeansConfig, metrics: MetricsWriter, group: HostGroup) -> np.ndarray:
    """The k final centers (float64) learned from the train channel's mini-batches over every host
    (docs/algorithms/kmeans.md#algorithm)."""
    rng = np.random.default_rng(config.seed)
    stream = StreamingKMeans(config.working_centers, config.half_life_time_size, rng)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        batches = _first_epoch_head(stream, data, config, group) if epoch == 0 else iter(data)
        _stream_epoch(stream, batches, group)
        if group.is_leader:
            metrics.progress(100.0 * (epoch + 1) / config.epochs)
    final = None
    if group.is_leader:
        elapsed = max(time.perf_counter() - started, 1e-9)
        metrics.throughput(TRAIN, stream.seen / elapsed)
        assert stream.centers is not None and stream.counts is not None  # set by _first_epoch_head
        reduced = reduce_centers(
            stream.centers,
            stream.counts,
            config.k,
            trials=config.local_lloyd_num_trials,
            init_method=config.local_lloyd_init_method,
            max_iter=config.local_lloyd_max_iter,
            tol=config.local_lloyd_tol,
            rng=rng,
        )
        final = {"centers": reduced}
    return group.broadcast(final)["centers"]


def score(batches: Iterable[np.ndarray], centers: np.ndarray) -> Scores:
    scores = Scores()
    for batch in batches:
        scores.add(batch, centers)
    return scores


def _joint_scores(batches: Iterable[np.ndarray], centers: np.ndarray, group: HostGroup) -> Scores | None:
    """The scores of a channel over every host's share, on the leader (``None`` elsewhere)."""
    local = score(batches, centers)
    gathered = group.gather({"ssd": np.asarray([local.ssd]), "rows": np.asarray([local.rows], dtype=np.int64)})
    if gathered is None:
        return None
    return Scores(sum(float(part["ssd"][0]) for part in gathered), sum(int(part["rows"][0]) for part in gathered))


def _report(
    train_data: ReplayableBatches,
    test_channel: DenseChannel | None,
    config: KMeansConfig,
    centers: np.ndarray,
    group: HostGroup,
) -> None:
    """``train msd`` (exact: one more pass over the train channel), then the test channel's ``eval_metrics``."""
    metrics = MetricsWriter(group.current)
    batch_rows = max(config.mini_batch_size, min(65536, (1 << 21) // config.feature_dim))
    train_scores = _joint_scores(train_data, centers, group)
    if train_scores is not None:
        metrics.quality(TRAIN, "msd", train_scores.msd)
    if test_channel is None:
        logger.info("Test data is not provided.")
        return
    test_scores = _joint_scores(test_channel.batches(batch_rows), centers, group)
    if test_scores is None:
        return
    if test_scores.rows == 0:
        raise UserError(f"Channel {TEST} is empty on every host: its files hold no rows.")
    for name in config.eval_metrics:
        value = test_scores.msd if name == "msd" else test_scores.ssd
        logger.info("#test_score (%s) : ('%s', %r)", group.current, name, value)
        metrics.quality(TEST, name, value)


def train(env: TrainingEnvironment) -> None:
    """The ``train`` entry: every failure is a typed error turned into the failure file by the toolkit."""
    config = parse_hyperparameters(dict(env.hyperparameters))
    train_channel, test_channel = open_train_and_test(env, config.feature_dim)  # checked before training
    logger.info(
        "training K-Means: k=%d, K=%d working centers, feature_dim=%d",
        config.k,
        config.working_centers,
        config.feature_dim,
    )
    resource = env.resource
    settings = ExchangeSettings.from_environ(env.environ)
    with HostGroup(resource.hosts, resource.current_host, env.job_name, settings) as group:
        metrics = MetricsWriter(resource.current_host)
        train_data = ReplayableBatches(train_channel, config.mini_batch_size, REPLAY_BUDGET_BYTES)
        centers = fit(train_data, config, metrics, group)
        _report(train_data, test_channel, config, centers, group)
    if group.is_leader:  # only algo-1 writes the model, as AWS's container does
        env.paths.model_dir.mkdir(parents=True, exist_ok=True)
        save_centers(env.paths.model_dir, centers)
