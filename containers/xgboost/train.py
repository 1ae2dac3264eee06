"""Algorithm-mode training (docs/algorithms/xgboost.md#training): hyperparameters and channels in, ``xgboost-model``
out.

``train_job(env)`` is the container entry (``python -m containers.xgboost train``). ``train_booster`` is the core: it
takes already-built DMatrix objects and explicit settings, so tests call it without any ``/opt/ml`` tree.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xgboost as xgb

from containers.toolkit.codecs import Batch
from containers.toolkit.entrypoint import TrainingTerminated
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.framework.script_mode import is_script_mode, run_user_entry_point
from containers.toolkit.metrics import MetricsWriter
from containers.xgboost import data, spec
from containers.xgboost.callbacks import (
    MODEL_NAME,
    CheckpointSaver,
    RoundLogger,
    SaveEveryRound,
    clean_model_dir,
    is_rank_zero,
    latest_checkpoint,
)
from containers.xgboost.evaluation import make_custom_metric, split_metrics
from containers.xgboost.model_format.model_files import NATIVE, ModelFormat, model_format, write_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Where a run writes (all optional) and what it starts from."""

    checkpoint_dir: Path | None = None
    model_dir: Path | None = None  # only used by save_model_on_termination during training
    host: str = "algo-1"
    resume: tuple[int, bytes] | None = None  # (last finished round, raw model) to continue from
    model_format: ModelFormat = NATIVE  # how xgboost-model is written (model_files.py)
    extra_callbacks: tuple[xgb.callback.TrainingCallback, ...] = field(default_factory=tuple)


def xgb_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters handed to XGBoost: container-only keys removed, structured values as XGBoost's strings."""
    removed = sorted(set(values) & spec.REMOVED_IN_XGBOOST_3)
    if removed:
        logger.warning("Ignoring hyperparameters that XGBoost 3 no longer has: %s", ", ".join(removed))
    params: dict[str, Any] = {
        name: _xgb_value(name, value)
        for name, value in values.items()
        if name not in spec.CONTAINER_ONLY and name not in spec.REMOVED_IN_XGBOOST_3
    }
    native, _ = split_metrics(spec.metric_names(values))
    if native:
        params["eval_metric"] = native
    return params


def _xgb_value(name: str, value: Any) -> Any:
    if name == "monotone_constraints":
        return "(" + ",".join(str(item) for item in value) + ")"
    if name == "interaction_constraints":
        return str([list(group) for group in value]).replace(" ", "")
    if name == "updater":
        return ",".join(value)
    return value


def early_stopping(values: Mapping[str, Any], has_validation: bool) -> xgb.callback.EarlyStopping | None:
    """Early stopping on the validation data (docs/algorithms/xgboost.md#metrics), or None when it does not apply."""
    rounds = values.get("early_stopping_rounds")
    if not rounds:
        return None
    if not has_validation:
        logger.warning("early_stopping_rounds is set but there is no validation data: early stopping is off")
        return None
    tuning = values.get("_tuning_objective_metric")
    metrics = values.get("eval_metric") or []
    metric = tuning.split(":", 1)[1] if tuning else (metrics[-1] if metrics else None)
    maximize = spec.is_maximized(metric) if metric else None
    return xgb.callback.EarlyStopping(
        rounds=rounds, metric_name=metric, data_name=data.VALIDATION, maximize=maximize, save_best=True
    )


def _callbacks(values: Mapping[str, Any], settings: TrainSettings, offset: int, has_validation: bool) -> list[Any]:
    callbacks: list[Any] = [RoundLogger(MetricsWriter(settings.host), offset)]
    if settings.checkpoint_dir is not None:
        callbacks.append(CheckpointSaver(settings.checkpoint_dir, offset))
    if values.get("save_model_on_termination") == "true" and settings.model_dir is not None:
        callbacks.append(SaveEveryRound(settings.model_dir, settings.model_format))
    stopper = early_stopping(values, has_validation)
    if stopper is not None:
        callbacks.append(stopper)
    callbacks.extend(settings.extra_callbacks)
    return callbacks


def train_booster(
    values: Mapping[str, Any],
    dtrain: xgb.DMatrix,
    dvalid: xgb.DMatrix | None = None,
    settings: TrainSettings | None = None,
) -> xgb.Booster:
    """Train ``num_round`` rounds (fewer left when resuming) with the container's metrics, logging and callbacks."""
    settings = settings or TrainSettings()
    num_round = int(values["num_round"])
    start = 0
    initial: xgb.Booster | None = None
    if settings.resume is not None:
        last, raw = settings.resume
        start = last + 1
        initial = xgb.Booster(model_file=bytearray(raw))
        logger.info(
            "Resuming training from the checkpoint of round %d (%d of %d rounds left)",
            last,
            max(0, num_round - start),
            num_round,
        )
    if initial is not None and start >= num_round:
        return initial
    evals = [(dtrain, data.TRAIN)] + ([(dvalid, data.VALIDATION)] if dvalid is not None else [])
    _, custom = split_metrics(spec.metric_names(values))
    feval = make_custom_metric(custom, str(values.get("objective") or ""), values.get("num_class"))
    try:
        return xgb.train(
            xgb_params(values),
            dtrain,
            num_boost_round=num_round - start,
            evals=evals,
            custom_metric=feval,
            callbacks=_callbacks(values, settings, start, dvalid is not None),
            xgb_model=initial,
            verbose_eval=False,
        )
    except xgb.core.XGBoostError as exc:
        raise UserError(f"XGBoost rejected the training job: {_first_line(exc)}") from exc


_XGB_PREFIX = re.compile(r"^\[[0-9:]+\] \S+:[0-9]+: (Check failed: \S+: )?")


def _first_line(exc: Exception) -> str:
    """XGBoost's message without its timestamp, source location and stack trace."""
    lines = str(exc).strip().splitlines()
    return _XGB_PREFIX.sub("", lines[0]).strip() if lines else type(exc).__name__


def read_resume_point(checkpoint_dir: Path | None) -> tuple[int, bytes] | None:
    found = latest_checkpoint(checkpoint_dir)
    if found is None:
        return None
    iteration, path = found
    logger.info("Found checkpoint %s", path)
    return iteration, path.read_bytes()


def load_matrices(channels: Mapping[str, data.ChannelData], values: Mapping[str, Any]) -> tuple[Batch, Batch | None]:
    """Read train (required) and validation (when configured) into batches of the same width."""
    weights = values.get("csv_weights") == 1
    train = data.read_channel(channels[data.TRAIN], csv_weights=weights)
    valid_channel = channels.get(data.VALIDATION)
    valid = data.read_channel(valid_channel, csv_weights=weights) if valid_channel is not None else None
    if valid is not None:
        width = max(train.n_columns, valid.n_columns)
        train, valid = data.widen(train, width), data.widen(valid, width)
        if train.n_columns != valid.n_columns:
            raise UserError(
                f"The validation data has {valid.n_columns} feature columns but the training data has "
                f"{train.n_columns}."
            )
    return train, valid


def run_single(env: TrainingEnvironment, values: Mapping[str, Any], channels: Mapping[str, data.ChannelData]) -> None:
    """Train on this host alone and save the model."""
    train_batch, valid_batch = load_matrices(channels, values)
    nthread = values.get("nthread")
    dtrain = data.to_dmatrix(train_batch, nthread=nthread)
    dvalid = data.to_dmatrix(valid_batch, nthread=nthread) if valid_batch is not None else None
    settings = TrainSettings(
        checkpoint_dir=env.checkpoint_dir,
        model_dir=env.paths.model_dir,
        host=env.resource.current_host,
        resume=read_resume_point(env.checkpoint_dir),
        model_format=model_format(env.environ),
    )
    booster = train_booster(values, dtrain, dvalid, settings)
    save_model(booster, env.paths.model_dir, settings.model_format)


def save_model(booster: xgb.Booster, model_dir: Path, fmt: ModelFormat = NATIVE) -> None:
    """``xgboost-model`` as AWS's image of this framework version writes it (docs/containers.md)."""
    if not is_rank_zero():
        return
    path = model_dir / MODEL_NAME
    write_model(booster, path, fmt)
    shown = f"pickle protocol {fmt.protocol}" if fmt.pickled else "XGBoost's UBJSON format"
    logger.info("Saved the model to %s as %s (%d rounds)", path, shown, booster.num_boosted_rounds())


def _require_all(channels: Mapping[str, data.ChannelData]) -> None:
    data.require_data(channels[data.TRAIN])
    if data.VALIDATION in channels:
        data.require_data(channels[data.VALIDATION])


def train_job(env: TrainingEnvironment) -> None:
    """The container's ``train`` command: script mode when a user entry point is set, else algorithm mode."""
    if is_script_mode(env):
        run_user_entry_point(env)  # the user's script, with the SM_* environment (docs/algorithms/xgboost.md#modes)
        return
    values = spec.validate(env.hyperparameters)
    channels = data.discover(env.channels)
    try:
        if values.get("_kfold"):
            from containers.xgboost.kfold import run_kfold  # imports scikit-learn, only needed here

            _require_all(channels)
            run_kfold(env, values, channels)
        elif len(env.resource.hosts) > 1:
            from containers.xgboost.distributed import run_distributed

            run_distributed(env, values, channels)
        else:
            _require_all(channels)
            run_single(env, values, channels)
    except TrainingTerminated:
        saved = (env.paths.model_dir / MODEL_NAME).is_file()  # only the saving host (rank 0) has one
        if values.get("save_model_on_termination") != "true" or not saved:
            raise
        clean_model_dir(env.paths.model_dir)
        logger.warning("Stopped by SIGTERM: kept the model of the last finished round (save_model_on_termination)")
