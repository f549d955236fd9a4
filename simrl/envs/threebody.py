"""``simrl/ThreeBody-v0``: choose the integrator's step parameter for the chaotic three-body problem."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from simrl.envs.threebody_core import (
    NUM_ENVS_DOMAIN,
    RESET_OPTIONS,
    ThreeBodyBatch,
    ThreeBodySettings,
    as_action_array,
    check_reset_options,
)
from simrl.envs.vector_common import apply_autoreset, check_autoreset_mode, masked_info, reset_mask, vector_seeds
from simrl.physics.nbody.integrators import integrator_spec
from simrl.physics.nbody.units import PAPER_UNITS

RENDER_MODES = ("rgb_array",)


def _spaces(settings: ThreeBodySettings) -> tuple[spaces.Space, spaces.Box]:
    if settings.action_type == "discrete":
        action_space: spaces.Space = spaces.Discrete(settings.n_actions)
    else:
        low, high = (math.log10(v) for v in settings.action_range)
        action_space = spaces.Box(low=np.float32(low), high=np.float32(high), shape=(1,), dtype=np.float32)
    observation_space = spaces.Box(-np.inf, np.inf, shape=(settings.obs_dim,), dtype=np.float32)
    return action_space, observation_space


class ThreeBodyEnv(gym.Env):
    """Pick the step parameter of an N-body integrator while a chaotic triple evolves.

    After Saz Ulibarrena & Portegies Zwart (2025), "Reinforcement Learning for Adaptive
    Time-Stepping in the Chaotic Gravitational Three-Body Problem" (arXiv:2502.12809):
    every environment step integrates the system over a fixed interval (0.1 yr) with the
    step parameter the agent chose; the agent trades energy error against cost.

    ## Units
    N-body units of AMUSE's ``nbody_to_si(3 MSun, 1 au)`` as in the paper: G = 1,
    1 length unit = 1 au, 1 mass unit = 3 M_sun, 1 time unit = 0.0919 yr,
    1 velocity unit = 51.6 km/s. ``info["sim_time"]`` is in years.

    ## Action space
    ``action_type="discrete"`` (default): ``Discrete(n_actions=10)``, action k selects the
    k-th of log-spaced parameter values over ``action_range``:

    | integrator | parameter                          | default range     |
    |------------|------------------------------------|-------------------|
    | hermite    | eta, dt = eta * t_coll (paper)     | 1e-4 .. 1e-1      |
    | leapfrog   | fixed step dt in years             | 1e-7 .. 1e-2 yr   |
    | ias15      | epsilon (PRS23 step criterion)     | 1e-12 .. 1e-3     |

    ``action_type="continuous"``: ``Box(log10 low, log10 high, (1,))``, log10 of the parameter.
    Actions outside the space raise ``ValueError``; so do strings (even numeric ones), complex
    numbers and bools, which are refused rather than converted. A Discrete action may be an
    integral float (``5.0``); any other float is refused.

    ## Observation space
    ``Box(-inf, inf, (obs_dim,), float32)``.

    ``obs_mode="markov"`` (default, 28 numbers for 3 bodies), scale-free: positions and
    velocities in virial units (r_v = M^2 / 2|E0|) squashed by sign(x) log(1+|x|) (3n + 3n);
    log10 of each pair separation / r_v, divided by 4 (n(n-1)/2); log10|dE/E0| / 16;
    last step's growth of log10|dE/E0| / 4; log10(1 + force evaluations of the last step) / 6;
    log10(1 + total force evaluations) / 8; step index / episode_steps; the last parameter's
    position in the log action range (1 before the first step); simulated time / episode time.

    ``obs_mode="paper"`` (13 numbers): the paper's state -- 2-D positions / 10, 2-D velocities
    (N-body units), -log10|dE/E0|. It does not carry the step index that the paper reward uses.

    ## Rewards
    ``reward="markov"`` (default): r_t = -(L_t - L_{t-1}) - cost_weight * (log10 C_t - log10 C_{t-1}),
    with L = log10 max(|dE/E0|, 1e-16) and C the total force evaluations since reset. The
    return telescopes to -(L_T + 16) - cost_weight * log10 C_T: a point on the log-log
    accuracy-cost front chosen by ``cost_weight`` (1 = one decade of error is worth one decade
    of cost). Both terms are functions of consecutive observations.

    ``reward="paper"``: the paper's reward 5, exactly
    R_i = -W0 * [log10(|dE|/1e-10) / |log10|dE||^3] / i + W2 / |log10 mu| (W0 = 3000, W2 = 4,
    i the step index, mu the parameter), weights ``paper_reward_weights = (W0, W1, W2)``.

    A numerical blow-up (non-finite state or the integrator's step cap) gives ``-blowup_penalty``.

    ## Starting state
    ``preset="paper"``: three 1 M_sun bodies in a plane; body 0 at the origin with
    v = (0, 10) km/s; body 1 at x ~ U[5, 20], y ~ U[0, 10] au with v = (-10, 0) km/s; body 2 at
    rest at x ~ U[-10, 0], y ~ U[5, 20] au; centre-of-mass frame. ``"pythagorean"`` (Burrau),
    ``"figure8"`` (Chenciner-Montgomery) and ``"random"`` (``preset_kwargs``: ``n_bodies``,
    ``mass_range``, ``virial_ratio``, ``planar``). Draws come from the environment's own
    generator, seeded by ``reset(seed=...)``; ``reset(options={"initial_conditions": (pos, vel, mass)})``
    starts from given N-body-unit arrays: real numbers with |positions|, |velocities| <= 1e100,
    masses in [1e-100, 1e100], a finite non-zero energy and a float32-finite observation, else a
    ``ValueError`` at reset that says so (the environment is unchanged). ``options`` must be a dict
    or None; ``"initial_conditions"`` is its only key (unknown keys raise ``ValueError``).

    ## Episode end
    Terminated when |dE/E0| > ``energy_error_limit`` (0.1, as in the paper). Truncated after
    ``episode_steps`` steps (100 = 10 yr for training; the paper evaluates 300 = 30 yr) or on a
    numerical blow-up, with ``info["blowup"] = True``: a non-finite state, the integrator's step
    cap, or a state whose observation would not be finite in float32 (e.g. an escaper at 1e300
    virial radii). The state is then put back to the last representable one, so observations and
    rewards are always finite.

    ## Info
    ``energy_error`` (|dE/E0| since reset), ``force_evaluations`` (this step),
    ``total_force_evaluations``, ``sim_time`` (yr), ``wall_time`` (s, this step's kernel; 0.0
    unless ``measure_wall_time=True``), ``total_wall_time``, ``parameter`` (value used), ``step_index``, ``blowup``,
    ``integrator_status`` (0 ok, 1 step cap, 2 non-finite). ``env.unwrapped.state`` holds
    positions, velocities, masses and time.

    ## Arguments
    Each is checked at construction against its domain (``threebody_core.ARGUMENT_DOMAINS``): a
    wrong type raises ``TypeError``, a value outside the domain ``ValueError``, both naming the
    argument and what is accepted. Unknown argument names raise ``TypeError``.

    | argument | default | meaning (accepted values) |
    |---|---|---|
    | integrator | "hermite" | "hermite", "ias15" or "leapfrog" |
    | hermite_criterion | "collision_time" | or "aarseth" |
    | preset, preset_kwargs | "paper", {} | initial conditions; only "random" takes preset_kwargs: ``n_bodies`` (2..100), ``mass_range`` (0 < low <= high, in [1e-100, 1e100]), ``virial_ratio`` ([0, 1e6], not within 1e-6 of 1), ``planar`` (bool) |
    | obs_mode | "markov" | "markov" or "paper" |
    | reward | "markov" | "markov" or "paper" |
    | action_type | "discrete" | "discrete" or "continuous" |
    | n_actions | 10 | 2..1000 log-spaced values (1000 already spaces three decades by 0.7 %) |
    | action_range | per integrator | None or (low, high) in [1e-300, 1e300], high >= 1.001 low |
    | step_interval_yr | 0.1 | simulated time per environment step, (0, 1e6] yr |
    | episode_steps | 100 | steps before truncation, 1..1e9 |
    | energy_error_limit | 0.1 | termination threshold on |dE/E0|, positive finite |
    | cost_weight | 1.0 | weight of log cost in the Markov reward, [0, 1e6] |
    | paper_reward_weights | (3000, 0, 4) | (W0, W1, W2), each in [0, 1e6] |
    | blowup_penalty | 100.0 | reward -blowup_penalty on a blow-up, [0, 1e6] |
    | max_integrator_steps | 2,000,000 | integrator step cap per environment step, 1..1e9 |
    | parallel | False | Numba ``prange`` over systems (measure: often slower on 2 cores); a bool |
    | measure_wall_time | False | True measures the kernel's wall time into ``info["wall_time"]`` / ``"total_wall_time"`` (otherwise 0.0); off by default because Gymnasium's ``check_env`` compares the infos of two identical steps; a bool |
    | render_mode | None | "rgb_array" draws the orbits |

    ## Example
    >>> import gymnasium as gym, simrl
    >>> env = gym.make("simrl/ThreeBody-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(6)  # eta = 1e-2
    >>> info["total_force_evaluations"] > 0
    True
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 10}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self.settings = ThreeBodySettings.from_kwargs(kwargs)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"unknown render_mode {render_mode!r}; accepted: {list(RENDER_MODES)} or None")
        self.render_mode = render_mode
        self.action_space, self.observation_space = _spaces(self.settings)
        self._batch = ThreeBodyBatch(self.settings, 1)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = check_reset_options(options)
        initial_conditions = options.get("initial_conditions")
        if initial_conditions is not None:
            self._batch.check_initial_conditions(initial_conditions)  # before anything changes
        super().reset(seed=seed)
        self._batch.reset_system(0, self.np_random, initial_conditions)
        self._needs_reset = False
        return self._batch.observations()[0], self._batch.info(0)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("ThreeBodyEnv.step() called before reset() or after the episode ended")
        array = as_action_array(action)  # strings, complex numbers, bools: refused, never converted
        with np.errstate(invalid="ignore", over="ignore"):  # NaN / huge floats fail the check below
            inside = self.action_space.contains(array.astype(self.action_space.dtype))
        if not inside:
            raise ValueError(f"action {action!r} is outside the action space {self.action_space}")
        batch = self._batch
        parameters = batch.parameters_from_actions(array)
        result = batch.step(parameters)
        info = batch.info(0)
        info["wall_time"] = float(result["wall_time"][0])
        info["blowup"] = bool(result["blowup"][0])
        info["integrator_status"] = int(result["status"][0])
        terminated, truncated = bool(result["terminated"][0]), bool(result["truncated"][0])
        self._needs_reset = terminated or truncated
        return batch.observations()[0], float(result["reward"][0]), terminated, truncated, info

    @property
    def state(self) -> dict[str, np.ndarray | float]:
        """Positions, velocities (N-body units), masses and time (N-body and years) of the system."""
        b = self._batch
        return {
            "positions": b.pos[0].copy(),
            "velocities": b.vel[0].copy(),
            "masses": b.mass[0].copy(),
            "time": float(b.time[0]),
            "time_yr": PAPER_UNITS.nbody_to_years(float(b.time[0])),
        }

    def parameter_values(self) -> np.ndarray:
        """The parameter value of each discrete action (user units)."""
        return self.settings.parameter_values

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' to make()")
            return None
        return render_orbits(self._batch.trails[0], self._batch.mass[0], self.settings.integrator)


class ThreeBodyVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`ThreeBodyEnv` advanced by one Numba kernel call per step.

    Same arguments as :class:`ThreeBodyEnv` plus ``num_envs`` (an integer 1..100000; bools are
    refused) and ``autoreset_mode``, except that ``measure_wall_time`` defaults to True here (the
    evaluation tables and benchmarks read ``info["wall_time"]`` / ``"total_wall_time"``).
    Sub-environment i reset with seed s follows exactly the trajectory of a single
    ``ThreeBodyEnv`` reset with seed s; ``reset(seed=s)`` seeds sub-environment i with s + i
    (Gymnasium's convention), or pass a list of seeds.

    Autoreset: ``AutoresetMode.SAME_STEP`` (default; what SB3 expects): a finished
    sub-environment is reset inside the same ``step`` and its last observation and info are
    in ``info["final_obs"]`` / ``info["final_info"]`` (masks ``_final_obs``, ``_final_info``).
    ``AutoresetMode.DISABLED``: finished sub-environments stay frozen (not integrated, zero
    reward, done flags repeated) until the next ``reset`` -- used to evaluate one episode
    per seed. Info values are arrays of length ``num_envs``.

    ``reset(options={"reset_mask": mask})`` resets only the sub-environments where ``mask`` is
    True; ``options={"initial_conditions": (pos, vel, mass)}`` starts every reset one from them
    (checked before any sub-environment changes). Other option keys raise ``ValueError``.

    >>> import gymnasium as gym, simrl
    >>> envs = gym.make_vec("simrl/ThreeBody-v0", num_envs=16)
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (16, 28)
    """

    metadata = {"render_modes": list(RENDER_MODES), "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        **kwargs: Any,
    ) -> None:
        num_envs = NUM_ENVS_DOMAIN.check("num_envs", num_envs)
        autoreset_mode = check_autoreset_mode(autoreset_mode)
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"unknown render_mode {render_mode!r}; accepted: {list(RENDER_MODES)} or None")
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.autoreset_mode = autoreset_mode
        # Wall times are measured by default here (evaluation tables and benchmarks read them);
        # the single environment leaves them opt-in, so that it passes Gymnasium's check_env.
        kwargs.setdefault("measure_wall_time", True)
        self.settings = ThreeBodySettings.from_kwargs(kwargs, owner="simrl/ThreeBody-v0 (vector)")
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_action_space, self.single_observation_space = _spaces(self.settings)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._batch = ThreeBodyBatch(self.settings, self.num_envs)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._done = np.ones(self.num_envs, dtype=bool)
        self._ever_reset = np.zeros(self.num_envs, dtype=bool)
        # DISABLED mode: the done flags a finished sub-environment keeps repeating.
        self._final_terminated = np.zeros(self.num_envs, dtype=bool)
        self._final_truncated = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        options = check_reset_options(options, (*RESET_OPTIONS, "reset_mask"))
        mask = reset_mask(options, self.num_envs)
        initial_conditions = options.get("initial_conditions")
        if initial_conditions is not None:
            self._batch.check_initial_conditions(initial_conditions)  # before anything changes
        seeds = vector_seeds(self, seed)
        for i in np.flatnonzero(mask):
            # Only the sub-environments being reset are reseeded.
            if seeds[i] is not None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
            self._batch.reset_system(int(i), self._rngs[i], initial_conditions)
        self._done[mask] = False
        self._ever_reset |= mask
        self._final_terminated[mask] = False
        self._final_truncated[mask] = False
        return self._batch.observations(), self._batch_info()

    def step(self, actions):
        actions = as_action_array(actions)  # strings, complex numbers, bools: refused, never converted
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        if not self._ever_reset.all():
            raise RuntimeError(
                f"ThreeBodyVectorEnv.step() called before sub-environments {np.flatnonzero(~self._ever_reset).tolist()} were reset"
            )
        batch = self._batch
        active = ~self._done
        # Frozen (DISABLED-mode, finished) sub-environments are not integrated: their actions are ignored.
        result = batch.step(batch.parameters_from_actions(actions), active)
        terminated, truncated = result["terminated"], result["truncated"]
        obs = batch.observations()
        info = self._batch_info()
        info["wall_time"] = result["wall_time"]
        info["blowup"] = result["blowup"]
        info["integrator_status"] = result["status"]
        obs, terminated, truncated, _ = apply_autoreset(
            self, obs, info, terminated, truncated, self._reset_rows, batch.observations, self._batch_info
        )
        return obs, result["reward"].astype(np.float64), terminated, truncated, info

    def _reset_rows(self, rows: list[int]) -> None:
        """SAME_STEP autoreset of the finished sub-environments (each continues its own generator)."""
        for i in rows:
            self._batch.reset_system(i, self._rngs[i])

    def _batch_info(self) -> dict[str, np.ndarray]:
        return masked_info(self._batch.batch_info(), self.num_envs)

    def parameter_values(self) -> np.ndarray:
        """The parameter value of each discrete action (user units)."""
        return self.settings.parameter_values

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        return [render_orbits(t, m, self.settings.integrator) for t, m in zip(self._batch.trails, self._batch.mass)]


def render_orbits(trail: list[np.ndarray], masses: np.ndarray, integrator: str) -> np.ndarray:
    """Draw the x-y tracks recorded at every environment step as an RGB array (H, W, 3)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    track = np.asarray(trail)  # (steps + 1, n, 3)
    fig = Figure(figsize=(4, 4), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    for k in range(track.shape[1]):
        line = ax.plot(track[:, k, 0], track[:, k, 1], lw=1)[0]
        ax.plot(track[-1, k, 0], track[-1, k, 1], "o", color=line.get_color(), ms=3 + 3 * masses[k] / masses.max())
    ax.set_xlabel("x [au]")
    ax.set_ylabel("y [au]")
    ax.set_title(f"{integrator_spec(integrator).name}: {len(track) - 1} steps")
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
