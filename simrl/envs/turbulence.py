"""``simrl/Turbulence2D-v0`` (PettingZoo) and ``simrl/Turbulence2DGlobal-v0`` (Gymnasium): RL eddy-viscosity
closures for LES of forced 2-D (beta-plane) turbulence, rewarded by the DNS enstrophy spectrum.

All faces share :class:`~simrl.envs.turbulence_core.TurbulenceBatch` (the ParallelEnv and the single env
are batches of one; the vector env and :mod:`simrl.agents.turbulence_vec_env` are batches of many).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from pettingzoo import ParallelEnv

from simrl.envs.turbulence_core import TurbulenceBatch, TurbulenceSettings
from simrl.envs.validation import real_array
from simrl.envs.vector_common import (
    apply_autoreset,
    check_autoreset_mode,
    masked_info,
    reset_mask,
    reset_options,
    vector_seeds,
)

RENDER_MODES = ("rgb_array",)


def _check_render_mode(render_mode: str | None) -> str | None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"unknown render_mode {render_mode!r}; accepted: {list(RENDER_MODES)} or None")
    return render_mode


def _action_box(settings: TurbulenceSettings) -> spaces.Box:
    low, high = settings.action_bounds
    return spaces.Box(low=np.float32(low), high=np.float32(high), shape=(1,), dtype=np.float32)


def _obs_box(settings: TurbulenceSettings, dim: int) -> spaces.Box:
    c = np.float32(settings.obs_clip)
    return spaces.Box(low=-c, high=c, shape=(dim,), dtype=np.float32)


def _real_array(value: Any, what: str) -> np.ndarray:
    return real_array(value, what).astype(np.float64)


RESET_OPTIONS = ("initial_field", "snapshot_index")
"""Keys of ``reset(options=...)`` (the vector env also takes ``reset_mask``)."""


def _reset_kwargs(options: dict[str, Any] | None, unknown: str = "raise") -> dict[str, Any]:
    options = reset_options(options, RESET_OPTIONS, unknown)
    return {"omega_hat": options.get("initial_field"), "snapshot_index": options.get("snapshot_index")}


class Turbulence2DParallelEnv(ParallelEnv):
    """Agents on a coarse lattice of an LES grid set their local eddy-viscosity coefficient; all share one reward.

    After Mojgani, Waelchli, Guan, Koumoutsakos & Hassanzadeh, "Extreme Event Prediction with Multi-agent
    Reinforcement Learning-based Parametrization of Atmospheric and Oceanic Turbulence" (arXiv 2312.00907;
    reference ``turbulence.md`` sect. 2). The LES solves, on the periodic box [0, 2 pi)^2 with N = ``n_les``
    points per side (2/3-rule dealiased pseudo-spectral, integrating-factor RK3; :mod:`simrl.physics.turbulence`)::

        d(omega)/dt + J(psi, omega) = nu lap(omega) - alpha omega + F - beta v + div(nu_e grad omega)

    with the DNS's nu, alpha, beta and forcing ``F = k_f [cos(k_f x) + cos(k_f y)]`` (the reference case), and
    the closure ``nu_e(x, y)`` set by the agents. One environment step = ``steps_per_action`` (10) solver steps.

    ## Agents
    ``agents_per_side**2`` agents (16 on a 4 x 4 lattice by default), ``"agent_0" .. "agent_{n-1}"``, at the
    block centres ``(N/a)(i + 1/2)`` of the grid, agent ``j = i_x a + i_y`` (row-major over x, y;
    :func:`~simrl.physics.turbulence.closures.agent_points`). All agents act every step and finish together.

    ## Action space
    ``Box(low, high, (1,), float32)`` per agent: the local model coefficient ``c``:

    | ``action``           | ``nu_e`` (``scale="local"``)        | ``c`` is   | default range |
    |----------------------|-------------------------------------|------------|---------------|
    | ``"leith"`` (default)| ``c Delta^3 abs(grad omega)(x, y)`` | ``C_L^3``  | [0, 0.125]    |
    | ``"smagorinsky"``    | ``c Delta^2 abs(S)(x, y)``          | ``C_s^2``  | [0, 0.125]    |

    ``Delta = 2 pi / N``; ``scale="global"`` uses the paper's domain rms |S| / mean |grad omega| instead of the
    local value. ``backscatter=True`` allows negative coefficients, default range [-0.125, 0.125] (the paper's).
    The a x a values are spread over the grid by a *periodic* interpolation (``interpolation``: "fourier",
    "bilinear", "spline", "nearest"; the paper's spline ignored periodicity); ``nu_e`` is recomputed from the
    current field at every solver step with the coefficient field fixed over the action (as the paper's code).
    ``normalized_actions=True`` makes the box [-1, 1] (SB3's recommendation for Gaussian policies), mapped
    affinely onto the coefficient range. Actions outside the box are clipped to it (as SB3 does); a missing
    agent, a wrong shape or a non-finite value raises ``ValueError``.

    ## Observation space
    ``Box(-obs_clip, obs_clip, (6 + K,), float32)`` per agent, K = ``k_cut`` = floor((N-1)/3) (21 at N = 64,
    so 27 numbers), clipped to +-``obs_clip`` (10):

    | index     | feature (at the agent's grid point)                 | normalised by                      |
    |-----------|-----------------------------------------------------|------------------------------------|
    | 0         | tr S^2 of the velocity gradient                     | its RMS over the filtered-DNS fields |
    | 1         | tr R^2 (= -omega^2/2)                               | same                               |
    | 2         | omega (signed; tr S = 0 in 2-D is dropped)          | same                               |
    | 3, 4, 5   | tr S_H, tr S_H^2, tr R_H^2 of [[u_xx, v_xx], [u_yy, v_yy]] | same                        |
    | 6 .. 5+K  | global: (log Z(k) - <log Z_DNS(k)>) / std(log Z_DNS(k)), shells k = 1 .. K | (same for all agents) |

    The invariants are those of :mod:`simrl.physics.turbulence.invariants`; their RMS over every point of the
    filtered-DNS snapshots makes them O(1) whatever their units. ``state()`` returns the global observation of
    :class:`Turbulence2DGlobalEnv`.

    ## Reward (the same for every agent)
    ``reward="log_spectrum"`` (default): ``r = -min(e, reward_clip)`` with
    ``e = mean_{k=1..K} (log Z_LES(k) - <log Z_DNS(k)>)^2 / var_DNS(log Z(k))``, Z the isotropic enstrophy
    spectrum of the LES sampled after *every* solver step of the window and averaged over the window (the
    normalised log-spectrum error of Novati et al. 2021, here for the enstrophy). ``e`` ~ 1 when the LES is as
    close to the DNS mean as a typical DNS sample; ``info["spectrum_error"]`` always reports ``e``.
    ``reward="paper"``: ``r = 1 / ||k (Z_LES(k) - Z_DNS(k))||^2`` over the x and y directional enstrophy spectra
    (k = 0 .. N/2-1, ``diagnostics.paper_enstrophy_spectrum``) at the end of the window (the paper's ``z1``).

    ## Starting state
    A filtered-DNS snapshot at the LES resolution drawn with the environment's generator (``reset(seed=...)``;
    the paper always used one fixed field), restricted to ``snapshot_indices`` if given (e.g. to hold out
    fields for evaluation). With ``augment=True`` (default) it is transformed by a random exact symmetry of
    the forced problem: a shift by whole forcing periods, and (beta = 0 only) a 90-degree rotation and a
    reflection combined with ``omega -> -omega`` and a half-period shift
    (:func:`~simrl.envs.turbulence_core.symmetry_transform`): the statistics are unchanged while the agents
    see many more distinct fields.
    ``reset(options=...)``: ``{"snapshot_index": k}`` starts from filtered-DNS snapshot ``k`` (the random
    symmetry transform still applies when ``augment``); ``{"initial_field": omega_hat}`` from a given spectral
    (N, N//2+1) or physical (N, N) vorticity. Other keys are dropped with a UserWarning listing these
    (PettingZoo's API test resets with an arbitrary option).

    ## Episode end
    No termination (the flow never reaches a goal). Truncated for every agent after ``episode_steps`` solver
    steps (``episode_steps / steps_per_action`` actions), or at a numerical blow-up: a non-finite field, a grid
    CFL above the scheme's limit (:attr:`~simrl.physics.turbulence.TurbulenceModel.cfl_limit`), or an enstrophy
    above ``enstrophy_limit`` (50) x the filtered-DNS mean (a statistically steady LES never leaves a factor of
    a few; 50 catches a runaway, e.g. under strong backscatter, long before it overflows). A blow-up gives
    ``reward = -blowup_penalty`` and ``info["blowup"] = True``, the field stays at its last finite state, and
    nothing raises. Default penalty: ``reward_clip x actions per episode`` for "log_spectrum" (the worst
    surviving return, so blowing up never pays), 10,000 for "paper" (the paper's value).

    ## Info (per agent, identical but for ``coefficient``)
    ``time``, ``solver_steps``, ``action_index``, ``enstrophy``, ``energy`` (domain means), ``spectrum_error``
    (window mean of e above; NaN if the copy blew up at the window's first step), ``cfl``, ``mean_nu_e`` (of
    the last solver step), ``mean_coefficient``, ``coefficient`` (this agent's, after clipping; NaN while a
    baseline closure drives the core, ``TurbulenceBatch.step_with_closure``), ``blowup``, ``status`` (0 ok,
    2 non-finite, 3 CFL, 4 enstrophy), ``snapshot`` (index of the initial field, -1 if given).

    ## Arguments
    | argument | default | meaning |
    |---|---|---|
    | case | "fhit_cpu" | reference case (:data:`simrl.physics.turbulence.reference.REFERENCE_CASES`) |
    | n_les | 64 | LES grid size; one of the reference's LES sizes |
    | agents_per_side | 4 | agents per side (``n_les`` must be divisible by it) |
    | action | "leith" | "leith" or "smagorinsky" |
    | coefficient_range, backscatter | None, False | coefficient bounds (None: [0, 0.125] or [-0.125, 0.125]) |
    | normalized_actions | False | action box [-1, 1] mapped onto the coefficient range |
    | interpolation, scale | "fourier", "local" | lattice -> grid interpolation; local or global model scale |
    | steps_per_action | 10 | solver steps per action |
    | episode_steps | 1000 | solver steps per episode (a multiple of steps_per_action; 100 actions) |
    | dt | None | solver step (None: the reference case's) |
    | reward, reward_clip, blowup_penalty | "log_spectrum", 10, None | reward (above) |
    | enstrophy_limit | 50 | blow-up bound, in units of the filtered-DNS enstrophy |
    | obs_clip | 10 | observation bound |
    | augment, snapshot_indices | True, None | initial fields (above) |
    | threads | 1 | LES copies advanced concurrently by the solver |
    | reference | None | inject an ``LESTargets`` / ``ReferenceData`` instead of the shipped data (``case`` is then ignored) |
    | max_cycles | None | PettingZoo's name for actions per episode (sets ``episode_steps``) |
    | render_mode | None | "rgb_array": vorticity and nu_e side by side |

    ## Example
    >>> from simrl.envs import turbulence_v0
    >>> env = turbulence_v0.parallel_env(n_les=32, episode_steps=50)
    >>> obs, infos = env.reset(seed=0)
    >>> len(env.agents), obs["agent_0"].shape
    (16, (16,))
    >>> actions = {agent: env.action_space(agent).sample() for agent in env.agents}
    >>> obs, rewards, terminations, truncations, infos = env.step(actions)
    >>> infos["agent_0"]["solver_steps"], rewards["agent_0"] == rewards["agent_15"] <= 0
    (10, True)
    """

    metadata = {"name": "turbulence_v0", "render_modes": list(RENDER_MODES), "is_parallelizable": True, "render_fps": 10}

    def __init__(
        self, render_mode: str | None = None, reference: Any = None, max_cycles: int | None = None, **kwargs: Any
    ) -> None:
        if max_cycles is not None:  # PettingZoo's name (pettingzoo.make(..., max_cycles=)): actions per episode
            if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1:
                raise ValueError(f"max_cycles (actions per episode) must be an integer >= 1, got {max_cycles!r}")
            episode_steps = max_cycles * kwargs.get("steps_per_action", TurbulenceSettings.steps_per_action)
            if kwargs.setdefault("episode_steps", episode_steps) != episode_steps:
                raise ValueError(
                    f"max_cycles={max_cycles} and episode_steps={kwargs['episode_steps']} disagree; give one of them"
                )
        self.settings = TurbulenceSettings(**kwargs)
        self.render_mode = _check_render_mode(render_mode)
        self._core = TurbulenceBatch(self.settings, 1, reference)
        self.max_cycles = self.settings.actions_per_episode
        self.possible_agents = [f"agent_{j}" for j in range(self._core.n_agents)]
        self.agents: list[str] = []
        # One space object per agent, returned as-is on every call (PettingZoo's API test checks identity).
        self._observation_spaces = {a: _obs_box(self.settings, self._core.agent_obs_dim) for a in self.possible_agents}
        self._action_spaces = {a: _action_box(self.settings) for a in self.possible_agents}
        self.state_space = _obs_box(self.settings, self._core.global_obs_dim)
        self._rng: np.random.Generator | None = None

    @property
    def core(self) -> TurbulenceBatch:
        """The batched LES core (a batch of one)."""
        return self._core

    def observation_space(self, agent: str) -> spaces.Box:
        try:
            return self._observation_spaces[agent]
        except KeyError:
            raise ValueError(f"unknown agent {agent!r}; accepted: agent_0 .. agent_{len(self.possible_agents) - 1}") from None

    def action_space(self, agent: str) -> spaces.Box:
        try:
            return self._action_spaces[agent]
        except KeyError:
            raise ValueError(f"unknown agent {agent!r}; accepted: agent_0 .. agent_{len(self.possible_agents) - 1}") from None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None or self._rng is None:
            self._rng, _ = seeding.np_random(seed)
        self._core.reset_system(0, self._rng, **_reset_kwargs(options, unknown="warn"))  # PettingZoo's API test
        self.agents = self.possible_agents[:]
        return self._observations(), self._infos()

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("Turbulence2DParallelEnv.step() called before reset() or after the episode ended")
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")
        missing = [a for a in self.agents if a not in actions]
        unknown = [a for a in actions if a not in self._action_spaces]
        if missing or unknown:
            raise ValueError(f"actions must hold exactly one action per live agent; missing {missing}, unknown {unknown}")
        values = []
        for agent in self.agents:
            a = _real_array(actions[agent], f"the action of {agent}")
            if a.shape not in ((), (1,)):
                raise ValueError(f"the action of {agent} must be a number or shape (1,), got shape {a.shape}")
            values.append(a.reshape(()))
        core = self._core
        coefficients = core.coefficients_from_actions(np.array(values)[None, :])
        result = core.step(coefficients)
        done = bool(result["truncated"][0] or result["terminated"][0])
        obs, infos = self._observations(), self._infos()
        reward = float(result["reward"][0])
        rewards = {a: reward for a in self.agents}
        terminations = {a: bool(result["terminated"][0]) for a in self.agents}
        truncations = {a: bool(result["truncated"][0]) for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def _observations(self) -> dict[str, np.ndarray]:
        obs = self._core.agent_observations()[0]
        return {a: obs[j] for j, a in enumerate(self.possible_agents)}

    def _infos(self) -> dict[str, dict[str, Any]]:
        info = self._core.info(0)
        coeffs = self._core.coefficients[0]
        return {a: {**info, "coefficient": float(coeffs[j])} for j, a in enumerate(self.possible_agents)}

    def state(self) -> np.ndarray:
        """The global observation (domain statistics and spectrum) of :class:`Turbulence2DGlobalEnv`."""
        return self._core.global_observations()[0]

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        return render_fields(self._core, 0)

    def close(self) -> None:
        self._core.model.close()


def _global_settings(kwargs: dict[str, Any]) -> TurbulenceSettings:
    if kwargs.get("agents_per_side", 1) != 1:
        raise ValueError(
            f"the global environments set one coefficient for the whole domain: agents_per_side must be 1, "
            f"got {kwargs['agents_per_side']!r} (use simrl/Turbulence2D-v0 for a lattice of agents)"
        )
    return TurbulenceSettings(**{**kwargs, "agents_per_side": 1})


class Turbulence2DGlobalEnv(gym.Env):
    """One global eddy-viscosity coefficient for the LES of forced 2-D turbulence (single agent).

    The same LES, reward, blow-up handling and arguments as :class:`Turbulence2DParallelEnv` (see it for
    the equations and the table of arguments), with a single agent: its coefficient ``c`` applies to the
    whole domain, ``nu_e = c Delta^3 |grad omega|(x, y)`` (Leith) or ``c Delta^2 |S|(x, y)`` (Smagorinsky),
    so the static Smagorinsky/Leith closures are constant policies of this environment.

    ## Action space
    ``Box(low, high, (1,), float32)``: ``C_L^3`` or ``C_s^2`` (default [0, 0.125]; [-0.125, 0.125] with
    ``backscatter=True``). Outside the box: clipped.

    ## Observation space
    ``Box(-obs_clip, obs_clip, (7 + K,), float32)``, K = floor((N-1)/3):

    | index    | feature                                                                          |
    |----------|----------------------------------------------------------------------------------|
    | 0 .. 5   | domain RMS of each local invariant (tr S^2, tr R^2, omega, tr S_H, tr S_H^2, tr R_H^2) / its filtered-DNS RMS |
    | 6        | log(flatness of omega / 3) (0 for a Gaussian field; the PDF tails)                |
    | 7 .. 6+K | (log Z(k) - <log Z_DNS(k)>) / std(log Z_DNS(k)), shells k = 1 .. K               |

    ## Reward, starting state, episode end, info
    As :class:`Turbulence2DParallelEnv` (one agent; ``info`` has no ``coefficient``, use
    ``mean_coefficient``).
    ``reset(options=...)``: ``{"snapshot_index": k}`` starts from filtered-DNS snapshot ``k`` (the random
    symmetry transform still applies when ``augment``); ``{"initial_field": omega_hat}`` from a given spectral
    (N, N//2+1) or physical (N, N) vorticity. Other keys raise a ValueError listing these.

    ## Example
    >>> import gymnasium as gym, simrl
    >>> env = gym.make("simrl/Turbulence2DGlobal-v0", n_les=32, episode_steps=50)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (17,)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> info["solver_steps"], terminated
    (10, False)
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 10}

    def __init__(self, render_mode: str | None = None, reference: Any = None, **kwargs: Any) -> None:
        self.settings = _global_settings(kwargs)
        self.render_mode = _check_render_mode(render_mode)
        self._core = TurbulenceBatch(self.settings, 1, reference)
        self.action_space = _action_box(self.settings)
        self.observation_space = _obs_box(self.settings, self._core.global_obs_dim)
        self._needs_reset = True

    @property
    def core(self) -> TurbulenceBatch:
        """The batched LES core (a batch of one)."""
        return self._core

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._core.reset_system(0, self.np_random, **_reset_kwargs(options))
        self._needs_reset = False
        return self._core.global_observations()[0], self._core.info(0)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("Turbulence2DGlobalEnv.step() called before reset() or after the episode ended")
        a = _real_array(action, "action")
        if a.shape not in ((), (1,)):
            raise ValueError(f"action must be a number or shape (1,), got shape {a.shape}")
        core = self._core
        result = core.step(core.coefficients_from_actions(a.reshape(1, 1)))
        terminated, truncated = bool(result["terminated"][0]), bool(result["truncated"][0])
        self._needs_reset = terminated or truncated
        return core.global_observations()[0], float(result["reward"][0]), terminated, truncated, core.info(0)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' to make()")
            return None
        return render_fields(self._core, 0)

    def close(self) -> None:
        self._core.model.close()


class Turbulence2DGlobalVectorEnv(VectorEnv):
    """``num_envs`` LES copies of :class:`Turbulence2DGlobalEnv` advanced together (one solver call per step).

    Same arguments as :class:`Turbulence2DGlobalEnv` plus ``num_envs`` and ``autoreset_mode``. Sub-environment
    i reset with seed s follows exactly the trajectory of a single ``Turbulence2DGlobalEnv`` reset with seed s;
    ``reset(seed=s)`` seeds sub-environment i with s + i (Gymnasium's convention), or pass a list of seeds.

    Autoreset: ``AutoresetMode.SAME_STEP`` (default; what SB3 expects): a finished sub-environment is reset
    inside the same ``step``; its last observation and info are in ``info["final_obs"]`` /
    ``info["final_info"]`` (masks ``_final_obs``, ``_final_info``). ``AutoresetMode.DISABLED``: finished
    sub-environments stay frozen (not integrated, zero reward, done flags repeated) until the next ``reset``.

    ``reset(options=...)``: ``"reset_mask"`` (bool (num_envs,)) resets only those sub-environments;
    ``"snapshot_index"`` (an int, or one per sub-environment) and ``"initial_field"`` as in the single env.

    >>> import gymnasium as gym, simrl
    >>> envs = gym.make_vec("simrl/Turbulence2DGlobal-v0", num_envs=3, n_les=32, episode_steps=50)
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (3, 17)
    """

    metadata = {"render_modes": list(RENDER_MODES), "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        reference: Any = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, (bool, np.bool_)) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.autoreset_mode = autoreset_mode
        self.settings = _global_settings(kwargs)
        self.render_mode = _check_render_mode(render_mode)
        self.num_envs = int(num_envs)
        self._core = TurbulenceBatch(self.settings, self.num_envs, reference)
        self.single_action_space = _action_box(self.settings)
        self.single_observation_space = _obs_box(self.settings, self._core.global_obs_dim)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._done = np.ones(self.num_envs, dtype=bool)
        self._final_terminated = np.zeros(self.num_envs, dtype=bool)
        self._final_truncated = np.zeros(self.num_envs, dtype=bool)

    @property
    def core(self) -> TurbulenceBatch:
        """The batched LES core (one copy per sub-environment)."""
        return self._core

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        seeds = vector_seeds(self, seed)
        options = reset_options(options, RESET_OPTIONS + ("reset_mask",))
        mask = reset_mask(options, self.num_envs)
        index = options.get("snapshot_index")
        indices = list(index) if isinstance(index, (list, tuple, np.ndarray)) else [index] * self.num_envs
        if len(indices) != self.num_envs:
            raise ValueError(f"options['snapshot_index'] must be an int or {self.num_envs} values, got {len(indices)}")
        for i in np.flatnonzero(mask):
            if seeds[i] is not None:  # only the sub-environments being reset are reseeded
                self._rngs[i] = seeding.np_random(seeds[i])[0]
            self._core.reset_system(int(i), self._rngs[i], options.get("initial_field"), indices[i])
        self._done[mask] = False
        self._final_terminated[mask] = False
        self._final_truncated[mask] = False
        return self._core.global_observations(), self._batch_info()

    def step(self, actions):
        actions = _real_array(actions, "actions")
        if actions.shape not in (self.action_space.shape, (self.num_envs,)):
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        core = self._core
        if not core.ever_reset.all():
            raise RuntimeError(
                f"Turbulence2DGlobalVectorEnv.step() called before sub-environments {np.flatnonzero(~core.ever_reset).tolist()} were reset"
            )
        active = ~self._done
        result = core.step(core.coefficients_from_actions(actions.reshape(self.num_envs, 1)), active)
        terminated, truncated = result["terminated"], result["truncated"]
        obs = core.global_observations()
        info = self._batch_info()
        obs, terminated, truncated, _ = apply_autoreset(
            self, obs, info, terminated, truncated, self._reset_rows, core.global_observations, self._batch_info
        )
        return obs, result["reward"].astype(np.float64), terminated, truncated, info

    def _reset_rows(self, rows: list[int]) -> None:
        """SAME_STEP autoreset of the finished sub-environments (each continues its own generator)."""
        for i in rows:
            self._core.reset_system(i, self._rngs[i])

    def _batch_info(self) -> dict[str, np.ndarray]:
        return masked_info(self._core.batch_info(), self.num_envs)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        return [render_fields(self._core, i) for i in range(self.num_envs)]

    def close_extras(self, **kwargs: Any) -> None:
        self._core.model.close()


def render_fields(core: TurbulenceBatch, i: int) -> np.ndarray:
    """Vorticity (left) and eddy viscosity of the last solver step (right) of copy ``i``, as RGB (H, W, 3)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    omega = core.vorticity(i)
    nu_e = core.nu_e[i]
    fig = Figure(figsize=(8, 4), dpi=80)
    canvas = FigureCanvasAgg(fig)
    sigma = core.targets.sigma_omega
    extent = (0.0, 2 * np.pi, 0.0, 2 * np.pi)
    ax = fig.add_subplot(121)
    im = ax.imshow(omega.T, origin="lower", cmap="RdBu_r", vmin=-3 * sigma, vmax=3 * sigma, extent=extent)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(f"vorticity, t = {core.state.time[i]:.3g}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax = fig.add_subplot(122)
    lim = max(float(np.abs(nu_e).max()), 1e-12)
    im = ax.imshow(nu_e.T, origin="lower", cmap="PuOr_r", vmin=-lim, vmax=lim, extent=extent)
    fig.colorbar(im, ax=ax, shrink=0.8)
    s = core.settings
    ax.plot(core.grid.x[core.agent_ix], core.grid.x[core.agent_iy], "k+", ms=6)
    ax.set_title(f"nu_e ({s.action}), agents +")
    ax.set_xlabel("x")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
