"""The torch backend (simrl.physics.turbulence.torch_backend) against the physics and the NumPy backend.

The physics tests are parametrized over both backends (``numpy`` = TurbulenceModel,
``torch`` = TorchTurbulenceModel on the CPU, float64), reusing the NumPy solver tests' helpers;
then the torch backend is compared with the NumPy one step for step, and its blow-up handling,
conversions and argument checks are tested. A CUDA variant of the agreement test runs where a
GPU is present.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_turbulence_solver import (  # noqa: E402 - helpers of the NumPy backend's tests
    mode_coefficient,
    random_state,
    reference_if_rk3_step,
    rel_inner,
    single_mode,
    smooth_nu_e,
)

from simrl.physics.turbulence import (  # noqa: E402
    STATUS_NONFINITE,
    STATUS_OK,
    TurbulenceModel,
    TurbulenceParameters,
    random_vorticity,
)
from simrl.physics.turbulence import diagnostics as diag  # noqa: E402
from simrl.physics.turbulence.model import streamfunction_hat  # noqa: E402
from simrl.physics.turbulence.torch_backend import TorchTurbulenceModel, TorchTurbulenceState  # noqa: E402

BACKENDS = ["numpy", "torch"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny fields and a shared 2-core machine: torch's OpenMP threads only spin-wait here (a loaded
    machine made a 32^2 step 10x slower with 2 threads), so the tests run torch on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(backend: str, device: str = "cpu", **kwargs):
    params = TurbulenceParameters(**{"n": 32, **kwargs})
    if backend == "numpy":
        return TurbulenceModel(params)
    return TorchTurbulenceModel(params, device=device)


def np_hat(x) -> np.ndarray:
    """Spectral vorticity of a state (either backend) or a field, as a NumPy array."""
    w = getattr(x, "omega_hat", x)
    if isinstance(w, torch.Tensor):
        return w.detach().cpu().numpy()
    return np.asarray(w)


def to_np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# ------------------------------------------------------------------------------------------
# Physics, both backends
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_advection_conserves_energy_and_enstrophy_to_roundoff(backend):
    model = build(backend, n=48, nu=0.0, alpha=0.0, beta=0.0, k_f=0, dt=0.05)
    grid = model.grid
    state = random_state(model, batch_size=3, seed=48, rms=5.0, k_peak=grid.k_cut / 2)
    w = np_hat(state)
    tendency = to_np(model.tendency(state))  # = -J(psi, omega), every other term off
    assert np.all(np.abs(rel_inner(grid, w, tendency)) < 1e-12)  # dZ/dt = <omega d_t omega>
    assert np.all(np.abs(rel_inner(grid, streamfunction_hat(grid, w), tendency)) < 1e-12)  # dE/dt


@pytest.mark.parametrize("backend", BACKENDS)
def test_inviscid_invariant_drift_is_tiny_and_third_order(backend):
    drift_e, drift_z = [], []
    for dt in (0.1, 0.05, 0.025):
        model = build(backend, nu=0.0, alpha=0.0, beta=0.0, k_f=0, dt=dt)
        state = random_state(model, seed=1)
        e0, z0 = diag.energy(model.grid, np_hat(state))[0], diag.enstrophy(model.grid, np_hat(state))[0]
        assert model.advance(state, round(2.0 / dt))[0] == STATUS_OK
        drift_e.append(abs(diag.energy(model.grid, np_hat(state))[0] / e0 - 1))
        drift_z.append(abs(diag.enstrophy(model.grid, np_hat(state))[0] / z0 - 1))
    for drift in (drift_e, drift_z):
        orders = np.log2(np.array(drift[:-1]) / np.array(drift[1:]))
        assert np.all((orders > 2.7) & (orders < 3.3)), (orders, drift)
        assert drift[-1] < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kx, ky, dt", [(2, 1, 1e-3), (-3, 2, 0.05), (1, 0, 0.05)])
def test_single_rossby_wave_has_the_westward_dispersion_relation(backend, kx, ky, dt):
    beta = 20.0
    model = build(backend, nu=0.0, alpha=0.0, beta=beta, k_f=0, dt=dt)
    grid = model.grid
    k2 = kx * kx + ky * ky
    state = model.initial_state(-k2 * single_mode(grid, kx, ky, amplitude=0.1))  # psi = 0.1 cos(k.x)
    c0 = mode_coefficient(np_hat(state)[0], grid, kx, ky)
    phases, amplitudes = [0.0], []
    for _ in range(10):
        model.advance(state, round(0.1 / dt))
        c = mode_coefficient(np_hat(state)[0], grid, kx, ky)
        phases.append(np.angle(c / c0))
        amplitudes.append(abs(c / c0))
    measured = -np.unwrap(phases)[-1] / state.time[0]  # omega ~ cos(k.x - w t)
    expected = -beta * kx / k2
    assert abs(measured - expected) <= 1e-6 * abs(expected)
    np.testing.assert_allclose(amplitudes, 1.0, rtol=1e-12)
    others = np_hat(state)[0].copy()
    others[kx % grid.n, ky] = 0.0
    if ky == 0:
        others[-kx % grid.n, 0] = 0.0
    assert np.abs(others).max() < 1e-12 * abs(c0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rossby_wave_decays_at_the_viscous_and_drag_rate(backend):
    beta, nu, alpha, kx, ky = 20.0, 0.01, 0.1, 2, 1
    model = build(backend, nu=nu, alpha=alpha, beta=beta, k_f=0, dt=0.01)
    state = model.initial_state(single_mode(model.grid, kx, ky))
    c0 = mode_coefficient(np_hat(state)[0], model.grid, kx, ky)
    model.advance(state, 30)
    c = mode_coefficient(np_hat(state)[0], model.grid, kx, ky)
    t, k2 = state.time[0], kx * kx + ky * ky
    expected = c0 * np.exp(-(nu * k2 + alpha) * t) * np.exp(1j * beta * kx / k2 * t)
    assert abs(c - expected) < 1e-12 * abs(c0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("alpha, amplitude", [(0.0, 1.0), (0.1, 20.0)])
def test_taylor_green_vortex_decays_at_the_analytic_rate(backend, alpha, amplitude):
    nu = 0.01
    model = build(backend, nu=nu, alpha=alpha, beta=0.0, k_f=0, dt=0.02)
    x, y = model.grid.meshgrid()
    omega0 = amplitude * np.sin(x) * np.sin(y)  # J(psi, omega) = 0
    state = model.initial_state(omega0)
    model.advance(state, 50)
    decay = np.exp(-(2 * nu + alpha) * state.time[0])
    np.testing.assert_allclose(to_np(model.vorticity(state))[0], omega0 * decay, rtol=0, atol=1e-12 * amplitude)
    u, v = model.velocity(state)
    np.testing.assert_allclose(to_np(u)[0], 0.5 * amplitude * np.sin(x) * np.cos(y) * decay, atol=1e-12 * amplitude)
    np.testing.assert_allclose(to_np(v)[0], -0.5 * amplitude * np.cos(x) * np.sin(y) * decay, atol=1e-12 * amplitude)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dealias", [True, False])
def test_curl_of_velocity_is_vorticity(backend, dealias):
    model = build(backend, dealias=dealias, k_f=2)
    grid = model.grid
    state = random_state(model, batch_size=2, seed=7, rms=3.0, k_peak=grid.k_cut / 2)
    omega = to_np(model.vorticity(state))
    u, v = (to_np(f) for f in model.velocity(state))
    u_hat, v_hat = grid.to_spectral(u), grid.to_spectral(v)
    scale = np.abs(omega).max()
    assert np.abs(grid.to_physical(grid.ikx * v_hat - grid.iky * u_hat) - omega).max() < 1e-12 * scale
    assert np.abs(grid.to_physical(grid.ikx * u_hat + grid.iky * v_hat)).max() < 1e-12 * scale
    psi_hat = grid.to_spectral(to_np(model.streamfunction(state)))
    np.testing.assert_allclose(grid.to_physical(-grid.k2 * psi_hat), omega, atol=1e-12 * scale)


# ------------------------------------------------------------------------------------------
# Agreement with the NumPy backend
# ------------------------------------------------------------------------------------------

FORCED = dict(nu=1e-3, alpha=0.1, beta=20.0, k_f=4, dt=5e-3)


def compare_with_numpy(device: str, n: int, dtype=None, n_steps: int = 50) -> tuple[float, TorchTurbulenceModel]:
    params = TurbulenceParameters(n=n, **FORCED)
    ref = TurbulenceModel(params)
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = TorchTurbulenceModel(params, device=device, **kwargs)
    omega = random_vorticity(ref.grid, np.random.default_rng(11), batch_size=3, rms=6.0)
    nu_e = smooth_nu_e(ref.grid, 3, seed=1)
    nu_e[1] = 4e-3  # a uniform field in the middle of the batch (all of it goes into L)
    a, b = ref.initial_state(omega), model.initial_state(omega)
    assert ref.advance(a, n_steps, nu_e=nu_e).tolist() == [STATUS_OK] * 3
    assert model.advance(b, n_steps, nu_e=torch.as_tensor(nu_e, device=device)).tolist() == [STATUS_OK] * 3
    assert b.omega_hat.device.type == torch.device(device).type  # the state stayed on the device
    np.testing.assert_array_equal(b.steps, a.steps)
    np.testing.assert_allclose(b.time, a.time, rtol=1e-15)
    rel = np.abs(np_hat(b) - a.omega_hat).max() / np.abs(a.omega_hat).max()
    return float(rel), model


@pytest.mark.parametrize("n", [32, 64])
def test_fifty_forced_beta_steps_with_nonuniform_closure_agree_with_numpy(n):
    rel, _ = compare_with_numpy("cpu", n)
    assert rel < 1e-10, rel


def test_without_closure_and_with_float32_agree_with_numpy():
    params = TurbulenceParameters(n=32, **FORCED)
    ref, t64 = TurbulenceModel(params), TorchTurbulenceModel(params)
    t32 = TorchTurbulenceModel(params, dtype=torch.float32)
    omega = random_vorticity(ref.grid, np.random.default_rng(3), batch_size=2, rms=6.0)
    a, b, c = ref.initial_state(omega), t64.initial_state(omega), t32.initial_state(omega)
    for model, state in ((ref, a), (t64, b), (t32, c)):
        model.advance(state, 50)
    scale = np.abs(a.omega_hat).max()
    assert np.abs(np_hat(b) - a.omega_hat).max() < 1e-12 * scale
    assert c.omega_hat.dtype == torch.complex64
    assert np.abs(np_hat(c) - a.omega_hat).max() < 1e-4 * scale  # single-precision round-off


def test_one_step_equals_the_reference_scheme_on_numpy_operators():
    params = TurbulenceParameters(n=32, nu=2e-3, alpha=0.1, beta=20.0, k_f=4, dt=2e-3)
    ref, model = TurbulenceModel(params), TorchTurbulenceModel(params)
    state = random_state(model, batch_size=2, seed=3, rms=6.0)
    nu_e = smooth_nu_e(model.grid, 2, seed=5)
    expected = reference_if_rk3_step(ref, np_hat(state), nu_e)
    model.advance(state, 1, nu_e=nu_e)
    np.testing.assert_allclose(np_hat(state), expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_tendency_agrees_with_numpy_backend():
    params = TurbulenceParameters(n=32, **FORCED)
    ref, model = TurbulenceModel(params), TorchTurbulenceModel(params)
    w = random_state(ref, batch_size=2, seed=4, rms=6.0).omega_hat
    nu_e = smooth_nu_e(ref.grid, 2, seed=2, amplitude=3e-3)
    for closure in (None, nu_e):
        expected = ref.tendency(w, closure)
        got = to_np(model.tendency(w, closure))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_uniform_eddy_viscosity_equals_raising_nu():
    kwargs = dict(n=32, alpha=0.1, beta=20.0, k_f=4, dt=5e-3)
    with_closure = TorchTurbulenceModel(TurbulenceParameters(nu=1e-3, **kwargs))
    raised = TorchTurbulenceModel(TurbulenceParameters(nu=3.5e-3, **kwargs))
    omega = random_vorticity(with_closure.grid, np.random.default_rng(12), batch_size=2, rms=6.0)
    a, b = with_closure.initial_state(omega), raised.initial_state(omega)
    with_closure.advance(a, 20, nu_e=np.full((32, 32), 2.5e-3))
    raised.advance(b, 20)
    np.testing.assert_allclose(np_hat(a), np_hat(b), rtol=0, atol=1e-12 * np.abs(np_hat(b)).max())


def test_batched_call_equals_single_calls_and_chunks_equal_one_call():
    model = TorchTurbulenceModel(TurbulenceParameters(n=32, **FORCED))
    omega = random_vorticity(model.grid, np.random.default_rng(5), batch_size=3, rms=6.0)
    nu_e = smooth_nu_e(model.grid, 3, seed=6)
    batched = model.initial_state(omega)
    model.advance(batched, 12, nu_e=nu_e)
    for b in range(3):
        one = model.initial_state(omega[b])
        model.advance(one, 5, nu_e=nu_e[b])
        model.advance(one, 7, nu_e=nu_e[b])
        scale = np.abs(np_hat(one)).max()
        assert np.abs(np_hat(one)[0] - np_hat(batched)[b]).max() < 1e-13 * scale
        assert one.steps[0] == batched.steps[b] == 12


def test_state_conversions_round_trip_and_continue_on_the_other_backend():
    params = TurbulenceParameters(n=32, **FORCED)
    ref, model = TurbulenceModel(params), TorchTurbulenceModel(params)
    omega = random_vorticity(ref.grid, np.random.default_rng(8), batch_size=2, rms=6.0)
    a, b = ref.initial_state(omega), model.initial_state(torch.as_tensor(omega))  # torch input accepted
    ref.advance(a, 10)
    model.advance(b, 10)
    host = model.to_numpy_state(b)  # continue the torch run on the NumPy backend
    ref.advance(a, 10)
    ref.advance(host, 10)
    np.testing.assert_allclose(host.omega_hat, a.omega_hat, rtol=0, atol=1e-12 * np.abs(a.omega_hat).max())
    assert host.steps.tolist() == [20, 20]
    back = model.from_numpy_state(host)
    assert isinstance(back, TorchTurbulenceState) and back.steps.tolist() == [20, 20]
    assert np.array_equal(np_hat(back), host.omega_hat)
    same = model.state_from_spectral(a.omega_hat, time=a.time)  # NumPy spectra accepted as well
    assert np.array_equal(np_hat(same), a.omega_hat) and same.time.tolist() == a.time.tolist()


def test_cfl_agrees_with_numpy_backend():
    params = TurbulenceParameters(n=32, **FORCED)
    ref, model = TurbulenceModel(params), TorchTurbulenceModel(params)
    state = random_state(ref, batch_size=2, seed=9, rms=6.0)
    np.testing.assert_allclose(model.cfl(model.from_numpy_state(state)), ref.cfl(state), rtol=1e-13)
    assert model.cfl_limit == ref.cfl_limit


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_agrees_with_numpy():
    rel, model = compare_with_numpy("cuda", 64)
    assert model.device.type == "cuda"
    assert rel < 1e-10, rel


# ------------------------------------------------------------------------------------------
# Non-finite states end with a status, not an exception
# ------------------------------------------------------------------------------------------


def test_nonfinite_input_system_gets_the_blowup_status_and_others_run_on():
    model = TorchTurbulenceModel(TurbulenceParameters(n=32, dt=5e-3))
    state = random_state(model, batch_size=3, seed=8, rms=6.0)
    reference = state.copy()
    state.omega_hat[1, 3, 2] = complex("nan")
    before = np_hat(state).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = model.advance(state, 5)
    assert status.tolist() == [STATUS_OK, STATUS_NONFINITE, STATUS_OK]
    assert state.steps.tolist() == [5, 0, 5] and state.time[1] == 0.0
    assert np.array_equal(np_hat(state)[1], before[1], equal_nan=True)
    for b in (0, 2):
        one = model.state_from_spectral(reference.omega_hat[b])
        model.advance(one, 5)
        assert np.array_equal(np_hat(one)[0], np_hat(state)[b])


def test_nonfinite_eddy_viscosity_gets_the_blowup_status():
    model = TorchTurbulenceModel(TurbulenceParameters(n=32, dt=5e-3))
    state = random_state(model, batch_size=2)
    nu_e = np.full((2, 32, 32), 1e-3)
    nu_e[0, 5, 5] = np.inf
    assert model.advance(state, 3, nu_e=nu_e).tolist() == [STATUS_NONFINITE, STATUS_OK]
    assert state.steps.tolist() == [0, 3]


@pytest.mark.parametrize("sync_every", [1, 7])
def test_blowup_during_integration_stops_at_the_last_finite_state_as_numpy(sync_every):
    # A violent CFL violation (CFL ~ 100) overflows within a few dozen steps.
    params = TurbulenceParameters(n=32, nu=0.0, alpha=0.0, k_f=0, dt=0.5)
    ref, model = TurbulenceModel(params), TorchTurbulenceModel(params, sync_every=sync_every)
    state = random_state(model, batch_size=2, seed=9, rms=50.0)
    start = state.copy()
    assert model.cfl(state).min() > 10 * model.cfl_limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = model.advance(state, 10_000)
    assert status.tolist() == [STATUS_NONFINITE] * 2
    assert np.all(state.steps < 10_000) and np.all(state.steps > 0)
    assert np.isfinite(np_hat(state)).all()
    np.testing.assert_allclose(state.time, state.steps * 0.5)
    # Replaying the recorded number of steps reproduces the last finite state; the NumPy backend
    # blows up at the same step.
    numpy_state = model.to_numpy_state(start)
    numpy_status = ref.advance(numpy_state, 10_000)
    assert numpy_status.tolist() == [STATUS_NONFINITE] * 2
    assert numpy_state.steps.tolist() == state.steps.tolist()
    for b in range(2):
        one = model.state_from_spectral(start.omega_hat[b])
        assert model.advance(one, int(state.steps[b]))[0] == STATUS_OK
        assert np.array_equal(np_hat(one)[0], np_hat(state)[b])


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    params = TurbulenceParameters(n=32)
    model = TorchTurbulenceModel(params)
    state = random_state(model, batch_size=2)
    with pytest.raises(ValueError, match=r"nu_e must be None or have shape \(32, 32\) or \(B=2, 32, 32\)"):
        model.advance(state, 1, nu_e=np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 0"):
        model.advance(state, -1)
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 0"):
        model.advance(state, 2.0)
    with pytest.raises(TypeError, match=r"state must be a TorchTurbulenceState"):
        model.advance(TurbulenceModel(params).initial_state(np.zeros((32, 32))), 1)
    with pytest.raises(ValueError, match=r"omega must have shape \(32, 32\) or \(B, 32, 32\)"):
        model.initial_state(np.zeros((16, 16)))
    with pytest.raises(ValueError, match=r"omega must be real"):
        model.initial_state(np.zeros((32, 32), complex))
    with pytest.raises(ValueError, match=r"omega_hat must have shape \(32, 17\)"):
        model.state_from_spectral(np.zeros((32, 32), complex))
    with pytest.raises(ValueError, match=r"dtype must be torch.float64 or torch.float32"):
        TorchTurbulenceModel(params, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"device must be a torch device such as 'cpu', 'cuda'"):
        TorchTurbulenceModel(params, device="gpu0")
    with pytest.raises(TypeError, match=r"params must be a TurbulenceParameters"):
        TorchTurbulenceModel({"n": 32})
    with pytest.raises(ValueError, match=r"sync_every must be None or an integer >= 1"):
        TorchTurbulenceModel(params, sync_every=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"torch.cuda.is_available\(\) is False"):
            TorchTurbulenceModel(params, device="cuda")
    other = TorchTurbulenceModel(params, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"state.omega_hat must be torch.complex64 on cpu"):
        other.advance(state, 1)
    assert model.advance(state, 0).tolist() == [STATUS_OK, STATUS_OK] and state.steps.tolist() == [0, 0]


def test_module_docstring_example_runs():
    import doctest

    import simrl.physics.turbulence.torch_backend as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
