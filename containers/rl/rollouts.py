"""Experience collection in DeepRacer's rhythm: N whole episodes, then one policy update.

SB3's ``learn()`` collects a fixed number of steps; DeepRacer iterations are episode-counted. ``collect_ppo_episodes``
fills PPO's rollout buffer from the vector env until N episodes have finished (or the per-iteration step cap,
``MAX_MEMORY_STEPS``, is hit), trims the buffer to what was collected and computes GAE advantages with bootstrap
values, so ``PPO.train()`` runs unchanged. ``run_episodes`` plays whole episodes on plain envs (evaluation).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from containers.rl.env import DeepRacerEnv

logger = logging.getLogger(__name__)

_BUFFER_ARRAYS = (
    "observations",
    "actions",
    "rewards",
    "returns",
    "episode_starts",
    "values",
    "log_probs",
    "advantages",
)


@dataclass
class EGreedy:
    """The simapp's e-greedy exploration for discrete PPO: ε falls linearly from 1.0 to ``final`` over ``steps``."""

    final: float
    steps: int

    def epsilon(self, timesteps: int) -> float:
        fraction = min(1.0, timesteps / max(1, self.steps))
        return 1.0 + fraction * (self.final - 1.0)


def collect_ppo_episodes(
    model: PPO, env: VecEnv, n_episodes: int, max_steps: int, egreedy: EGreedy | None = None
) -> int:
    """Collect at least ``n_episodes`` finished episodes into ``model.rollout_buffer``; returns env steps taken."""
    capacity = max(1, math.ceil(max_steps / env.num_envs))
    buffer = model.rollout_buffer
    if not isinstance(buffer, RolloutBuffer) or buffer.n_envs != env.num_envs:
        raise TypeError("PPO rollout buffer does not match the vector env")
    buffer.buffer_size = capacity
    buffer.reset()
    model.policy.set_training_mode(False)
    obs, starts = model._last_obs, model._last_episode_starts
    dones = np.zeros(env.num_envs, dtype=bool)
    finished, n = 0, 0
    while finished < n_episodes and n < capacity:
        with torch.no_grad():
            obs_tensor = obs_as_tensor(obs, model.device)  # type: ignore[arg-type]
            actions, values, log_probs = model.policy(obs_tensor)
            if egreedy is not None and isinstance(obs_tensor, torch.Tensor):
                actions, log_probs = _explore(model, obs_tensor, actions, log_probs, egreedy)
        actions_np = actions.cpu().numpy()
        env_actions = actions_np
        if isinstance(model.action_space, spaces.Box):
            env_actions = np.clip(actions_np, model.action_space.low, model.action_space.high)
        new_obs, rewards, dones, infos = env.step(env_actions)
        model.num_timesteps += env.num_envs
        _bootstrap_truncated(model, rewards, dones, infos)
        if isinstance(model.action_space, spaces.Discrete):
            actions_np = actions_np.reshape(-1, 1)
        buffer.add(obs, actions_np, rewards, starts, values, log_probs)  # type: ignore[arg-type]
        obs, starts = new_obs, dones  # type: ignore[assignment]
        finished += int(dones.sum())
        n += 1
    with torch.no_grad():
        last_values = model.policy.predict_values(obs_as_tensor(obs, model.device))  # type: ignore[arg-type]
    _trim(buffer, n)
    buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
    model._last_obs, model._last_episode_starts = obs, starts
    return n * env.num_envs


def _explore(
    model: PPO, obs: torch.Tensor, actions: torch.Tensor, log_probs: torch.Tensor, egreedy: EGreedy
) -> tuple[torch.Tensor, torch.Tensor]:
    space = model.action_space
    if not isinstance(space, spaces.Discrete):
        return actions, log_probs
    mask = torch.rand(actions.shape[0]) < egreedy.epsilon(model.num_timesteps)
    if not bool(mask.any()):
        return actions, log_probs
    actions = actions.clone()
    actions[mask] = torch.randint(0, int(space.n), (int(mask.sum()),), dtype=actions.dtype)
    _, log_probs, _ = model.policy.evaluate_actions(obs, actions)
    return actions, log_probs


def _bootstrap_truncated(model: PPO, rewards: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
    """Step-cap truncation is not failure: add γ·V(terminal obs), as SB3's own collector does."""
    for idx, done in enumerate(dones):
        info = infos[idx]
        if done and info.get("TimeLimit.truncated", False) and info.get("terminal_observation") is not None:
            terminal = model.policy.obs_to_tensor(info["terminal_observation"])[0]
            with torch.no_grad():
                value = model.policy.predict_values(terminal)[0]
            rewards[idx] += model.gamma * float(value.item())


def _trim(buffer: RolloutBuffer, n: int) -> None:
    for name in _BUFFER_ARRAYS:
        setattr(buffer, name, getattr(buffer, name)[:n])
    buffer.buffer_size = n
    buffer.pos = n
    buffer.full = True


class _Null(BaseCallback):
    def _on_step(self) -> bool:
        return True


def collect_sac_episodes(model: SAC, env: VecEnv, n_episodes: int) -> int:
    """SAC: N episodes into the replay buffer (one env, as SB3 requires for episodic collection)."""
    callback = _Null()
    callback.init_callback(model)
    before = model.num_timesteps
    model.collect_rollouts(
        env,
        callback=callback,
        train_freq=TrainFreq(n_episodes, TrainFrequencyUnit.EPISODE),
        replay_buffer=model.replay_buffer,  # type: ignore[arg-type]
        learning_starts=0,
    )
    return model.num_timesteps - before


def run_episodes(
    model: BaseAlgorithm, envs: list[DeepRacerEnv], starts: list[float | None], deterministic: bool = True
) -> list[tuple[dict[str, Any], list[list[Any]]]]:
    """One episode on each env (in lock-step, batched inference); returns (record, trace rows) per env."""
    observations: list[Any] = []
    for env, start in zip(envs, starts, strict=True):
        env.set_fixed_start(start)
        env.drain_records()
        observations.append(env.reset()[0])
    active = list(range(len(envs)))
    while active:
        batch = np.stack([observations[i] for i in active])
        actions, _ = model.predict(batch, deterministic=deterministic)
        still = []
        for i, action in zip(active, actions, strict=True):
            obs, _, terminated, truncated, _ = envs[i].step(action)
            observations[i] = obs
            if not (terminated or truncated):
                still.append(i)
        active = still
    results = []
    for env in envs:
        records, trace = env.drain_records()
        env.set_fixed_start(None)
        results.append((records[0], trace))
    return results
