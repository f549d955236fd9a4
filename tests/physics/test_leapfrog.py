"""Tests of the batched kick-drift-kick leapfrog kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simrl.physics.nbody import STATUS_NONFINITE, STATUS_OK, STATUS_STEP_LIMIT
from simrl.physics.nbody.forces import total_energy
from simrl.physics.nbody.initial_conditions import (
    figure8_initial_conditions,
    paper_initial_conditions,
    pythagorean_initial_conditions,
    random_initial_conditions,
)
from simrl.physics.nbody.leapfrog import (
    integrate_leapfrog,
    integrate_leapfrog_parallel,
    integrate_leapfrog_serial,
)

MAX_STEPS = 10**7
FIELDS = ("pos", "vel", "time", "force_evals", "status")


def kepler_binary(e, m1=0.6, m2=0.4, a=1.0):
    """Two bodies at pericentre of a Kepler orbit (COM frame); returns pos, vel, mass, period."""
    total = m1 + m2
    r = a * (1.0 - e)
    v = math.sqrt(total * (1.0 + e) / (a * (1.0 - e)))  # vis-viva at pericentre
    rel = np.array([r, 0.0, 0.0])
    vrel = np.array([0.0, v, 0.0])
    pos = np.array([-m2 / total * rel, m1 / total * rel])
    vel = np.array([-m2 / total * vrel, m1 / total * vrel])
    return pos, vel, np.array([m1, m2]), 2.0 * math.pi * math.sqrt(a**3 / total)


def run_batch(pos, vel, mass, t_end, dt, time=None, max_steps=MAX_STEPS, fn=integrate_leapfrog):
    pos = np.array(pos, dtype=np.float64)
    vel = np.array(vel, dtype=np.float64)
    mass = np.array(mass, dtype=np.float64)
    b = pos.shape[0]
    time = np.zeros(b) if time is None else np.array(time, dtype=np.float64)
    t_end = np.broadcast_to(np.asarray(t_end, dtype=np.float64), (b,)).copy()
    dt = np.broadcast_to(np.asarray(dt, dtype=np.float64), (b,)).copy()
    force_evals = np.full(b, -1, dtype=np.int64)
    status = np.full(b, -1, dtype=np.int64)
    fn(pos, vel, mass, time, t_end, dt, np.zeros(b), max_steps, force_evals, status)
    return pos, vel, time, force_evals, status


def run_one(pos, vel, mass, t_end, dt, **kw):
    p, v, t, fe, st = run_batch(pos[None], vel[None], mass[None], t_end, dt, **kw)
    return p[0], v[0], t[0], fe[0], st[0]


def _np_acc(x, m):
    dx = x[None, :, :] - x[:, None, :]
    r2 = np.sum(dx * dx, axis=-1)
    np.fill_diagonal(r2, 1.0)
    inv_r3 = r2**-1.5
    np.fill_diagonal(inv_r3, 0.0)
    return np.sum(m[None, :, None] * inv_r3[:, :, None] * dx, axis=1)


def test_kepler_position_error_converges_at_second_order():
    pos, vel, mass, period = kepler_binary(0.5)
    n_steps = np.array([250, 500, 1000, 2000])
    dts = period / n_steps
    errors = []
    for dt, n in zip(dts, n_steps):
        p, v, t, fe, st = run_one(pos, vel, mass, period, dt)
        assert st == STATUS_OK and t == period
        assert fe == n + 1  # the landing tolerance absorbs round-off in n * dt
        errors.append(np.max(np.abs(p - pos)))  # analytic state after one period = initial
    slope = float(np.polyfit(np.log(dts), np.log(errors), 1)[0])
    assert 1.8 < slope < 2.2, (slope, errors)


def test_energy_error_is_bounded_not_drifting():
    # Symplectic: the energy error oscillates at O(dt^2) instead of growing with time. Sample
    # it 20 times per orbit (chunks of whole steps, so chunking shortens no step) and compare
    # the largest error in the first orbit with that in the 20th.
    pos, vel, mass, period = kepler_binary(0.5)
    dt = period / 1000
    e0 = total_energy(pos, vel, mass)
    p, v, time = pos[None].copy(), vel[None].copy(), np.zeros(1)
    worst = np.zeros(20)
    for k in range(1, 20 * 20 + 1):
        p, v, time, fe, st = run_batch(p, v, mass[None], k * period / 20, dt, time=time)
        assert fe[0] == 1 + 50
        orbit = (k - 1) // 20
        worst[orbit] = max(worst[orbit], abs(total_energy(p[0], v[0], mass) / e0 - 1))
    assert worst[0] > 1e-7  # the oscillation is resolved
    assert worst[-1] < 1.5 * worst[0], worst


def test_time_reversible():
    pos, vel, mass = pythagorean_initial_conditions()
    dt = 1e-3
    p, v, t, fe, st = run_one(pos, vel, mass, 0.5, dt)
    back_p, back_v, *_ = run_one(p, -v, mass, 0.5, dt)
    assert np.max(np.abs(back_p - pos)) < 1e-12
    assert np.max(np.abs(-back_v - vel)) < 1e-11


def test_matches_numpy_kdk_with_shortened_last_step():
    pos, vel, mass = figure8_initial_conditions()
    dt, t_end = 0.01, 0.2345  # 23 full steps and a last one of 0.0045
    x, v = pos.copy(), vel.copy()
    a = _np_acc(x, mass)
    for h in [dt] * 23 + [t_end - 23 * dt]:
        v = v + 0.5 * h * a
        x = x + h * v
        a = _np_acc(x, mass)
        v = v + 0.5 * h * a
    p, vv, t, fe, st = run_one(pos, vel, mass, t_end, dt)
    assert st == STATUS_OK and t == t_end
    assert fe == 1 + 24
    np.testing.assert_allclose(p, x, rtol=0, atol=1e-13)
    np.testing.assert_allclose(vv, v, rtol=0, atol=1e-13)


def test_force_evals_and_exact_landing_across_chunks():
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, time = pos[None].copy(), vel[None].copy(), np.zeros(1)
    for k in range(1, 6):
        target = 0.1 * k  # round-off in 0.1 k must not cost an extra tiny step
        p, v, time, fe, st = run_batch(p, v, mass[None], target, 0.01, time=time)
        assert st[0] == STATUS_OK and time[0] == target
        assert fe[0] == 1 + 10
    p2, v2, t2, fe2, st2 = run_batch(pos[None], vel[None], mass[None], 1 / 3, 0.01)
    assert fe2[0] == 1 + 34 and t2[0] == 1 / 3


def test_batched_call_equals_single_calls_bitwise_and_parallel_equals_serial():
    rng = np.random.default_rng(3)
    systems = [
        pythagorean_initial_conditions(),
        figure8_initial_conditions(),
        paper_initial_conditions(rng),
        random_initial_conditions(rng),
    ]
    pos = np.stack([s[0] for s in systems])
    vel = np.stack([s[1] for s in systems])
    mass = np.stack([s[2] for s in systems])
    t_end = np.array([1.3, 2.0, 0.77, 0.5])
    dt = np.array([1e-3, 1e-2, 3e-3, 7e-4])
    serial = run_batch(pos, vel, mass, t_end, dt, fn=integrate_leapfrog_serial)
    parallel = run_batch(pos, vel, mass, t_end, dt, fn=integrate_leapfrog_parallel)
    for name, a, b in zip(FIELDS, serial, parallel):
        assert np.array_equal(a, b), name
    for b in range(4):
        single = run_batch(pos[b : b + 1], vel[b : b + 1], mass[b : b + 1], t_end[b], dt[b])
        for name, whole, one in zip(FIELDS, serial, single):
            assert np.array_equal(whole[b : b + 1], one), (b, name)
    assert np.all(serial[4] == STATUS_OK) and np.array_equal(serial[2], t_end)


def test_nan_input_gives_status_2():
    pos, vel, mass = pythagorean_initial_conditions()
    p = np.stack([pos, pos])
    v = np.stack([vel, vel])
    v[1, 2, 1] = np.nan
    out_p, out_v, time, fe, st = run_batch(p, v, np.stack([mass, mass]), 1.0, 1e-3)
    assert list(st) == [STATUS_OK, STATUS_NONFINITE]
    assert time[1] == 0.0 and fe[1] == 0 and np.array_equal(out_p[1], pos)


@pytest.mark.parametrize("bad_dt", [0.0, -1e-3, np.nan])
def test_invalid_dt_gives_status_2(bad_dt):
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, t, fe, st = run_one(pos, vel, mass, 1.0, bad_dt)
    assert st == STATUS_NONFINITE and fe == 0 and np.array_equal(p, pos)


def test_step_cap_gives_status_1():
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, t, fe, st = run_one(pos, vel, mass, 1.0, 1e-3, max_steps=7)
    assert st == STATUS_STEP_LIMIT and fe == 1 + 7
    assert t == pytest.approx(7e-3, rel=1e-12)


def test_already_at_t_end_does_nothing():
    pos, vel, mass = pythagorean_initial_conditions()
    p, v, t, fe, st = run_one(pos, vel, mass, 0.0, 1e-3)
    assert st == STATUS_OK and fe == 0 and np.array_equal(p, pos)


def test_coincident_bodies_give_status_2_not_an_exception():
    from simrl.physics.nbody.initial_conditions import pythagorean_initial_conditions

    pos, vel, mass = pythagorean_initial_conditions()
    pos[1] = pos[0]
    p, v, m = pos[None].copy(), vel[None].copy(), mass[None].copy()
    time, fe, st = np.zeros(1), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    integrate_leapfrog(p, v, m, time, np.ones(1), np.full(1, 1e-3), np.zeros(1), 100, fe, st)
    assert st[0] == 2 and time[0] == 0.0
