"""The batched simulation core shared by ``ThreeBodyEnv`` and ``ThreeBodyVectorEnv``.

One :class:`ThreeBodyBatch` holds B independent N-body systems as
structure-of-arrays and advances all of them with a single Numba kernel call
per environment step. The single environment is a batch of one, so both faces
run exactly the same physics, observation and reward code.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from typing import Any

import numpy as np

from simrl.envs.validation import real_array, short_repr
from simrl.physics.nbody import STATUS_OK
from simrl.physics.nbody.forces import batch_total_energy
from simrl.physics.nbody.initial_conditions import PRESETS, sample_initial_conditions
from simrl.physics.nbody.integrators import HERMITE_CRITERIA, INTEGRATORS, get_kernel, integrator_spec
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


#: Largest ``n_actions``: a log grid of 1000 values spaces the default three decades of
#: ``action_range`` by 0.7 %, far finer than any integrator's response, while the grid (and a
#: DQN's output layer) stays small. (10**12 used to be accepted and ran out of memory.)
MAX_N_ACTIONS = 1000

#: Largest ``n_bodies`` of ``preset="random"`` (the observation has O(n^2) pair separations
#: and every integrator step costs O(n^2) force terms).
MAX_BODIES = 100

#: Bound on the reward weights and the blow-up penalty, so that no reward term can overflow.
MAX_REWARD_WEIGHT = 1e6

#: Accepted magnitudes of user-given initial conditions (N-body units): |positions| and
#: |velocities| at most MAX_COORDINATE, masses in [MIN_MASS, MAX_MASS].
MAX_COORDINATE = 1e100
MIN_MASS = 1e-100
MAX_MASS = 1e100

#: Largest finite float32: an observation feature beyond it would be inf in the float32 observation.
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_show = short_repr


def _is_real(value: Any) -> bool:
    """A real number (Python or NumPy; bools and numeric strings are not)."""
    return isinstance(value, (Real, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _to_float(value: Any) -> float:
    """``float(value)`` of a real number, inf for integers too large for a float."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class Domain:
    """The accepted values of one argument: ``check(name, value)`` returns the normalised value or
    raises ``TypeError`` (wrong type) / ``ValueError`` (right type, outside the domain); both name
    the argument and what is accepted (``describe()``)."""

    def describe(self) -> str:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def check(self, name: str, value: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _fail(self, name: str, value: Any, error: type[Exception] = ValueError) -> Exception:
        return error(f"{name} must be {self.describe()}, got {_show(value)}")


@dataclass(frozen=True)
class Choice(Domain):
    """One of a few strings."""

    choices: tuple[str, ...]

    def describe(self) -> str:
        return f"one of {list(self.choices)}"

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, one of {list(self.choices)}; got {_show(value)}")
        if value not in self.choices:
            raise ValueError(f"unknown {name} {value!r}; accepted: {list(self.choices)}")
        return value


@dataclass(frozen=True)
class Flag(Domain):
    """``True`` or ``False`` (a Python or NumPy bool; no other object by its truthiness)."""

    def describe(self) -> str:
        return "True or False"

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise self._fail(name, value, TypeError)
        return bool(value)


@dataclass(frozen=True)
class Integer(Domain):
    """An integer in ``[low, high]`` (integral floats such as ``10.0`` are accepted; bools are not)."""

    low: int
    high: int

    def describe(self) -> str:
        return f"a positive integer{'' if self.low == 1 else f' >= {self.low}'} (at most {self.high})"

    def check(self, name: str, value: Any) -> int:
        if not _is_real(value):
            raise self._fail(name, value, TypeError)
        if isinstance(value, (Integral, np.integer)):
            ok = self.low <= value <= self.high
        else:
            v = _to_float(value)
            ok = math.isfinite(v) and v.is_integer() and self.low <= v <= self.high
        if not ok:
            raise self._fail(name, value)
        return int(value)


@dataclass(frozen=True)
class Number(Domain):
    """A finite real number in ``[low, high]`` (``(low, high]`` with ``low_open``), optionally
    excluding the values within ``exclude_width`` of ``exclude``."""

    low: float
    high: float
    low_open: bool = False
    exclude: float | None = None
    exclude_width: float = 0.0
    reason: str = ""
    text: str = ""  # overrides the generated description

    def describe(self) -> str:
        if self.text:
            return self.text
        if self.low == 0 and self.low_open:
            text = "a positive finite number"
        elif self.low == 0:
            text = "a finite number >= 0"
        else:
            text = f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        if math.isfinite(self.high):
            text += f" (at most {self.high:g})"
        if self.exclude is not None:
            text += f", not within {self.exclude_width:g} of {self.exclude:g}{self.reason}"
        return text

    def contains(self, v: float) -> bool:
        return (
            math.isfinite(v)
            and (v > self.low if self.low_open else v >= self.low)
            and v <= self.high
            and (self.exclude is None or abs(v - self.exclude) >= self.exclude_width)
        )

    def check(self, name: str, value: Any) -> float:
        if not _is_real(value):
            raise self._fail(name, value, TypeError)
        if not self.contains(_to_float(value)):
            raise self._fail(name, value)
        return float(value)


@dataclass(frozen=True)
class Numbers(Domain):
    """A fixed-length sequence (tuple, list or 1-D array) of numbers, each in ``item``."""

    length: int
    item: Number
    what: str = "numbers"

    def describe(self) -> str:
        return f"{self.length} {self.what}, each {self.item.describe()}"

    def _items(self, name: str, value: Any) -> list[Any]:
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = list(value)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise self._fail(name, value, TypeError)
        items = list(value)
        if len(items) != self.length:
            raise self._fail(name, value)
        if not all(_is_real(v) for v in items):
            raise self._fail(name, value, TypeError)
        return items

    def check(self, name: str, value: Any) -> tuple[float, ...]:
        items = self._items(name, value)
        if not all(self.item.contains(_to_float(v)) for v in items):
            raise self._fail(name, value)
        return tuple(float(v) for v in items)


@dataclass(frozen=True)
class LogRange(Numbers):
    """Two finite numbers ``low < high`` in ``item`` with ``high >= min_ratio * low`` (the ends of
    a log-spaced range); ``None`` (the per-integrator default) when ``optional``."""

    min_ratio: float = 1.001
    optional: bool = False
    ordered: str = "strict"  # "strict": low * min_ratio <= high; "loose": low <= high

    def describe(self) -> str:
        order = f"high >= {self.min_ratio:g} * low" if self.ordered == "strict" else "low <= high"
        text = f"two {self.what} (low, high) with {order}, each {self.item.describe()}"
        return ("None or " + text) if self.optional else text

    def check(self, name: str, value: Any) -> tuple[float, float] | None:
        if value is None and self.optional:
            return None
        low, high = super().check(name, value)
        ok = (high > low and high >= self.min_ratio * low) if self.ordered == "strict" else low <= high
        if not ok:
            raise self._fail(name, value)
        return low, high


#: The accepted domain of every ``ThreeBodyEnv`` argument, checked by :class:`ThreeBodySettings`
#: (``preset_kwargs`` by :data:`PRESET_KWARGS_DOMAINS`). The property tests draw values inside
#: and outside these domains.
ARGUMENT_DOMAINS: dict[str, Domain] = {
    "integrator": Choice(tuple(sorted(INTEGRATORS))),
    "preset": Choice(tuple(sorted(PRESETS))),
    "obs_mode": Choice(OBS_MODES),
    "reward": Choice(REWARDS),
    "action_type": Choice(ACTION_TYPES),
    "n_actions": Integer(2, MAX_N_ACTIONS),
    # The parameter's own units (see DEFAULT_ACTION_RANGES); high >= 1.001 low keeps log10(high) - log10(low),
    # a denominator of the observation, clearly non-zero (and distinct in the float32 Box). Normal
    # (not subnormal) doubles only, so that 10 ** log10(low) cannot round to 0.
    "action_range": LogRange(
        2, Number(1e-300, 1e300, text="a positive number in [1e-300, 1e300]"), what="numbers", optional=True
    ),
    # Up to a million years of simulated time per environment step (the paper: 0.1 yr).
    "step_interval_yr": Number(0.0, 1e6, low_open=True),
    "episode_steps": Integer(1, 10**9),
    "energy_error_limit": Number(0.0, math.inf, low_open=True),
    "cost_weight": Number(0.0, MAX_REWARD_WEIGHT),
    "paper_reward_weights": Numbers(3, Number(0.0, MAX_REWARD_WEIGHT), what="weights (W0, W1, W2)"),
    "blowup_penalty": Number(0.0, MAX_REWARD_WEIGHT),
    "max_integrator_steps": Integer(1, 10**9),
    "hermite_criterion": Choice(tuple(sorted(HERMITE_CRITERIA))),
    "parallel": Flag(),
    "measure_wall_time": Flag(),
}

#: The ``preset_kwargs`` each preset takes, with their domains (only ``"random"`` takes any).
PRESET_KWARGS_DOMAINS: dict[str, dict[str, Domain]] = {
    "paper": {},
    "pythagorean": {},
    "figure8": {},
    "random": {
        "n_bodies": Integer(2, MAX_BODIES),
        # Relative masses (rescaled to a total of 1), low <= high.
        "mass_range": LogRange(2, Number(MIN_MASS, MAX_MASS), what="relative masses", ordered="loose"),
        # T/|W|; E = (q - 1)/2 must be clearly non-zero (the Markov observation's length unit is M^2 / 2|E|).
        "virial_ratio": Number(0.0, 1e6, exclude=1.0, exclude_width=1e-6, reason=" (E = 0 at virial_ratio = 1)"),
        "planar": Flag(),
    },
}

#: Keys accepted in ``ThreeBodyEnv.reset(options=...)`` (``ThreeBodyVectorEnv`` also takes ``reset_mask``).
RESET_OPTIONS = ("initial_conditions",)

#: The accepted domain of ``ThreeBodyVectorEnv``'s ``num_envs`` (each copy holds a few kB of state).
NUM_ENVS_DOMAIN = Integer(1, 100_000)


def check_preset_kwargs(preset: str, value: Any) -> dict[str, Any]:
    """``preset_kwargs`` as a validated dict for ``preset``, else a TypeError/ValueError naming the accepted keys."""
    domains = PRESET_KWARGS_DOMAINS[preset]
    accepted = ", ".join(domains) if domains else "none (only preset='random' takes preset_kwargs)"
    if not isinstance(value, Mapping):
        raise TypeError(f"preset_kwargs must be a dict (keys for preset {preset!r}: {accepted}), got {_show(value)}")
    unknown = [k for k in value if k not in domains]
    if unknown:
        raise ValueError(f"unknown preset_kwargs {unknown} for preset {preset!r}; accepted: {accepted}")
    return {key: domains[key].check(f"preset_kwargs[{key!r}]", v) for key, v in value.items()}


def check_reset_options(options: Any, accepted: tuple[str, ...] = RESET_OPTIONS) -> dict[str, Any]:
    """``reset(options=...)`` as a dict: ``None`` or a dict whose keys are all in ``accepted``."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"reset options must be a dict or None (keys: {list(accepted)}), got {_show(options)}")
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise ValueError(f"unknown reset options {unknown}; accepted keys: {list(accepted)}")
    return dict(options)


def as_action_array(actions: Any) -> np.ndarray:
    """``actions`` as a NumPy array of real numbers, else a ValueError (strings, complex numbers,
    bools and other objects are outside every action space: they are refused, never converted)."""
    arr = real_array(actions, "actions", "(integers for a Discrete space, floats for a Box)")
    return arr


@dataclass
class ThreeBodySettings:
    """Validated environment arguments (see ``ThreeBodyEnv`` for their meaning).

    Each argument is checked against its domain in :data:`ARGUMENT_DOMAINS` (``preset_kwargs``
    against :data:`PRESET_KWARGS_DOMAINS`) and stored normalised (plain ``int``/``float``/``bool``,
    tuples); a wrong type raises TypeError, a value outside the domain ValueError.
    """

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
    measure_wall_time: bool = False

    def __post_init__(self) -> None:
        # Every argument against its domain (ARGUMENT_DOMAINS), normalised to plain Python values.
        for name, domain in ARGUMENT_DOMAINS.items():
            setattr(self, name, domain.check(name, getattr(self, name)))
        self.preset_kwargs = check_preset_kwargs(self.preset, self.preset_kwargs)
        if self.action_range is None:
            self.action_range = DEFAULT_ACTION_RANGES[self.integrator]
        if self.obs_mode == "paper" and self.n_bodies != 3:
            raise ValueError("obs_mode='paper' describes exactly 3 bodies; use obs_mode='markov' for other n_bodies")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], owner: str = "simrl/ThreeBody-v0") -> ThreeBodySettings:
        """Settings from keyword arguments; an unknown name is a TypeError listing the accepted ones."""
        accepted = [f.name for f in fields(cls)]
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise TypeError(f"unknown argument(s) {unknown} of {owner}; accepted: {accepted}")
        return cls(**kwargs)

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
        # The Discrete grid, computed once (np.logspace on every step cost ~4 us).
        self._parameter_values = settings.parameter_values
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
        # The state part of the observation (see _state_features), computed by step() for its
        # blow-up check and reused by observations(); None after a reset changed a system.
        self._state_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ reset
    def check_initial_conditions(self, initial_conditions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float]:
        """Validate user-given ``(pos, vel, mass)`` without changing any system.

        Returns ``(pos, vel, mass, energy0, length_scale, velocity_scale)``; raises a ValueError naming
        ``initial_conditions`` and what is accepted (see :func:`_validate_initial_conditions`).
        """
        pos, vel, mass = _validate_initial_conditions(initial_conditions, self.settings.n_bodies)
        return (pos, vel, mass, *self._scales(pos, vel, mass, "initial_conditions"))

    def _scales(self, pos: np.ndarray, vel: np.ndarray, mass: np.ndarray, source: str) -> tuple[float, float, float]:
        """``(energy0, length_scale, velocity_scale)`` of one system, checked to give a finite observation."""
        energy = np.zeros(1)
        batch_total_energy(pos[None], vel[None], mass[None], energy)
        energy0 = float(energy[0])
        if not math.isfinite(energy0) or energy0 == 0.0:
            raise ValueError(
                f"{source} give a non-finite or zero total energy ({energy0!r}); accepted: {_IC_ACCEPTED}"
            )
        # Virial-radius scale r_v = M^2 / (2|E0|) (G = 1) and the matching velocity scale,
        # so that the Markov observation is independent of the system's size and mass.
        total_mass = float(mass.sum())
        try:
            length_scale = total_mass**2 / (2.0 * abs(energy0))
            velocity_scale = math.sqrt(total_mass / length_scale)
        except (OverflowError, ZeroDivisionError):
            length_scale = velocity_scale = math.nan
        scales_ok = all(math.isfinite(v) and v > 0.0 for v in (length_scale, velocity_scale))
        if not scales_ok or not _representable(
            self._state_features(pos[None], vel[None], np.array([length_scale]), np.array([velocity_scale]))
        )[0]:
            raise ValueError(
                f"{source} are out of the representable range: total mass {total_mass!r}, energy {energy0!r} give "
                f"virial scales {length_scale!r}, {velocity_scale!r} and an observation that is not finite in "
                f"float32; accepted: {_IC_ACCEPTED}"
            )
        return energy0, length_scale, velocity_scale

    def reset_system(self, i: int, rng: np.random.Generator, initial_conditions: Any = None) -> None:
        """Start system ``i`` from fresh initial conditions drawn from ``rng`` (or given ones).

        Invalid given initial conditions raise a ValueError before system ``i`` is changed.
        """
        s = self.settings
        if initial_conditions is None:
            pos, vel, mass = sample_initial_conditions(s.preset, rng, **s.preset_kwargs)
            energy0, length_scale, velocity_scale = self._scales(
                pos, vel, mass, f"preset {s.preset!r} with preset_kwargs {s.preset_kwargs!r}"
            )
        else:
            pos, vel, mass, energy0, length_scale, velocity_scale = self.check_initial_conditions(initial_conditions)
        self._state_cache = None
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
        self.energy0[i] = energy0
        self.length_scale[i] = length_scale
        self.velocity_scale[i] = velocity_scale
        self.trails[i] = [self.pos[i].copy()]

    # ------------------------------------------------------------------ step
    def parameters_from_actions(self, actions: Any) -> np.ndarray:
        """Map a batch of actions to the step parameter in user units (validated).

        Raises ValueError for anything outside the action space: strings, complex numbers, bools and
        other non-real objects, non-integral or out-of-range Discrete actions, non-finite or
        out-of-range Box actions (the Box's float32 bounds and a tolerance of 1e-6 beyond them in log10
        are accepted, for float32 round-off; the parameter is then clipped to ``action_range``).
        """
        s = self.settings
        raw = actions
        actions = as_action_array(actions)
        if actions.size != self.num_systems:
            raise ValueError(f"expected {self.num_systems} action(s), got {_show(raw)}")
        if s.action_type == "discrete":
            flat = actions.reshape(self.num_systems)
            if not np.issubdtype(flat.dtype, np.integer):
                if not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)):
                    raise ValueError(f"discrete actions must be integers in [0, {s.n_actions - 1}], got {_show(raw)}")
                if np.any(flat < 0) or np.any(flat >= s.n_actions):
                    raise ValueError(f"action out of range: accepted integers 0..{s.n_actions - 1}, got {_show(raw)}")
                flat = flat.astype(np.int64)
            if np.any(flat < 0) or np.any(flat >= s.n_actions):
                raise ValueError(f"action out of range: accepted integers 0..{s.n_actions - 1}, got {_show(raw)}")
            return self._parameter_values[flat]
        low, high = (math.log10(v) for v in s.action_range)
        # The Box's float32 bounds are always accepted (float32 rounding of log10 can exceed 1e-6 far from 0).
        accept_low = min(low, float(np.float32(low))) - 1e-6
        accept_high = max(high, float(np.float32(high))) + 1e-6
        flat = actions.astype(np.float64).reshape(self.num_systems)
        if not np.all(np.isfinite(flat)) or np.any(flat < accept_low) or np.any(flat > accept_high):
            raise ValueError(
                f"continuous action (log10 of {integrator_spec(s.integrator).parameter_name}) must lie in "
                f"[{low:.4g}, {high:.4g}], got {_show(raw)}"
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
        # A finite state whose observation would overflow (e.g. an escaper at 1e200 virial radii,
        # or float32's 3.4e38 in the paper observation) is a blow-up too.
        with np.errstate(all="ignore"):
            state = self._state_features(self.pos, self.vel, self.length_scale, self.velocity_scale)
        finite &= _representable(state)
        if not finite.all():
            broken = ~finite
            self.pos[broken] = self._pos_before[broken]
            self.vel[broken] = self._vel_before[broken]
            self.time[broken] = self._time_before[broken]
            state = self._state_features(self.pos, self.vel, self.length_scale, self.velocity_scale)
        self._state_cache = state
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
        state = self._state_cache
        if state is None:
            state = self._state_cache = self._state_features(self.pos, self.vel, self.length_scale, self.velocity_scale)
        if self.settings.obs_mode == "paper":
            return self._paper_observations(state)
        return self._markov_observations(state)

    def _state_features(
        self, pos: np.ndarray, vel: np.ndarray, length_scale: np.ndarray, velocity_scale: np.ndarray
    ) -> np.ndarray:
        """The leading, state-dependent block of the observation of systems ``pos``/``vel`` (B, n, 3),
        float64 (B, k): the only part that can overflow (the rest is bounded bookkeeping)."""
        b = pos.shape[0]
        if self.settings.obs_mode == "paper":
            # Paper's "cart" state: 2-D positions / 10 (N-body units of nbody_to_si(3 MSun, 1 au)),
            # 2-D velocities in N-body units.
            return np.concatenate([pos[:, :, :2].reshape(b, -1) / 10.0, vel[:, :, :2].reshape(b, -1)], axis=1)
        # Scale-free coordinates (virial units), squashed with sign(x) log(1 + |x|) so that
        # escapers and tight binaries stay in a range a network can use.
        scaled_pos = pos / length_scale[:, None, None]
        scaled_vel = vel / velocity_scale[:, None, None]
        squash = lambda x: np.sign(x) * np.log1p(np.abs(x))  # noqa: E731
        n = pos.shape[1]
        iu, ju = np.triu_indices(n, k=1)
        separations = np.linalg.norm(pos[:, iu] - pos[:, ju], axis=-1) / length_scale[:, None]
        features = [
            squash(scaled_pos).reshape(b, -1),
            squash(scaled_vel).reshape(b, -1),
            np.log10(np.maximum(separations, 1e-12)) / 4.0,
        ]
        return np.concatenate(features, axis=1)

    def _paper_observations(self, state: np.ndarray) -> np.ndarray:
        # State block (see _state_features), then -log10|dE| (the paper's code adds 1e-20).
        neg_log_error = -np.log10(np.minimum(self.energy_error, 1e300) + 1e-20)
        return np.concatenate([state, neg_log_error[:, None]], axis=1).astype(np.float32)

    def _markov_observations(self, state: np.ndarray) -> np.ndarray:
        s = self.settings
        low, high = (math.log10(v) for v in s.action_range)
        last_param = np.where(np.isnan(self.last_parameter), 10.0**high, self.last_parameter)
        features = [
            state,  # positions, velocities, log pair separations (see _state_features)
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


def _representable(state: np.ndarray) -> np.ndarray:
    """Per row of a state block (B, k): every feature finite and within float32's range (NaN fails too)."""
    return np.all(np.abs(state) <= _FLOAT32_MAX, axis=1)


_IC_ACCEPTED = (
    "(positions (n, 3), velocities (n, 3), masses (n,)) of real numbers in N-body units with "
    f"|positions| and |velocities| <= {MAX_COORDINATE:g}, masses in [{MIN_MASS:g}, {MAX_MASS:g}], "
    "no two bodies at the same place, a finite non-zero total energy and an observation that is finite in float32"
)


def _validate_initial_conditions(initial_conditions: Any, n_bodies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check user-given ``(pos, vel, mass)``: real numbers, shapes, finiteness, magnitudes, positive masses.

    Every failure is a ValueError that starts with ``initial_conditions`` and says what is accepted.
    """
    if isinstance(initial_conditions, (str, bytes, Mapping)) or not isinstance(initial_conditions, (Sequence, np.ndarray)):
        raise ValueError(f"initial_conditions must be a tuple {_IC_ACCEPTED}; got {_show(initial_conditions)}")
    if len(initial_conditions) != 3:
        raise ValueError(
            f"initial_conditions must be a tuple of 3 arrays {_IC_ACCEPTED}; got {len(initial_conditions)} items"
        )
    arrays = []
    for name, a in zip(("positions", "velocities", "masses"), initial_conditions):
        arr = real_array(a, f"initial_conditions {name}", "(no strings, complex numbers or bools)")
        arrays.append(arr.astype(np.float64))
    pos, vel, mass = arrays
    if pos.shape != (n_bodies, 3) or vel.shape != (n_bodies, 3) or mass.shape != (n_bodies,):
        raise ValueError(
            f"initial_conditions shapes must be ({n_bodies}, 3), ({n_bodies}, 3), ({n_bodies},); "
            f"got {pos.shape}, {vel.shape}, {mass.shape}"
        )
    for name, arr in (("positions", pos), ("velocities", vel), ("masses", mass)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"initial_conditions {name} contain NaN or inf: {arr!r}")
    if np.any(mass <= 0):
        raise ValueError(f"initial_conditions masses must be positive, got {mass!r}")
    for name, arr in (("positions", pos), ("velocities", vel)):
        if np.any(np.abs(arr) > MAX_COORDINATE):
            raise ValueError(
                f"initial_conditions {name} must have magnitudes <= {MAX_COORDINATE:g} (N-body units), got {arr!r}"
            )
    if np.any(mass < MIN_MASS) or np.any(mass > MAX_MASS):
        raise ValueError(f"initial_conditions masses must lie in [{MIN_MASS:g}, {MAX_MASS:g}] (N-body units), got {mass!r}")
    return pos.copy(), vel.copy(), mass.copy()
