"""The batched simulation core shared by ``ThreeBodyEnv`` and ``ThreeBodyVectorEnv``.

One :class:`ThreeBodyBatch` holds B independent N-body systems as
structure-of-arrays and advances all of them with a single Numba kernel call
per environment step. The single environment is a batch of one, so both faces
run exactly the same physics, observation and reward code.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simrl.physics.nbody import STATUS_OK
from simrl.physics.nbody.forces import batch_total_energy
from simrl.physics.nbody.initial_conditions import PRESETS, sample_initial_conditions
from simrl.physics.nbody.integrators import get_kernel, hermite_criterion_code, integrator_spec
from simrl.physics.nbody.units import PAPER_UNITS

OBS_MODES = ("markov", "paper")
REWARDS = ("markov", "paper")
ACTION_TYPES = ("discrete", "continuous")

#: Default action ranges per integrator, in the parameter's own units
#: (Hermite eta and the leapfrog step in years follow the paper; IAS15 epsilon is ours).
DEFAULT_ACTION_RANGES: dict[str, tuple[float, float]] = {
    "hermite": (1e-4, 1e-1),
    "leapfrog": (1e-7, 1e-2),  # years, converted to N-body time inside
    "ias15": (1e-12, 1e-3),
}

#: Floor on |dE/E0| before taking logarithms (double precision round-off level).
ENERGY_ERROR_FLOOR = 1e-16


def _choice(name: str, value: str, accepted: tuple[str, ...]) -> str:
    if value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; accepted: {list(accepted)}")
    return value


@dataclass
class ThreeBodySettings:
    """Validated environment arguments (see ``ThreeBodyEnv`` for their meaning)."""

    integrator: str = "hermite"
    preset: str = "paper"
    preset_kwargs: dict[str, Any] = field(default_factory=dict)
    obs_mode: str = "markov"
    reward: str = "markov"
    action_type: str = "discrete"
    n_actions: int = 10
    action_range: tuple[float, float] | None = None
    step_interval_yr: float = 0.1
    episode_steps: int = 100
    energy_error_limit: float = 0.1
    cost_weight: float = 1.0
    paper_reward_weights: tuple[float, float, float] = (3000.0, 0.0, 4.0)
    blowup_penalty: float = 100.0
    max_integrator_steps: int = 2_000_000
    hermite_criterion: str = "collision_time"
    parallel: bool = False
    measure_wall_time: bool = True

    def __post_init__(self) -> None:
        spec = integrator_spec(self.integrator)
        hermite_criterion_code(self.hermite_criterion)
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; accepted: {sorted(PRESETS)}")
        _choice("obs_mode", self.obs_mode, OBS_MODES)
        _choice("reward", self.reward, REWARDS)
        _choice("action_type", self.action_type, ACTION_TYPES)
        if self.action_range is None:
            self.action_range = DEFAULT_ACTION_RANGES[spec.name]
        low, high = (float(v) for v in self.action_range)
        if not (low > 0 and high > low and math.isfinite(high)):
            raise ValueError(
                f"action_range must be two finite positive numbers low < high (values of {spec.parameter_name}), "
                f"got {self.action_range!r}"
            )
        self.action_range = (low, high)
        for name in ("step_interval_yr", "energy_error_limit"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("episode_steps", "n_actions", "max_integrator_steps"):
            value = getattr(self, name)
            if int(value) != value or value < 1 or (name == "n_actions" and value < 2):
                raise ValueError(f"{name} must be a positive integer (n_actions >= 2), got {value!r}")
        if self.cost_weight < 0:
            raise ValueError(f"cost_weight must be >= 0, got {self.cost_weight!r}")
        if self.obs_mode == "paper" and self.preset_kwargs.get("n_bodies", 3) != 3:
            raise ValueError("obs_mode='paper' describes exactly 3 bodies; use obs_mode='markov' for other n_bodies")

    @property
    def n_bodies(self) -> int:
        return int(self.preset_kwargs.get("n_bodies", 3)) if self.preset == "random" else 3

    @property
    def parameter_values(self) -> np.ndarray:
        """The Discrete action grid: log-spaced parameter values (in the parameter's user units)."""
        low, high = self.action_range
        return np.logspace(math.log10(low), math.log10(high), self.n_actions)

    @property
    def parameter_to_nbody(self) -> float:
        """Factor from the user's parameter units to N-body units (years to N-body time for leapfrog)."""
        return 1.0 / PAPER_UNITS.time_yr if integrator_spec(self.integrator).parameter_is_time else 1.0

    @property
    def obs_dim(self) -> int:
        if self.obs_mode == "paper":
            return 13
        n = self.n_bodies
        return 6 * n + n * (n - 1) // 2 + 7


class ThreeBodyBatch:
    """B independent gravitational systems stepped together (structure of arrays).

    Units: N-body units of :data:`~simrl.physics.nbody.units.PAPER_UNITS`
    (1 length unit = 1 au, 1 mass unit = 3 M_sun, G = 1, 1 time unit = 0.0919 yr).
    """

    def __init__(self, settings: ThreeBodySettings, num_systems: int) -> None:
        self.settings = settings
        self.num_systems = b = int(num_systems)
        n = settings.n_bodies
        self.interval = PAPER_UNITS.years_to_nbody(settings.step_interval_yr)
        self._advance = get_kernel(settings.integrator, settings.parallel, settings.hermite_criterion)
        self.pos = np.zeros((b, n, 3))
        self.vel = np.zeros((b, n, 3))
        self.mass = np.ones((b, n))
        self.time = np.zeros(b)
        self.energy0 = np.zeros(b)
        self.step_state = np.zeros(b)
        self.step_index = np.zeros(b, dtype=np.int64)
        self.energy_error = np.zeros(b)
        self.log_error = np.full(b, math.log10(ENERGY_ERROR_FLOOR))
        self.last_log_growth = np.zeros(b)
        self.last_force_evals = np.zeros(b, dtype=np.int64)
        self.total_force_evals = np.zeros(b, dtype=np.int64)
        self.last_parameter = np.full(b, np.nan)
        self.total_wall_time = np.zeros(b)
        self.length_scale = np.ones(b)
        self.velocity_scale = np.ones(b)
        self.trails: list[list[np.ndarray]] = [[] for _ in range(b)]
        # Scratch arrays reused by every step (the kernels write into them).
        self._t_end = np.zeros(b)
        self._param = np.zeros(b)
        self._force_evals = np.zeros(b, dtype=np.int64)
        self._status = np.zeros(b, dtype=np.int64)
        self._energy = np.zeros(b)
        self._pos_before = np.zeros_like(self.pos)
        self._vel_before = np.zeros_like(self.vel)
        self._time_before = np.zeros(b)

    # ------------------------------------------------------------------ reset
    def reset_system(self, i: int, rng: np.random.Generator, initial_conditions: Any = None) -> None:
        """Start system ``i`` from fresh initial conditions drawn from ``rng`` (or given ones)."""
        s = self.settings
        if initial_conditions is None:
            pos, vel, mass = sample_initial_conditions(s.preset, rng, **s.preset_kwargs)
        else:
            pos, vel, mass = _validate_initial_conditions(initial_conditions, s.n_bodies)
        self.pos[i], self.vel[i], self.mass[i] = pos, vel, mass
        self.time[i] = 0.0
        self.step_state[i] = 0.0
        self.step_index[i] = 0
        self.energy_error[i] = 0.0
        self.log_error[i] = math.log10(ENERGY_ERROR_FLOOR)
        self.last_log_growth[i] = 0.0
        self.last_force_evals[i] = 0
        self.total_force_evals[i] = 0
        self.last_parameter[i] = np.nan
        self.total_wall_time[i] = 0.0
        batch_total_energy(self.pos[i : i + 1], self.vel[i : i + 1], self.mass[i : i + 1], self._energy[i : i + 1])
        self.energy0[i] = self._energy[i]
        if not math.isfinite(self.energy0[i]) or self.energy0[i] == 0.0:
            raise ValueError(f"initial conditions give a non-finite or zero total energy ({self.energy0[i]!r})")
        # Virial-radius scale r_v = M^2 / (2|E0|) (G = 1) and the matching velocity scale,
        # so that the Markov observation is independent of the system's size and mass.
        total_mass = float(mass.sum())
        self.length_scale[i] = total_mass**2 / (2.0 * abs(self.energy0[i]))
        self.velocity_scale[i] = math.sqrt(total_mass / self.length_scale[i])
        self.trails[i] = [self.pos[i].copy()]

    # ------------------------------------------------------------------ step
    def parameters_from_actions(self, actions: np.ndarray) -> np.ndarray:
        """Map a batch of actions to the step parameter in user units (validated)."""
        s = self.settings
        actions = np.asarray(actions)
        if s.action_type == "discrete":
            flat = actions.reshape(self.num_systems)
            if not np.issubdtype(flat.dtype, np.integer):
                if not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)):
                    raise ValueError(f"discrete actions must be integers in [0, {s.n_actions - 1}], got {actions!r}")
                flat = flat.astype(np.int64)
            if np.any(flat < 0) or np.any(flat >= s.n_actions):
                raise ValueError(f"action out of range: accepted integers 0..{s.n_actions - 1}, got {actions!r}")
            return s.parameter_values[flat]
        low, high = (math.log10(v) for v in s.action_range)
        flat = actions.astype(np.float64).reshape(self.num_systems)
        if not np.all(np.isfinite(flat)) or np.any(flat < low - 1e-6) or np.any(flat > high + 1e-6):
            raise ValueError(
                f"continuous action (log10 of {integrator_spec(s.integrator).parameter_name}) must lie in "
                f"[{low:.4g}, {high:.4g}], got {actions!r}"
            )
        return 10.0 ** np.clip(flat, low, high)

    def step(self, parameters: np.ndarray, active: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Advance every active system by one interval with the given parameters (user units).

        Returns per-system arrays: ``reward``, ``terminated``, ``truncated``, ``blowup``,
        ``status``, ``wall_time``.
        """
        s = self.settings
        b = self.num_systems
        active = np.ones(b, dtype=bool) if active is None else active
        self._t_end[:] = np.where(active, self.time + self.interval, self.time)
        self._param[:] = parameters * s.parameter_to_nbody
        # Kept so that a system whose state turns non-finite can be put back to its last finite
        # state: observations must never carry NaN into a learner's bootstrap target.
        self._pos_before[:] = self.pos
        self._vel_before[:] = self.vel
        self._time_before[:] = self.time
        start = _time.perf_counter()
        self._advance(
            self.pos, self.vel, self.mass, self.time, self._t_end, self._param,
            self.step_state, s.max_integrator_steps, self._force_evals, self._status,
        )  # fmt: skip
        wall = (_time.perf_counter() - start) / max(int(active.sum()), 1) if s.measure_wall_time else 0.0
        batch_total_energy(self.pos, self.vel, self.mass, self._energy)

        prev_log_error = self.log_error.copy()
        prev_total = self.total_force_evals.copy()
        rel_error = np.abs((self._energy - self.energy0) / self.energy0)
        finite = np.isfinite(rel_error) & np.all(np.isfinite(self.pos), axis=(1, 2)) & np.all(np.isfinite(self.vel), axis=(1, 2))
        if not finite.all():
            broken = ~finite
            self.pos[broken] = self._pos_before[broken]
            self.vel[broken] = self._vel_before[broken]
            self.time[broken] = self._time_before[broken]
        blowup = active & ((self._status != STATUS_OK) | ~finite)
        log_error = np.log10(np.maximum(np.where(finite, rel_error, 1.0), ENERGY_ERROR_FLOOR))

        self.step_index += active
        self.last_parameter = np.where(active, parameters, self.last_parameter)
        self.last_force_evals = np.where(active, self._force_evals, 0)
        self.total_force_evals += self.last_force_evals
        self.last_log_growth = np.where(active, log_error - prev_log_error, 0.0)
        self.log_error = np.where(active, log_error, self.log_error)
        self.energy_error = np.where(active, np.where(finite, rel_error, np.inf), self.energy_error)
        self.total_wall_time += np.where(active, wall, 0.0)
        for i in np.flatnonzero(active & finite):
            self.trails[i].append(self.pos[i].copy())

        if s.reward == "paper":
            reward = self._paper_reward(np.where(finite, rel_error, 1.0), parameters)
        else:
            # Telescoping trade-off (ours): the episode return is
            #   -(log10|dE_T| - log10 floor) - cost_weight * log10(total force evaluations),
            # i.e. a scalarisation of the log-log accuracy-cost front that the evaluation plots.
            # Every term is a function of the previous and current observation: Markov.
            cost_growth = np.log10(np.maximum(self.total_force_evals, 1)) - np.log10(np.maximum(prev_total, 1))
            reward = -(log_error - prev_log_error) - s.cost_weight * cost_growth
        terminated = active & ~blowup & (rel_error > s.energy_error_limit)
        truncated = active & (blowup | (self.step_index >= s.episode_steps)) & ~terminated
        reward = np.where(blowup, -s.blowup_penalty, reward)
        reward = np.where(active, reward, 0.0)
        return {
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            "blowup": blowup,
            "status": self._status.copy(),
            "wall_time": np.where(active, wall, 0.0),
        }

    def _paper_reward(self, rel_error: np.ndarray, parameters: np.ndarray) -> np.ndarray:
        """:func:`paper_reward` for every system; as in the paper's code, the first step returns 0.

        A non-finite value (the formula diverges at |dE| = 1) is replaced by ``-blowup_penalty``.
        """
        s = self.settings
        reward = paper_reward(rel_error, parameters, self.step_index, self.last_log_growth, s.paper_reward_weights)
        reward = np.where(np.isfinite(reward), reward, -s.blowup_penalty)
        return np.where(self.step_index == 1, 0.0, reward)

    # ------------------------------------------------------------------ observations
    def observations(self) -> np.ndarray:
        """Observation of every system, float32, shape (B, obs_dim)."""
        if self.settings.obs_mode == "paper":
            return self._paper_observations()
        return self._markov_observations()

    def _paper_observations(self) -> np.ndarray:
        # Paper's "cart" state: 2-D positions / 10 (N-body units of nbody_to_si(3 MSun, 1 au)),
        # 2-D velocities in N-body units, -log10|dE| (code adds 1e-20).
        b = self.num_systems
        pos = self.pos[:, :, :2].reshape(b, -1) / 10.0
        vel = self.vel[:, :, :2].reshape(b, -1)
        neg_log_error = -np.log10(np.minimum(self.energy_error, 1e300) + 1e-20)
        return np.concatenate([pos, vel, neg_log_error[:, None]], axis=1).astype(np.float32)

    def _markov_observations(self) -> np.ndarray:
        s = self.settings
        b = self.num_systems
        # Scale-free coordinates (virial units), squashed with sign(x) log(1 + |x|) so that
        # escapers and tight binaries stay in a range a network can use.
        pos = self.pos / self.length_scale[:, None, None]
        vel = self.vel / self.velocity_scale[:, None, None]
        squash = lambda x: np.sign(x) * np.log1p(np.abs(x))  # noqa: E731
        n = self.pos.shape[1]
        iu, ju = np.triu_indices(n, k=1)
        separations = np.linalg.norm(self.pos[:, iu] - self.pos[:, ju], axis=-1) / self.length_scale[:, None]
        low, high = (math.log10(v) for v in s.action_range)
        last_param = np.where(np.isnan(self.last_parameter), 10.0**high, self.last_parameter)
        features = [
            squash(pos).reshape(b, -1),
            squash(vel).reshape(b, -1),
            np.log10(np.maximum(separations, 1e-12)) / 4.0,
            (self.log_error / 16.0)[:, None],  # log10|dE/E0|, in [-1, ~0]
            np.clip(self.last_log_growth / 4.0, -4.0, 4.0)[:, None],
            (np.log10(1.0 + self.last_force_evals) / 6.0)[:, None],
            (np.log10(1.0 + self.total_force_evals) / 8.0)[:, None],
            (self.step_index / s.episode_steps)[:, None],
            ((np.log10(last_param) - low) / (high - low))[:, None],
            (self.time * PAPER_UNITS.time_yr / (s.episode_steps * s.step_interval_yr))[:, None],
        ]
        return np.concatenate(features, axis=1).astype(np.float32)

    # ------------------------------------------------------------------ info
    def batch_info(self) -> dict[str, np.ndarray]:
        """The ``info`` values of every system as arrays (see ``ThreeBodyEnv``), with the
        per-step keys (``wall_time``, ``blowup``, ``integrator_status``) at their reset values."""
        b = self.num_systems
        return {
            "energy_error": self.energy_error.copy(),
            "force_evaluations": self.last_force_evals.copy(),
            "total_force_evaluations": self.total_force_evals.copy(),
            "sim_time": self.time * PAPER_UNITS.time_yr,
            "wall_time": np.zeros(b),
            "total_wall_time": self.total_wall_time.copy(),
            "parameter": self.last_parameter.copy(),
            "step_index": self.step_index.copy(),
            "blowup": np.zeros(b, dtype=bool),
            "integrator_status": np.zeros(b, dtype=np.int64),
        }

    def info(self, i: int) -> dict[str, Any]:
        """The ``info`` dict of system ``i``: :meth:`batch_info` row ``i`` as Python scalars."""
        return {key: values[i].item() for key, values in self.batch_info().items()}


def paper_reward(
    rel_error: np.ndarray,
    parameters: np.ndarray,
    step_index: np.ndarray,
    last_log_growth: np.ndarray,
    weights: tuple[float, float, float] = (3000.0, 0.0, 4.0),
) -> np.ndarray:
    """The paper's reward 5 (Saz Ulibarrena & Portegies Zwart 2025, code ``_calculate_reward``):

    R_i = -W0 * [log10(|dE|/1e-10) / |log10|dE||^3] / i - W1 * |growth| + W2 / |log10 mu|

    with the paper code's +1e-20 on |dE|, i the 1-based step index and mu the parameter value.
    W1 (the change-in-error term) is kept for completeness; the paper set it to 0.
    """
    w0, w1, w2 = weights
    err = np.asarray(rel_error, dtype=np.float64) + 1e-20
    i = np.maximum(step_index, 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        energy_term = -w0 * (np.log10(err / 1e-10) / np.abs(np.log10(err)) ** 3) / i
        return energy_term - w1 * np.abs(last_log_growth) + w2 / np.abs(np.log10(parameters))


def _validate_initial_conditions(initial_conditions: Any, n_bodies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check user-given ``(pos, vel, mass)``: shapes, finiteness, positive masses."""
    try:
        pos, vel, mass = (np.asarray(a, dtype=np.float64) for a in initial_conditions)
    except (TypeError, ValueError):
        raise ValueError("initial_conditions must be a tuple (positions (n, 3), velocities (n, 3), masses (n,))") from None
    if pos.shape != (n_bodies, 3) or vel.shape != (n_bodies, 3) or mass.shape != (n_bodies,):
        raise ValueError(
            f"initial_conditions shapes must be ({n_bodies}, 3), ({n_bodies}, 3), ({n_bodies},); "
            f"got {pos.shape}, {vel.shape}, {mass.shape}"
        )
    for name, arr in (("positions", pos), ("velocities", vel), ("masses", mass)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"initial_conditions {name} contain NaN or inf: {arr!r}")
    if np.any(mass <= 0):
        raise ValueError(f"masses must be positive, got {mass!r}")
    return pos.copy(), vel.copy(), mass.copy()
