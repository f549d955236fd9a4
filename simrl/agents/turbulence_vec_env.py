"""SB3 ``VecEnv`` for ``simrl/Turbulence2D-v0``: (LES copies x agents) rows that train ONE shared policy.

Parameter sharing the way Mojgani et al. trained (one policy for all agents, Korali's "Policies Per
Environment = 1"), without SuperSuit (whose SB3 path PettingZoo's own tutorial reports broken;
``ecosystem.md`` sect. 2): B LES copies live in one :class:`~simrl.envs.turbulence_core.TurbulenceBatch`
(one solver call per solver step for all of them) and every agent of every copy is one SB3 row::

    row r = c * n_agents + j     (copy c, agent j; agents row-major over the lattice)

Observations ``(B * n_agents, 6 + K)`` are the agents' observations of
:class:`~simrl.envs.turbulence.Turbulence2DParallelEnv`; actions ``(B * n_agents, 1)`` their coefficients.
All rows of a copy share its reward and its ``dones``. A finished copy is reset inside the same step
(SB3's convention): each of its rows gets ``infos[r]["terminal_observation"]`` (that agent's last
observation) and ``infos[r]["TimeLimit.truncated"]`` (True at the time limit, so SB3 bootstraps; False after
a numerical blow-up, whose penalty ends the return); the returned observation already belongs to the new
episode. ``VecMonitor`` (added by the caller) then records one episode per row, whose return is the
copy's return.

>>> from simrl.agents.turbulence_vec_env import make_turbulence_sb3_vec_env
>>> venv = make_turbulence_sb3_vec_env(num_envs=2, seed=0, n_les=32, episode_steps=20)
>>> venv.reset().shape
(32, 16)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecEnv

from simrl.envs.turbulence import RESET_OPTIONS
from simrl.envs.turbulence_core import TurbulenceBatch, TurbulenceSettings
from simrl.envs.vector_common import reset_options


def _split_index(value: Any, num_copies: int, name: str) -> list[Any]:
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != num_copies:
            raise ValueError(f"{name} must be one value or {num_copies} values (one per LES copy), got {len(value)}")
        return list(value)
    return [value] * num_copies


class TurbulenceSB3VecEnv(VecEnv):
    """``num_copies`` LES copies of the multi-agent turbulence environment as ``num_copies * n_agents`` SB3 rows.

    ``num_copies``: B. ``reset_seed``: when set, every :meth:`reset` restarts copy c from seed
    ``reset_seed + c`` (fixed evaluation fields, e.g. for SB3's ``EvalCallback``). ``reference``,
    ``render_mode`` and the other keyword arguments: as :class:`~simrl.envs.turbulence.Turbulence2DParallelEnv`.
    Copy c reset with seed s follows exactly the trajectory of a ``Turbulence2DParallelEnv`` reset with seed s.
    ``seed(s)`` makes the next :meth:`reset` seed copy c with ``s + c``. ``set_options({"snapshot_index": k})``
    (an int or one per copy) picks the initial snapshots of the next reset; ``initial_field`` a given field.
    Other option keys raise, ``reset_mask`` included: SB3 resets every row at once, and the copies reset
    themselves when their episode ends.
    """

    def __init__(
        self,
        num_copies: int = 1,
        reset_seed: int | None = None,
        reference: Any = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if isinstance(num_copies, (bool, np.bool_)) or not isinstance(num_copies, (int, np.integer)) or num_copies < 1:
            raise ValueError(f"num_copies (LES copies) must be a positive integer, got {num_copies!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; accepted: ['rgb_array'] or None")
        self.settings = TurbulenceSettings(**env_kwargs)
        self.core = TurbulenceBatch(self.settings, int(num_copies), reference)
        self.num_copies = int(num_copies)
        self.n_agents = self.core.n_agents
        self.reset_seed = reset_seed
        self.render_mode = render_mode
        low, high = self.settings.action_bounds
        clip = np.float32(self.settings.obs_clip)
        observation_space = spaces.Box(-clip, clip, shape=(self.core.agent_obs_dim,), dtype=np.float32)
        action_space = spaces.Box(np.float32(low), np.float32(high), shape=(1,), dtype=np.float32)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(self.num_copies)]
        self._copy_seeds: list[int | None] = [None] * self.num_copies
        self._actions: np.ndarray | None = None
        super().__init__(self.num_copies * self.n_agents, observation_space, action_space)

    # ------------------------------------------------------------------ rows <-> copies
    def _rows(self, per_copy: np.ndarray) -> np.ndarray:
        """Repeat a per-copy array (B, ...) for every agent row (B * n_agents, ...)."""
        return np.repeat(per_copy, self.n_agents, axis=0)

    def _observations(self) -> np.ndarray:
        return self.core.agent_observations().reshape(self.num_envs, -1)

    def _row_infos(self) -> list[dict[str, Any]]:
        batch = self.core.batch_info()
        coefficients = self.core.coefficients
        out: list[dict[str, Any]] = []
        for c in range(self.num_copies):
            base = {key: values[c].item() for key, values in batch.items()}
            base["copy"] = c
            for j in range(self.n_agents):
                out.append({**base, "agent": j, "coefficient": float(coefficients[c, j])})
        return out

    # ------------------------------------------------------------------ VecEnv API
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed copy c with ``seed + c`` at the next :meth:`reset` (None: leave the generators as they are)."""
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        self._copy_seeds = [int(seed) + c for c in range(self.num_copies)]
        return [s for s in self._copy_seeds for _ in range(self.n_agents)]

    def reset(self) -> np.ndarray:
        seeds = self._copy_seeds
        if all(s is None for s in seeds) and self.reset_seed is not None:
            seeds = [self.reset_seed + c for c in range(self.num_copies)]
        options = reset_options(self._options[0] if self._options else None, RESET_OPTIONS)
        indices = _split_index(options.get("snapshot_index"), self.num_copies, "options['snapshot_index']")
        for c in range(self.num_copies):
            if seeds[c] is not None:
                self._rngs[c] = seeding.np_random(seeds[c])[0]
            self.core.reset_system(c, self._rngs[c], options.get("initial_field"), indices[c])
        self._copy_seeds = [None] * self.num_copies
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = self._row_infos()
        return self._observations()

    def step_async(self, actions: np.ndarray) -> None:
        if actions is None:
            raise ValueError(f"step_async(actions): actions must be an array of shape ({self.num_envs}, 1), got None")
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        actions, self._actions = self._actions, None
        if actions.shape not in ((self.num_envs, 1), (self.num_envs,)):
            raise ValueError(f"actions must have shape ({self.num_envs}, 1) (copies x agents rows), got {actions.shape}")
        if not self.core.ever_reset.all():
            raise RuntimeError("TurbulenceSB3VecEnv.step() called before reset()")
        core = self.core
        result = core.step(core.coefficients_from_actions(actions.reshape(self.num_copies, self.n_agents)))
        done = result["terminated"] | result["truncated"]
        obs = self._observations()
        infos = self._row_infos()
        if done.any():
            # A blow-up is reported truncated (the project's rule) but it has no future to bootstrap from:
            # its penalty already is the worst surviving return, so SB3 must treat it as terminal.
            time_limit = result["truncated"] & ~result["terminated"] & ~result["blowup"]
            for c in np.flatnonzero(done):
                for r in range(c * self.n_agents, (c + 1) * self.n_agents):
                    infos[r]["terminal_observation"] = obs[r].copy()
                    infos[r]["TimeLimit.truncated"] = bool(time_limit[c])
                core.reset_system(int(c), self._rngs[c])
            obs = self._observations()
        rewards = self._rows(result["reward"]).astype(np.float32)
        return obs, rewards, self._rows(done), infos

    def close(self) -> None:
        self.core.model.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        from simrl.envs.turbulence import render_fields

        frames = [render_fields(self.core, c) for c in range(self.num_copies)]
        return [frames[r // self.n_agents] for r in range(self.num_envs)]

    def render(self, mode: str | None = None) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        from simrl.envs.turbulence import render_fields

        return render_fields(self.core, 0)

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def _owner(self, attr_name: str) -> Any:
        """Environment arguments (e.g. ``reward_clip``) live on ``settings``; the rest on the core or here."""
        for owner in (self.settings, self.core):
            if hasattr(owner, attr_name):
                return owner
        return self

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self._owner(attr_name), attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        if sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise NotImplementedError("set_attr on a subset of rows is not supported: all rows share one batched core")
        owner = self._owner(attr_name)
        if not hasattr(owner, attr_name):
            raise AttributeError(f"the turbulence VecEnv has no attribute {attr_name!r} to set")
        setattr(owner, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        if sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise NotImplementedError("env_method on a subset of rows is not supported: all rows share one batched core")
        result = getattr(self._owner(method_name), method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]


def make_turbulence_sb3_vec_env(
    num_envs: int, seed: int | None = None, fixed_reset_seeds: bool = False, **env_kwargs: Any
) -> TurbulenceSB3VecEnv:
    """The SB3 ``VecEnv`` of ``simrl/Turbulence2D-v0`` with ``num_envs`` LES copies (``num_envs x n_agents`` rows).

    The registry's ``sb3_vec_env_entry_point``: :func:`simrl.agents.sb3_vec_env.make_sb3_vec_env` calls it and
    wraps the result in ``VecMonitor``. ``seed`` seeds copy c with ``seed + c`` at the first reset;
    ``fixed_reset_seeds=True`` makes every reset restart from those seeds (evaluation environments).
    """
    if fixed_reset_seeds and seed is None:
        raise ValueError("fixed_reset_seeds=True needs a seed")
    venv = TurbulenceSB3VecEnv(num_envs, reset_seed=seed if fixed_reset_seeds else None, **env_kwargs)
    if seed is not None:
        venv.seed(seed)
    return venv


def policy_actions(model: Any, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
    """Coefficients ``(B, n_agents)`` of a shared SB3-style policy for per-agent observations ``(B, n_agents, d)``
    (e.g. :meth:`TurbulenceBatch.agent_observations`): one ``model.predict`` call over all agents of all copies,
    for evaluators that drive the batched core directly over long runs::

        core.step(core.coefficients_from_actions(policy_actions(model, core.agent_observations())))
    """
    obs = np.asarray(observations)
    if obs.ndim != 3:
        raise ValueError(f"observations must have shape (B, n_agents, d), got {obs.shape}")
    b, a, d = obs.shape
    actions, _ = model.predict(obs.reshape(b * a, d), deterministic=deterministic)
    return np.asarray(actions, dtype=np.float64).reshape(b, a)
