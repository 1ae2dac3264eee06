"""The container's ``train``: a DeepRacer training job (or script mode for RLEstimator) under the /opt/ml contract.

Inputs, as DeepRacer-for-Cloud lays them out in its custom files, may sit in any input channel (searched in channel
order, first match wins): ``model_metadata.json``, ``reward_function.py``, ``hyperparameters.json`` and optionally a
route ``*.npy``. The job's own hyperparameters override the file's. A ``checkpoint`` channel holding ``model.zip``
(a model directory or a job's ``model.tar.gz``) starts training from that policy, or, with ``evaluate_only=true``,
is evaluated without training. The policy, metadata and ``deepracer_checkpoints.json`` go to ``/opt/ml/model``;
metrics, sim-traces and graphs to ``/opt/ml/output/data``.
"""

from __future__ import annotations

import dataclasses
import logging
import tarfile
from pathlib import Path

from containers.rl.configuration.hyperparams import load_hyperparameters_file, parse_hyperparameters
from containers.rl.simulation.actions import default_action_space, load_model_metadata
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE, RewardFunction
from containers.rl.simulation.tracks import load_track
from containers.toolkit.environment import TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.metrics import Direction, MetricSpec

logger = logging.getLogger(__name__)

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
METRICS = (
    MetricSpec("eval_completion", rf"eval_completion={_NUMBER}", Direction.MAXIMIZE),
    MetricSpec("eval_reward", rf"eval_reward={_NUMBER}", Direction.MAXIMIZE),
    MetricSpec("train_reward", rf"train_reward={_NUMBER}", Direction.MAXIMIZE),
    MetricSpec("train_completion", rf"train_completion={_NUMBER}", Direction.MAXIMIZE),
    MetricSpec("eval_laps_completed", rf"eval_laps_completed={_NUMBER}", Direction.MAXIMIZE),
)


CHECKPOINT_CHANNEL = "checkpoint"


def find_input(env: TrainingEnvironment, pattern: str) -> Path | None:
    """The first file matching ``pattern`` in the input channels (the ``checkpoint`` channel excluded)."""
    checkpoint = env.paths.channel_dir(CHECKPOINT_CHANNEL)
    roots = [channel.path for channel in env.channels.values() if channel.path != checkpoint]
    if env.paths.data_dir.is_dir():
        roots += sorted(p for p in env.paths.data_dir.iterdir() if p.is_dir() and p not in roots and p != checkpoint)
    for root in roots:
        matches = sorted(root.rglob(pattern)) if root.is_dir() else []
        if matches:
            return matches[0]
    return None


def find_checkpoint(env: TrainingEnvironment) -> Path | None:
    """``model.zip`` in the ``checkpoint`` channel: a model directory, or a job's ``model.tar.gz`` (extracted)."""
    channel = env.paths.channel_dir(CHECKPOINT_CHANNEL)
    if not channel.is_dir():
        return None
    policies = sorted(channel.rglob("model.zip"))
    if policies:
        return policies[0]
    for archive in sorted(channel.rglob("*.tar.gz")):
        target = env.paths.intermediate_dir / "checkpoint" / archive.name.removesuffix(".tar.gz")
        target.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise UserError(f"could not extract the checkpoint {archive.name}: {exc}") from exc
        policies = sorted(target.rglob("model.zip"))
        if policies:
            return policies[0]
    raise UserError(f"the {CHECKPOINT_CHANNEL} channel holds no model.zip (nor a model.tar.gz with one)")


def train(env: TrainingEnvironment) -> None:
    from containers.toolkit.framework.script_mode import is_script_mode, run_user_entry_point

    if is_script_mode(env):  # RLEstimator: the user's entry point trains its own Gymnasium env (torch not loaded here)
        run_user_entry_point(env)
        return
    pretrained = find_checkpoint(env)
    if parse_hyperparameters({"evaluate_only": env.hyperparameters.get("evaluate_only", "false")}).evaluate_only:
        evaluate_checkpoint(env, pretrained)
        return
    hp_file = find_input(env, "hyperparameters.json")
    hp = load_hyperparameters_file(hp_file, dict(env.hyperparameters))
    metadata = find_input(env, "model_metadata.json")
    if metadata is None and pretrained is not None and (pretrained.parent / "model_metadata.json").exists():
        metadata = pretrained.parent / "model_metadata.json"  # the checkpoint's action space fits its policy
    actions = load_model_metadata(metadata) if metadata else default_action_space()
    reward = find_input(env, "reward_function.py") or DEFAULT_REWARD_FILE
    RewardFunction(reward)
    route = find_input(env, "*.npy")
    track = load_track(route) if route and route.name != "track.npy" else load_track(hp.world_name)
    logger.info("track %s (%.2f m)", track.name, track.length)
    logger.info("inputs: reward=%s model_metadata=%s hyperparameters=%s", reward, metadata, hp_file)
    # torch and the learning stack load only now: a bad input above fails the job in a second, not after their import
    from containers.rl.configuration.run_config import RunConfig
    from containers.rl.learning.training_run import run

    cfg = RunConfig(track, actions, reward, hp, env.paths.model_dir, env.paths.output_data_dir, pretrained)
    run(cfg)


def evaluate_checkpoint(env: TrainingEnvironment, policy: Path | None) -> None:
    """``evaluate_only=true``: race the checkpoint's policy with its own action space, track and reward function.

    The job's hyperparameters override the checkpoint's (``eval_laps``, ``world_name`` for another track); a route
    ``*.npy`` or ``reward_function.py`` in another input channel replaces the checkpoint's.
    """
    if policy is None:
        raise UserError(f"evaluate_only=true needs a {CHECKPOINT_CHANNEL} channel holding a trained model")
    from containers.rl.configuration.run_config import load_run_config
    from containers.rl.evaluation.lap_evaluation import run_evaluation

    base = load_run_config(policy.parent, env.paths.output_data_dir)
    hp = parse_hyperparameters({**base.hp.to_json(), **env.hyperparameters})
    route = find_input(env, "*.npy")
    if "world_name" in env.hyperparameters:
        track = load_track(hp.world_name)
    else:
        track = load_track(route) if route else base.track
    reward = find_input(env, "reward_function.py") or base.reward_path
    RewardFunction(reward)
    cfg = dataclasses.replace(base, track=track, reward_path=reward, hp=hp, model_dir=env.paths.model_dir)
    run_evaluation(cfg, policy)
