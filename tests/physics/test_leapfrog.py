"""Tests of the batched kick-drift-kick leapfrog kernel."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import nbody_cases
from nbody_cases import check_batched_equals_single_and_parallel, kepler_binary, mixed_batch
from simrl.physics.nbody import STATUS_NONFINITE, STATUS_OK, STATUS_STEP_LIMIT
from simrl.physics.nbody.forces import total_energy
from simrl.physics.nbody.initial_conditions import (
    figure8_initial_conditions,
    pythagorean_initial_conditions,
)
from simrl.physics.nbody.leapfrog import (
    integrate_leapfrog,
    integrate_leapfrog_parallel,
    integrate_leapfrog_serial,
)

# (pos, vel, mass, t_end, dt, time=..., max_steps=...): the dispatching kernel.
run_batch = functools.partial(nbody_cases.run_batch, fn=integrate_leapfrog)
run_one = functools.partial(nbody_cases.run_one, fn=integrate_leapfrog)


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
    pos, vel, mass, t_end = mixed_batch(3)
    dt = np.array([1e-3, 1e-2, 3e-3, 7e-4])
    check_batched_equals_single_and_parallel(
        pos,
        vel,
        mass,
        t_end,
        dt,
        serial=integrate_leapfrog_serial,
        parallel=integrate_leapfrog_parallel,
        single=integrate_leapfrog,
    )


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
