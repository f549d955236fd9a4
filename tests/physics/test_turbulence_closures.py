"""Closures (Smagorinsky, Leith, dynamic), the agents' lattice interpolation and the local invariants.

Analytic references: the Taylor-Green streamfunction ``psi = A sin x sin y`` and single Fourier modes
``psi = A cos(p x + q y)``, whose strain, vorticity gradient and second derivatives are written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from simrl.physics.turbulence import (
    CLOSURE_NAMES,
    INTERPOLATION_METHODS,
    STATIC_COEFFICIENTS,
    TurbulenceModel,
    TurbulenceParameters,
    agent_points,
    diagnostics,
    dynamic_coefficient,
    eddy_viscosity,
    interpolate_periodic,
    lattice_indices,
    local_invariants,
    make_closure,
    random_vorticity,
)
from simrl.physics.turbulence.closures import germano_terms, strain_rate_magnitude
from simrl.physics.turbulence.grid import SpectralGrid

# ----------------------------------------------------------------------------------------- helpers


def omega_hat_of_psi(grid: SpectralGrid, psi: np.ndarray) -> np.ndarray:
    """Spectral vorticity ``lap psi`` of a physical streamfunction (B, N, N)."""
    return -grid.k2 * grid.to_spectral(psi)


def taylor_green(n: int = 32, amplitude: float = 1.5):
    grid = SpectralGrid(n)
    x, y = grid.meshgrid()
    psi = amplitude * np.sin(x) * np.sin(y)
    return grid, x, y, omega_hat_of_psi(grid, psi[None])


@pytest.fixture(scope="module")
def turbulent_les():
    """A developed forced-turbulence field: 128^2 run, coarse-grained to 32^2 and 64^2 (filtered DNS)."""
    model = TurbulenceModel(TurbulenceParameters(n=128, nu=2e-3, alpha=0.1, k_f=4, dt=4e-3))
    state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(3), batch_size=1, rms=8.0))
    model.advance(state, 1500)  # t = 6: several eddy turnovers (1 / sigma_omega ~ 0.2)
    assert state.status[0] == 0
    return {n: diagnostics.coarse_grain(state.omega_hat, n) for n in (32, 64)}


# ----------------------------------------------------------------------------------------- lattice


def test_lattice_indices_are_block_centres():
    assert lattice_indices(64, 4).tolist() == [8, 24, 40, 56]
    assert lattice_indices(64, 8).tolist() == [4 + 8 * i for i in range(8)]
    assert lattice_indices(15, 5).tolist() == [1, 4, 7, 10, 13]  # odd block: its centre point
    ix, iy = agent_points(64, 4)
    assert ix.tolist()[:5] == [8, 8, 8, 8, 24] and iy.tolist()[:5] == [8, 24, 40, 56, 8]


def test_lattice_indices_bad_input_names_accepted_values():
    with pytest.raises(ValueError, match=r"divisible.*accepted values for n=64: \[1, 2, 4, 8, 16, 32, 64\]"):
        lattice_indices(64, 5)
    with pytest.raises(ValueError, match="agents_per_side must be an integer >= 1"):
        lattice_indices(64, 0)


@pytest.mark.parametrize("method", INTERPOLATION_METHODS)
def test_interpolation_exact_at_lattice_constant_and_periodic(method):
    n, a = 64, 4
    rng = np.random.default_rng(0)
    c = rng.uniform(-1, 1, (3, a, a))
    field = interpolate_periodic(c, n, method)
    assert field.shape == (3, n, n)
    idx = lattice_indices(n, a)
    np.testing.assert_allclose(field[:, idx[:, None], idx[None, :]], c, atol=1e-13)
    np.testing.assert_allclose(interpolate_periodic(np.full((2, a, a), 0.37), n, method), 0.37, atol=1e-13)
    # periodic: shifting the lattice values by one agent shifts the field by one block, with no seam at 0 = 2 pi
    # (the paper's non-periodic spline on linspace(0, 2 pi, 5) fails this)
    shifted = interpolate_periodic(np.roll(c, (1, -1), axis=(1, 2)), n, method)
    np.testing.assert_allclose(shifted, np.roll(field, (n // a, -n // a), axis=(1, 2)), atol=1e-12)


def test_interpolation_ranges_and_smoothness():
    rng = np.random.default_rng(1)
    c = rng.uniform(0.0, 1.0, (2, 4, 4))
    for method in ("bilinear", "nearest"):  # convex combinations: stay within the values' range
        f = interpolate_periodic(c, 32, method)
        assert f.min() >= c.min() - 1e-14 and f.max() <= c.max() + 1e-14
    # the Fourier interpolant is band-limited to the lattice's wavenumbers (|k| <= a/2 = 2)
    f_hat = np.fft.rfft2(interpolate_periodic(c, 32, "fourier"))
    k = np.abs(np.fft.fftfreq(32, 1 / 32))[:, None] + 0 * np.arange(17)[None, :]
    assert np.abs(f_hat[:, (k > 2) | (np.arange(17)[None, :] > 2)]).max() < 1e-10
    # bilinear is linear between neighbouring nodes along a lattice line
    f = interpolate_periodic(c, 32, "bilinear")
    idx = lattice_indices(32, 4)
    mid = (idx[0] + idx[1]) // 2
    np.testing.assert_allclose(f[:, mid, idx[2]], 0.5 * (c[:, 0, 2] + c[:, 1, 2]), atol=1e-14)


def test_interpolation_bad_input():
    with pytest.raises(ValueError, match=r"accepted: \['fourier', 'bilinear', 'spline', 'nearest'\]"):
        interpolate_periodic(np.zeros((1, 4, 4)), 64, "cubic")
    with pytest.raises(ValueError, match=r"shape \(B, a, a\)"):
        interpolate_periodic(np.zeros((4, 4)), 64)
    with pytest.raises(ValueError, match="divisible"):
        interpolate_periodic(np.zeros((1, 3, 3)), 64)


# ----------------------------------------------------------------------------------------- static models


def test_strain_magnitude_matches_paper_definition_on_a_shear_mode():
    # psi = A cos(3x): v = -3A sin 3x, u = 0; S_11 = 0, S_12 = v_x / 2 = -9A/2 cos 3x
    grid = SpectralGrid(32)
    x, _ = grid.meshgrid()
    a = 0.7
    s = strain_rate_magnitude(grid, omega_hat_of_psi(grid, (a * np.cos(3 * x))[None]))[0]
    np.testing.assert_allclose(s, 2.0 * np.sqrt(0.0 + (4.5 * a * np.cos(3 * x)) ** 2), atol=1e-12)


def test_smagorinsky_and_leith_match_taylor_green():
    a = 1.5
    grid, x, y, w_hat = taylor_green(amplitude=a)
    delta = 2 * np.pi / grid.n
    c = 0.03
    # S_11 = u_x = -A cos x cos y, S_12 = 0  ->  |S| = 2 A |cos x cos y|
    s_exact = 2 * a * np.abs(np.cos(x) * np.cos(y))
    nu = eddy_viscosity(grid, w_hat, c, "smagorinsky")
    np.testing.assert_allclose(nu[0], c * delta**2 * s_exact, atol=1e-14)
    # omega = -2 A sin x sin y  ->  |grad omega| = 2 A sqrt(cos^2 x sin^2 y + sin^2 x cos^2 y)
    g_exact = 2 * a * np.sqrt((np.cos(x) * np.sin(y)) ** 2 + (np.sin(x) * np.cos(y)) ** 2)
    nu = eddy_viscosity(grid, w_hat, c, "leith", delta=0.3)
    np.testing.assert_allclose(nu[0], c * 0.3**3 * g_exact, atol=1e-13)
    # global scales: rms |S| = 2A sqrt(<cos^2 x cos^2 y>) = A; mean |grad omega| from the exact field
    nu = eddy_viscosity(grid, w_hat, c, "smagorinsky", scale="global")
    np.testing.assert_allclose(nu, c * delta**2 * a, rtol=1e-13)
    nu = eddy_viscosity(grid, w_hat, c, "leith", scale="global")
    np.testing.assert_allclose(nu, c * delta**3 * g_exact.mean(), rtol=1e-12)


def test_coefficient_shapes_per_system_and_field():
    grid, x, _, w1 = taylor_green()
    w_hat = np.concatenate([w1, 2 * w1])
    per_system = eddy_viscosity(grid, w_hat, np.array([0.01, 0.02]), "smagorinsky")
    np.testing.assert_allclose(per_system[1], 4 * per_system[0], atol=1e-15)
    field = np.stack([np.full((32, 32), 0.01), 0.01 + 0.01 * np.cos(x)])
    nu = eddy_viscosity(grid, w_hat, field, "smagorinsky")
    np.testing.assert_allclose(nu[1], (1 + np.cos(x)) * 2 * per_system[0], atol=1e-15)
    with pytest.raises(ValueError, match=r"scalar, shape \(2,\) or \(2, 32, 32\)"):
        eddy_viscosity(grid, w_hat, np.zeros(3), "smagorinsky")
    with pytest.raises(ValueError, match=r"accepted: \['smagorinsky', 'leith'\]"):
        eddy_viscosity(grid, w_hat, 0.01, "vreman")
    with pytest.raises(ValueError, match=r"accepted: \['local', 'global'\]"):
        eddy_viscosity(grid, w_hat, 0.01, "leith", scale="box")


@pytest.mark.parametrize("kind", ["smagorinsky", "leith"])
@pytest.mark.parametrize("scale", ["local", "global"])
def test_closure_dissipates_enstrophy_for_nonnegative_coefficients(kind, scale):
    model = TurbulenceModel(TurbulenceParameters(n=32, k_f=2))
    rng = np.random.default_rng(4)
    w_hat = model.state_from_spectral(model.grid.to_spectral(random_vorticity(model.grid, rng, 3))).omega_hat
    c = interpolate_periodic(rng.uniform(0, 0.1, (3, 4, 4)), 32, "bilinear")
    nu = eddy_viscosity(model.grid, w_hat, c, kind, scale)
    assert (nu >= 0).all()
    dz = diagnostics.budgets(model, w_hat, nu)["enstrophy"]["closure"]
    # the flux form gives exactly -<nu_e |grad omega|^2> on the grid
    grads = model.grid.to_physical(np.stack([model.grid.ikx * w_hat, model.grid.iky * w_hat]))
    expected = -np.mean(nu * (grads[0] ** 2 + grads[1] ** 2), axis=(-2, -1))
    np.testing.assert_allclose(dz, expected, rtol=1e-10)
    assert (dz < 0).all()


# ----------------------------------------------------------------------------------------- dynamic


@pytest.mark.parametrize("kind", ["smagorinsky", "leith"])
def test_dynamic_coefficient_positive_and_of_the_right_order(turbulent_les, kind):
    for n, w_hat in turbulent_les.items():
        grid = SpectralGrid(n)
        c = dynamic_coefficient(grid, w_hat, kind)
        assert c.shape == (1,) and c[0] > 0
        root = c[0] ** (1 / (2 if kind == "smagorinsky" else 3))  # C_s or C_L
        # Lilly's C_s ~ 0.17, the reference's C_L = 0.17; dynamic 2-D values are O(0.1-0.5) for Delta = dx
        assert 0.03 < root < 1.0, (n, kind, root)
        # the Germano identity is a positive correlation on average: <L M> > 0
        lf, mf = germano_terms(grid, w_hat, kind)
        assert np.mean(lf * mf) > 0


@pytest.mark.parametrize("kind", ["smagorinsky", "leith"])
def test_dynamic_coefficient_invariances(turbulent_les, kind):
    grid = SpectralGrid(64)
    w_hat = turbulent_les[64]
    c = dynamic_coefficient(grid, w_hat, kind)
    # dimensionless: unchanged when the vorticity is scaled (L and M are both quadratic in omega)
    np.testing.assert_allclose(dynamic_coefficient(grid, 3.0 * w_hat, kind), c, rtol=1e-10)
    # only c Delta^p is determined: the Delta convention drops out of nu_e
    p = 2 if kind == "smagorinsky" else 3
    c2 = dynamic_coefficient(grid, w_hat, kind, delta=2 * (2 * np.pi / 64))
    np.testing.assert_allclose(c2 * 2**p, c, rtol=1e-10)
    assert dynamic_coefficient(grid, np.zeros_like(w_hat), kind).tolist() == [0.0]


# ----------------------------------------------------------------------------------------- named closures


def test_make_closure_names_and_values(turbulent_les):
    grid = SpectralGrid(64)
    w_hat = turbulent_les[64]
    assert make_closure("none").eddy_viscosity(grid, w_hat) is None
    nu = make_closure("smagorinsky").eddy_viscosity(grid, w_hat)
    np.testing.assert_allclose(nu, eddy_viscosity(grid, w_hat, 0.17**2, "smagorinsky"))
    assert STATIC_COEFFICIENTS == {"smagorinsky": 0.17**2, "leith": 0.17**3}
    for name in CLOSURE_NAMES[1:]:
        nu = make_closure(name).eddy_viscosity(grid, w_hat)
        assert nu.shape == (1, 64, 64) and (nu >= 0).all() and nu.max() > 0
    dyn = make_closure("dynamic_leith").eddy_viscosity(grid, w_hat)
    np.testing.assert_allclose(dyn, eddy_viscosity(grid, w_hat, dynamic_coefficient(grid, w_hat, "leith"), "leith"))
    with pytest.raises(ValueError, match=r"accepted: \['none', 'smagorinsky', 'leith', 'dynamic_smagorinsky'"):
        make_closure("dsmag")


# ----------------------------------------------------------------------------------------- invariants


def analytic_mode_invariants(a, p, q, x, y):
    """Features of psi = a cos(p x + q y), written out from the hand-derived derivatives."""
    th = p * x + q * y
    c, s = np.cos(th), np.sin(th)
    ux, uy, vx, vy = a * q * p * c, a * q * q * c, -a * p * p * c, -a * p * q * c
    uxx, uyy, vxx, vyy = -a * q * p * p * s, -a * q**3 * s, a * p**3 * s, a * p * q * q * s
    assert np.allclose(ux + vy, 0)
    S = np.array([[ux, (uy + vx) / 2], [(uy + vx) / 2, vy]])
    R = np.array([[0 * ux, (uy - vx) / 2], [(vx - uy) / 2, 0 * ux]])
    H = np.array([[uxx, vxx], [uyy, vyy]])
    SH, RH = (H + H.transpose(1, 0, *range(2, H.ndim))) / 2, (H - H.transpose(1, 0, *range(2, H.ndim))) / 2
    tr2 = lambda m: np.einsum("ij...,ji...->...", m, m)  # noqa: E731
    return np.stack([tr2(S), tr2(R), vx - uy, SH[0, 0] + SH[1, 1], tr2(SH), tr2(RH)], axis=-1)


def test_local_invariants_of_single_fourier_modes():
    grid = SpectralGrid(32)
    x, y = grid.meshgrid()
    ix, iy = agent_points(32, 4)
    modes = [(0.8, 1, 2), (1.3, 3, -1), (0.5, 0, 4)]
    psi = np.stack([a * np.cos(p * x + q * y) for a, p, q in modes])
    feats = local_invariants(grid, omega_hat_of_psi(grid, psi), ix, iy)
    assert feats.shape == (3, 16, 6)
    for b, (a, p, q) in enumerate(modes):
        expected = analytic_mode_invariants(a, p, q, x[ix, iy], y[ix, iy])
        np.testing.assert_allclose(feats[b], expected, atol=1e-11)
        # tr R^2 = -omega^2 / 2 and tr S^2 = |S|^2 / 2
        np.testing.assert_allclose(feats[b, :, 1], -0.5 * feats[b, :, 2] ** 2, atol=1e-11)


def test_local_invariants_taylor_green_and_ordering():
    a = 2.0
    grid, x, y, w_hat = taylor_green(32, a)
    ix, iy = agent_points(32, 4)
    f = local_invariants(grid, w_hat, ix, iy)[0]
    xs, ys = x[ix, iy], y[ix, iy]
    np.testing.assert_allclose(f[:, 0], 2 * (a * np.cos(xs) * np.cos(ys)) ** 2, atol=1e-12)  # tr S^2, S_12 = 0
    np.testing.assert_allclose(f[:, 2], -2 * a * np.sin(xs) * np.sin(ys), atol=1e-12)  # omega
    # u = -A sin x cos y, v = A cos x sin y: u_xx = -u, v_yy = -v  ->  tr S_H = A (sin x cos y - cos x sin y)
    np.testing.assert_allclose(f[:, 3], a * (np.sin(xs) * np.cos(ys) - np.cos(xs) * np.sin(ys)), atol=1e-12)
    # agent j = i_x * 4 + i_y is at (idx[i_x], idx[i_y])
    idx = lattice_indices(32, 4)
    single = local_invariants(grid, w_hat, np.array([idx[2]]), np.array([idx[1]]))[0, 0]
    np.testing.assert_allclose(f[2 * 4 + 1], single)
    with pytest.raises(ValueError, match="1-D integer arrays"):
        local_invariants(grid, w_hat, ix.astype(float), iy)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 31\]"):
        local_invariants(grid, w_hat, ix + 32, iy)
