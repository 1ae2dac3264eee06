"""stable-baselines3's PPO and SAC, extended through their public API to learn in DeepRacer's rhythm.

SB3's ``learn()`` counts steps; a DeepRacer iteration counts episodes: play N whole episodes with the current policy,
then update the policy once. ``EpisodicPPO`` and ``EpisodicSAC`` subclass the algorithms and add one public method,
``learn_iteration()``, which does one such iteration and returns the environment steps it took. Neither reads nor
writes a private attribute of SB3 (docs/deepracer.md#how-the-trainer-extends-stable-baselines3):

* ``EpisodicPPO`` plays the episodes itself (the policy's public ``forward``, ``predict_values`` and
  ``evaluate_actions``) and keeps its own place in the episodes between iterations (``rollout_obs``,
  ``rollout_episode_starts``). It builds a ``RolloutBuffer`` of exactly the collected length with the buffer's public
  constructor, computes the GAE advantages with bootstrap values, sets it as ``rollout_buffer`` and runs PPO's own
  ``train()``. The simapp's e-greedy exploration replaces sampled actions on discrete action spaces.
* ``EpisodicSAC`` is SAC with ``train_freq=(N, "episode")`` and ``gradient_steps=-1``: one round of SAC's own
  ``learn()`` collects N episodes into the replay buffer and then takes as many gradient steps as it took env steps.
  Its ``train()`` skips the update while the replay buffer holds fewer transitions than one batch.

Use ``learn_iteration()``, not ``learn()``, on ``EpisodicPPO``: ``learn()`` would collect PPO's fixed ``n_steps``.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs

from containers.rl.configuration.agent_metadata import camera_observation
from containers.rl.configuration.run_config import RunConfig
from containers.rl.learning.camera_networks import camera_policy_kwargs

logger = logging.getLogger(__name__)

PPO_N_STEPS = 64
"""PPO's own ``n_steps`` only sizes the buffer SB3 builds at construction; every iteration replaces that buffer."""


@dataclass
class EGreedy:
    """The simapp's e-greedy exploration for discrete PPO: ε falls linearly from 1.0 to ``final`` over ``steps``."""

    final: float
    steps: int

    def epsilon(self, timesteps: int) -> float:
        fraction = min(1.0, timesteps / max(1, self.steps))
        return 1.0 + fraction * (self.final - 1.0)


@dataclass
class _Transition:
    """One vector-env step, kept until the iteration's length (and so the rollout buffer's) is known."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_starts: np.ndarray
    values: torch.Tensor
    log_probs: torch.Tensor


def _as_array(obs: VecEnvObs) -> np.ndarray:
    if not isinstance(obs, np.ndarray):
        raise TypeError(f"DeepRacer observations are arrays, got {type(obs).__name__}")
    return obs


class EpisodicPPO(PPO):
    """PPO whose iteration is ``n_episodes`` whole episodes (at most ``max_steps_per_iteration`` env steps).

    ``batch_size`` is the largest minibatch; for short iterations the simapp's rule lowers it to the largest power of
    two below the step count.
    """

    EPISODIC_ATTRIBUTES = ("n_episodes", "max_steps_per_iteration", "egreedy", "max_batch_size", "rollout_obs",
                           "rollout_episode_starts")  # fmt: skip
    """Added by this class; left out of the saved model, which stays a plain PPO file (``PPO.load`` reads it)."""

    def __init__(
        self,
        policy: str,
        env: VecEnv,
        *,
        n_episodes: int,
        max_steps_per_iteration: int,
        batch_size: int,
        egreedy: EGreedy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, env, n_steps=PPO_N_STEPS, batch_size=batch_size, **kwargs)
        self.n_episodes = n_episodes
        self.max_steps_per_iteration = max_steps_per_iteration
        self.egreedy = egreedy
        self.max_batch_size = batch_size
        self.rollout_obs: np.ndarray | None = None
        self.rollout_episode_starts: np.ndarray | None = None

    def learn_iteration(self) -> int:
        """Collect at least ``n_episodes`` finished episodes, then run PPO's update once; returns env steps taken."""
        steps = self.collect_episodes()
        # the simapp lowers the batch to the largest power of two below the step count for short iterations
        self.batch_size = (
            self.max_batch_size if steps > self.max_batch_size else max(1, 2 ** int(math.log2(steps - 1 or 1)))
        )
        self.train()
        return steps

    def collect_episodes(self) -> int:
        """Fill a new ``rollout_buffer`` until ``n_episodes`` episodes finished or the step cap; returns env steps.

        Unfinished episodes carry over: the next iteration continues from ``rollout_obs``.
        """
        env = self.env
        if env is None:
            raise TypeError("EpisodicPPO has no environment")
        if self.rollout_obs is None or self.rollout_episode_starts is None:
            self.rollout_obs = _as_array(env.reset())
            self.rollout_episode_starts = np.ones((env.num_envs,), dtype=bool)
        capacity = max(1, math.ceil(self.max_steps_per_iteration / env.num_envs))
        self.policy.set_training_mode(False)
        obs, starts = self.rollout_obs, self.rollout_episode_starts
        dones = np.zeros(env.num_envs, dtype=bool)
        transitions: list[_Transition] = []
        finished = 0
        while finished < self.n_episodes and len(transitions) < capacity:
            with torch.no_grad():
                obs_tensor = obs_as_tensor(obs, self.device)
                actions, values, log_probs = self.policy(obs_tensor)
                if self.egreedy is not None and isinstance(obs_tensor, torch.Tensor):
                    actions, log_probs = self._explore(obs_tensor, actions, log_probs, self.egreedy)
            actions_np = actions.cpu().numpy()
            env_actions = actions_np
            if isinstance(self.action_space, spaces.Box):
                env_actions = np.clip(actions_np, self.action_space.low, self.action_space.high)
            new_obs, rewards, dones, infos = env.step(env_actions)
            self.num_timesteps += env.num_envs
            self._bootstrap_truncated(rewards, dones, infos)
            if isinstance(self.action_space, spaces.Discrete):
                actions_np = actions_np.reshape(-1, 1)
            transitions.append(_Transition(obs, actions_np, rewards, starts, values, log_probs))
            obs, starts = _as_array(new_obs), dones
            finished += int(dones.sum())
        with torch.no_grad():
            last_values = self.policy.predict_values(obs_as_tensor(obs, self.device))
        self.rollout_buffer = self._filled_buffer(transitions)
        self.rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        self.rollout_obs, self.rollout_episode_starts = obs, starts
        return len(transitions) * env.num_envs

    def save(
        self, path: str | Path | io.BufferedIOBase, exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:  # fmt: skip
        super().save(path, exclude=[*(exclude or ()), *self.EPISODIC_ATTRIBUTES], include=include)

    def _filled_buffer(self, transitions: list[_Transition]) -> RolloutBuffer:
        """A rollout buffer exactly as long as the iteration, built like PPO builds its own."""
        buffer_class = self.rollout_buffer_class or RolloutBuffer
        buffer = buffer_class(
            len(transitions),
            self.observation_space,
            self.action_space,
            device=self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
            **self.rollout_buffer_kwargs,
        )
        for t in transitions:
            buffer.add(t.obs, t.actions, t.rewards, t.episode_starts, t.values, t.log_probs)
        return buffer

    def _explore(
        self, obs: torch.Tensor, actions: torch.Tensor, log_probs: torch.Tensor, egreedy: EGreedy
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """With probability ε, a uniformly random action instead of the sampled one (discrete action spaces)."""
        space = self.action_space
        if not isinstance(space, spaces.Discrete):
            return actions, log_probs
        mask = torch.rand(actions.shape[0]) < egreedy.epsilon(self.num_timesteps)
        if not bool(mask.any()):
            return actions, log_probs
        actions = actions.clone()
        actions[mask] = torch.randint(0, int(space.n), (int(mask.sum()),), dtype=actions.dtype)
        _, log_probs, _ = self.policy.evaluate_actions(obs, actions)
        return actions, log_probs

    def _bootstrap_truncated(self, rewards: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Step-cap truncation is not failure: add γ·V(terminal obs), as SB3's own collector does."""
        for idx, done in enumerate(dones):
            info = infos[idx]
            if done and info.get("TimeLimit.truncated", False) and info.get("terminal_observation") is not None:
                terminal = self.policy.obs_to_tensor(info["terminal_observation"])[0]
                with torch.no_grad():
                    value = self.policy.predict_values(terminal)[0]
                rewards[idx] += self.gamma * float(value.item())


class EpisodicSAC(SAC):
    """SAC whose iteration is ``n_episodes`` whole episodes on one env, then one gradient step per env step.

    The target network is copied every ``target_update_interval`` gradient steps (``tau`` 1.0, as the simapp does).
    """

    def __init__(self, policy: str, env: VecEnv, *, n_episodes: int, **kwargs: Any) -> None:
        super().__init__(
            policy, env, train_freq=(n_episodes, "episode"), gradient_steps=-1, learning_starts=0, **kwargs
        )

    def learn_iteration(self) -> int:
        """One round of SAC's own loop: N episodes into the replay buffer, then the update; returns env steps."""
        before = self.num_timesteps
        # with reset_num_timesteps=False, SB3 runs until num_timesteps + 1: exactly one collection and one update
        self.learn(total_timesteps=1, reset_num_timesteps=False)
        return self.num_timesteps - before

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SAC's update, skipped while the replay buffer holds less than one batch."""
        if self.replay_buffer is not None and self.replay_buffer.size() >= batch_size:
            super().train(gradient_steps=gradient_steps, batch_size=batch_size)


EpisodicAlgorithm = EpisodicPPO | EpisodicSAC

SAC_REPLAY_TRANSITIONS = 1_000_000  # Coach's ExperienceReplay size, the simapp's SAC memory
REPLAY_BUFFER_BYTES = 2 << 30  # SB3 allocates the whole buffer at start: camera frames are capped to 2 GiB


def replay_buffer_size(env: VecEnv) -> int:
    """SAC's replay size: the simapp's 1 M transitions, or as many as fit 2 GiB of observations (each transition
    stores the observation and the next one; 1 M camera frames would be 38 GB, stereo 77 GB)."""
    shape = env.observation_space.shape or (1,)
    per_transition = 2 * int(np.prod(shape)) * np.dtype(env.observation_space.dtype or np.float32).itemsize
    return int(min(SAC_REPLAY_TRANSITIONS, max(1_000, REPLAY_BUFFER_BYTES // per_transition)))


def build_algorithm(cfg: RunConfig, env: VecEnv) -> EpisodicAlgorithm:
    """The run's algorithm with DeepRacer's hyperparameters, from ``cfg.pretrained``'s weights if given."""
    hp = cfg.hp
    policy = "CnnPolicy" if hp.observation_type == "camera" else "MlpPolicy"
    kwargs: dict[str, Any] = {"learning_rate": hp.lr, "gamma": hp.discount_factor, "seed": hp.seed, "device": "cpu"}
    if hp.observation_type == "vector":
        kwargs["policy_kwargs"] = {"net_arch": hp.layers}
    else:
        stereo = camera_observation(cfg.actions, hp) == "stereo"
        camera_kwargs = camera_policy_kwargs(cfg.actions.neural_network, stereo, cfg.actions.training_algorithm)
        if camera_kwargs is not None:
            kwargs["policy_kwargs"] = camera_kwargs
    model: EpisodicAlgorithm
    if cfg.actions.training_algorithm == "sac":
        model = EpisodicSAC(
            policy, env, n_episodes=hp.num_episodes_between_training, batch_size=hp.batch_size, ent_coef=hp.sac_alpha,
            tau=1.0, target_update_interval=hp.num_episodes_between_training,
            buffer_size=replay_buffer_size(env), **kwargs,
        )  # fmt: skip
    else:
        if hp.loss_type.lower() == "huber":
            logger.warning("loss_type huber is trained with SB3's mean squared error value loss (see docs)")
        egreedy = hp.exploration_type.lower() == "e-greedy" and cfg.actions.is_discrete
        model = EpisodicPPO(
            policy, env, n_episodes=hp.num_episodes_between_training,
            max_steps_per_iteration=hp.max_steps_per_iteration, batch_size=hp.batch_size,
            egreedy=EGreedy(hp.e_greedy_value, hp.epsilon_steps) if egreedy else None,
            n_epochs=hp.num_epochs, ent_coef=hp.beta_entropy, clip_range=0.2, gae_lambda=0.95, **kwargs,
        )  # fmt: skip
    if cfg.pretrained is not None:
        model.set_parameters(str(cfg.pretrained), device="cpu")
        logger.info("starting from checkpoint %s", cfg.pretrained)
    model.set_logger(Logger(folder=None, output_formats=[]))  # DeepRacer logs its own iteration line
    return model
