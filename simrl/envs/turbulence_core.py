"""The batched LES core shared by every face of ``simrl/Turbulence2D-v0`` and ``simrl/Turbulence2DGlobal-v0``.

One :class:`TurbulenceBatch` holds B independent LES copies of forced 2-D turbulence in one
:class:`~simrl.physics.turbulence.TurbulenceState` and advances all of them with one solver call per
solver step. The PettingZoo ``ParallelEnv`` is a batch of one, the single-agent Gymnasium env is a
batch of one with one agent, the Gymnasium vector env and the SB3 ``VecEnv`` adapter are batches of
``num_envs``: they all run exactly the same physics, observation and reward code (the house pattern
of :mod:`simrl.envs.threebody_core`).

What the core needs from the reference DNS data is gathered in :class:`LESTargets` (one LES size):
:func:`resolve_targets` builds it from the shipped reference (:mod:`simrl.physics.turbulence.reference`)
or accepts an injected one (tests build a small synthetic one with :meth:`LESTargets.from_samples`).

One action window (``steps_per_action`` solver steps, the paper's 10)::

    c(x, y)  = interpolate_periodic(actions (B, a, a), N, interpolation)        # fixed over the window
    for each solver step:
        nu_e  = eddy_viscosity(grid, omega_hat, c, kind, scale)   # recomputed from the current field,
        advance(state, 1, nu_e)                                  # as the paper's code and the baselines
        sample Z(k) (reward), enstrophy (blow-up bound)
    CFL check at the end of the window

A copy that blows up (non-finite state, CFL above the scheme's limit, enstrophy above
``enstrophy_limit`` x the filtered-DNS enstrophy) stops at its last finite state and is reported;
nothing raises.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable

import numpy as np

from simrl.physics.turbulence import STATUS_NONFINITE, STATUS_OK, TurbulenceModel, TurbulenceParameters
from simrl.physics.turbulence import diagnostics
from simrl.physics.turbulence.closures import (
    CLOSURE_KINDS,
    INTERPOLATION_METHODS,
    SCALES,
    agent_points,
    eddy_viscosity,
    interpolate_periodic,
)
from simrl.envs.validation import real_array
from simrl.physics.turbulence.reference import REFERENCE_CASES
from simrl.physics.turbulence.invariants import INVARIANT_NAMES, gradient_fields, invariants_from_gradients, local_invariants

REWARDS = ("log_spectrum", "paper")
"""Reward functions (see :class:`~simrl.envs.turbulence.Turbulence2DParallelEnv`)."""

DEFAULT_COEFFICIENT_HIGH = 0.125

#: Largest accepted ``|coefficient_range|`` bound: far above any useful coefficient (C_s or C_L of ~1e3), and
#: well inside float32 (the action space), whose overflow to inf would make the space refuse its own bound.
MAX_COEFFICIENT = 1e6
"""Upper action bound of ``C_L^3`` / ``C_s^2``: the paper's 0.125 = 0.5^3 (``turbulence.md`` sect. 2),
~25x the static Leith ``0.17^3`` and ~4x the static Smagorinsky ``0.17^2``."""

STATUS_CFL = 3
"""Blow-up status: the grid CFL number exceeded the scheme's stability limit (solver codes 0 and 2 in
:mod:`simrl.physics.turbulence`)."""

STATUS_ENSTROPHY = 4
"""Blow-up status: the enstrophy exceeded ``enstrophy_limit`` times the filtered-DNS enstrophy."""

LOG_FLOOR = 1e-300
"""Floor on spectral values before taking logarithms (a shell is never exactly empty in practice)."""

N_INVARIANTS = len(INVARIANT_NAMES)


def _choice(name: str, value: Any, accepted: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; accepted: {list(accepted)}")
    return value


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _positive_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not (0 < float(value) < math.inf):
        raise ValueError(f"{name} must be a finite real number > 0, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------


@dataclass
class TurbulenceSettings:
    """Validated environment arguments (their meaning: :class:`~simrl.envs.turbulence.Turbulence2DParallelEnv`).

    Checks that need the reference data (``case`` name, ``n_les`` among its LES sizes, ``n_les``
    divisible by ``agents_per_side``) run in :func:`resolve_targets` / :class:`TurbulenceBatch`.
    """

    case: str = "fhit_cpu"
    n_les: int = 64
    agents_per_side: int = 4
    action: str = "leith"
    coefficient_range: tuple[float, float] | None = None
    backscatter: bool = False
    normalized_actions: bool = False
    interpolation: str = "fourier"
    scale: str = "local"
    steps_per_action: int = 10
    episode_steps: int = 1000
    dt: float | None = None
    reward: str = "log_spectrum"
    reward_clip: float = 10.0
    blowup_penalty: float | None = None
    enstrophy_limit: float = 50.0
    obs_clip: float = 10.0
    augment: bool = True
    snapshot_indices: tuple[int, ...] | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.case, str):
            raise ValueError(f"case must be a reference case name (str), got {self.case!r}")
        self.n_les = _positive_int("n_les", self.n_les)
        self.agents_per_side = _positive_int("agents_per_side", self.agents_per_side)
        if self.n_les % self.agents_per_side:
            divisors = [d for d in range(1, self.n_les + 1) if self.n_les % d == 0]
            raise ValueError(
                f"n_les={self.n_les} must be divisible by agents_per_side={self.agents_per_side}; "
                f"accepted agents_per_side for n_les={self.n_les}: {divisors}"
            )
        _choice("action (closure kind)", self.action, CLOSURE_KINDS)
        _choice("interpolation", self.interpolation, INTERPOLATION_METHODS)
        _choice("scale", self.scale, SCALES)
        _choice("reward", self.reward, REWARDS)
        if not isinstance(self.backscatter, (bool, np.bool_)):
            raise ValueError(f"backscatter must be True or False, got {self.backscatter!r}")
        if not isinstance(self.normalized_actions, (bool, np.bool_)):
            raise ValueError(f"normalized_actions must be True or False, got {self.normalized_actions!r}")
        if not isinstance(self.augment, (bool, np.bool_)):
            raise ValueError(f"augment must be True or False, got {self.augment!r}")
        if self.coefficient_range is None:
            high = DEFAULT_COEFFICIENT_HIGH
            self.coefficient_range = (-high if self.backscatter else 0.0, high)
        try:
            low, high = (float(v) for v in self.coefficient_range)
        except (TypeError, ValueError):
            raise ValueError(f"coefficient_range must be two numbers (low, high), got {self.coefficient_range!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"coefficient_range must be finite with low < high, got {self.coefficient_range!r}")
        if max(abs(low), abs(high)) > MAX_COEFFICIENT:
            raise ValueError(
                f"coefficient_range {self.coefficient_range!r} is outside [-{MAX_COEFFICIENT:g}, {MAX_COEFFICIENT:g}] "
                f"(the action space is float32; eddy-viscosity coefficients c = C^2 or C^3 are O(0.01))"
            )
        if low < 0 and not self.backscatter:
            raise ValueError(
                f"coefficient_range {self.coefficient_range!r} has a negative lower bound (backscatter); "
                "pass backscatter=True to allow it, or use a lower bound >= 0"
            )
        self.coefficient_range = (low, high)
        self.steps_per_action = _positive_int("steps_per_action", self.steps_per_action)
        self.episode_steps = _positive_int("episode_steps (solver steps per episode)", self.episode_steps)
        if self.episode_steps % self.steps_per_action:
            raise ValueError(
                f"episode_steps={self.episode_steps} must be a multiple of steps_per_action={self.steps_per_action} "
                "(an episode is a whole number of actions)"
            )
        if self.dt is not None:
            self.dt = _positive_real("dt (solver time step)", self.dt)
        self.reward_clip = _positive_real("reward_clip", self.reward_clip)
        if self.blowup_penalty is not None:
            if isinstance(self.blowup_penalty, bool) or not isinstance(self.blowup_penalty, Real):
                raise ValueError(f"blowup_penalty must be None or a finite number >= 0, got {self.blowup_penalty!r}")
            if not (0 <= float(self.blowup_penalty) < math.inf):
                raise ValueError(f"blowup_penalty must be None or a finite number >= 0, got {self.blowup_penalty!r}")
            self.blowup_penalty = float(self.blowup_penalty)
        self.enstrophy_limit = _positive_real("enstrophy_limit (multiple of the DNS enstrophy)", self.enstrophy_limit)
        self.obs_clip = _positive_real("obs_clip", self.obs_clip)
        if self.snapshot_indices is not None:
            idx = tuple(self.snapshot_indices)
            if not idx or any(isinstance(i, bool) or not isinstance(i, Integral) or i < 0 for i in idx):
                raise ValueError(f"snapshot_indices must be None or a non-empty list of integers >= 0, got {self.snapshot_indices!r}")
            self.snapshot_indices = tuple(int(i) for i in idx)
        self.threads = _positive_int("threads", self.threads)

    @property
    def n_agents(self) -> int:
        return self.agents_per_side**2

    @property
    def action_bounds(self) -> tuple[float, float]:
        """Bounds of the action space: ``coefficient_range``, or (-1, 1) with ``normalized_actions``."""
        return (-1.0, 1.0) if self.normalized_actions else self.coefficient_range

    @property
    def actions_per_episode(self) -> int:
        return self.episode_steps // self.steps_per_action

    @property
    def penalty(self) -> float:
        """The reward of a blow-up. Default (``blowup_penalty=None``): for ``"log_spectrum"``,
        ``reward_clip x actions_per_episode``, the return of the worst surviving episode, so that
        blowing up is never better than surviving; for ``"paper"``, the paper's 10,000."""
        if self.blowup_penalty is not None:
            return self.blowup_penalty
        return self.reward_clip * self.actions_per_episode if self.reward == "log_spectrum" else 1e4


# ----------------------------------------------------------------------------------------
# Targets from the reference data
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LESTargets:
    """Everything the environment takes from the reference DNS at one LES resolution.

    ``case``: name. ``params``: the LES's :class:`TurbulenceParameters` (``n = n_les``; the DNS's
    nu, alpha, beta, forcing and time step). ``k`` (K,): the shells ``1 .. k_cut`` of the LES (all fully
    inside the dealiased square). ``mean_log_z``, ``std_log_z`` (K,): mean and standard deviation of
    ``log Z(k)`` of the filtered DNS over its samples. ``paper_x``, ``paper_y`` (N/2,): the DNS targets of
    the paper reward's directional spectra (:func:`~simrl.physics.turbulence.diagnostics.paper_enstrophy_spectrum`,
    ``"x"`` and ``"y"``; equal to the ``"xy"`` average for isotropic cases). ``enstrophy``: time-mean
    enstrophy of the filtered DNS. ``sigma_omega``: DNS vorticity standard deviation.
    ``snapshots`` (M, N, N//2+1): filtered-DNS initial fields. ``invariant_scale`` (6,): RMS of each
    local invariant over the snapshots (computed by :func:`with_invariant_scale` when None).
    """

    case: str
    params: TurbulenceParameters
    k: np.ndarray
    mean_log_z: np.ndarray
    std_log_z: np.ndarray
    paper_x: np.ndarray
    paper_y: np.ndarray
    enstrophy: float
    sigma_omega: float
    snapshots: np.ndarray
    invariant_scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.params.n
        k_cut = self.params.k_cut
        if self.k.shape != (k_cut,) or self.mean_log_z.shape != (k_cut,) or self.std_log_z.shape != (k_cut,):
            raise ValueError(f"k, mean_log_z and std_log_z must have shape ({k_cut},) for n_les={n}")
        if not (np.all(np.isfinite(self.mean_log_z)) and np.all(self.std_log_z > 0)):
            raise ValueError("mean_log_z must be finite and std_log_z > 0")
        if self.paper_x.shape != (n // 2,) or self.paper_y.shape != (n // 2,):
            raise ValueError(f"paper_x and paper_y must have shape ({n // 2},)")
        snaps = self.snapshots
        if snaps.ndim != 3 or snaps.shape[1:] != (n, n // 2 + 1) or snaps.shape[0] < 1:
            raise ValueError(f"snapshots must have shape (M >= 1, {n}, {n // 2 + 1}), got {snaps.shape}")
        if not (self.enstrophy > 0 and self.sigma_omega > 0):
            raise ValueError("enstrophy and sigma_omega must be > 0")

    @property
    def n_les(self) -> int:
        return self.params.n

    @classmethod
    def from_samples(
        cls,
        params: TurbulenceParameters,
        samples: np.ndarray,
        snapshots: np.ndarray | None = None,
        case: str = "synthetic",
        sigma_omega: float | None = None,
    ) -> "LESTargets":
        """Targets from a set of LES-resolution vorticity fields ``samples`` (S, N, N//2+1) (e.g. coarse-grained
        DNS snapshots, or a long reference LES): the time statistics of their spectra.

        ``snapshots`` (default: ``samples``) become the initial fields; ``sigma_omega`` defaults to the samples'
        vorticity standard deviation. This is how tests build a small synthetic reference.
        """
        grid = TurbulenceModel(params).grid
        samples = np.asarray(samples, dtype=np.complex128)
        if samples.ndim != 3 or samples.shape[1:] != grid.spectral_shape or samples.shape[0] < 2:
            raise ValueError(f"samples must have shape (S >= 2, *{grid.spectral_shape}), got {samples.shape}")
        k_cut = params.k_cut
        _, z = diagnostics.enstrophy_spectrum(grid, samples)
        log_z = np.log(np.maximum(z[:, 1 : k_cut + 1], LOG_FLOOR))
        _, px = diagnostics.paper_enstrophy_spectrum(grid, samples, "x")
        _, py = diagnostics.paper_enstrophy_spectrum(grid, samples, "y")
        if params.beta == 0.0:  # isotropic: both directions compared with the "xy" average (the paper)
            px = py = 0.5 * (px + py)
        z_mean = float(np.mean(diagnostics.enstrophy(grid, samples)))
        if sigma_omega is None:
            sigma_omega = math.sqrt(2.0 * z_mean)
        return cls(
            case=case,
            params=params,
            k=np.arange(1, k_cut + 1),
            mean_log_z=log_z.mean(axis=0),
            std_log_z=np.maximum(log_z.std(axis=0, ddof=1), 1e-6),
            paper_x=px.mean(axis=0),
            paper_y=py.mean(axis=0),
            enstrophy=z_mean,
            sigma_omega=float(sigma_omega),
            snapshots=samples if snapshots is None else np.asarray(snapshots, dtype=np.complex128),
        )


@functools.lru_cache(maxsize=8)
def synthetic_targets(n: int = 16, seed: int = 0) -> LESTargets:
    """A small self-contained reference at N = ``n`` for tests and examples -- NOT the DNS.

    A forced LES without closure (k_f = 4, alpha = 0.1, nu = 0.032 / n, dt = 0.16 / n: resolved enough at
    16^2 and 32^2 to stay smooth) is spun up for 5 time units from two random fields (seeded), then 12
    fields 0.5 time units apart give the statistics (:meth:`LESTargets.from_samples`) and the initial
    snapshots. Takes about a second at 16^2; cached.
    """
    from simrl.physics.turbulence import random_vorticity

    n = _positive_int("n", n)
    params = TurbulenceParameters(n=n, nu=0.032 / n, alpha=0.1, beta=0.0, k_f=4, dt=0.16 / n)
    model = TurbulenceModel(params)
    state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(seed), batch_size=2, rms=4.0))
    steps = int(round(0.5 / params.dt))
    model.advance(state, 10 * steps)
    samples = []
    for _ in range(6):
        model.advance(state, steps)
        samples.append(state.omega_hat.copy())
    return with_invariant_scale(LESTargets.from_samples(params, np.concatenate(samples), case=f"synthetic{n}"))


def with_invariant_scale(targets: LESTargets) -> LESTargets:
    """``targets`` with ``invariant_scale`` = the RMS of each local invariant over every grid point of every
    snapshot (so the agents' local features are O(1) on filtered-DNS fields, whatever their units)."""
    if targets.invariant_scale is not None:
        return targets
    grid = TurbulenceModel(targets.params).grid
    feats = _domain_invariants(grid, targets.snapshots)  # (M, N*N, 6)
    rms = np.sqrt(np.mean(feats**2, axis=(0, 1)))
    rms = np.where(rms > 0, rms, 1.0)
    return LESTargets(**{**targets.__dict__, "invariant_scale": rms})


def _domain_invariants(grid, omega_hat: np.ndarray) -> np.ndarray:
    """The six local invariants at every grid point, (B, N*N, 6)."""
    g = gradient_fields(grid, np.asarray(omega_hat, dtype=np.complex128))  # (B, 7, N, N)
    b = g.shape[0]
    return invariants_from_gradients(np.moveaxis(g.reshape(b, 7, -1), 1, -1))


@functools.lru_cache(maxsize=16)
def _shipped_targets(case: str, n_les: int) -> LESTargets:
    from simrl.physics.turbulence import reference as reference_module

    return with_invariant_scale(targets_from_reference(reference_module.load_reference(case, n_les=n_les), n_les))


def targets_from_reference(reference: Any, n_les: int) -> LESTargets:
    """Adapt a :class:`simrl.physics.turbulence.reference.ReferenceData` to :class:`LESTargets` at ``n_les``.

    The LES runs the DNS's equation (nu, alpha, beta, forcing) on ``n_les`` points, with the case's LES time
    step (:meth:`~simrl.physics.turbulence.reference.ReferenceCase.les_dt`: the DNS step for the CPU cases). Every target
    is the *filtered* DNS at ``n_les`` (coarse-grained and projected on the LES's kept modes: the field an
    LES can hold): the log-spectrum mean/variance, the enstrophy, and the paper reward's directional
    spectra ("xy" average for both directions when beta = 0, "x" and "y" separately otherwise, as the
    paper). The paper's code compared with the unfiltered DNS 1-D spectra, which hold modes beyond the
    LES cutoff that no LES can reproduce (``turbulence.md`` sect. 7.1).
    """
    les = reference.at(n_les)  # ValueError naming the available LES sizes
    p = reference.turbulence_parameters
    case = REFERENCE_CASES.get(str(reference.case))
    dt = case.les_dt(n_les) if case is not None and case.n == p.n else p.dt
    params = TurbulenceParameters(
        n=n_les, nu=p.nu, alpha=p.alpha, beta=p.beta, k_f=p.k_f, dt=dt, dealias=True, forcing_amplitude=p.forcing_amplitude
    )
    k_cut = params.k_cut
    if np.asarray(les.log_enstrophy_mean).shape != (k_cut,):
        raise ValueError(
            f"reference {reference.case!r} at n_les={n_les} has {np.shape(les.log_enstrophy_mean)} log-spectrum shells, "
            f"the LES has k_cut = {k_cut}"
        )
    isotropic = params.beta == 0.0
    return LESTargets(
        case=str(reference.case),
        params=params,
        k=np.arange(1, k_cut + 1),
        mean_log_z=np.asarray(les.log_enstrophy_mean, dtype=np.float64),
        std_log_z=np.maximum(np.sqrt(np.asarray(les.log_enstrophy_var, dtype=np.float64)), 1e-6),
        paper_x=np.asarray(les.paper_spectrum["xy" if isotropic else "x"], dtype=np.float64),
        paper_y=np.asarray(les.paper_spectrum["xy" if isotropic else "y"], dtype=np.float64),
        enstrophy=float(np.sum(les.enstrophy_spectrum)),
        sigma_omega=float(reference.sigma_omega),
        snapshots=np.asarray(les.snapshots, dtype=np.complex128),
    )


def resolve_targets(settings: TurbulenceSettings, reference: Any = None) -> LESTargets:
    """The :class:`LESTargets` of ``settings``: from an injected ``reference`` (an :class:`LESTargets`
    or a ``ReferenceData``) or the shipped reference data of ``settings.case``; ``settings.dt``
    overrides the case's time step. Unknown case / LES size -> ValueError naming the accepted ones."""
    n_les = settings.n_les
    if reference is None:
        from simrl.physics.turbulence import reference as reference_module

        cases = tuple(reference_module.REFERENCE_CASES)
        _choice("case", settings.case, cases)
        sizes = reference_module.REFERENCE_CASES[settings.case].les_resolutions
        if n_les not in sizes:
            raise ValueError(f"n_les={n_les} has no reference data for case {settings.case!r}; accepted: {list(sizes)}")
        targets = _shipped_targets(settings.case, n_les)
    elif isinstance(reference, LESTargets):
        if reference.n_les != n_les:
            raise ValueError(f"n_les={n_les} does not match the injected targets' LES size {reference.n_les}; accepted: [{reference.n_les}]")
        targets = with_invariant_scale(reference)
    else:
        targets = with_invariant_scale(targets_from_reference(reference, n_les))
    if settings.dt is not None and settings.dt != targets.params.dt:
        p = targets.params
        params = TurbulenceParameters(
            n=p.n, nu=p.nu, alpha=p.alpha, beta=p.beta, k_f=p.k_f, dt=settings.dt, dealias=p.dealias,
            forcing_amplitude=p.forcing_amplitude,
        )  # fmt: skip
        targets = LESTargets(**{**targets.__dict__, "params": params})
    if settings.snapshot_indices is not None:
        m = targets.snapshots.shape[0]
        bad = [i for i in settings.snapshot_indices if i >= m]
        if bad:
            raise ValueError(f"snapshot_indices {bad} out of range: the reference has {m} snapshots at n_les={n_les} (accepted 0..{m - 1})")
    return targets


# ----------------------------------------------------------------------------------------
# Symmetries of the forced problem (initial-field augmentation)
# ----------------------------------------------------------------------------------------


def symmetry_transform(
    omega: np.ndarray, shift: tuple[int, int], rotations: int, reflect: bool, half_period: int
) -> np.ndarray:
    """Apply an exact symmetry of the forced LES to a physical vorticity field (N, N), on grid indices.

    ``F = A [cos(k_f x) + cos(k_f y)]`` is invariant under shifts by whole forcing periods ``2 pi / k_f``
    (``shift`` in grid points, multiples of ``N / k_f``) and under the rotation ``(x, y) -> (-y, x)``
    (``omega`` is a scalar under rotations). Under the reflection ``x -> -x`` a solution ``omega``
    maps to ``-omega(-x, y)`` (a pseudo-scalar), which solves the equation with ``-F``; a further shift
    by half a forcing period in x and y (``half_period = N / (2 k_f)`` points) turns ``-F`` back into
    ``F``. The closures (``|S|``, ``|grad omega|``) and the 2/3-rule mask are invariant under all of
    them, so the transformed field is an equally valid initial condition with the same statistics.
    The beta term breaks the rotation and reflection (zonal direction), so callers use only shifts there.
    """
    n = omega.shape[-1]
    i = np.arange(n)
    out = omega
    for _ in range(rotations % 4):  # omega'(x_i, y_j) = omega(R^-1 (x_i, y_j)) = omega(y_j, -x_i)
        out = out[i[None, :], (-i[:, None]) % n]
    if reflect:
        out = -out[(-i) % n, :]
        out = np.roll(out, (half_period, half_period), axis=(0, 1))
    return np.roll(out, shift, axis=(0, 1))


def _symmetry_choices(params: TurbulenceParameters) -> tuple[list[int], bool, int]:
    """(allowed shifts in grid points, rotations/reflections allowed, half-period shift of the reflection)."""
    n, k_f = params.n, params.k_f
    if k_f == 0:
        shifts, half = list(range(n)), 0
    elif n % k_f == 0:
        shifts, half = [m * (n // k_f) for m in range(k_f)], n // (2 * k_f) if n % (2 * k_f) == 0 else -1
    else:
        shifts, half = [0], -1
    # beta breaks the x <-> y and x -> -x symmetries (zonal jets); only shifts remain there.
    isotropic = params.beta == 0.0 and half >= 0
    return shifts, isotropic, max(half, 0)


# ----------------------------------------------------------------------------------------
# The batched core
# ----------------------------------------------------------------------------------------


class TurbulenceBatch:
    """B independent LES copies with their agents, stepped together (one solver call per solver step).

    ``settings``: a :class:`TurbulenceSettings`. ``num_systems``: B. ``reference``: None (the shipped
    reference of ``settings.case``), an :class:`LESTargets` or a ``ReferenceData``.
    """

    def __init__(self, settings: TurbulenceSettings, num_systems: int, reference: Any = None) -> None:
        self.settings = s = settings
        self.num_systems = b = _positive_int("num_systems", num_systems)
        self.targets = t = resolve_targets(settings, reference)
        self.model = TurbulenceModel(t.params, threads=s.threads)
        self.grid = grid = self.model.grid
        n = grid.n
        # A time step the solver cannot take on the reference's own fields would end every episode at once
        # (or, far above it, the integrating factors would silently damp the field to zero): refuse it here.
        speed = float(np.max(self.model.cfl(t.snapshots)) / t.params.dt) if t.snapshots.size else 0.0
        if speed > 0 and not speed * t.params.dt <= self.model.cfl_limit:
            raise ValueError(
                f"dt={t.params.dt!r} gives a grid CFL number of {speed * t.params.dt:.3g} on the reference's initial "
                f"fields, above the solver's stability limit {self.model.cfl_limit:.3f}; accepted: dt <= "
                f"{self.model.cfl_limit / speed:.3g} at n_les={n} (None: the case's step, {REFERENCE_CASES[s.case].les_dt(n) if s.case in REFERENCE_CASES else t.params.dt:.3g})"
            )
        self.agent_ix, self.agent_iy = agent_points(n, s.agents_per_side)
        self.n_agents = s.n_agents
        self.k_cut = t.params.k_cut
        self.agent_obs_dim = N_INVARIANTS + self.k_cut
        self.global_obs_dim = N_INVARIANTS + 1 + self.k_cut
        self.state = self.model.state_from_spectral(np.zeros((b,) + grid.spectral_shape, np.complex128))
        self.snapshot_pool = np.asarray(
            s.snapshot_indices if s.snapshot_indices is not None else range(t.snapshots.shape[0]), dtype=np.int64
        )
        self._shifts, self._isotropic, self._half_period = _symmetry_choices(t.params)
        self._paper_m2 = np.arange(n // 2, dtype=np.float64) ** 2
        self.enstrophy_bound = s.enstrophy_limit * t.enstrophy
        # Per-system bookkeeping (reset by reset_system).
        self.action_index = np.zeros(b, dtype=np.int64)
        self.coefficients = np.zeros((b, self.n_agents))
        self.nu_e = np.zeros((b, n, n))
        self.spectrum_error = np.zeros(b)
        self.cfl = np.zeros(b)
        self.status = np.zeros(b, dtype=np.int64)
        self.snapshot = np.full(b, -1, dtype=np.int64)
        self.ever_reset = np.zeros(b, dtype=bool)

    # ------------------------------------------------------------------ reset
    def reset_system(
        self,
        i: int,
        rng: np.random.Generator,
        omega_hat: np.ndarray | None = None,
        snapshot_index: int | None = None,
    ) -> None:
        """Start copy ``i`` from a filtered-DNS snapshot drawn with ``rng`` (randomly transformed by an exact
        symmetry when ``settings.augment``), from snapshot ``snapshot_index``, or from a given spectral field
        ``omega_hat`` (N, N//2+1) / physical field (N, N). The field is projected on the LES's kept modes."""
        t = self.targets
        n = self.grid.n
        if omega_hat is not None:
            w_hat = np.asarray(omega_hat)
            if w_hat.shape == (n, n) and not np.iscomplexobj(w_hat):
                w_hat = self.grid.to_spectral(w_hat)
            elif w_hat.shape != self.grid.spectral_shape:
                raise ValueError(
                    f"initial field must be spectral {self.grid.spectral_shape} (complex) or physical ({n}, {n}) (real), got {w_hat.shape}"
                )
            if not np.all(np.isfinite(w_hat)):
                raise ValueError("initial field contains NaN or inf")
            index = -1
        else:
            if snapshot_index is None:
                index = int(rng.choice(self.snapshot_pool))
            else:
                m = t.snapshots.shape[0]
                if isinstance(snapshot_index, bool) or not isinstance(snapshot_index, Integral) or not 0 <= snapshot_index < m:
                    raise ValueError(f"snapshot_index must be an integer in [0, {m - 1}], got {snapshot_index!r}")
                index = int(snapshot_index)
            w_hat = t.snapshots[index].astype(np.complex128)
            if self.settings.augment:
                shift = (int(rng.choice(self._shifts)), int(rng.choice(self._shifts)))
                rotations = int(rng.integers(4))
                reflect = bool(rng.integers(2))
                if not self._isotropic:
                    rotations, reflect = 0, False
                omega = self.grid.to_physical(w_hat)
                w_hat = self.grid.to_spectral(symmetry_transform(omega, shift, rotations, reflect, self._half_period))
        fresh = self.model.state_from_spectral(w_hat)
        self.state.omega_hat[i] = fresh.omega_hat[0]
        self.state.time[i] = 0.0
        self.state.steps[i] = 0
        self.state.status[i] = STATUS_OK
        self.action_index[i] = 0
        self.coefficients[i] = 0.0
        self.nu_e[i] = 0.0
        self.status[i] = STATUS_OK
        self.snapshot[i] = index
        self.spectrum_error[i] = self._spectrum_error(self._shell_spectrum(self.state.omega_hat[i : i + 1]))[0]
        self.cfl[i] = self.model.cfl(self.state.omega_hat[i : i + 1])[0]
        self.ever_reset[i] = True

    # ------------------------------------------------------------------ actions
    def coefficients_from_actions(self, actions: np.ndarray) -> np.ndarray:
        """Coefficients ``(B, n_agents)`` from a batch of per-agent actions ``(B, n_agents)`` (or ``(B, n_agents, 1)``):
        clipped to the action bounds and, with ``normalized_actions``, mapped from [-1, 1] onto
        ``coefficient_range``. Wrong shape or non-finite values -> ValueError."""
        a = real_array(actions, "actions").astype(np.float64)
        shape = (self.num_systems, self.n_agents)
        if a.shape == shape + (1,):
            a = a[..., 0]
        if a.shape != shape:
            raise ValueError(f"actions must have shape {shape} (copies, agents) or {shape + (1,)}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("actions must be finite numbers (NaN or inf given)")
        s = self.settings
        low, high = s.coefficient_range
        if s.normalized_actions:  # [-1, 1] -> [low, high], affinely (SB3's recommended action box)
            return low + 0.5 * (np.clip(a, -1.0, 1.0) + 1.0) * (high - low)
        return np.clip(a, low, high)

    # ------------------------------------------------------------------ step
    def step(self, coefficients: np.ndarray, active: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """One action window with the agents' coefficients ``(B, n_agents)`` (already validated/clipped).

        Returns per-system arrays ``reward``, ``terminated``, ``truncated``, ``blowup``, ``status``.
        Inactive systems (``active[i] = False``) are not integrated and get reward 0.
        """
        s = self.settings
        b, a, n = self.num_systems, s.agents_per_side, self.grid.n
        coefficients = np.asarray(coefficients, dtype=np.float64).reshape(b, self.n_agents)
        c_field = interpolate_periodic(coefficients.reshape(b, a, a), n, s.interpolation)
        # Fourier and spline interpolation overshoot between agents (one agent at the top of the
        # range, its neighbours at 0, gives a negative coefficient in between): the bounds hold for
        # the whole field, so backscatter-free settings never apply a negative eddy viscosity.
        c_field = np.clip(c_field, *s.coefficient_range)
        active = np.ones(b, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        self.coefficients[active] = coefficients[active]

        def nu_e(omega_hat: np.ndarray, idx: np.ndarray) -> np.ndarray:
            return eddy_viscosity(self.grid, omega_hat, c_field[idx], s.action, s.scale)

        return self._window(nu_e, active)

    def step_with_closure(self, closure: Any, active: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """One action window under a baseline closure (``closure.eddy_viscosity(grid, omega_hat) -> (B, N, N) | None``,
        e.g. :func:`simrl.physics.turbulence.closures.make_closure`), with the same rewards and blow-up
        checks as :meth:`step`: lets an evaluator compare policies and baselines through one code path."""
        active = np.ones(self.num_systems, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        self.coefficients[active] = np.nan
        return self._window(lambda omega_hat, idx: closure.eddy_viscosity(self.grid, omega_hat), active)

    def _window(self, nu_e_fn: Callable[[np.ndarray, np.ndarray], np.ndarray | None], active: np.ndarray) -> dict[str, np.ndarray]:
        s = self.settings
        b = self.num_systems
        state = self.state
        alive = active.copy()
        status = np.zeros(b, dtype=np.int64)
        err_sum = np.zeros(b)
        samples = np.zeros(b)
        for _ in range(s.steps_per_action):
            idx = np.flatnonzero(alive)
            if idx.size == 0:
                break
            whole = idx.size == b
            sub = state if whole else type(state)(state.omega_hat[idx], state.time[idx], state.steps[idx], state.status[idx])
            nu = nu_e_fn(sub.omega_hat, idx)
            if nu is None:
                self.nu_e[idx] = 0.0
            else:
                nu = np.ascontiguousarray(nu, dtype=np.float64)
                self.nu_e[idx] = nu
            step_status = self.model.advance(sub, 1, nu)
            if not whole:
                state.omega_hat[idx], state.time[idx] = sub.omega_hat, sub.time
                state.steps[idx], state.status[idx] = sub.steps, sub.status
            z = self._shell_spectrum(sub.omega_hat)
            enstrophy = z.sum(axis=-1)
            nonfinite = step_status != STATUS_OK
            too_big = ~nonfinite & ~(enstrophy <= self.enstrophy_bound)
            status[idx[nonfinite]] = STATUS_NONFINITE
            status[idx[too_big]] = STATUS_ENSTROPHY
            good = ~(nonfinite | too_big)
            err_sum[idx[good]] += self._spectrum_error(z[good])
            samples[idx[good]] += 1
            alive[idx[~good]] = False
        idx = np.flatnonzero(alive)
        if idx.size:
            cfl = self.model.cfl(state.omega_hat[idx])
            self.cfl[idx] = cfl
            status[idx[~(cfl <= self.model.cfl_limit)]] = STATUS_CFL
        blowup = active & (status != STATUS_OK)
        window_error = np.where(samples > 0, err_sum / np.maximum(samples, 1), np.nan)
        self.spectrum_error = np.where(active, window_error, self.spectrum_error)
        self.status = np.where(active, status, self.status)
        self.action_index += active
        if s.reward == "paper":
            reward = self._paper_reward(state.omega_hat)
        else:
            # Normalised log-spectrum error (Novati et al. 2021 form), time-averaged over the window.
            reward = -np.minimum(window_error, s.reward_clip)
        reward = np.where(blowup, -s.penalty, reward)
        reward = np.where(active, reward, 0.0)
        truncated = active & (blowup | (self.action_index >= s.actions_per_episode))
        return {
            "reward": reward,
            "terminated": np.zeros(b, dtype=bool),
            "truncated": truncated,
            "blowup": blowup,
            "status": status,
        }

    # ------------------------------------------------------------------ spectra and rewards
    def _shell_spectrum(self, omega_hat: np.ndarray) -> np.ndarray:
        """Isotropic enstrophy spectrum (B, n_shells) of the given fields."""
        return diagnostics.enstrophy_spectrum(self.grid, omega_hat)[1]

    def _log_spectrum_z(self, z: np.ndarray) -> np.ndarray:
        """``(log Z(k) - <log Z_DNS(k)>) / std(log Z_DNS(k))`` for k = 1 .. k_cut, (B, K)."""
        t = self.targets
        log_z = np.log(np.maximum(z[..., 1 : self.k_cut + 1], LOG_FLOOR))
        return (log_z - t.mean_log_z) / t.std_log_z

    def _spectrum_error(self, z: np.ndarray) -> np.ndarray:
        """``mean_k ((log Z_LES(k) - <log Z_DNS(k)>)^2 / var_DNS(k))``, (B,): ~1 for a field that is as close
        to the DNS mean as a typical DNS sample."""
        return np.mean(self._log_spectrum_z(z) ** 2, axis=-1)

    def spectrum_error_of(self, omega_hat: np.ndarray) -> np.ndarray:
        """The reward's normalised log-spectrum error (see :meth:`_spectrum_error`) of any LES fields
        ``(B, N, N//2+1)`` against this core's targets, (B,): for evaluators that score runs the same way."""
        return self._spectrum_error(self._shell_spectrum(np.asarray(omega_hat)))

    def _paper_reward(self, omega_hat: np.ndarray) -> np.ndarray:
        """Mojgani et al.'s ``1 / ||k (Z_LES(k) - Z_DNS(k))||^2`` over the x and y directional spectra."""
        t = self.targets
        _, zx = diagnostics.paper_enstrophy_spectrum(self.grid, omega_hat, "x")
        _, zy = diagnostics.paper_enstrophy_spectrum(self.grid, omega_hat, "y")
        d = np.sum(self._paper_m2 * ((zx - t.paper_x) ** 2 + (zy - t.paper_y) ** 2), axis=-1)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            r = 1.0 / np.maximum(d, 1e-300)
        return np.where(np.isfinite(r), r, 0.0)

    # ------------------------------------------------------------------ observations
    def _clip(self, x: np.ndarray) -> np.ndarray:
        c = self.settings.obs_clip
        return np.clip(np.nan_to_num(x, nan=0.0, posinf=c, neginf=-c), -c, c).astype(np.float32)

    def spectrum_features(self) -> np.ndarray:
        """The global part of every observation: the normalised log enstrophy spectrum, (B, k_cut)."""
        return self._log_spectrum_z(self._shell_spectrum(self.state.omega_hat))

    def agent_observations(self) -> np.ndarray:
        """Per-agent observations (B, n_agents, 6 + k_cut), float32 (layout: ``Turbulence2DParallelEnv``)."""
        t = self.targets
        local = local_invariants(self.grid, self.state.omega_hat, self.agent_ix, self.agent_iy) / t.invariant_scale
        spec = np.broadcast_to(self.spectrum_features()[:, None, :], (self.num_systems, self.n_agents, self.k_cut))
        return self._clip(np.concatenate([local, spec], axis=-1))

    def global_observations(self) -> np.ndarray:
        """Domain statistics (B, 7 + k_cut), float32: RMS of each invariant over the grid / its DNS RMS,
        log of the vorticity flatness / 3, then the normalised log spectrum."""
        feats = _domain_invariants(self.grid, self.state.omega_hat) / self.targets.invariant_scale
        rms = np.sqrt(np.mean(feats**2, axis=1))
        w = feats[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            flatness = np.mean(w**4, axis=1) / np.mean(w**2, axis=1) ** 2
            log_flat = np.log(np.where(flatness > 0, flatness / 3.0, 1.0))
        return self._clip(np.concatenate([rms, log_flat[:, None], self.spectrum_features()], axis=-1))

    # ------------------------------------------------------------------ info
    def batch_info(self) -> dict[str, np.ndarray]:
        """The ``info`` values of every copy as arrays (keys: see ``Turbulence2DParallelEnv``)."""
        w = self.state.omega_hat
        return {
            "time": self.state.time.copy(),
            "solver_steps": self.state.steps.copy(),
            "action_index": self.action_index.copy(),
            "enstrophy": diagnostics.enstrophy(self.grid, w),
            "energy": diagnostics.energy(self.grid, w),
            "spectrum_error": self.spectrum_error.copy(),
            "cfl": self.cfl.copy(),
            "mean_nu_e": self.nu_e.mean(axis=(-2, -1)),
            "mean_coefficient": self.coefficients.mean(axis=-1),
            "blowup": self.status != STATUS_OK,
            "status": self.status.copy(),
            "snapshot": self.snapshot.copy(),
        }

    def info(self, i: int) -> dict[str, Any]:
        """:meth:`batch_info` row ``i`` as Python scalars."""
        return {key: values[i].item() for key, values in self.batch_info().items()}

    def vorticity(self, i: int) -> np.ndarray:
        """Physical vorticity (N, N) of copy ``i``."""
        return self.model.vorticity(self.state.omega_hat[i])
