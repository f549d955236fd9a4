"""PaperDQN: the three-body paper's DQN, in one file, with its training bugs fixed.

What the paper did
------------------
Saz Ulibarrena & Portegies Zwart (arXiv:2502.12809, code ``veronicasaz/ThreeBodyProblem_astronomy``,
``TrainRL.py``) train a hand-written DQN modelled on the PyTorch DQN tutorial:

* Q-network: ``Linear(obs -> 200)``, ReLU; then ONE ``Linear(200 -> 200)`` + ReLU layer applied
  ``hidden_layers`` times **with shared weights** (5 in the top-level settings, 9 for model 1444);
  ``Linear(200 -> n_actions)``.  About 45k parameters for 13 inputs and 10 actions, whatever the
  number of applications.
* AdamW (``amsgrad=True``), Huber loss, gradient *value* clipping at 100, a replay buffer of 10 000
  transitions, gamma = 0.99, a soft target update with tau = 0.005 after every gradient step, and
  epsilon-greedy exploration ``eps = 0.05 + (0.9 - 0.05) * exp(-steps / eps_decay)``.

What is fixed here, and why
---------------------------
1. **Epsilon now decays.**  The paper's ``steps_done`` counter was reset at the start of every
   episode, so with 100-step episodes epsilon never fell below ~0.82 (decay 1000) or ~0.89
   (decay 10 000): the agent trained on an almost random behaviour policy.  Here the counter is the
   *global* number of environment steps (``num_timesteps``, summed over the vectorised envs) and
   the default decay constant is ``0.1 * total_timesteps``, so epsilon is ~0.09 at 30 % of training
   and reaches ``eps_end`` well before the end.  ``eps_decay`` overrides it (in global env steps).
2. **Fresh initial conditions every episode.**  The paper drew each episode's seed from numpy's
   *global* RNG right after a test pass had re-seeded it, so every episode after the first replayed
   the same initial condition (seed 818).  Here the agent never seeds or reseeds an environment
   per episode: the ``VecEnv`` resets itself with its own per-env generator (``env.np_random``),
   which is seeded once (``env.seed(seed)``) when the agent is given a seed.  The agent's own
   randomness (exploration, replay sampling, network initialisation) comes from a
   ``numpy.random.Generator`` and a ``torch.Generator`` that it owns -- no global RNG is touched.
3. **Every transition is stored**, the first one of each episode included (the paper skipped it).
4. **Truncation is not termination.**  A time-limit truncation (``TimeLimit.truncated`` in the
   step info) still bootstraps from the real last observation (``terminal_observation``), because
   the state after a time limit is not terminal; only a true termination (e.g. the energy error
   exceeding its bound) cuts the bootstrap.

Environment contract
--------------------
Training runs on a Stable-Baselines3 :class:`~stable_baselines3.common.vec_env.VecEnv` (a plain
``gymnasium.Env`` is wrapped in ``DummyVecEnv(Monitor(env))``): same-step autoreset,
``dones = terminated | truncated``, ``infos[i]["terminal_observation"]`` holds the real next
observation of a finished episode and ``infos[i]["TimeLimit.truncated"]`` marks truncations.
Observations must be a ``Box`` (flattened to a vector); actions must be ``Discrete``.

The public API mirrors SB3 (``learn``, ``predict``, ``save``, ``load``, ``num_timesteps``,
``policy``, ``device``, ``get_env``, ``set_env``, ``logger``), so scripts and SB3 callbacks
(``CheckpointCallback``, ``EvalCallback``, ``CallbackList``, a callable) can treat it like an SB3
model.  Differences from SB3: ``learning_rate`` is a constant (no schedule); the replay buffer is
not saved with the model; ``save`` writes a ``torch.save`` archive (a zip file, hence the ``.zip``
suffix appended to a suffix-less path, as in SB3).

TensorBoard (``tensorboard_log`` given): ``rollout/episode_return``, ``rollout/episode_length``
(from ``infos[i]["episode"]``, i.e. when the env is wrapped in ``VecMonitor``/``Monitor``),
``rollout/ep_rew_mean`` (last 100 episodes), ``rollout/exploration_rate``, ``train/loss`` and
``train/q_values``, in ``<tensorboard_log>/<tb_log_name>_<n>``.

Example
-------
>>> from stable_baselines3.common.env_util import make_vec_env
>>> from simrl.agents.paper_dqn import PaperDQN
>>> env = make_vec_env("CartPole-v1", n_envs=4, seed=0)      # DummyVecEnv of Monitor-wrapped envs
>>> model = PaperDQN(env, learning_rate=5e-4, seed=0).learn(total_timesteps=2_000)
>>> action, _ = model.predict(env.reset()[0])                 # single observation -> 0-d array
>>> model.save("/tmp/paper_dqn_cartpole")                     # writes /tmp/paper_dqn_cartpole.zip
>>> model = PaperDQN.load("/tmp/paper_dqn_cartpole", env=env)
"""

from __future__ import annotations

import copy
import math
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger, TensorBoardOutputFormat
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import get_latest_run_id
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, unwrap_vec_normalize
from torch import nn

__all__ = [
    "EPS_DECAY_FRACTION",
    "PaperDQN",
    "PaperQNetwork",
    "ReplayBuffer",
    "epsilon_at",
    "real_next_observations",
    "td_targets",
    "terminations",
]

#: Default epsilon decay constant, as a fraction of the total training steps of a ``learn`` call.
EPS_DECAY_FRACTION = 0.1

_SAVE_FORMAT = "simrl.agents.paper_dqn.PaperDQN"
_SAVE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# 1. The paper's Q-network: one hidden layer, applied several times with shared weights.
# ---------------------------------------------------------------------------------------------
class PaperQNetwork(nn.Module):
    """``Linear(obs->W)``, ReLU, ``hidden_applications`` x [shared ``Linear(W->W)``, ReLU], ``Linear(W->A)``.

    The hidden layer is a single module reused ``hidden_applications`` times, so the parameter
    count does not depend on ``hidden_applications`` (45 010 for 13 inputs, 10 actions, W = 200).
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden_width: int = 200,
        hidden_applications: int = 5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or n_actions < 1 or hidden_width < 1:
            raise ValueError(
                f"obs_dim, n_actions and hidden_width must be >= 1, got {obs_dim}, {n_actions}, {hidden_width}"
            )
        if hidden_applications < 0:
            raise ValueError(f"hidden_applications must be >= 0, got {hidden_applications}")
        self.hidden_applications = int(hidden_applications)
        # skip_init: no draw from torch's global RNG; reset_parameters() initialises from `generator`.
        self.input_layer = nn.utils.skip_init(nn.Linear, obs_dim, hidden_width)
        self.hidden_layer = nn.utils.skip_init(nn.Linear, hidden_width, hidden_width)  # shared, applied N times
        self.output_layer = nn.utils.skip_init(nn.Linear, hidden_width, n_actions)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator`` (not the global RNG)."""
        for layer in (self.input_layer, self.hidden_layer, self.output_layer):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.input_layer(obs))
        for _ in range(self.hidden_applications):
            x = F.relu(self.hidden_layer(x))
        return self.output_layer(x)


# ---------------------------------------------------------------------------------------------
# 2. Small pure functions: exploration schedule, VecEnv bookkeeping, TD target.
# ---------------------------------------------------------------------------------------------
def epsilon_at(global_step: float, eps_start: float, eps_end: float, eps_decay: float) -> float:
    """``eps_end + (eps_start - eps_end) * exp(-global_step / eps_decay)``.

    ``global_step`` counts environment steps over the *whole* training (the paper's counter was
    reset every episode, which froze epsilon near ``eps_start``).
    """
    return float(eps_end + (eps_start - eps_end) * math.exp(-float(global_step) / float(eps_decay)))


def terminations(dones: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
    """True where an episode really terminated; a time-limit truncation is *not* a termination.

    SB3 ``VecEnv`` reports ``dones = terminated | truncated`` and sets
    ``infos[i]["TimeLimit.truncated"] = truncated and not terminated``.
    """
    dones = np.asarray(dones, dtype=bool)
    truncated = np.array([bool(info.get("TimeLimit.truncated", False)) for info in infos], dtype=bool)
    return dones & ~truncated


def real_next_observations(new_obs: np.ndarray, dones: np.ndarray, infos: Sequence[dict[str, Any]]) -> np.ndarray:
    """The true ``s'`` of each transition: after an episode ends the ``VecEnv`` has already reset,
    so ``new_obs[i]`` is the next episode's first observation and the real one is
    ``infos[i]["terminal_observation"]``."""
    next_obs = np.array(new_obs, copy=True)
    for i in np.flatnonzero(np.asarray(dones, dtype=bool)):
        if "terminal_observation" not in infos[i]:
            raise ValueError(
                "env reported done without infos[i]['terminal_observation']: PaperDQN needs a "
                "Stable-Baselines3 VecEnv (same-step autoreset that stores the real last observation)"
            )
        next_obs[i] = infos[i]["terminal_observation"]
    return next_obs


def td_targets(
    rewards: torch.Tensor, next_q_max: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """One-step Q-learning target ``r + gamma * (1 - terminated) * max_a' Q_target(s', a')``.

    Only true terminations cut the bootstrap; truncated transitions are stored with
    ``terminated = False`` and therefore still bootstrap.
    """
    return rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * next_q_max


# ---------------------------------------------------------------------------------------------
# 3. Replay buffer: a numpy ring buffer of (s, a, r, s', terminated).
# ---------------------------------------------------------------------------------------------
class ReplayBuffer:
    """Fixed-capacity FIFO of transitions; sampling uses the caller's ``numpy.random.Generator``."""

    def __init__(self, capacity: int, obs_dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0  # next slot to write
        self.size = 0  # number of valid transitions

    def __len__(self) -> int:
        return self.size

    def add(self, obs, next_obs, actions, rewards, terminated) -> None:
        """Store a batch of transitions (one per vectorised env), overwriting the oldest ones."""
        n = len(actions)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = np.asarray(obs, dtype=np.float32).reshape(n, -1)
        self.next_obs[idx] = np.asarray(next_obs, dtype=np.float32).reshape(n, -1)
        self.actions[idx] = np.asarray(actions).reshape(n)
        self.rewards[idx] = np.asarray(rewards, dtype=np.float32).reshape(n)
        self.terminated[idx] = np.asarray(terminated, dtype=np.float32).reshape(n)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch_size`` distinct transitions, uniformly (as ``random.sample`` in the paper)."""
        idx = rng.choice(self.size, size=batch_size, replace=False)
        return {
            "obs": self.obs[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_obs": self.next_obs[idx],
            "terminated": self.terminated[idx],
        }


# ---------------------------------------------------------------------------------------------
# 4. The agent.
# ---------------------------------------------------------------------------------------------
def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Call ``write(binary_file)`` on a temporary file next to ``path``, then ``os.replace`` it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".paper_dqn_", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _check_spaces(observation_space: gym.Space, action_space: gym.Space) -> None:
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"PaperDQN accepts only gymnasium.spaces.Discrete action spaces, got {action_space!r}"
        )
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(
            f"PaperDQN accepts only gymnasium.spaces.Box observation spaces (flattened to a vector), "
            f"got {observation_space!r}"
        )


class PaperDQN:
    """The paper's DQN (see the module docstring) with an SB3-like API.

    :param env: a SB3 ``VecEnv`` (a ``gymnasium.Env`` is wrapped in ``DummyVecEnv(Monitor(env))``);
        ``None`` only when loading a model for prediction.
    :param learning_rate: AdamW (amsgrad) learning rate, a constant.
    :param buffer_size: replay buffer capacity (paper: 10 000).
    :param batch_size: minibatch size (paper: 128 for model 1444).
    :param gamma: discount factor.
    :param tau: soft target update coefficient, applied after every gradient step.
    :param hidden_width: width of the hidden layers.
    :param hidden_applications: how many times the shared hidden layer is applied.
    :param eps_start: initial epsilon.
    :param eps_end: final epsilon.
    :param eps_decay: decay constant in *global* env steps; ``None`` = ``EPS_DECAY_FRACTION``
        (0.1) x the total timesteps of the ``learn`` call.
    :param learning_starts: global env steps before gradient updates start; updates also wait
        until the buffer holds ``batch_size`` transitions (the paper's only condition).
    :param train_freq: do ``gradient_steps`` updates every ``train_freq`` calls to ``env.step``.
    :param gradient_steps: gradient updates per training round.
    :param seed: seeds the agent's numpy/torch generators and, once, the env (``env.seed(seed)``).
    :param device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
    :param tensorboard_log: folder for TensorBoard runs (``None``: no logging).
    :param verbose: 0 silent, 1 a progress line every ``log_interval`` episodes.
    """

    def __init__(
        self,
        env: VecEnv | gym.Env | None,
        learning_rate: float = 1e-3,
        buffer_size: int = 10_000,
        batch_size: int = 128,
        gamma: float = 0.99,
        tau: float = 0.005,
        hidden_width: int = 200,
        hidden_applications: int = 5,
        eps_start: float = 0.9,
        eps_end: float = 0.05,
        eps_decay: float | None = None,
        learning_starts: int = 0,
        train_freq: int = 1,
        gradient_steps: int = 1,
        seed: int | None = None,
        device: str | torch.device = "auto",
        tensorboard_log: str | None = None,
        verbose: int = 0,
        _spaces: tuple[gym.Space, gym.Space] | None = None,
    ) -> None:
        if eps_decay is not None and eps_decay <= 0:
            raise ValueError(f"eps_decay must be > 0 (global env steps) or None, got {eps_decay}")
        if not 0.0 <= eps_end <= eps_start <= 1.0:
            raise ValueError(f"need 0 <= eps_end <= eps_start <= 1, got {eps_end}, {eps_start}")
        if batch_size > buffer_size:
            raise ValueError(f"batch_size ({batch_size}) must not exceed buffer_size ({buffer_size})")
        if train_freq < 1 or gradient_steps < 0:
            raise ValueError(f"need train_freq >= 1 and gradient_steps >= 0, got {train_freq}, {gradient_steps}")
        self.learning_rate = float(learning_rate)
        self.buffer_size = int(buffer_size)
        self.batch_size = int(batch_size)
        self.gamma = float(gamma)
        self.tau = float(tau)
        self.hidden_width = int(hidden_width)
        self.hidden_applications = int(hidden_applications)
        self.eps_start = float(eps_start)
        self.eps_end = float(eps_end)
        self.eps_decay = None if eps_decay is None else float(eps_decay)
        self.learning_starts = int(learning_starts)
        self.train_freq = int(train_freq)
        self.gradient_steps = int(gradient_steps)
        self.seed = seed
        self.device = _resolve_device(device)
        self.tensorboard_log = tensorboard_log
        self.verbose = int(verbose)

        # Environment and spaces.
        self.env: VecEnv | None = None
        if env is not None:
            env = self._wrap_env(env)
            self.observation_space, self.action_space = env.observation_space, env.action_space
        elif _spaces is not None:
            self.observation_space, self.action_space = _spaces
        else:
            raise ValueError("PaperDQN needs an env (a SB3 VecEnv or a gymnasium.Env)")
        _check_spaces(self.observation_space, self.action_space)
        self.obs_shape = tuple(int(d) for d in self.observation_space.shape)
        self.obs_dim = int(np.prod(self.obs_shape))
        self.n_actions = int(self.action_space.n)

        # Randomness owned by the agent (never numpy's / torch's global RNG).
        self._rng = np.random.default_rng(seed)
        self._torch_generator = torch.Generator().manual_seed(int(self._rng.integers(2**63 - 1)))

        # Networks, optimiser, replay buffer.
        self.policy = PaperQNetwork(
            self.obs_dim, self.n_actions, hidden_width, hidden_applications, generator=self._torch_generator
        ).to(self.device)
        self.target_network = copy.deepcopy(self.policy).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=self.learning_rate, amsgrad=True)
        self.replay_buffer = ReplayBuffer(self.buffer_size, self.obs_dim)

        # Training state.
        self.num_timesteps = 0
        self.exploration_rate = self.eps_start
        self._n_updates = 0
        self._n_env_calls = 0
        self._last_obs: np.ndarray | None = None
        self._logger = Logger(folder=None, output_formats=[])
        if env is not None:
            self.set_env(env)
            if seed is not None:
                env.seed(seed)  # once, applied at the first reset; never reseeded per episode

    # -- environment ---------------------------------------------------------------------------
    @staticmethod
    def _wrap_env(env: VecEnv | gym.Env) -> VecEnv:
        if isinstance(env, VecEnv):
            return env
        if isinstance(env, gym.Env):
            return DummyVecEnv([lambda: Monitor(env)])
        raise ValueError(f"env must be a stable_baselines3 VecEnv or a gymnasium.Env, got {type(env).__name__}")

    def set_env(self, env: VecEnv | gym.Env) -> None:
        """Attach a (new) training env (not reseeded); its spaces must match the model's."""
        env = self._wrap_env(env)
        _check_spaces(env.observation_space, env.action_space)
        if tuple(env.observation_space.shape) != self.obs_shape or int(env.action_space.n) != self.n_actions:
            raise ValueError(
                f"env spaces {env.observation_space} / {env.action_space} do not match the model's "
                f"observation shape {self.obs_shape} / Discrete({self.n_actions})"
            )
        self.env = env
        self._last_obs = None

    def get_env(self) -> VecEnv | None:
        return self.env

    def get_vec_normalize_env(self):
        return None if self.env is None else unwrap_vec_normalize(self.env)

    @property
    def logger(self) -> Logger:
        """SB3 logger handed to callbacks (TensorBoard and/or stdout while ``learn`` runs)."""
        return self._logger

    # -- acting --------------------------------------------------------------------------------
    def _as_obs_batch(self, observation: np.ndarray) -> tuple[np.ndarray, bool]:
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape == self.obs_shape:
            return obs.reshape(1, self.obs_dim), False
        if obs.ndim == len(self.obs_shape) + 1 and obs.shape[1:] == self.obs_shape:
            return obs.reshape(obs.shape[0], self.obs_dim), True
        raise ValueError(f"observation of shape {obs.shape} does not match {self.obs_shape} or (n, *{self.obs_shape})")

    @torch.no_grad()
    def _greedy_actions(self, obs_batch: np.ndarray) -> np.ndarray:
        q_values = self.policy(torch.as_tensor(obs_batch, device=self.device))
        return q_values.argmax(dim=1).cpu().numpy()

    def _epsilon_greedy(self, obs_batch: np.ndarray, epsilon: float) -> np.ndarray:
        greedy = self._greedy_actions(obs_batch)
        n = len(greedy)
        explore = self._rng.random(n) < epsilon
        random_actions = self._rng.integers(self.n_actions, size=n)
        return np.where(explore, random_actions, greedy)

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """Actions for one observation (returns a 0-d array) or a batch (returns shape ``(n,)``).

        ``deterministic=False`` acts epsilon-greedily with the current ``exploration_rate``.
        ``state`` and ``episode_start`` are accepted for SB3 compatibility and ignored.
        """
        obs_batch, batched = self._as_obs_batch(observation)
        if deterministic:
            actions = self._greedy_actions(obs_batch)
        else:
            actions = self._epsilon_greedy(obs_batch, self.exploration_rate)
        return (actions if batched else actions[0].reshape(())), None

    # -- learning ------------------------------------------------------------------------------
    def _gradient_step(self) -> tuple[float, float]:
        batch = self.replay_buffer.sample(self.batch_size, self._rng)
        obs = torch.as_tensor(batch["obs"], device=self.device)
        actions = torch.as_tensor(batch["actions"], device=self.device)
        rewards = torch.as_tensor(batch["rewards"], device=self.device)
        next_obs = torch.as_tensor(batch["next_obs"], device=self.device)
        terminated = torch.as_tensor(batch["terminated"], device=self.device)

        with torch.no_grad():
            next_q_max = self.target_network(next_obs).max(dim=1).values
            targets = td_targets(rewards, next_q_max, terminated, self.gamma)
        q_taken = self.policy(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, targets)  # Huber loss

        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(self.policy.parameters(), 100.0)
        self.optimizer.step()

        # Soft target update after every gradient step: theta' <- tau * theta + (1 - tau) * theta'.
        with torch.no_grad():
            for target_param, param in zip(self.target_network.parameters(), self.policy.parameters()):
                target_param.lerp_(param, self.tau)
        self._n_updates += 1
        return float(loss.item()), float(q_taken.mean().item())

    def _init_callback(self, callback) -> BaseCallback | None:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        elif callback is not None and not isinstance(callback, BaseCallback):
            if not callable(callback):
                raise ValueError("callback must be None, a BaseCallback, a list of them, or a callable")
            callback = ConvertCallback(callback)
        if callback is not None:
            callback.init_callback(self)
        return callback

    def _setup_logging(self, tb_log_name: str, reset_num_timesteps: bool):
        formats: list[KVWriter] = [HumanOutputFormat(sys.stdout)] if self.verbose >= 1 else []
        writer = None
        run_dir = None
        if self.tensorboard_log is not None:
            run_id = get_latest_run_id(self.tensorboard_log, tb_log_name) + (1 if reset_num_timesteps else 0)
            run_dir = os.path.join(self.tensorboard_log, f"{tb_log_name}_{max(run_id, 1)}")
            tensorboard_format = TensorBoardOutputFormat(run_dir)
            writer = tensorboard_format.writer  # a torch.utils.tensorboard.SummaryWriter
            formats.append(tensorboard_format)
            hparams = {k: getattr(self, k) for k in self._hyperparameter_names()}
            writer.add_text("hyperparameters", "\n".join(f"|{k}|{v}|" for k, v in hparams.items()))
        self._logger = Logger(folder=run_dir, output_formats=formats)
        return writer

    def learn(
        self,
        total_timesteps: int,
        callback: BaseCallback | list[BaseCallback] | Callable | None = None,
        log_interval: int = 4,
        tb_log_name: str = "PaperDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> PaperDQN:
        """Train for ``total_timesteps`` environment steps (summed over the vectorised envs).

        With ``reset_num_timesteps=False`` training continues from ``num_timesteps`` (the epsilon
        schedule continues too).  Returns ``self``.
        """
        if self.env is None:
            raise ValueError("this model has no env: pass env= to PaperDQN/load or call set_env() before learn()")
        env = self.env
        if reset_num_timesteps or self._last_obs is None:
            if reset_num_timesteps:
                self.num_timesteps = 0
                self._n_env_calls = 0
            self._last_obs = env.reset()
        total_timesteps = int(total_timesteps) + (0 if reset_num_timesteps else self.num_timesteps)
        eps_decay = self.eps_decay if self.eps_decay is not None else EPS_DECAY_FRACTION * total_timesteps
        eps_decay = max(eps_decay, 1e-8)

        writer = self._setup_logging(tb_log_name, reset_num_timesteps)
        callback = self._init_callback(callback)
        pbar = None
        if progress_bar:
            from tqdm.auto import tqdm

            pbar = tqdm(total=total_timesteps - self.num_timesteps, unit="step")
        recent_returns: deque[float] = deque(maxlen=100)
        n_episodes = 0
        loss = q_mean = float("nan")
        start_time, start_steps = time.time(), self.num_timesteps
        if callback is not None:
            callback.on_training_start(locals(), globals())

        try:
            obs = self._last_obs
            while self.num_timesteps < total_timesteps:
                if callback is not None:
                    callback.on_rollout_start()
                # 1. Act epsilon-greedily; epsilon decays with the GLOBAL step count (fix of bug 1).
                self.exploration_rate = epsilon_at(self.num_timesteps, self.eps_start, self.eps_end, eps_decay)
                obs_batch = np.asarray(obs, dtype=np.float32).reshape(env.num_envs, self.obs_dim)
                actions = self._epsilon_greedy(obs_batch, self.exploration_rate)

                # 2. Step every env; finished ones have already reset (same-step autoreset).
                new_obs, rewards, dones, infos = env.step(actions)
                self.num_timesteps += env.num_envs
                self._n_env_calls += 1

                # 3. Store EVERY transition (the first of an episode too: fix of bug 3), with the real
                #    next observation, and terminated = False for time-limit truncations.
                self.replay_buffer.add(
                    obs_batch,
                    real_next_observations(new_obs, dones, infos),
                    actions,
                    rewards,
                    terminations(dones, infos),
                )
                obs = self._last_obs = new_obs

                # 4. Episode statistics (VecMonitor puts the episode's return in infos[i]["episode"]).
                for i in np.flatnonzero(dones):
                    n_episodes += 1
                    episode = infos[i].get("episode")
                    if episode is not None:
                        recent_returns.append(float(episode["r"]))
                        if writer is not None:
                            writer.add_scalar("rollout/episode_return", float(episode["r"]), self.num_timesteps)
                            writer.add_scalar("rollout/episode_length", int(episode["l"]), self.num_timesteps)
                            writer.add_scalar("rollout/ep_rew_mean", np.mean(recent_returns), self.num_timesteps)
                    if self.verbose >= 1 and n_episodes % log_interval == 0:
                        mean_return = np.mean(recent_returns) if recent_returns else float("nan")
                        print(
                            f"[PaperDQN] steps {self.num_timesteps}/{total_timesteps}  episodes {n_episodes}  "
                            f"ep_rew_mean {mean_return:.3g}  epsilon {self.exploration_rate:.3f}  loss {loss:.3g}  "
                            f"fps {int((self.num_timesteps - start_steps) / max(time.time() - start_time, 1e-9))}"
                        )
                if pbar is not None:
                    pbar.update(env.num_envs)

                # 5. Callbacks (SB3 order: after the env step, before training).
                if callback is not None:
                    callback.update_locals(locals())
                    keep_going = callback.on_step()
                    callback.on_rollout_end()
                    if not keep_going:
                        break

                # 6. Gradient updates (Huber loss, value clipping, soft target update).
                if (
                    self._n_env_calls % self.train_freq == 0
                    and self.num_timesteps >= self.learning_starts
                    and len(self.replay_buffer) >= self.batch_size
                ):
                    for _ in range(self.gradient_steps):
                        loss, q_mean = self._gradient_step()
                    if writer is not None and self._n_updates % 100 < self.gradient_steps:
                        writer.add_scalar("train/loss", loss, self.num_timesteps)
                        writer.add_scalar("train/q_values", q_mean, self.num_timesteps)
                        writer.add_scalar("rollout/exploration_rate", self.exploration_rate, self.num_timesteps)
        finally:
            if pbar is not None:
                pbar.close()
            if callback is not None:
                callback.on_training_end()
            if writer is not None:
                writer.add_scalar("rollout/exploration_rate", self.exploration_rate, self.num_timesteps)
                writer.flush()
            self._logger.close()
            self._logger = Logger(folder=None, output_formats=[])
        return self

    # -- persistence ---------------------------------------------------------------------------
    @staticmethod
    def _hyperparameter_names() -> tuple[str, ...]:
        return (
            "learning_rate",
            "buffer_size",
            "batch_size",
            "gamma",
            "tau",
            "hidden_width",
            "hidden_applications",
            "eps_start",
            "eps_end",
            "eps_decay",
            "learning_starts",
            "train_freq",
            "gradient_steps",
            "seed",
            "tensorboard_log",
            "verbose",
        )

    @staticmethod
    def _zip_path(path: str | os.PathLike) -> str:
        path = os.fspath(path)
        return path if os.path.splitext(path)[1] else path + ".zip"

    def save(self, path: str | os.PathLike) -> None:
        """Save weights, optimiser, hyperparameters and RNG states (not the replay buffer).

        Atomic: written to a temporary file in the same folder, then ``os.replace``-d.  A path
        without a suffix gets ``.zip`` (``torch.save`` writes a zip archive), as in SB3.
        """
        path = self._zip_path(path)
        checkpoint = {
            "format": _SAVE_FORMAT,
            "version": _SAVE_VERSION,
            "hyperparameters": {k: getattr(self, k) for k in self._hyperparameter_names()},
            "obs_shape": list(self.obs_shape),
            "n_actions": self.n_actions,
            "num_timesteps": int(self.num_timesteps),
            "n_updates": int(self._n_updates),
            "exploration_rate": float(self.exploration_rate),
            "policy": self.policy.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "numpy_rng_state": self._rng.bit_generator.state,
            "torch_generator_state": self._torch_generator.get_state(),
        }
        _atomic_write(path, lambda f: torch.save(checkpoint, f))

    def save_replay_buffer(self, path: str | os.PathLike) -> None:
        """Save the replay buffer (numpy ``.npz`` content at exactly ``path``, atomically)."""
        buf = self.replay_buffer
        arrays = {name: getattr(buf, name) for name in ("obs", "next_obs", "actions", "rewards", "terminated")}
        _atomic_write(path, lambda f: np.savez(f, pos=buf.pos, size=buf.size, **arrays))

    def load_replay_buffer(self, path: str | os.PathLike) -> None:
        """Load a buffer written by :meth:`save_replay_buffer` (same capacity and observation size)."""
        with np.load(path) as data:
            if data["obs"].shape != self.replay_buffer.obs.shape:
                raise ValueError(f"replay buffer shape {data['obs'].shape} != {self.replay_buffer.obs.shape}")
            for name in ("obs", "next_obs", "actions", "rewards", "terminated"):
                getattr(self.replay_buffer, name)[...] = data[name]
            self.replay_buffer.pos, self.replay_buffer.size = int(data["pos"]), int(data["size"])

    @classmethod
    def load(
        cls, path: str | os.PathLike, env: VecEnv | gym.Env | None = None, device: str | torch.device = "auto"
    ) -> PaperDQN:
        """Load a model saved by :meth:`save`; ``env`` (optional) must match its spaces."""
        path = os.fspath(path)
        if not os.path.exists(path) and os.path.exists(path + ".zip"):
            path = path + ".zip"
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("format") != _SAVE_FORMAT:
            raise ValueError(f"{path} is not a PaperDQN checkpoint")
        obs_shape = tuple(checkpoint["obs_shape"])
        spaces = (
            gym.spaces.Box(-np.inf, np.inf, shape=obs_shape, dtype=np.float32),
            gym.spaces.Discrete(checkpoint["n_actions"]),
        )
        model = cls(None, device=device, _spaces=spaces, **checkpoint["hyperparameters"])
        model.policy.load_state_dict(checkpoint["policy"])
        model.target_network.load_state_dict(checkpoint["target_network"])
        model.optimizer.load_state_dict(checkpoint["optimizer"])
        model.num_timesteps = int(checkpoint["num_timesteps"])
        model._n_updates = int(checkpoint["n_updates"])
        model.exploration_rate = float(checkpoint["exploration_rate"])
        model._rng.bit_generator.state = checkpoint["numpy_rng_state"]
        model._torch_generator.set_state(checkpoint["torch_generator_state"])
        if env is not None:
            model.set_env(env)  # not reseeded: a continued run should not replay its initial conditions
        return model
