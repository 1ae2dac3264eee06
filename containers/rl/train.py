"""The container's ``train``: a DeepRacer training job (or script mode for RLEstimator) under the /opt/ml contract.

Inputs, as DeepRacer-for-Cloud lays them out in its custom files, may sit in any input channel (searched in channel
order, first match wins): ``model_metadata.json``, ``reward_function.py``, ``hyperparameters.json`` and optionally a
route ``*.npy``. The job's own hyperparameters override the file's. A ``checkpoint`` channel holding ``model.zip``
starts training from that policy. The policy, metadata and ``deepracer_checkpoints.json`` go to ``/opt/ml/model``;
metrics, sim-traces and graphs to ``/opt/ml/output/data``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from containers.rl.actions import default_action_space, load_model_metadata
from containers.rl.hyperparams import load_hyperparameters_file
from containers.rl.reward import DEFAULT_REWARD_FILE, RewardFunction
from containers.rl.tracks import load_track
from containers.toolkit.environment import TrainingEnvironment
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


def find_input(env: TrainingEnvironment, pattern: str) -> Path | None:
    roots = [channel.path for channel in env.channels.values()]
    if env.paths.data_dir.is_dir():
        roots += sorted(p for p in env.paths.data_dir.iterdir() if p.is_dir() and p not in roots)
    for root in roots:
        matches = sorted(root.rglob(pattern)) if root.is_dir() else []
        if matches:
            return matches[0]
    return None


def train(env: TrainingEnvironment) -> None:
    from containers.rl.run import run
    from containers.rl.training import RunConfig
    from containers.toolkit.script_mode import is_script_mode, run_user_entry_point

    if is_script_mode(env):  # RLEstimator: the user's entry point trains its own Gymnasium env
        run_user_entry_point(env)
        return
    hp_file = find_input(env, "hyperparameters.json")
    hp = load_hyperparameters_file(hp_file, dict(env.hyperparameters))
    metadata = find_input(env, "model_metadata.json")
    actions = load_model_metadata(metadata) if metadata else default_action_space()
    reward = find_input(env, "reward_function.py") or DEFAULT_REWARD_FILE
    RewardFunction(reward)
    route = find_input(env, "*.npy")
    track = load_track(route) if route and route.name != "track.npy" else load_track(hp.world_name)
    logger.info("track %s (%.2f m)", track.name, track.length)
    checkpoint_dir = env.paths.channel_dir("checkpoint")
    pretrained = checkpoint_dir / "model.zip" if (checkpoint_dir / "model.zip").exists() else None
    logger.info("inputs: reward=%s model_metadata=%s hyperparameters=%s", reward, metadata, hp_file)
    cfg = RunConfig(track, actions, reward, hp, env.paths.model_dir, env.paths.output_data_dir, pretrained)
    run(cfg)
