"""Eddy-viscosity closures of the LES: Smagorinsky, Leith, their dynamic (Germano) versions and the
agents' coefficient lattice (reference ``turbulence.md`` sects. 2 and 4).

Every closure returns a physical eddy-viscosity field ``nu_e`` shaped ``(B, N, N)`` that the solver
uses in the term ``div(nu_e grad omega)`` (:mod:`.model`). Conventions of :mod:`simrl.physics.turbulence`:
``u = -psi_y``, ``v = psi_x``, ``omega = lap psi``.

Strain rate. ``S_ij = (d_j u_i + d_i u_j) / 2`` with ``S_11 = u_x = -psi_xy``, ``S_22 = v_y = -S_11``
and ``S_12 = (u_y + v_x) / 2 = (psi_xx - psi_yy) / 2``. The magnitude used here is the standard
``|S| = sqrt(2 S_ij S_ij)``; in 2-D incompressible flow ``2 S_ij S_ij = 2 (S_11^2 + S_22^2 + 2 S_12^2)
= 4 (S_11^2 + S_12^2)``, so ``|S| = 2 sqrt(S_11^2 + S_12^2)``: *identical* to the reference code's
definition (``turbulence.md`` sect. 2, step 2).

Models (``c`` is the coefficient the agents act on, *already raised to its power*):

==================  ==========================================  ==========================
kind                ``nu_e``                                    ``c`` is
==================  ==========================================  ==========================
``"smagorinsky"``   ``c Delta^2 |S|``                            ``C_s^2`` (paper action ``CS``)
``"leith"``         ``c Delta^3 |grad omega|``                   ``C_L^3`` (paper action ``CL``)
==================  ==========================================  ==========================

``scale="local"`` uses the local ``|S|(x, y)`` / ``|grad omega|(x, y)``; ``scale="global"`` the paper's
domain-global scale: ``rms(|S|) = sqrt(<|S|^2>)`` for Smagorinsky and ``mean(|grad omega|)`` for Leith
(``turbulence.md`` sect. 2 step 2), so ``nu_e`` then varies only through ``c(x, y)``.
``Delta = 2 pi / N`` (the grid spacing, as RLonKorali) unless given; py2d uses ``2 * 2 pi / N``, so its
coefficients are 4x (Smagorinsky) and 8x (Leith) ours for the same ``nu_e``.

Dynamic procedure (Germano et al. 1991, Lilly 1992; ``turbulence.md`` sect. 4), written for *this*
equation: the LES is ``d omega_bar/dt + J(psi_bar, omega_bar) = ... - Pi`` and the model is
``Pi = -div(c Delta^2 |S| grad omega_bar)`` (our closure term, in flux form). With the test filter
``G`` (sharp square cutoff ``|k_x|, |k_y| < N/4``, width ``2 Delta``), Germano's identity gives
``L = c M`` with::

    L = G[J(psi_bar, omega_bar)] - J(G psi_bar, G omega_bar)           (resolved test-level transfer)
    M = Delta^2 G[div(|S_bar| grad omega_bar)] - (2 Delta)^2 div(|S_hat| grad omega_hat)

(Leith: ``|grad omega|`` for ``|S|`` and ``Delta^3``, ``(2 Delta)^3``). py2d writes ``|S| lap(omega)``
instead of the divergence form; the divergence form is the operator our solver applies, so the
identity is consistent with it. Least squares over the domain with clipping:
``c = <(L M)_+> / <M^2>`` (``(x)_+ = max(x, 0)``), hence ``c >= 0``. Then ``nu_e = c Delta^2 |S_bar|``
(local), and ``c`` is independent of the ``Delta`` convention (``c Delta^2`` is what is determined).

Agent lattice. The paper's ``pickcenter`` puts the 4 x 4 agents at indices ``0, N/4, N/2, 3N/4``
(block *corners*) and fits a non-periodic quadratic spline through the 4 x 4 actions padded to
5 x 5 on ``linspace(0, 2 pi, 5)`` (``turbulence.md`` sect. 2). Here the agents sit at block *centres*
``N/a (i + 1/2)`` (each agent sits in the middle of the block it controls, like CubismUP's one agent
per block, and the lattice is symmetric under the box's periodic shifts by ``N/a``), and every
interpolation is periodic: exact at the lattice points, constant in -> constant out, and no seam at
``x = 0 = 2 pi``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from simrl.physics.turbulence.grid import TWO_PI, SpectralGrid
from simrl.physics.turbulence.model import closure_hat, jacobian_hat, streamfunction_hat

CLOSURE_KINDS = ("smagorinsky", "leith")
"""Eddy-viscosity model families (see the module table)."""

SCALES = ("local", "global")
"""``"local"``: ``|S|`` / ``|grad omega|`` at each point; ``"global"``: their domain rms / mean (the paper)."""

INTERPOLATION_METHODS = ("fourier", "bilinear", "spline", "nearest")
"""Periodic interpolations of the agents' lattice values (:func:`interpolate_periodic`)."""

CLOSURE_NAMES = ("none", "smagorinsky", "leith", "dynamic_smagorinsky", "dynamic_leith")
"""Names accepted by :func:`make_closure`."""

STATIC_COEFFICIENTS: dict[str, float] = {
    # C_s = 0.17: Lilly's (1967) value, the coefficient of py2d's examples (``eddyViscosityCoeff``)
    # and the one the SMARL comparison uses for static Smagorinsky; RLonKorali's default is 0.11
    # (``turbulence.md`` sect. 4). We keep 0.17: the dynamic procedure on the shipped filtered-DNS
    # snapshots (fhit_cpu, Delta = 2 pi / N) gives median C_s = 0.20, 0.21, 0.23, 0.24 at N = 16, 32,
    # 64, 128 (C_L = 0.22 .. 0.32), closer to 0.17 than to 0.11.
    "smagorinsky": 0.17**2,
    # C_L = 0.17: static Leith of the reference (``turbulence.md`` sect. 4; Leith 1996 / py2d).
    "leith": 0.17**3,
}
"""Static baseline coefficients ``c`` (``C_s^2`` and ``C_L^3``) for ``Delta = 2 pi / N``."""


def _check_kind(kind: str) -> str:
    if kind not in CLOSURE_KINDS:
        raise ValueError(f"unknown closure kind {kind!r}; accepted: {list(CLOSURE_KINDS)}")
    return kind


def _check_omega_hat(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    if not isinstance(grid, SpectralGrid):
        raise TypeError(f"grid must be a SpectralGrid, got {type(grid).__name__}")
    omega_hat = np.asarray(omega_hat)
    if omega_hat.ndim != 3 or omega_hat.shape[1:] != grid.spectral_shape:
        raise ValueError(f"omega_hat must have shape (B, *{grid.spectral_shape}), got {omega_hat.shape}")
    return omega_hat


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------------
# Agent lattice and periodic interpolation
# ----------------------------------------------------------------------------------------


def lattice_indices(n: int, agents_per_side: int) -> np.ndarray:
    """Grid indices ``(agents_per_side,)`` of the agents along one axis: block centres ``i b + b // 2``.

    ``b = n / agents_per_side`` is the block size; for even ``b`` this is exactly ``b (i + 1/2)``
    (8, 24, 40, 56 for ``n = 64``, 4 agents), for odd ``b`` the centre point of the block.
    ``n`` must be divisible by ``agents_per_side``.

    >>> lattice_indices(64, 4).tolist()
    [8, 24, 40, 56]
    """
    n = _positive_int("n (grid points per side)", n)
    a = _positive_int("agents_per_side", agents_per_side)
    if n % a:
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        raise ValueError(
            f"the grid size n={n} must be divisible by agents_per_side; got agents_per_side={a}, "
            f"accepted values for n={n}: {divisors}"
        )
    block = n // a
    return np.arange(a, dtype=np.intp) * block + block // 2


def agent_points(n: int, agents_per_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices ``(ix, iy)``, each ``(agents_per_side**2,)``, of all agents, row-major over (x, y).

    Agent ``j = i_x * agents_per_side + i_y`` sits at ``(idx[i_x], idx[i_y])`` with
    ``idx = lattice_indices(n, agents_per_side)``: the same order as ``coefficients.reshape(B, a, a)``
    in :func:`interpolate_periodic`.
    """
    idx = lattice_indices(n, agents_per_side)
    a = idx.size
    return np.repeat(idx, a), np.tile(idx, a)


def _periodic_spline_weights(nodes: np.ndarray, x: np.ndarray, period: float) -> np.ndarray:
    """Cardinal functions of the periodic cubic spline through ``nodes`` evaluated at ``x`` (len(x), a)."""
    from scipy.interpolate import make_interp_spline

    a = nodes.size
    if a < 4:  # a periodic cubic spline needs >= 4 distinct nodes; fall back to the trigonometric one
        return _fourier_weights(nodes, x, period)
    xs = np.append(nodes, nodes[0] + period)
    out = np.empty((x.size, a))
    shifted = nodes[0] + np.mod(x - nodes[0], period)
    for j in range(a):
        y = np.zeros(a + 1)
        y[j] = 1.0
        if j == 0:
            y[-1] = 1.0
        out[:, j] = make_interp_spline(xs, y, k=3, bc_type="periodic")(shifted)
    return out


def _fourier_weights(nodes: np.ndarray, x: np.ndarray, period: float) -> np.ndarray:
    """Cardinal functions of the real trigonometric interpolant on ``a`` equispaced periodic nodes.

    ``w_j(x) = (1/a) [1 + 2 sum_{m=1}^{M} cos(m k0 (x - x_j)) (+ cos(a/2 k0 (x - x_j)) for even a)]``
    with ``k0 = 2 pi / period`` and ``M = (a - 1) // 2``: the unique interpolant of degree < a/2
    (the even-``a`` Nyquist term taken as a cosine so that the result is real); ``w_j(x_i) = delta_ij``
    and ``sum_j w_j = 1``.
    """
    a = nodes.size
    k0 = TWO_PI / period
    d = k0 * (x[:, None] - nodes[None, :])
    w = np.ones_like(d)
    for m in range(1, (a - 1) // 2 + 1):
        w += 2.0 * np.cos(m * d)
    if a % 2 == 0:
        w += np.cos((a // 2) * d)
    return w / a


def _hat_weights(nodes: np.ndarray, x: np.ndarray, period: float, nearest: bool) -> np.ndarray:
    """Periodic linear-hat (bilinear per axis) or nearest-node (block-constant) weights (len(x), a)."""
    a = nodes.size
    h = period / a
    dist = np.abs(np.mod(x[:, None] - nodes[None, :] + period / 2, period) - period / 2) / h
    if nearest:
        # each point belongs to its agent's block [i b, (i + 1) b) (for even b the centre splits ties evenly)
        w = np.zeros_like(dist)
        w[np.arange(x.size), (np.floor(x / h).astype(np.intp)) % a] = 1.0
        return w
    return np.maximum(0.0, 1.0 - dist)


@functools.lru_cache(maxsize=64)
def interpolation_matrix(n: int, agents_per_side: int, method: str = "fourier") -> np.ndarray:
    """The 1-D periodic interpolation matrix ``P`` (n, agents_per_side): ``field = P c P^T`` per system.

    Nodes are :func:`lattice_indices` (in grid-index units, period ``n``); ``P[idx[j], i] = delta_ij``
    for every method. Read-only, cached.
    """
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"unknown interpolation method {method!r}; accepted: {list(INTERPOLATION_METHODS)}")
    nodes = lattice_indices(n, agents_per_side).astype(np.float64)
    x = np.arange(n, dtype=np.float64)
    if method == "fourier":
        p = _fourier_weights(nodes, x, float(n))
    elif method == "spline":
        p = _periodic_spline_weights(nodes, x, float(n))
    else:
        p = _hat_weights(nodes, x, float(n), nearest=method == "nearest")
    p = np.ascontiguousarray(p)
    p.setflags(write=False)
    return p


def interpolate_periodic(coefficients: np.ndarray, n: int, method: str = "fourier") -> np.ndarray:
    """Spread lattice values ``(B, a, a)`` (agents at :func:`lattice_indices`) onto the ``(B, n, n)`` grid, periodically.

    ``coefficients[b, i, j]`` is the value at grid point ``(idx[i], idx[j])``. Methods (all separable,
    exact at the lattice points, periodic, and a constant lattice gives the same constant field):

    ``"fourier"`` (default)
        the real trigonometric interpolant of the lattice values (band-limited to the lattice's
        own wavenumbers ``< a/2``: the smoothest periodic choice; it can overshoot between nodes).
    ``"bilinear"``
        periodic piecewise-linear per axis (stays within the range of the values).
    ``"spline"``
        periodic cubic spline per axis (the paper's spline with the periodicity fixed; the paper
        used a non-periodic quadratic one). Needs ``a >= 4``; for fewer agents it is ``"fourier"``.
    ``"nearest"``
        block-constant: each agent sets its own block.
    """
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim != 3 or c.shape[1] != c.shape[2] or c.shape[1] < 1:
        raise ValueError(f"coefficients must have shape (B, a, a) (a agents per side), got {c.shape}")
    p = interpolation_matrix(_positive_int("n", n), c.shape[1], method)
    # P C P^T per copy; two matmuls are 3-6x faster than the equivalent einsum (its path search dominates
    # at these sizes) and give the same bits
    return np.matmul(np.matmul(p, c), p.T)


# ----------------------------------------------------------------------------------------
# Eddy-viscosity models
# ----------------------------------------------------------------------------------------


def strain_rate_magnitude(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """``|S| = sqrt(2 S_ij S_ij) = 2 sqrt(S_11^2 + S_12^2)`` on the grid, ``(..., N, N)`` (module doc).

    Derivatives are those of the discrete velocity (Nyquist modes zeroed, :class:`~.grid.SpectralGrid`).
    """
    psi_hat = streamfunction_hat(grid, omega_hat)
    s11_hat = -(grid.ikx * grid.iky) * psi_hat  # u_x = -psi_xy
    s12_hat = 0.5 * (grid.ikx * grid.ikx - grid.iky * grid.iky) * psi_hat  # (v_x + u_y)/2 = (psi_xx - psi_yy)/2
    s11, s12 = grid.to_physical(np.stack([s11_hat, s12_hat]))
    return 2.0 * np.sqrt(s11**2 + s12**2)


def vorticity_gradient_magnitude(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """``|grad omega| = sqrt(omega_x^2 + omega_y^2)`` on the grid, ``(..., N, N)``."""
    wx, wy = grid.to_physical(np.stack([grid.ikx * omega_hat, grid.iky * omega_hat]))
    return np.sqrt(wx**2 + wy**2)


def _model_scale(grid: SpectralGrid, omega_hat: np.ndarray, kind: str) -> np.ndarray:
    """``|S|`` (Smagorinsky) or ``|grad omega|`` (Leith), ``(B, N, N)``."""
    if kind == "smagorinsky":
        return strain_rate_magnitude(grid, omega_hat)
    return vorticity_gradient_magnitude(grid, omega_hat)


def _delta(grid: SpectralGrid, delta) -> float:
    if delta is None:
        return TWO_PI / grid.n
    if isinstance(delta, bool) or not isinstance(delta, Real) or not 0 < delta < np.inf:
        raise ValueError(f"delta (filter width) must be None (2 pi / N) or a finite real number > 0, got {delta!r}")
    return float(delta)


def _power(kind: str) -> int:
    return 2 if kind == "smagorinsky" else 3


def eddy_viscosity(
    grid: SpectralGrid,
    omega_hat: np.ndarray,
    coefficient,
    kind: str,
    scale: str = "local",
    delta: float | None = None,
) -> np.ndarray:
    """Eddy viscosity ``(B, N, N)`` of a Smagorinsky or Leith model (module table).

    ``omega_hat`` (B, N, N//2+1): the LES vorticity. ``coefficient``: ``c`` = ``C_s^2`` (Smagorinsky)
    or ``C_L^3`` (Leith) as a scalar, a ``(B,)`` array (one per system) or a ``(B, N, N)`` field (the
    agents' interpolated values); negative values (backscatter) pass through unchanged.
    ``scale``: ``"local"`` or ``"global"`` (the paper's domain rms ``|S|`` / mean ``|grad omega|``).
    ``delta``: filter width, default ``2 pi / N``.
    """
    kind = _check_kind(kind)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; accepted: {list(SCALES)}")
    omega_hat = _check_omega_hat(grid, omega_hat)
    b, n = omega_hat.shape[0], grid.n
    c = np.asarray(coefficient, dtype=np.float64)
    if c.ndim == 1 and c.shape == (b,):
        c = c[:, None, None]
    elif not (c.ndim == 0 or c.shape == (b, n, n)):
        raise ValueError(f"coefficient must be a scalar, shape ({b},) or ({b}, {n}, {n}), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("coefficient must be finite")
    d = _delta(grid, delta)
    s = _model_scale(grid, omega_hat, kind)
    if scale == "global":
        if kind == "smagorinsky":
            s = np.sqrt(np.mean(s**2, axis=(-2, -1), keepdims=True))
        else:
            s = np.mean(s, axis=(-2, -1), keepdims=True)
    return np.broadcast_to(c * d ** _power(kind) * s, (b, n, n)).copy()


def germano_test_filter(grid: SpectralGrid) -> np.ndarray:
    """The dynamic procedure's test filter (N, N//2+1): sharp square cutoff ``|k_x|, |k_y| < N/4``."""
    q = grid.n / 4.0
    return ((np.abs(grid.kx) < q) & (grid.ky < q)).astype(np.float64)


def germano_terms(
    grid: SpectralGrid, omega_hat: np.ndarray, kind: str, delta: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Physical ``(L, M)``, each ``(B, N, N)``, of the Germano identity ``L = c M`` (module doc)."""
    kind = _check_kind(kind)
    omega_hat = _check_omega_hat(grid, omega_hat)
    d = _delta(grid, delta)
    p = _power(kind)
    g = germano_test_filter(grid)
    w_hat = g * omega_hat
    l_hat = g * jacobian_hat(grid, omega_hat) - jacobian_hat(grid, w_hat)
    m_hat = d**p * g * closure_hat(grid, omega_hat, _model_scale(grid, omega_hat, kind)) - (2.0 * d) ** p * closure_hat(
        grid, w_hat, _model_scale(grid, w_hat, kind)
    )
    lm = grid.to_physical(np.stack([l_hat, m_hat], axis=1))
    return lm[:, 0], lm[:, 1]


def dynamic_coefficient(grid: SpectralGrid, omega_hat: np.ndarray, kind: str, delta: float | None = None) -> np.ndarray:
    """Germano-Lilly coefficient ``c = <(L M)_+> / <M^2>`` of each system, ``(B,)``, clipped ``>= 0``.

    ``c`` is ``C_s^2`` (Smagorinsky) or ``C_L^3`` (Leith) for the filter width ``delta``
    (default ``2 pi / N``). A field with ``M = 0`` (e.g. zero vorticity) gets ``c = 0``.
    """
    lf, mf = germano_terms(grid, omega_hat, kind, delta)
    num = np.mean(np.maximum(lf * mf, 0.0), axis=(-2, -1))
    den = np.mean(mf * mf, axis=(-2, -1))
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


# ----------------------------------------------------------------------------------------
# One interface for the evaluation
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Closure:
    """A named baseline closure: ``closure.eddy_viscosity(grid, omega_hat) -> (B, N, N)`` or None.

    ``kind``: None (no closure) or one of :data:`CLOSURE_KINDS`. ``dynamic``: coefficient from
    :func:`dynamic_coefficient` at every call (else ``coefficient``). ``scale``, ``delta``: as in
    :func:`eddy_viscosity`.
    """

    name: str
    kind: str | None
    coefficient: float = 0.0
    dynamic: bool = False
    scale: str = "local"
    delta: float | None = None

    def eddy_viscosity(self, grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray | None:
        """The eddy-viscosity field ``(B, N, N)`` for the current LES state; None for ``"none"``."""
        if self.kind is None:
            _check_omega_hat(grid, omega_hat)
            return None
        if self.dynamic:
            c = dynamic_coefficient(grid, omega_hat, self.kind, self.delta)
        else:
            c = self.coefficient
        return eddy_viscosity(grid, omega_hat, c, self.kind, self.scale, self.delta)


def make_closure(name: str, coefficient: float | None = None, scale: str = "local", delta: float | None = None) -> Closure:
    """The baseline closure called ``name`` (one of :data:`CLOSURE_NAMES`).

    ``coefficient`` overrides the static value (:data:`STATIC_COEFFICIENTS`; ignored by the
    dynamic ones); ``scale`` and ``delta`` as in :func:`eddy_viscosity`.

    >>> import numpy as np
    >>> from simrl.physics.turbulence import SpectralGrid
    >>> grid = SpectralGrid(32)
    >>> w = grid.to_spectral(np.cos(np.arange(32))[None, :, None] * np.ones((1, 32, 32)))
    >>> make_closure("smagorinsky").eddy_viscosity(grid, w).shape
    (1, 32, 32)
    >>> make_closure("none").eddy_viscosity(grid, w) is None
    True
    """
    if name not in CLOSURE_NAMES:
        raise ValueError(f"unknown closure {name!r}; accepted: {list(CLOSURE_NAMES)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; accepted: {list(SCALES)}")
    _delta(SpectralGrid(8), delta)
    if name == "none":
        return Closure(name, None)
    dynamic = name.startswith("dynamic_")
    kind = name.removeprefix("dynamic_")
    if coefficient is None:
        coefficient = STATIC_COEFFICIENTS[kind]
    elif isinstance(coefficient, bool) or not isinstance(coefficient, Real) or not np.isfinite(coefficient):
        raise ValueError(f"coefficient must be None or a finite real number, got {coefficient!r}")
    return Closure(name, kind, float(coefficient), dynamic, scale, delta)
