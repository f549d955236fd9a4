"""Physics of the batched beta-plane vorticity solver (simrl.physics.turbulence.model).

Conventions under test: u = -psi_y, v = psi_x, omega = curl u = lap psi, and
d(omega)/dt + J(psi, omega) = nu lap omega - alpha omega + F - beta v + div(nu_e grad omega).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from simrl.physics.turbulence import (
    STATUS_NONFINITE,
    STATUS_OK,
    TurbulenceModel,
    TurbulenceParameters,
    random_vorticity,
)
from simrl.physics.turbulence import diagnostics as diag
from simrl.physics.turbulence.model import (
    closure_hat,
    jacobian_hat,
    linear_operator,
    streamfunction_hat,
)


def make_model(n=32, **kwargs) -> TurbulenceModel:
    return TurbulenceModel(TurbulenceParameters(n=n, **kwargs))


def inviscid(n=32, dt=0.05, **kwargs) -> TurbulenceModel:
    return make_model(n=n, nu=0.0, alpha=0.0, beta=0.0, k_f=0, dt=dt, **kwargs)


def random_state(model, batch_size=1, seed=0, rms=1.0, k_peak=None):
    omega = random_vorticity(model.grid, np.random.default_rng(seed), batch_size=batch_size, rms=rms, k_peak=k_peak)
    return model.initial_state(omega)


def smooth_nu_e(grid, batch_size, seed=0, mean=2e-3, amplitude=1.5e-3):
    """Smooth, positive, non-uniform eddy-viscosity fields (B, N, N)."""
    rng = np.random.default_rng(seed)
    x, y = grid.meshgrid()
    out = []
    for _ in range(batch_size):
        a, b, c = rng.uniform(0, 2 * np.pi, 3)
        out.append(mean + amplitude * (0.5 * np.cos(x + a) * np.sin(2 * y + b) + 0.5 * np.sin(3 * x + y + c)))
    return np.array(out)


def rel_inner(grid, a_hat, b_hat):
    """<a b> / sqrt(<a^2><b^2>)."""
    norms = grid.mean_product(a_hat, a_hat) * grid.mean_product(b_hat, b_hat)
    return grid.mean_product(a_hat, b_hat) / np.sqrt(norms)


def single_mode(grid, kx, ky, amplitude=1.0, phase=0.0):
    x, y = grid.meshgrid()
    return amplitude * np.cos(kx * x + ky * y + phase)


def mode_coefficient(omega_hat, grid, kx, ky):
    """rfft2 coefficient of mode (kx, ky) with ky >= 0 (a copy, not a view)."""
    assert ky >= 0
    return complex(omega_hat[kx % grid.n, ky])


# ------------------------------------------------------------------------------------------
# (a) conservation by the nonlinear term
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [32, 48, 64])
def test_dealiased_advection_conserves_energy_and_enstrophy_to_roundoff(n):
    model = inviscid(n=n)
    state = random_state(model, batch_size=3, seed=n, rms=5.0, k_peak=model.grid.k_cut / 2)
    w = state.omega_hat
    grid = model.grid
    tendency = model.tendency(w)  # = -J(psi, omega) with every other term off
    np.testing.assert_allclose(tendency, -jacobian_hat(grid, w), rtol=0, atol=1e-12 * np.abs(tendency).max())
    psi = streamfunction_hat(grid, w)
    assert np.all(np.abs(rel_inner(grid, w, tendency)) < 1e-12)  # dZ/dt = <omega d_t omega>
    assert np.all(np.abs(rel_inner(grid, psi, tendency)) < 1e-12)  # dE/dt = -<psi d_t omega>


def test_without_dealiasing_the_advection_does_not_conserve():
    # The check above has teeth: aliasing breaks both invariants at the percent level.
    model = inviscid(n=32, dealias=False)
    w = random_state(model, batch_size=2, k_peak=8).omega_hat
    tendency = model.tendency(w)
    assert np.all(np.abs(rel_inner(model.grid, w, tendency)) > 1e-3)


def test_inviscid_invariant_drift_is_tiny_and_third_order_in_dt():
    dts = [0.1, 0.05, 0.025]
    t_end = 2.0
    drift_e, drift_z = [], []
    for dt in dts:
        model = inviscid(n=32, dt=dt)
        state = random_state(model, seed=1)
        e0, z0 = diag.energy(model.grid, state.omega_hat), diag.enstrophy(model.grid, state.omega_hat)
        assert model.advance(state, round(t_end / dt))[0] == STATUS_OK
        drift_e.append(abs(diag.energy(model.grid, state.omega_hat)[0] / e0[0] - 1))
        drift_z.append(abs(diag.enstrophy(model.grid, state.omega_hat)[0] / z0[0] - 1))
    for drift in (drift_e, drift_z):
        orders = np.log2(np.array(drift[:-1]) / np.array(drift[1:]))
        assert np.all((orders > 2.7) & (orders < 3.3)), (orders, drift)
        assert drift[-1] < 1e-6


# ------------------------------------------------------------------------------------------
# The fused kernels integrate exactly the plain operators with the stated scheme
# ------------------------------------------------------------------------------------------


def reference_if_rk3_step(model, w0, nu_e):
    """Independent NumPy IF-RK3 step (Heun c = 0, 1/3, 2/3) built on model.tendency (advective form)."""
    p, grid = model.params, model.grid
    out = []
    for b in range(w0.shape[0]):
        mean = float(nu_e[b].mean()) if np.ptp(nu_e[b]) > 0 else float(nu_e[b].flat[0])
        lin = linear_operator(grid, p, mean)
        def rhs(w, b=b, lin=lin):
            return model.tendency(w[None], nu_e[b][None])[0] - lin * w
        def e(s, lin=lin):
            return np.exp(lin * s)
        h = p.dt
        n1 = rhs(w0[b])
        w1 = e(h / 3) * (w0[b] + h / 3 * n1)
        n2 = rhs(w1)
        w2 = e(2 * h / 3) * w0[b] + 2 * h / 3 * e(h / 3) * n2
        n3 = rhs(w2)
        out.append(e(h) * (w0[b] + h / 4 * n1) + 3 * h / 4 * e(h / 3) * n3)
    return np.array(out)


@pytest.mark.parametrize("closure", ["nonuniform", "uniform"])
def test_fused_step_equals_reference_scheme_on_plain_operators(closure):
    model = make_model(n=32, nu=2e-3, alpha=0.1, beta=20.0, k_f=4, dt=2e-3)
    state = random_state(model, batch_size=2, seed=3, rms=6.0)
    grid = model.grid
    if closure == "nonuniform":
        nu_e = smooth_nu_e(grid, 2, seed=5)
    else:
        nu_e = np.stack([np.full((32, 32), 3e-3), np.full((32, 32), -1e-3)])
    expected = reference_if_rk3_step(model, state.omega_hat, nu_e)
    model.advance(state, 1, nu_e=nu_e)
    np.testing.assert_allclose(state.omega_hat, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_forced_dissipative_run_with_closure_converges_at_third_order():
    base = dict(n=32, nu=1e-3, alpha=0.1, beta=5.0, k_f=4)
    t_end = 0.4
    grid = make_model(**base).grid
    nu_e = smooth_nu_e(grid, 1, seed=2, mean=5e-3, amplitude=4e-3)

    def run(dt):
        model = make_model(dt=dt, **base)
        state = random_state(model, seed=4, rms=6.0)
        model.advance(state, round(t_end / dt), nu_e=nu_e)
        return state.omega_hat[0]

    ref = run(0.0025)
    errors = [np.abs(run(dt) - ref).max() for dt in (0.04, 0.02, 0.01)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 2.6) & (orders < 3.4)), (orders, errors)


# ------------------------------------------------------------------------------------------
# (b) Rossby waves, (c) Taylor-Green decay, Kolmogorov laminar flow
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [1e-3, 0.05])
@pytest.mark.parametrize("kx, ky", [(2, 1), (-3, 2), (1, 0)])
def test_single_rossby_wave_has_the_westward_dispersion_relation(kx, ky, dt):
    beta = 20.0
    model = make_model(n=32, nu=0.0, alpha=0.0, beta=beta, k_f=0, dt=dt)
    grid = model.grid
    k2 = kx * kx + ky * ky
    # psi = A cos(k.x) has omega = -k^2 A cos(k.x) and J(psi, omega) = 0: an exact nonlinear solution.
    # A is kept small because a finite-amplitude Rossby wave is unstable (triad instability, Gill
    # 1974), which would amplify round-off in the other modes, and to respect the CFL limit at dt = 0.05.
    state = model.initial_state(-k2 * single_mode(grid, kx, ky, amplitude=0.1))
    c0 = mode_coefficient(state.omega_hat[0], grid, kx, ky)
    t_sample = 0.1
    phases, amplitudes = [0.0], []
    for _ in range(10):
        model.advance(state, round(t_sample / dt))
        c = mode_coefficient(state.omega_hat[0], grid, kx, ky)
        phases.append(np.angle(c / c0))
        amplitudes.append(abs(c / c0))
    t = state.time[0]
    # omega ~ cos(k.x - w t): the +k coefficient rotates as exp(-i w t).
    measured = -np.unwrap(phases)[-1] / t
    expected = -beta * kx / k2
    assert abs(measured - expected) <= 1e-6 * abs(expected)
    assert measured / kx < 0  # westward phase speed c_x = w / k_x < 0 for beta > 0
    np.testing.assert_allclose(amplitudes, 1.0, rtol=1e-12)
    # The field stays a single mode (no spurious nonlinear transfer).
    others = state.omega_hat[0].copy()
    others[kx % 32, ky] = 0.0
    if ky == 0:
        others[-kx % 32, 0] = 0.0
    assert np.abs(others).max() < 1e-12 * abs(c0)


def test_rossby_wave_decays_at_the_viscous_and_drag_rate():
    beta, nu, alpha, kx, ky = 20.0, 0.01, 0.1, 2, 1
    model = make_model(n=32, nu=nu, alpha=alpha, beta=beta, k_f=0, dt=0.01)
    k2 = kx * kx + ky * ky
    state = model.initial_state(single_mode(model.grid, kx, ky))
    c0 = mode_coefficient(state.omega_hat[0], model.grid, kx, ky)
    model.advance(state, 30)
    c = mode_coefficient(state.omega_hat[0], model.grid, kx, ky)
    t = state.time[0]
    expected = c0 * np.exp(-(nu * k2 + alpha) * t) * np.exp(1j * beta * kx / k2 * t)
    assert abs(c - expected) < 1e-12 * abs(c0)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("amplitude", [1.0, 20.0])
def test_taylor_green_vortex_decays_at_the_analytic_rate(alpha, amplitude):
    nu = 0.01
    model = make_model(n=32, nu=nu, alpha=alpha, beta=0.0, k_f=0, dt=0.02)
    x, y = model.grid.meshgrid()
    omega0 = amplitude * np.sin(x) * np.sin(y)  # |k|^2 = 2: psi = -omega / 2, J(psi, omega) = 0
    state = model.initial_state(omega0)
    model.advance(state, 50)
    t = state.time[0]
    expected = omega0 * np.exp(-(2 * nu + alpha) * t)
    np.testing.assert_allclose(model.vorticity(state)[0], expected, rtol=0, atol=1e-12 * amplitude)
    # The velocity is the classical Taylor-Green field u = -psi_y, v = psi_x with psi = -omega/2.
    u, v = model.velocity(state)
    decay = np.exp(-(2 * nu + alpha) * t)
    np.testing.assert_allclose(u[0], 0.5 * amplitude * np.sin(x) * np.cos(y) * decay, atol=1e-12 * amplitude)
    np.testing.assert_allclose(v[0], -0.5 * amplitude * np.cos(x) * np.sin(y) * decay, atol=1e-12 * amplitude)


def test_kolmogorov_laminar_flow_pins_forcing_sign_and_amplitude():
    # From rest, the response to F = k_f (cos k_f x + cos k_f y) stays on the |k| = k_f modes
    # (J = 0 there): omega(t) = F (1 - exp(-lam t)) / lam, lam = nu k_f^2 + alpha.
    nu, alpha, k_f, t_end = 0.02, 0.1, 3, 2.0
    errors = []
    for dt in (0.2, 0.1, 0.05):
        model = make_model(n=32, nu=nu, alpha=alpha, beta=0.0, k_f=k_f, dt=dt)
        state = model.initial_state(np.zeros((32, 32)))
        model.advance(state, round(t_end / dt))
        lam = nu * k_f**2 + alpha
        exact = model.forcing * (1 - np.exp(-lam * t_end)) / lam
        errors.append(np.abs(model.vorticity(state)[0] - exact).max() / np.abs(exact).max())
    assert errors[-1] < 1e-5
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 2.8), (orders, errors)  # the forcing quadrature is even O(dt^3) or better


# ------------------------------------------------------------------------------------------
# (d) velocity kinematics
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dealias", [True, False])
def test_curl_of_velocity_is_vorticity_and_divergence_vanishes(dealias):
    model = make_model(n=32, dealias=dealias, k_f=2)
    grid = model.grid
    state = random_state(model, batch_size=2, seed=7, rms=3.0, k_peak=grid.k_cut / 2)
    omega = model.vorticity(state)
    u, v = model.velocity(state)
    u_hat, v_hat = grid.to_spectral(u), grid.to_spectral(v)
    curl = grid.to_physical(grid.ikx * v_hat - grid.iky * u_hat)
    div = grid.to_physical(grid.ikx * u_hat + grid.iky * v_hat)
    scale = np.abs(omega).max()
    assert np.abs(curl - omega).max() < 1e-12 * scale
    assert np.abs(div).max() < 1e-12 * scale
    # omega = lap psi
    psi_hat = grid.to_spectral(model.streamfunction(state))
    np.testing.assert_allclose(grid.to_physical(-grid.k2 * psi_hat), omega, atol=1e-12 * scale)


def test_state_projection_removes_nyquist_and_mean():
    model = make_model(n=16, dealias=False, k_f=2)
    x, y = model.grid.meshgrid()
    omega = 2.0 + np.cos(8 * x) + np.cos(3 * x + 2 * y)  # mean, Nyquist mode, resolved mode
    w = model.initial_state(omega).omega_hat[0]
    np.testing.assert_allclose(model.vorticity(w), np.cos(3 * x + 2 * y), atol=1e-13)


# ------------------------------------------------------------------------------------------
# (e) batching
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_call_equals_single_calls(threads):
    kwargs = dict(n=32, nu=1e-3, alpha=0.1, beta=20.0, k_f=4, dt=5e-3)
    batched = TurbulenceModel(TurbulenceParameters(**kwargs), threads=threads)
    grid = batched.grid
    omega = random_vorticity(grid, np.random.default_rng(11), batch_size=3, rms=6.0)
    nu_e = smooth_nu_e(grid, 3, seed=1)
    nu_e[1] = 4e-3  # a uniform field in the middle of the batch
    state = batched.initial_state(omega)
    status = batched.advance(state, 7, nu_e=nu_e)
    batched.close()
    assert status.tolist() == [STATUS_OK] * 3
    single = TurbulenceModel(TurbulenceParameters(**kwargs))
    for b in range(3):
        one = single.initial_state(omega[b])
        single.advance(one, 7, nu_e=nu_e[b][None])
        assert np.array_equal(one.omega_hat[0], state.omega_hat[b])
        assert one.time[0] == state.time[b] and one.steps[0] == state.steps[b] == 7


def test_advance_in_chunks_equals_one_call():
    model = make_model(n=32, nu=1e-3, beta=20.0, dt=5e-3)
    a = random_state(model, batch_size=2, seed=2, rms=4.0)
    b = a.copy()
    model.advance(a, 10)
    model.advance(b, 4)
    model.advance(b, 6)
    assert np.array_equal(a.omega_hat, b.omega_hat)
    np.testing.assert_allclose(a.time, b.time, rtol=1e-15)


# ------------------------------------------------------------------------------------------
# (g) non-finite states end with a status, not an exception
# ------------------------------------------------------------------------------------------


def test_nonfinite_input_system_gets_the_blowup_status_and_others_run_on():
    model = make_model(n=32, dt=5e-3)
    state = random_state(model, batch_size=3, seed=8, rms=6.0)
    state.omega_hat[1, 3, 2] = np.nan
    before = state.copy()
    reference = state.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = model.advance(state, 5)
    assert status.tolist() == [STATUS_OK, STATUS_NONFINITE, STATUS_OK]
    assert state.steps.tolist() == [5, 0, 5] and state.time[1] == 0.0
    assert np.array_equal(state.omega_hat[1], before.omega_hat[1], equal_nan=True)
    for b in (0, 2):
        one = model.state_from_spectral(reference.omega_hat[b])
        model.advance(one, 5)
        assert np.array_equal(one.omega_hat[0], state.omega_hat[b])


def test_nonfinite_eddy_viscosity_gets_the_blowup_status():
    model = make_model(n=32, dt=5e-3)
    state = random_state(model, batch_size=2)
    nu_e = np.full((2, 32, 32), 1e-3)
    nu_e[0, 5, 5] = np.inf
    assert model.advance(state, 3, nu_e=nu_e).tolist() == [STATUS_NONFINITE, STATUS_OK]


def test_blowup_during_integration_stops_at_the_last_finite_state():
    # A violent CFL violation (CFL ~ 100) overflows within a few dozen steps.
    model = make_model(n=32, nu=0.0, alpha=0.0, k_f=0, dt=0.5)
    state = random_state(model, batch_size=2, seed=9, rms=50.0)
    assert model.cfl(state).min() > 10 * model.cfl_limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = model.advance(state, 10_000)
    assert status.tolist() == [STATUS_NONFINITE] * 2
    assert np.all(state.steps < 10_000)
    assert np.isfinite(state.omega_hat).all()
    np.testing.assert_allclose(state.time, state.steps * 0.5)
    # Replaying the recorded number of steps from the start reproduces the last finite state.
    replay = random_state(model, batch_size=2, seed=9, rms=50.0)
    for b in range(2):
        one = model.state_from_spectral(replay.omega_hat[b])
        assert model.advance(one, int(state.steps[b]))[0] == STATUS_OK
        assert np.array_equal(one.omega_hat[0], state.omega_hat[b])


# ------------------------------------------------------------------------------------------
# (h) the closure term
# ------------------------------------------------------------------------------------------


def test_uniform_eddy_viscosity_equals_raising_nu():
    nu, nu_e = 1e-3, 2.5e-3
    kwargs = dict(n=32, alpha=0.1, beta=20.0, k_f=4, dt=5e-3)
    with_closure = make_model(nu=nu, **kwargs)
    raised = make_model(nu=nu + nu_e, **kwargs)
    omega = random_vorticity(with_closure.grid, np.random.default_rng(12), batch_size=2, rms=6.0)
    a, b = with_closure.initial_state(omega), raised.initial_state(omega)
    for _ in range(4):  # trajectories, sampled along the way
        with_closure.advance(a, 10, nu_e=np.full((2, 32, 32), nu_e))
        raised.advance(b, 10)
        np.testing.assert_allclose(a.omega_hat, b.omega_hat, rtol=0, atol=1e-12 * np.abs(b.omega_hat).max())


def test_nonuniform_closure_term_matches_the_analytic_divergence():
    model = make_model(n=32)
    grid = model.grid
    x, y = grid.meshgrid()
    nu_e = 1.0 + 0.5 * np.cos(x) + 0.25 * np.sin(2 * y)
    omega = np.sin(2 * y) + np.cos(x + y)
    omega_x, omega_y = -np.sin(x + y), 2 * np.cos(2 * y) - np.sin(x + y)
    lap = -4 * np.sin(2 * y) - 2 * np.cos(x + y)
    # div(nu grad w) = nu lap w + grad nu . grad w
    exact = nu_e * lap + (-0.5 * np.sin(x)) * omega_x + (0.5 * np.cos(2 * y)) * omega_y
    got = grid.to_physical(closure_hat(grid, grid.to_spectral(omega), nu_e))
    np.testing.assert_allclose(got, exact, atol=1e-12)


def test_closure_enstrophy_tendency_is_minus_nu_e_grad_omega_squared():
    model = make_model(n=32)
    grid = model.grid
    state = random_state(model, batch_size=2, seed=13, rms=4.0, k_peak=grid.k_cut / 2)
    w = state.omega_hat
    nu_e = smooth_nu_e(grid, 2, amplitude=3e-3)  # changes sign: backscatter where negative
    wx = grid.to_physical(grid.ikx * w)
    wy = grid.to_physical(grid.iky * w)
    expected = -np.mean(nu_e * (wx**2 + wy**2), axis=(-2, -1))
    np.testing.assert_allclose(grid.mean_product(w, closure_hat(grid, w, nu_e)), expected, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# (i) parameter validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=33), r"even integer >= 8"),
        (dict(n=6), r"even integer >= 8"),
        (dict(n=64.0), r"even integer >= 8"),
        (dict(nu=-1e-3), r"nu \(viscosity\) must be a finite real number >= 0"),
        (dict(alpha=float("nan")), r"alpha \(linear drag\) must be a finite real number >= 0"),
        (dict(beta=float("inf")), r"beta must be a finite real number"),
        (dict(dt=0.0), r"dt \(time step\) must be a finite real number > 0"),
        (dict(k_f=25), r"k_f \(forcing wavenumber\) must be an integer in \[0, 21\] for n=64"),
        (dict(k_f=2.5), r"k_f .* must be an integer in \[0, 21\]"),
        (dict(k_f=-1), r"k_f .* must be an integer in \[0, 21\]"),
        (dict(dealias="yes"), r"dealias must be True or False"),
        (dict(forcing_amplitude=float("nan")), r"forcing_amplitude must be a finite real number"),
    ],
)
def test_bad_parameters_raise_value_errors_naming_the_accepted_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TurbulenceParameters(**{"n": 64, **kwargs})


def test_paper_presets_and_their_limits():
    p = TurbulenceParameters.paper("fhit")
    assert (p.nu, p.alpha, p.k_f, p.beta, p.dt) == (5e-5, 0.1, 4, 0.0, 5e-4)
    assert TurbulenceParameters.paper("beta").beta == 20.0
    assert TurbulenceParameters.paper("fhit_kf25", n=96).k_f == 25
    assert TurbulenceParameters.paper("fhit_kf25", n=64, dealias=False).k_f == 25
    with pytest.raises(ValueError, match=r"must be an integer in \[0, 21\]"):
        TurbulenceParameters.paper("fhit_kf25", n=64)  # removed by the 2/3 rule at N = 64
    with pytest.raises(ValueError, match=r"unknown paper case 'fhit2'; accepted: \['beta', 'fhit', 'fhit_kf25'\]"):
        TurbulenceParameters.paper("fhit2")


def test_bad_call_arguments_raise_value_errors():
    model = make_model(n=32)
    state = random_state(model, batch_size=2)
    with pytest.raises(ValueError, match=r"nu_e must be None or have shape \(32, 32\) or \(B=2, 32, 32\)"):
        model.advance(state, 1, nu_e=np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 0"):
        model.advance(state, -1)
    with pytest.raises(ValueError, match=r"omega must have shape \(32, 32\) or \(B, 32, 32\)"):
        model.initial_state(np.zeros((16, 16)))
    with pytest.raises(ValueError, match=r"workers must be an integer >= 1"):
        TurbulenceModel(TurbulenceParameters(n=32), workers=0)
    with pytest.raises(TypeError, match=r"numpy.random.Generator"):
        random_vorticity(model.grid, 0)
    assert model.advance(state, 0).tolist() == [STATUS_OK, STATUS_OK] and state.steps.tolist() == [0, 0]
