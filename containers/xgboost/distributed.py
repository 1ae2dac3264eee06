"""Multi-host training with XGBoost's collective (docs/algorithms/xgboost.md#training).

Round 1: every host joins a group led by a tracker on the first sorted host (port ``SAGESTACK_RABIT_PORT``, default
9099) and says whether it holds data. Hosts without data stop there (exit 0). Round 2 (port + 1): the hosts with
data train one model together; XGBoost syncs histograms every round; rank 0 (the first data host) prints the
metric lines, writes checkpoints and saves the model. With only one data host, it trains alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from xgboost import collective
from xgboost.tracker import RabitTracker

from containers.toolkit.environment import TrainingEnvironment, resolve_host
from containers.toolkit.errors import PlatformError
from containers.xgboost import data
from containers.xgboost.model_format.model_files import model_format
from containers.xgboost.train import (
    TrainSettings,
    load_matrices,
    read_resume_point,
    run_single,
    save_model,
    train_booster,
)

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9099
PORT_ENV = "SAGESTACK_RABIT_PORT"
CONNECT_RETRIES = 30
TIMEOUT_SECONDS = 900


def tracker_port(environ: Mapping[str, str]) -> int:
    raw = environ.get(PORT_ENV, str(DEFAULT_PORT))
    try:
        return int(raw)
    except ValueError as exc:
        raise PlatformError(f"{PORT_ENV}={raw!r} is not a port number") from exc


@contextmanager
def collective_group(hosts: Sequence[str], current: str, port: int) -> Iterator[None]:
    """Join a communicator group of ``hosts``; the first host also runs the tracker. Rank order = host order."""
    leader_ip = resolve_host(hosts[0])
    tracker: RabitTracker | None = None
    if current == hosts[0]:
        tracker = RabitTracker(
            n_workers=len(hosts), host_ip=leader_ip, port=port, sortby="task", timeout=TIMEOUT_SECONDS
        )
        tracker.start()
    args: dict[str, int | str | None] = {
        "dmlc_tracker_uri": leader_ip,
        "dmlc_tracker_port": port,
        "dmlc_task_id": current,
        "dmlc_retry": CONNECT_RETRIES,
        "dmlc_timeout": TIMEOUT_SECONDS,
    }
    try:
        with collective.CommunicatorContext(**args):
            yield
    finally:
        if tracker is not None:
            tracker.wait_for(TIMEOUT_SECONDS)
            tracker.free()


def hosts_with_data(hosts: Sequence[str], current: str, has_data: bool, port: int) -> list[str]:
    """Round 1: every host learns which hosts hold data (one allreduce of a 0/1 vector)."""
    flags = np.zeros(len(hosts), dtype=np.float64)
    flags[list(hosts).index(current)] = 1.0 if has_data else 0.0
    with collective_group(hosts, current, port):
        total = np.asarray(collective.allreduce(flags, collective.Op.SUM))
    return [host for host, flag in zip(hosts, total, strict=True) if flag > 0]


def _has_data(channels: Mapping[str, data.ChannelData]) -> bool:
    return all(channel.has_data for channel in channels.values())


def run_distributed(
    env: TrainingEnvironment, values: Mapping[str, Any], channels: Mapping[str, data.ChannelData]
) -> None:
    hosts = list(env.resource.hosts)
    current = env.resource.current_host
    port = tracker_port(env.environ)
    for host in hosts:
        resolve_host(host)
    members = hosts_with_data(hosts, current, _has_data(channels), port)
    logger.info("Hosts with data: %s", ", ".join(members) or "none")
    if not members:
        data.require_data(channels[data.TRAIN])  # raises: nobody has data
    if current not in members:
        logger.warning("Host %s has no data; it does not take part in training.", current)
        return
    if len(members) == 1:
        run_single(env, values, channels)
        return
    _train_group(env, values, channels, members, port + 1)


def _train_group(
    env: TrainingEnvironment,
    values: Mapping[str, Any],
    channels: Mapping[str, data.ChannelData],
    members: Sequence[str],
    port: int,
) -> None:
    current = env.resource.current_host
    train_batch, valid_batch = load_matrices(channels, values)
    with collective_group(members, current, port):
        rank = collective.get_rank()
        logger.info("Training with %d hosts; %s has rank %d", len(members), current, rank)
        nthread = values.get("nthread")
        dtrain = data.to_dmatrix(train_batch, nthread=nthread)
        dvalid = data.to_dmatrix(valid_batch, nthread=nthread) if valid_batch is not None else None
        # every worker must start from the same model: the master's latest checkpoint (or none)
        offer = {"resume": read_resume_point(env.checkpoint_dir)} if rank == 0 else None
        received = collective.broadcast(offer, 0)
        if received is None:
            raise PlatformError("the master sent no checkpoint information")
        resume = received["resume"]
        settings = TrainSettings(
            checkpoint_dir=env.checkpoint_dir,
            model_dir=env.paths.model_dir,
            host=current,
            resume=resume,
            model_format=model_format(env.environ),
        )
        booster = train_booster(values, dtrain, dvalid, settings)
        save_model(booster, env.paths.model_dir, settings.model_format)
