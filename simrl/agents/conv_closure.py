"""ConvClosurePPO: one fully-convolutional policy sets every agent's closure coefficient in one pass.

Why a convolutional policy
--------------------------
In ``simrl/Turbulence2D-v0`` the agents sit on a periodic ``a x a`` lattice of the LES grid,
share one policy and one reward (the enstrophy-spectrum match of the whole field; reference
``turbulence.md`` sect. 2). An MLP shared by the agents (SB3 PPO on the flattened
``(copies x agents)`` rows) sees each agent alone and gets credit from a reward that all agents
share. Here the agents' feature vectors are put back on their lattice, ``(copies, d, a, a)``,
and a small CNN with *circular* padding (the box is periodic, so the lattice is a torus) maps
them to every agent's coefficient at once:

* translation equivariance is built in (an agent's action depends on its own and its
  neighbours' features through the same weights everywhere: the parameter sharing of the
  paper's shared policy, plus context from the neighbours);
* the value function pools the lattice to one value per LES copy, and PPO treats the
  *joint* action of a copy as one action whose log-probability is the sum of the agents'
  (a centralised critic for a fully cooperative team: the shared reward is credited to the
  joint action that earned it, not to each agent as if it acted alone).

Algorithm: PPO (Schulman et al. 2017) written CleanRL-style, top to bottom in :meth:`learn`:
rollouts of ``n_steps`` joint actions per copy, GAE(lambda), clipped surrogate, value loss,
optional entropy bonus, Adam, gradient clipping, advantage normalisation per minibatch,
optional reward scaling by a running std of the discounted return (as SB3's ``VecNormalize``).
The Gaussian policy has one learnable log-std shared by all agents; sampled actions are
clipped to the action box when sent to the environment (the unclipped sample is what the
log-probability is taken of, as in CleanRL). A time-limit truncation bootstraps from the real
last observation (``terminal_observation``); a termination or a blow-up (``info["blowup"]``)
does not.

Environment contract
--------------------
An SB3 ``VecEnv`` whose ``num_envs`` rows are ``copies x n_agents`` in copy-major order, each
row one agent's feature vector ``(d,)`` (what ``make_turbulence_sb3_vec_env`` builds), agent
``j = i_x a + i_y`` at lattice point ``(i_x, i_y)``, and a ``Box`` action of one coefficient
per row. The lattice side ``a`` is read from the env (attribute ``agents_per_side``, else the
square root of ``n_agents``) or given as ``agents_per_side``. Rewards and dones are per row and
equal within a copy (one value per copy is used).

API as SB3 (``learn``, ``predict``, ``save``, classmethod ``load``, ``num_timesteps``) so that
``scripts/train_agent.py agent=conv_closure`` trains it; SB3 callbacks are not supported (the
agent config sets ``sb3_callbacks: false``); ``callback`` may be a plain callable
``f(locals, globals) -> bool`` called after every rollout (False stops training). Everything
random comes from the agent's own ``torch.Generator``; no global RNG is touched.

>>> import numpy as np
>>> from simrl.agents.conv_closure import ConvClosurePolicy
>>> import torch
>>> net = ConvClosurePolicy(obs_dim=5, agents_per_side=4, channels=8, generator=torch.Generator().manual_seed(0))
>>> mean, value = net(torch.zeros(3, 5, 4, 4))
>>> tuple(mean.shape), tuple(value.shape)
((3, 4, 4), (3,))
"""

from __future__ import annotations

import io
import math
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from simrl.atomic_io import atomic_write_bytes

__all__ = ["ConvClosurePPO", "ConvClosurePolicy", "gae"]

_SAVE_FORMAT = "simrl.agents.conv_closure.ConvClosurePPO"
_SAVE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# 1. The network: periodic convolutions on the agents' lattice.
# ---------------------------------------------------------------------------------------------
class ConvClosurePolicy(nn.Module):
    """Actor and critic on the ``a x a`` agent lattice, both fully convolutional with circular padding.

    Input ``(B, d, a, a)`` (each agent's features as channels). Actor: ``depth`` 3x3 periodic
    convolutions (tanh) and a 1x1 convolution -> ``(B, a, a)`` action means in *normalised*
    units (``-1 .. 1`` spans the action box). Critic: its own 3x3 periodic convolutions, a mean
    over the lattice and a linear layer -> ``(B,)``. ``log_std``: one learnable scalar.
    """

    def __init__(
        self,
        obs_dim: int,
        agents_per_side: int,
        channels: int = 32,
        depth: int = 2,
        init_log_std: float = -1.0,
        init_mean: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or agents_per_side < 1 or channels < 1 or depth < 1:
            raise ValueError(
                f"obs_dim, agents_per_side, channels and depth must be >= 1, got {obs_dim}, {agents_per_side}, {channels}, {depth}"
            )
        self.agents_per_side = int(agents_per_side)

        def trunk() -> nn.Sequential:
            layers: list[nn.Module] = []
            c_in = obs_dim
            for _ in range(depth):
                # circular padding: the lattice is periodic like the box (no edge agents)
                layers += [nn.utils.skip_init(nn.Conv2d, c_in, channels, 3, padding=1, padding_mode="circular"), nn.Tanh()]
                c_in = channels
            return nn.Sequential(*layers)

        self.actor = trunk()
        self.actor_head = nn.utils.skip_init(nn.Conv2d, channels, 1, 1)
        self.critic = trunk()
        self.critic_head = nn.utils.skip_init(nn.Linear, channels, 1)
        self.log_std = nn.Parameter(torch.tensor(float(init_log_std)))
        self._init(generator, init_mean)

    @torch.no_grad()
    def _init(self, generator: torch.Generator | None, init_mean: float) -> None:
        # CleanRL's PPO initialisation: orthogonal weights (gain sqrt 2 hidden, 0.01 policy head,
        # 1 value head), zero biases; the policy head's bias sets the initial mean action.
        for module in list(self.actor) + list(self.critic):
            if isinstance(module, nn.Conv2d):
                nn.init.orthogonal_(module.weight, math.sqrt(2.0), generator=generator)
                nn.init.zeros_(module.bias)
        nn.init.orthogonal_(self.actor_head.weight, 0.01, generator=generator)
        nn.init.constant_(self.actor_head.bias, float(init_mean))
        nn.init.orthogonal_(self.critic_head.weight, 1.0, generator=generator)
        nn.init.zeros_(self.critic_head.bias)

    def forward(self, lattice_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, d, a, a)`` -> (action means ``(B, a, a)``, values ``(B,)``)."""
        mean = self.actor_head(self.actor(lattice_obs))[:, 0]
        value = self.critic_head(self.critic(lattice_obs).mean(dim=(-2, -1)))[:, 0]
        return mean, value

    def value(self, lattice_obs: torch.Tensor) -> torch.Tensor:
        return self.critic_head(self.critic(lattice_obs).mean(dim=(-2, -1)))[:, 0]


# ---------------------------------------------------------------------------------------------
# 2. Pure helpers.
# ---------------------------------------------------------------------------------------------
def gae(
    rewards: np.ndarray, values: np.ndarray, next_value: np.ndarray, dones: np.ndarray, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al. 2016) over a ``(T, B)`` rollout.

    ``dones[t]`` is 1 when the episode ended *at* step t (no bootstrap from ``values[t + 1]``);
    truncation bootstraps are already folded into ``rewards``. Returns (advantages, returns).
    """
    t_len = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last = np.zeros_like(next_value)
    for t in reversed(range(t_len)):
        nxt = next_value if t == t_len - 1 else values[t + 1]
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * nxt * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
    return adv, adv + values


class _RunningStd:
    """Running variance of the discounted return (SB3 ``VecNormalize``'s reward scaling)."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4
        self.ret: np.ndarray | None = None

    def scale(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.ret = rewards.copy() if self.ret is None else self.ret * self.gamma + rewards
        x = self.ret
        b_mean, b_var, b_count = float(x.mean()), float(x.var()), x.size
        delta = b_mean - self.mean
        tot = self.count + b_count
        self.mean += delta * b_count / tot
        self.var = (self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / tot) / tot
        self.count = tot
        self.ret = np.where(dones > 0, 0.0, self.ret)
        return rewards / math.sqrt(self.var + 1e-8)


def _atomic_torch_save(obj: Any, path: str) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _lattice_side(env: Any, agents_per_side: int | None) -> int:
    """The agent lattice side ``a``: given, else the env's ``agents_per_side`` / ``sqrt(n_agents)``."""
    if agents_per_side is not None:
        return int(agents_per_side)
    for name in ("agents_per_side", "n_agents"):
        try:
            value = int(env.get_attr(name)[0])
        except Exception:  # noqa: BLE001 - the attribute is optional
            continue
        a = value if name == "agents_per_side" else math.isqrt(value)
        if name == "agents_per_side" or a * a == value:
            return a
    raise ValueError(
        "ConvClosurePPO needs the agent lattice: give agents_per_side=..., or an env with an "
        "'agents_per_side' or square 'n_agents' attribute"
    )


# ---------------------------------------------------------------------------------------------
# 3. The agent.
# ---------------------------------------------------------------------------------------------
class ConvClosurePPO:
    """PPO with :class:`ConvClosurePolicy` on the flattened multi-agent ``VecEnv`` (module docstring).

    :param env: SB3 ``VecEnv`` of ``copies x agents`` rows (None only inside :meth:`load`).
    :param agents_per_side: lattice side ``a`` (default: from the env).
    :param learning_rate: Adam step size (constant).
    :param n_steps: joint actions per copy per rollout.
    :param batch_size: minibatch size in joint samples (copy-steps).
    :param n_epochs: passes over each rollout.
    :param gamma, gae_lambda: discount and GAE lambda.
    :param clip_range: PPO ratio clip.
    :param ent_coef, vf_coef: entropy bonus and value-loss weights.
    :param max_grad_norm: global gradient-norm clip.
    :param channels, depth: CNN width and number of 3x3 layers per trunk.
    :param init_log_std: initial log-std of the Gaussian, in normalised action units.
    :param init_action: initial mean action (in the env's units; default: the box centre), e.g. a
        classical coefficient so that training starts from a known-stable closure.
    :param normalize_reward: scale rewards by a running std of the discounted return.
    :param target_kl: stop an update's epochs early when the approximate KL exceeds it (None: never).
    """

    def __init__(
        self,
        env: Any,
        agents_per_side: int | None = None,
        learning_rate: float = 3e-4,
        n_steps: int = 64,
        batch_size: int = 64,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float = 0.2,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        channels: int = 32,
        depth: int = 2,
        init_log_std: float = -1.0,
        init_action: float | None = None,
        normalize_reward: bool = True,
        target_kl: float | None = None,
        seed: int | None = None,
        device: str | torch.device = "auto",
        tensorboard_log: str | None = None,
        verbose: int = 0,
        _spaces: tuple[gym.Space, gym.Space] | None = None,
    ) -> None:
        if n_steps < 1 or batch_size < 1 or n_epochs < 1:
            raise ValueError(f"n_steps, batch_size and n_epochs must be >= 1, got {n_steps}, {batch_size}, {n_epochs}")
        self.learning_rate = float(learning_rate)
        self.n_steps = int(n_steps)
        self.batch_size = int(batch_size)
        self.n_epochs = int(n_epochs)
        self.gamma = float(gamma)
        self.gae_lambda = float(gae_lambda)
        self.clip_range = float(clip_range)
        self.ent_coef = float(ent_coef)
        self.vf_coef = float(vf_coef)
        self.max_grad_norm = float(max_grad_norm)
        self.channels = int(channels)
        self.depth = int(depth)
        self.init_log_std = float(init_log_std)
        self.init_action = None if init_action is None else float(init_action)
        self.normalize_reward = bool(normalize_reward)
        self.target_kl = None if target_kl is None else float(target_kl)
        self.seed = seed
        self.device = _resolve_device(device)
        self.tensorboard_log = tensorboard_log
        self.verbose = int(verbose)

        self.env = env
        if env is not None:
            self.observation_space, self.action_space = env.observation_space, env.action_space
            self.agents_per_side = _lattice_side(env, agents_per_side)
        elif _spaces is not None and agents_per_side is not None:
            self.observation_space, self.action_space = _spaces
            self.agents_per_side = int(agents_per_side)
        else:
            raise ValueError("ConvClosurePPO needs an env (an SB3 VecEnv of copies x agents rows)")
        if not isinstance(self.action_space, gym.spaces.Box) or int(np.prod(self.action_space.shape)) != 1:
            raise ValueError(f"ConvClosurePPO needs a Box action of one coefficient per agent, got {self.action_space!r}")
        if not isinstance(self.observation_space, gym.spaces.Box) or len(self.observation_space.shape) != 1:
            raise ValueError(f"ConvClosurePPO needs a 1-D Box observation per agent, got {self.observation_space!r}")
        self.n_agents = self.agents_per_side**2
        if env is not None and env.num_envs % self.n_agents:
            raise ValueError(f"the env's {env.num_envs} rows are not a whole number of copies of {self.n_agents} agents")
        self.obs_dim = int(self.observation_space.shape[0])
        self.low = float(np.asarray(self.action_space.low).reshape(-1)[0])
        self.high = float(np.asarray(self.action_space.high).reshape(-1)[0])
        centre, half = 0.5 * (self.high + self.low), 0.5 * (self.high - self.low)
        init_mean = 0.0 if self.init_action is None else (self.init_action - centre) / half

        self._torch_generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        self.policy = ConvClosurePolicy(
            self.obs_dim, self.agents_per_side, self.channels, self.depth, self.init_log_std, init_mean,
            generator=self._torch_generator,
        ).to(self.device)  # fmt: skip
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.learning_rate, eps=1e-5)
        self._reward_scaler = _RunningStd(self.gamma)
        self.num_timesteps = 0
        self._n_updates = 0
        self._last_obs: np.ndarray | None = None
        self._seeded_env = False

    # -- shapes ----------------------------------------------------------------------------------
    def _to_lattice(self, rows: np.ndarray) -> torch.Tensor:
        """``(copies * n_agents, d)`` rows -> ``(copies, d, a, a)`` tensor (agent j = i_x a + i_y)."""
        rows = np.asarray(rows, dtype=np.float32)
        a = self.agents_per_side
        if rows.ndim == 3:
            rows = rows.reshape(-1, rows.shape[-1])
        if rows.ndim != 2 or rows.shape[1] != self.obs_dim or rows.shape[0] % self.n_agents:
            raise ValueError(
                f"observations must be (copies * {self.n_agents}, {self.obs_dim}) or (copies, {self.n_agents}, {self.obs_dim}), got {rows.shape}"
            )
        x = torch.as_tensor(rows, device=self.device).reshape(-1, a, a, self.obs_dim)
        return x.permute(0, 3, 1, 2).contiguous()

    def _to_env_action(self, normalised: torch.Tensor) -> np.ndarray:
        """``(copies, a, a)`` normalised actions -> ``(copies * n_agents, 1)`` env actions, clipped to the box."""
        centre, half = 0.5 * (self.high + self.low), 0.5 * (self.high - self.low)
        act = (centre + half * normalised).reshape(-1, 1).detach().cpu().numpy()
        shape = (act.shape[0],) + tuple(self.action_space.shape)
        return np.clip(act, self.low, self.high).astype(np.float32).reshape(shape)

    # -- acting ----------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        """Actions ``(rows, 1)`` for observation rows ``(copies * n_agents, d)`` (SB3 signature)."""
        mean, _ = self.policy(self._to_lattice(observation))
        if not deterministic:
            std = self.policy.log_std.exp()
            mean = mean + std * torch.randn(mean.shape, generator=self._torch_generator).to(self.device)
        return self._to_env_action(mean), state

    # -- training ----------------------------------------------------------------------------------
    def learn(self, total_timesteps: int, callback: Callable | None = None, progress_bar: bool = False,
              tb_log_name: str = "ConvClosurePPO", reset_num_timesteps: bool = True) -> "ConvClosurePPO":  # fmt: skip
        """Train for ``total_timesteps`` env rows (SB3 counting: ``num_envs`` per env step)."""
        from stable_baselines3.common.callbacks import BaseCallback

        if isinstance(callback, (BaseCallback, list)):
            raise ValueError("ConvClosurePPO does not run SB3 callbacks; set sb3_callbacks: false in its agent config")
        if self.env is None:
            raise ValueError("no env: load(path, env=...) or construct with an env to train")
        env = self.env
        writer = None
        if self.tensorboard_log is not None:
            from torch.utils.tensorboard import SummaryWriter

            run = 1
            while os.path.exists(os.path.join(self.tensorboard_log, f"{tb_log_name}_{run}")):
                run += 1
            writer = SummaryWriter(os.path.join(self.tensorboard_log, f"{tb_log_name}_{run}"))
        if reset_num_timesteps:
            self.num_timesteps = 0
        if not self._seeded_env and self.seed is not None:
            env.seed(int(self.seed))  # once: the env's own generators then draw every episode
            self._seeded_env = True
        if self._last_obs is None or reset_num_timesteps:
            self._last_obs = env.reset()
        copies = env.num_envs // self.n_agents
        a, d, n = self.agents_per_side, self.obs_dim, self.n_steps
        total = int(total_timesteps) + self.num_timesteps
        pbar = None
        if progress_bar:
            from tqdm.auto import tqdm

            pbar = tqdm(total=int(total_timesteps), unit="step")
        recent: deque[float] = deque(maxlen=100)
        start = time.time()
        try:
            while self.num_timesteps < total:
                # 1. Rollout: n_steps joint actions per copy.
                obs_buf = torch.zeros((n, copies, d, a, a), device=self.device)
                act_buf = torch.zeros((n, copies, a, a), device=self.device)
                logp_buf = torch.zeros((n, copies), device=self.device)
                val_buf = np.zeros((n, copies), dtype=np.float32)
                rew_buf = np.zeros((n, copies), dtype=np.float32)
                done_buf = np.zeros((n, copies), dtype=np.float32)
                self.policy.eval()
                for t in range(n):
                    x = self._to_lattice(self._last_obs)
                    with torch.no_grad():
                        mean, value = self.policy(x)
                        std = self.policy.log_std.exp()
                        sample = mean + std * torch.randn(mean.shape, generator=self._torch_generator).to(self.device)
                        logp = torch.distributions.Normal(mean, std).log_prob(sample).sum(dim=(-2, -1))
                    new_obs, rewards, dones, infos = env.step(self._to_env_action(sample))
                    self.num_timesteps += env.num_envs
                    rew = np.asarray(rewards, dtype=np.float64).reshape(copies, self.n_agents).mean(axis=1)
                    done = np.asarray(dones, dtype=bool).reshape(copies, self.n_agents).any(axis=1)
                    if self.normalize_reward:
                        rew = self._reward_scaler.scale(rew, done.astype(np.float64))
                    # Time-limit truncation: bootstrap from the real last observation (values are in
                    # the scaled reward units, so the bootstrap is added after the scaling).
                    for c in np.flatnonzero(done):
                        info = infos[c * self.n_agents]
                        if info.get("TimeLimit.truncated", False) and not info.get("blowup", False):
                            rows = np.stack([infos[c * self.n_agents + j]["terminal_observation"] for j in range(self.n_agents)])
                            with torch.no_grad():
                                rew[c] += self.gamma * float(self.policy.value(self._to_lattice(rows))[0])
                        if "episode" in info:
                            recent.append(float(info["episode"]["r"]))
                            if writer is not None:
                                writer.add_scalar("rollout/episode_return", float(info["episode"]["r"]), self.num_timesteps)
                    obs_buf[t], act_buf[t], logp_buf[t] = x, sample, logp
                    val_buf[t], rew_buf[t], done_buf[t] = value.cpu().numpy(), rew, done
                    self._last_obs = new_obs
                    if pbar is not None:
                        pbar.update(env.num_envs)
                with torch.no_grad():
                    next_value = self.policy.value(self._to_lattice(self._last_obs)).cpu().numpy()
                adv, ret = gae(rew_buf, val_buf, next_value, done_buf, self.gamma, self.gae_lambda)

                # 2. PPO update on the flattened (n_steps * copies) joint samples.
                self.policy.train()
                b_obs = obs_buf.reshape(n * copies, d, a, a)
                b_act = act_buf.reshape(n * copies, a, a)
                b_logp = logp_buf.reshape(-1)
                b_adv = torch.as_tensor(adv.reshape(-1), device=self.device)
                b_ret = torch.as_tensor(ret.reshape(-1), device=self.device)
                size = n * copies
                mb = min(self.batch_size, size)
                stats: dict[str, float] = {}
                for _epoch in range(self.n_epochs):
                    perm = torch.randperm(size, generator=self._torch_generator).to(self.device)
                    kl_stop = False
                    for lo in range(0, size, mb):
                        idx = perm[lo : lo + mb]
                        stats = self._ppo_loss(b_obs[idx], b_act[idx], b_logp[idx], b_adv[idx], b_ret[idx])
                        loss = stats.pop("_loss")
                        self.optimizer.zero_grad()
                        loss.backward()
                        nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                        self.optimizer.step()
                        self._n_updates += 1
                        if self.target_kl is not None and stats["approx_kl"] > 1.5 * self.target_kl:
                            kl_stop = True
                            break
                    if kl_stop:
                        break
                if writer is not None:
                    for key, value in stats.items():
                        writer.add_scalar(f"train/{key}", value, self.num_timesteps)
                    writer.add_scalar("train/std", self.policy.log_std.exp().item(), self.num_timesteps)
                    if recent:
                        writer.add_scalar("rollout/ep_rew_mean", float(np.mean(recent)), self.num_timesteps)
                if self.verbose >= 1:
                    fps = int(self.num_timesteps / max(time.time() - start, 1e-9))
                    mean_r = float(np.mean(recent)) if recent else float("nan")
                    print(f"[ConvClosurePPO] steps {self.num_timesteps}/{total} ep_rew_mean {mean_r:.4g} "
                          f"loss {stats.get('loss', float('nan')):.3g} std {self.policy.log_std.exp().item():.3g} fps {fps}")  # fmt: skip
                if callback is not None and callback(locals(), globals()) is False:
                    break
        finally:
            if pbar is not None:
                pbar.close()
            if writer is not None:
                writer.flush()
                writer.close()
        return self

    def _ppo_loss(self, obs, act, old_logp, adv, ret) -> dict[str, Any]:
        """Clipped-surrogate PPO loss of one minibatch (plus diagnostics)."""
        mean, value = self.policy(obs)
        std = self.policy.log_std.exp()
        dist = torch.distributions.Normal(mean, std)
        logp = dist.log_prob(act).sum(dim=(-2, -1))
        ratio = (logp - old_logp).exp()
        if adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - self.clip_range, 1 + self.clip_range)).mean()
        v_loss = 0.5 * ((value - ret) ** 2).mean()
        entropy = dist.entropy().sum(dim=(-2, -1)).mean()
        loss = pg_loss + self.vf_coef * v_loss - self.ent_coef * entropy
        with torch.no_grad():
            approx_kl = float(((ratio - 1) - (logp - old_logp)).mean())
        return {"_loss": loss, "loss": loss.item(), "policy_loss": pg_loss.item(), "value_loss": v_loss.item(),
                "entropy": entropy.item(), "approx_kl": approx_kl}  # fmt: skip

    # -- persistence ---------------------------------------------------------------------------
    _HYPERPARAMETERS = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range",
                        "ent_coef", "vf_coef", "max_grad_norm", "channels", "depth", "init_log_std", "init_action",
                        "normalize_reward", "target_kl", "seed", "tensorboard_log", "verbose")  # fmt: skip

    def save(self, path: str | os.PathLike) -> None:
        """Weights, optimiser, hyperparameters, spaces and generator state; atomic (``.zip`` added if no suffix)."""
        path = os.fspath(path)
        if not os.path.splitext(path)[1]:
            path += ".zip"
        checkpoint = {
            "format": _SAVE_FORMAT,
            "version": _SAVE_VERSION,
            "hyperparameters": {k: getattr(self, k) for k in self._HYPERPARAMETERS},
            "agents_per_side": self.agents_per_side,
            "obs_dim": self.obs_dim,
            "obs_low": np.asarray(self.observation_space.low, dtype=np.float64).tolist(),
            "obs_high": np.asarray(self.observation_space.high, dtype=np.float64).tolist(),
            "action_low": self.low,
            "action_high": self.high,
            "action_shape": list(self.action_space.shape),
            "num_timesteps": int(self.num_timesteps),
            "n_updates": int(self._n_updates),
            "reward_scaler": [self._reward_scaler.mean, self._reward_scaler.var, self._reward_scaler.count],
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_generator_state": self._torch_generator.get_state(),
        }
        _atomic_torch_save(checkpoint, path)

    @classmethod
    def load(cls, path: str | os.PathLike, env: Any = None, device: str | torch.device = "auto", **_: Any) -> "ConvClosurePPO":
        """Load a model written by :meth:`save` (``env`` optional, for further training)."""
        path = os.fspath(path)
        if not os.path.exists(path) and os.path.exists(path + ".zip"):
            path += ".zip"
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("format") != _SAVE_FORMAT:
            raise ValueError(f"{path} is not a ConvClosurePPO checkpoint")
        obs_space = gym.spaces.Box(np.array(checkpoint["obs_low"], dtype=np.float32),
                                   np.array(checkpoint["obs_high"], dtype=np.float32), dtype=np.float32)  # fmt: skip
        act_space = gym.spaces.Box(checkpoint["action_low"], checkpoint["action_high"],
                                   shape=tuple(checkpoint["action_shape"]), dtype=np.float32)  # fmt: skip
        model = cls(None, agents_per_side=checkpoint["agents_per_side"], device=device,
                    _spaces=(obs_space, act_space), **checkpoint["hyperparameters"])  # fmt: skip
        model.policy.load_state_dict(checkpoint["policy"])
        model.optimizer.load_state_dict(checkpoint["optimizer"])
        model.num_timesteps = int(checkpoint["num_timesteps"])
        model._n_updates = int(checkpoint["n_updates"])
        model._reward_scaler.mean, model._reward_scaler.var, model._reward_scaler.count = checkpoint["reward_scaler"]
        model._torch_generator.set_state(checkpoint["torch_generator_state"])
        if env is not None:
            model.env = env
            model._seeded_env = True  # a continued run is not reseeded
        return model
