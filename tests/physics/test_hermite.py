"""Tests of the batched Hermite kernel against analytic orbits, REBOUND IAS15 and a NumPy reference."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import nbody_cases
from nbody_cases import MAX_STEPS, check_batched_equals_single_and_parallel, kepler_binary, mixed_batch
from simrl.physics.nbody import STATUS_NONFINITE, STATUS_OK, STATUS_STEP_LIMIT
from simrl.physics.nbody.forces import total_energy
from simrl.physics.nbody.hermite import (
    CRITERION_AARSETH,
    CRITERION_COLLISION_TIME,
    integrate_hermite,
    integrate_hermite_parallel,
    integrate_hermite_serial,
)
from simrl.physics.nbody.initial_conditions import (
    FIGURE8_PERIOD,
    figure8_initial_conditions,
    pythagorean_initial_conditions,
)


# --------------------------------------------------------------------------- helpers


def kepler_solution(t, e, m1=0.6, m2=0.4, a=1.0):
    """Analytic positions and velocities at time t of the orbit of :func:`kepler_binary`.

    Solves Kepler's equation E - e sin E = n t by Newton iteration; the relative orbit is
    r = a (cos E - e, sqrt(1 - e^2) sin E).
    """
    total = m1 + m2
    n = math.sqrt(total / a**3)
    mean = n * t
    ecc = mean if e < 0.8 else math.pi
    for _ in range(100):
        delta = (ecc - e * math.sin(ecc) - mean) / (1.0 - e * math.cos(ecc))
        ecc -= delta
        if abs(delta) < 1e-16:
            break
    b = a * math.sqrt(1.0 - e * e)
    edot = n / (1.0 - e * math.cos(ecc))
    rel = np.array([a * (math.cos(ecc) - e), b * math.sin(ecc), 0.0])
    vrel = np.array([-a * math.sin(ecc) * edot, b * math.cos(ecc) * edot, 0.0])
    pos = np.array([-m2 / total * rel, m1 / total * rel])
    vel = np.array([-m2 / total * vrel, m1 / total * vrel])
    return pos, vel


# (pos, vel, mass, t_end, eta[, criterion], time=..., max_steps=...): the dispatching kernel.
run_batch = functools.partial(nbody_cases.run_batch, fn=integrate_hermite)
run_one = functools.partial(nbody_cases.run_one, fn=integrate_hermite)


def fitted_slope(x, y):
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _np_acc_jerk(x, v, m):
    """Independent NumPy accelerations and jerks (pairwise differences, no loops shared with forces.py)."""
    dx = x[None, :, :] - x[:, None, :]  # x_j - x_i
    dv = v[None, :, :] - v[:, None, :]
    r2 = np.sum(dx * dx, axis=-1)
    np.fill_diagonal(r2, 1.0)
    inv_r3 = r2**-1.5
    np.fill_diagonal(inv_r3, 0.0)
    rv = np.sum(dx * dv, axis=-1) / r2
    acc = np.sum(m[None, :, None] * inv_r3[:, :, None] * dx, axis=1)
    jerk = np.sum(m[None, :, None] * inv_r3[:, :, None] * (dv - 3.0 * rv[:, :, None] * dx), axis=1)
    return acc, jerk


def _np_collision_time(x, v, m):
    n = len(m)
    best = math.inf
    for i in range(n):
        for j in range(i + 1, n):
            r = np.linalg.norm(x[j] - x[i])
            s = np.linalg.norm(v[j] - v[i])
            best = min(best, r / s if s > 0 else math.inf, math.sqrt(r**3 / (m[i] + m[j])))
    return best


def reference_hermite(x, v, m, t_end, eta, criterion):
    """Plain NumPy transcription of the documented scheme; returns (x, v, force evaluations)."""
    x, v = x.copy(), v.copy()
    a0, j0 = _np_acc_jerk(x, v, m)
    evals, t = 1, 0.0
    dt = eta * _np_collision_time(x, v, m)
    while True:
        if criterion == 0:
            dt = eta * _np_collision_time(x, v, m)
        last = dt >= t_end - t
        if last:
            dt = t_end - t
        xp = x + v * dt + a0 * dt**2 / 2 + j0 * dt**3 / 6
        vp = v + a0 * dt + j0 * dt**2 / 2
        a1, j1 = _np_acc_jerk(xp, vp, m)
        evals += 1
        v1 = v + (a0 + a1) * dt / 2 + (j0 - j1) * dt**2 / 12
        x = x + (v + v1) * dt / 2 + (a0 - a1) * dt**2 / 12
        v = v1
        if last:
            return x, v, evals
        t += dt
        if criterion == 1:
            a2 = -6 * (a0 - a1) / dt**2 - 2 * (2 * j0 + j1) / dt
            a3 = 12 * (a0 - a1) / dt**3 + 6 * (j0 + j1) / dt**2
            a2 = a2 + a3 * dt  # derivative at the end of the step
            norm = lambda q: np.linalg.norm(q, axis=1)  # noqa: E731
            ratio = (norm(a1) * norm(a2) + norm(j1) ** 2) / (norm(j1) * norm(a3) + norm(a2) ** 2)
            dt = float(np.min(np.sqrt(eta * ratio)))
        a0, j0 = a1, j1


# --------------------------------------------------------------------------- analytic orbits


def test_kepler_position_error_converges_at_fourth_order_collision_time():
    pos, vel, mass, period = kepler_binary(0.5)
    etas = np.array([0.0025, 0.005, 0.01, 0.02])
    errors = []
    for eta in etas:
        p, v, t, fe, st = run_one(pos, vel, mass, period, eta, CRITERION_COLLISION_TIME)
        assert st == STATUS_OK and t == period
        errors.append(np.max(np.abs(p - pos)))  # analytic solution after one period = initial state
    slope = fitted_slope(etas, errors)
    assert 3.5 < slope < 4.5, (slope, errors)
    assert errors[0] < 1e-9


def test_kepler_position_error_converges_at_fourth_order_aarseth():
    # Aarseth steps scale as sqrt(eta), so a 4th-order error scales as eta^2 (dt^4).
    pos, vel, mass, period = kepler_binary(0.5)
    etas = np.array([1e-4, 4e-4, 1.6e-3, 6.4e-3])
    errors = []
    for eta in etas:
        p, v, t, fe, st = run_one(pos, vel, mass, period, eta, CRITERION_AARSETH)
        assert st == STATUS_OK and t == period
        errors.append(np.max(np.abs(p - pos)))
    slope_in_dt = 2.0 * fitted_slope(etas, errors)
    assert 3.5 < slope_in_dt < 4.5, (slope_in_dt, errors)


@pytest.mark.parametrize("criterion, eta", [(CRITERION_COLLISION_TIME, 0.005), (CRITERION_AARSETH, 1e-4)])
def test_kepler_mid_orbit_matches_keplers_equation(criterion, eta):
    e = 0.7
    pos, vel, mass, period = kepler_binary(e)
    t_end = 0.37 * period
    p, v, t, fe, st = run_one(pos, vel, mass, t_end, eta, criterion)
    exact_p, exact_v = kepler_solution(t_end, e)
    assert st == STATUS_OK
    assert np.max(np.abs(p - exact_p)) < 1e-7
    assert np.max(np.abs(v - exact_v)) < 1e-7


def test_energy_error_on_eccentric_binary_shrinks_as_eta_to_the_fourth():
    pos, vel, mass, period = kepler_binary(0.9)
    e0 = total_energy(pos, vel, mass)
    etas = np.array([0.0025, 0.005, 0.01, 0.02])
    at_apocentre, after_orbits = [], []
    for eta in etas:
        # Half a period from pericentre: the oscillating part of the error (order eta^4).
        p, v, *_ = run_one(pos, vel, mass, 0.5 * period, eta)
        at_apocentre.append(abs(total_energy(p, v, mass) / e0 - 1.0))
        # Whole orbits: the periodic part cancels; the remaining secular drift falls at
        # least as fast (measured: eta^5).
        p, v, *_ = run_one(pos, vel, mass, 3.0 * period, eta)
        after_orbits.append(abs(total_energy(p, v, mass) / e0 - 1.0))
    slope = fitted_slope(etas, at_apocentre)
    assert 3.5 < slope < 4.5, (slope, at_apocentre)
    assert fitted_slope(etas, after_orbits) > 3.5, after_orbits


def test_figure_eight_returns_after_one_period():
    pos, vel, mass = figure8_initial_conditions()
    p, v, t, fe, st = run_one(pos, vel, mass, FIGURE8_PERIOD, 0.005)
    assert st == STATUS_OK and t == FIGURE8_PERIOD
    # The floor (~3e-8) comes from the 8-digit initial values and period.
    assert np.max(np.abs(p - pos)) < 1e-6
    assert np.max(np.abs(v - vel)) < 1e-6


# --------------------------------------------------------------------------- REBOUND cross-check


@pytest.mark.parametrize("criterion, eta", [(CRITERION_COLLISION_TIME, 0.003), (CRITERION_AARSETH, 1e-4)])
def test_pythagorean_agrees_with_rebound_ias15(criterion, eta):
    rebound = pytest.importorskip("rebound")
    sim = rebound.Simulation()
    sim.G = 1.0
    sim.add(m=3.0, x=1.0, y=3.0)
    sim.add(m=4.0, x=-2.0, y=-1.0)
    sim.add(m=5.0, x=1.0, y=-1.0)
    sim.move_to_com()
    sim.integrator = "ias15"
    sim.integrator.epsilon = 1e-11

    pos, vel, mass = pythagorean_initial_conditions()
    p, v = pos[None].copy(), vel[None].copy()
    time = np.zeros(1)
    for t_check in (2.0, 5.0, 10.0):  # the close 4-5 encounters at t ~ 1.88 and 8.76 are included
        sim.integrate(t_check, exact_finish_time=1)
        ref = np.array([[q.x, q.y, q.z] for q in sim.particles])
        p, v, time, fe, st = run_batch(p, v, mass[None], t_check, eta, criterion, time=time)
        assert st[0] == STATUS_OK and time[0] == t_check
        assert np.max(np.abs(p[0] - ref)) < 1e-6, (t_check, np.max(np.abs(p[0] - ref)))


# --------------------------------------------------------------------------- bookkeeping


@pytest.mark.parametrize("criterion, eta", [(CRITERION_COLLISION_TIME, 0.03), (CRITERION_AARSETH, 0.01)])
def test_matches_numpy_reference_and_counts_force_evaluations(criterion, eta):
    pos, vel, mass = pythagorean_initial_conditions()
    t_end = 2.0  # through the first close encounter (t ~ 1.88)
    ref_p, ref_v, ref_evals = reference_hermite(pos, vel, mass, t_end, eta, criterion)
    p, v, t, fe, st = run_one(pos, vel, mass, t_end, eta, criterion)
    assert st == STATUS_OK
    assert fe == ref_evals  # one per step plus one at the start of the call
    assert ref_evals > 10
    np.testing.assert_allclose(p, ref_p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, ref_v, rtol=0, atol=1e-11)


def _mixed_batch():
    return *mixed_batch(7), np.array([0.01, 0.03, 0.02, 0.005])


@pytest.mark.parametrize("criterion", [CRITERION_COLLISION_TIME, CRITERION_AARSETH])
def test_batched_call_equals_single_calls_bitwise_and_parallel_equals_serial(criterion):
    pos, vel, mass, t_end, param = _mixed_batch()
    check_batched_equals_single_and_parallel(
        pos,
        vel,
        mass,
        t_end,
        param,
        criterion,
        serial=integrate_hermite_serial,
        parallel=integrate_hermite_parallel,
        single=integrate_hermite,
    )


def test_default_criterion_is_collision_time():
    pos, vel, mass, t_end, param = _mixed_batch()
    explicit = run_batch(pos, vel, mass, t_end, param, CRITERION_COLLISION_TIME)
    p, v = pos.copy(), vel.copy()
    time, fe, st = np.zeros(4), np.zeros(4, np.int64), np.zeros(4, np.int64)
    integrate_hermite(p, v, mass, time, t_end, param, np.zeros(4), MAX_STEPS, fe, st)  # contract's 10 args
    assert np.array_equal(p, explicit[0]) and np.array_equal(fe, explicit[3])


@pytest.mark.parametrize("criterion", [CRITERION_COLLISION_TIME, CRITERION_AARSETH])
def test_lands_exactly_on_each_t_end_across_chunks(criterion):
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, time = pos[None].copy(), vel[None].copy(), np.zeros(1)
    for k in range(1, 8):
        target = k / 3.0 + 1e-3 * math.pi  # not a multiple of any step
        p, v, time, fe, st = run_batch(p, v, mass[None], target, 0.02, criterion, time=time)
        assert st[0] == STATUS_OK
        assert time[0] == target  # exact, not approximate
    assert np.all(np.isfinite(p))


def test_already_at_t_end_does_nothing():
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, t, fe, st = run_one(pos, vel, mass, 0.0, 0.03)
    assert st == STATUS_OK and fe == 0 and t == 0.0
    assert np.array_equal(p, pos) and np.array_equal(v, vel)


def test_nan_input_gives_status_2_and_leaves_other_systems_alone():
    pos, vel, mass = pythagorean_initial_conditions()
    p = np.stack([pos, pos])
    v = np.stack([vel, vel])
    m = np.stack([mass, mass])
    p[0, 1, 0] = np.nan
    out_p, out_v, time, fe, st = run_batch(p, v, m, 1.0, 0.03)
    assert st[0] == STATUS_NONFINITE and st[1] == STATUS_OK
    assert time[0] == 0.0 and time[1] == 1.0
    assert fe[0] == 0
    assert np.isnan(out_p[0, 1, 0]) and np.array_equal(out_p[0, 0], pos[0])


@pytest.mark.parametrize("bad_param", [0.0, -0.01, np.nan, np.inf])
def test_invalid_eta_gives_status_2(bad_param):
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, t, fe, st = run_one(pos, vel, mass, 1.0, bad_param)
    assert st == STATUS_NONFINITE and fe == 0 and np.array_equal(p, pos)


def test_coincident_bodies_give_status_2():
    pos, vel, mass = pythagorean_initial_conditions()
    pos[1] = pos[0]  # infinite force (IEEE division): flagged at the first evaluation
    p, v, t, fe, st = run_one(pos, vel, mass, 1.0, 0.03)
    assert st == STATUS_NONFINITE and t == 0.0 and fe == 1


@pytest.mark.parametrize("criterion", [CRITERION_COLLISION_TIME, CRITERION_AARSETH])
def test_step_cap_gives_status_1_and_can_resume(criterion):
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, time, fe, st = run_batch(pos[None], vel[None], mass[None], 5.0, 0.03, criterion, max_steps=4)
    assert st[0] == STATUS_STEP_LIMIT
    assert fe[0] == 1 + 4
    assert 0.0 < time[0] < 5.0
    p, v, time, fe, st = run_batch(p, v, mass[None], 5.0, 0.03, criterion, time=time)
    assert st[0] == STATUS_OK and time[0] == 5.0


def test_invalid_criterion_raises():
    pos, vel, mass = pythagorean_initial_conditions()
    with pytest.raises(ValueError, match="criterion"):
        run_one(pos, vel, mass, 1.0, 0.03, 2)  # criterion 2
