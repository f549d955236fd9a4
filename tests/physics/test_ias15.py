"""IAS15 kernel (simrl.physics.nbody.ias15) against REBOUND's IAS15 and analytic solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nbody_cases import kepler_binary
from simrl.physics.nbody import STATUS_NONFINITE, STATUS_OK, STATUS_STEP_LIMIT
from simrl.physics.nbody.forces import total_energy
from simrl.physics.nbody.ias15 import (
    _C,
    _D,
    DEFAULT_EPSILON,
    H,
    ias15_run,
    integrate_ias15,
    integrate_ias15_parallel,
    integrate_ias15_serial,
)

rebound = pytest.importorskip("rebound")

PYTH_MASS = np.array([3.0, 4.0, 5.0])
PYTH_POS = np.array([[1.0, 3.0, 0.0], [-2.0, -1.0, 0.0], [1.0, -1.0, 0.0]])


def pythagorean():
    """Burrau's problem in the centre-of-mass frame: (pos, vel, mass)."""
    pos = PYTH_POS - (PYTH_MASS[:, None] * PYTH_POS).sum(axis=0) / PYTH_MASS.sum()
    return pos, np.zeros((3, 3)), PYTH_MASS.copy()


def rebound_pythagorean():
    sim = rebound.Simulation()
    sim.G = 1.0
    for m, (x, y, _) in zip(PYTH_MASS, PYTH_POS):
        sim.add(m=float(m), x=float(x), y=float(y))
    sim.move_to_com()
    sim.integrator = "ias15"
    sim.integrator.epsilon = DEFAULT_EPSILON
    sim.exact_finish_time = 1
    return sim


def rebound_positions(sim):
    return np.array([[p.x, p.y, p.z] for p in sim.particles])


def run(pos, vel, mass, t_end, epsilon=DEFAULT_EPSILON, time=0.0, step_state=0.0, max_steps=10**7, kernel=None):
    """One call of the batched kernel on B = len(pos) systems; returns the output arrays."""
    kernel = integrate_ias15 if kernel is None else kernel
    b = pos.shape[0]
    time = np.broadcast_to(np.asarray(time, dtype=float), (b,)).copy()
    t_end = np.broadcast_to(np.asarray(t_end, dtype=float), (b,)).copy()
    param = np.broadcast_to(np.asarray(epsilon, dtype=float), (b,)).copy()
    step_state = np.broadcast_to(np.asarray(step_state, dtype=float), (b,)).copy()
    force_evals = np.zeros(b, dtype=np.int64)
    status = np.full(b, -1, dtype=np.int64)
    kernel(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status)
    return time, step_state, force_evals, status


def two_body_energy(pos, vel, mass, i, j):
    mu = mass[i] * mass[j] / (mass[i] + mass[j])
    dv = vel[i] - vel[j]
    return 0.5 * mu * dv @ dv - mass[i] * mass[j] / np.linalg.norm(pos[i] - pos[j])


# ---------------------------------------------------------------------------- constants
def test_gauss_radau_nodes():
    # h_1..h_7 are the zeros of P_8(2h-1) + P_7(2h-1) on (0, 1), with h_0 = 0.
    coef = np.zeros(9)
    coef[7] = coef[8] = 1.0
    roots = np.sort(np.polynomial.legendre.legroots(coef).real)
    np.testing.assert_allclose(H, np.concatenate([[0.0], (roots[1:] + 1.0) / 2.0]), rtol=0, atol=1e-13)
    assert abs(roots[0] + 1.0) < 1e-13


def test_basis_conversions_are_inverse():
    # b = M g with M[k, j] = C[j, k]; g = D b.
    np.testing.assert_allclose(_D @ _C.T, np.eye(7), rtol=0, atol=1e-13)


# ---------------------------------------------------------------------------- Pythagorean problem
@pytest.fixture(scope="module")
def pythagorean_t70():
    pos, vel, mass = pythagorean()
    e0 = total_energy(pos, vel, mass)
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    out = run(P, V, M, 70.0)
    return P[0], V[0], M[0], e0, out


def test_pythagorean_energy_and_landing(pythagorean_t70):
    pos, vel, mass, e0, (time, step_state, force_evals, status) = pythagorean_t70
    assert status[0] == STATUS_OK
    assert time[0] == 70.0
    assert step_state[0] > 0.0
    assert abs(total_energy(pos, vel, mass) / e0 - 1.0) <= 1e-10
    # REBOUND takes 5380 steps with ~22.3 force evaluations each; ours makes about as many.
    assert 0.8 * 5380 * 22.3 < force_evals[0] < 1.25 * 5380 * 22.3


def test_pythagorean_outcome_matches_rebound(pythagorean_t70):
    pos, vel, mass, _, _ = pythagorean_t70
    # Bodies of mass 4 and 5 form a bound binary; the body of mass 3 escapes from it.
    assert two_body_energy(pos, vel, mass, 1, 2) < 0.0
    m45 = mass[1] + mass[2]
    com45 = (mass[1] * pos[1] + mass[2] * pos[2]) / m45
    vcom45 = (mass[1] * vel[1] + mass[2] * vel[2]) / m45
    r = np.linalg.norm(pos[0] - com45)
    mu = mass[0] * m45 / (mass[0] + m45)
    dv = vel[0] - vcom45
    assert 0.5 * mu * dv @ dv - mass[0] * m45 / r > 0.0
    assert r > 20.0
    sim = rebound_pythagorean()
    sim.integrate(70.0)
    ref = rebound_positions(sim)
    assert two_body_energy(ref, np.array([[p.vx, p.vy, p.vz] for p in sim.particles]), mass, 1, 2) < 0.0
    # Chaos amplifies round-off to ~1e-2 by t = 70 (eps 1e-9 vs 1e-11 differ by 1.5e-2).
    assert np.abs(pos - ref).max() < 0.1


def test_pythagorean_positions_match_rebound():
    pos, vel, mass = pythagorean()
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    sim = rebound_pythagorean()
    time, step_state = 0.0, 0.0
    for t in (5.0, 10.0, 15.0, 20.0):
        tt, ss, _, status = run(P, V, M, t, time=time, step_state=step_state)
        time, step_state = tt[0], ss[0]
        assert status[0] == STATUS_OK and time == t
        sim.integrate(t)
        assert sim.t == t
        np.testing.assert_allclose(P[0], rebound_positions(sim), rtol=0, atol=1e-6)


def test_pythagorean_closest_approach():
    """Bodies 4 and 5 pass within ~4.1e-4 of each other at t ~ 15.83 (sampled at every step)."""
    pos, vel, mass = pythagorean()
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    time, step_state, _, _ = run(P, V, M, 15.0)
    samples = []
    while time[0] < 16.5:
        time, step_state, _, status = run(P, V, M, 16.5, time=time, step_state=step_state, max_steps=1)
        assert status[0] in (STATUS_OK, STATUS_STEP_LIMIT)
        samples.append((np.linalg.norm(P[0, 1] - P[0, 2]), time[0]))
    r_min, t_min = min(samples)
    assert abs(r_min / 4.1e-4 - 1.0) < 0.1
    assert abs(t_min - 15.83) < 0.05

    sim = rebound_pythagorean()
    sim.integrate(15.0)
    ref = []
    while sim.t < 16.5:
        sim.steps(1)
        p = sim.particles
        ref.append((math.dist((p[1].x, p[1].y, p[1].z), (p[2].x, p[2].y, p[2].z)), sim.t))
    r_ref, t_ref = min(ref)
    assert abs(r_min / r_ref - 1.0) < 0.1
    assert abs(t_min - t_ref) < 1e-3


def test_chunked_integration_keeps_step_and_accuracy(pythagorean_t70):
    """700 RL-sized calls of 0.1: exact landings, energy error <= 1e-10, no collapse of the step."""
    *_, (_, _, single_evals, _) = pythagorean_t70
    pos, vel, mass = pythagorean()
    e0 = total_energy(pos, vel, mass)
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    time, step_state, total = np.zeros(1), np.zeros(1), 0
    for k in range(1, 701):
        t_end = 0.1 * k
        time, step_state, evals, status = run(P, V, M, t_end, time=time, step_state=step_state)
        assert status[0] == STATUS_OK and time[0] == t_end
        total += evals[0]
    assert abs(total_energy(P[0], V[0], M[0]) / e0 - 1.0) <= 1e-10
    # Each call restarts the b-coefficients and evaluates a0 once more, and shortens one step.
    assert total < 1.5 * single_evals[0]


# ---------------------------------------------------------------------------- Kepler orbit
def test_kepler_one_period_matches_analytic():
    a, e = 1.0, 0.5
    pos, vel, mass, period = kepler_binary(e, m1=1.0, m2=0.5, a=a)
    vp = vel[1, 1] - vel[0, 1]  # relative speed at pericentre
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    time, _, _, status = run(P, V, M, period)
    assert status[0] == STATUS_OK and time[0] == period
    assert np.abs(P[0] - pos).max() / a < 1e-12
    assert np.abs(V[0] - vel).max() / vp < 1e-12
    # Half a period: apocentre at a (1 + e).
    P, V = pos[None].copy(), vel[None].copy()
    run(P, V, M, 0.5 * period)
    rel = P[0, 1] - P[0, 0]
    np.testing.assert_allclose(rel, [-a * (1.0 + e), 0.0, 0.0], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- batching and contract
def batch_of_systems():
    """Four different three-body systems (B, 3, 3), their targets and epsilons."""
    rng = np.random.default_rng(7)
    pos0, vel0, mass0 = pythagorean()
    pos = np.stack([pos0, pos0 * 1.3, rng.normal(size=(3, 3)), rng.normal(size=(3, 3))])
    vel = np.stack([vel0, vel0, 0.3 * rng.normal(size=(3, 3)), 0.2 * rng.normal(size=(3, 3))])
    mass = np.stack([mass0, mass0[::-1].copy(), np.array([1.0, 1.0, 1.0]), np.array([1.0, 0.5, 1e-3])])
    t_end = np.array([3.3, 0.3000000000000001, 2.0, 1.7])
    eps = np.array([1e-9, 1e-7, 1e-9, 1e-11])
    return pos, vel, mass, t_end, eps


def test_batched_equals_single_and_serial_equals_parallel():
    pos, vel, mass, t_end, eps = batch_of_systems()
    results = {}
    for name, kernel in (("serial", integrate_ias15_serial), ("parallel", integrate_ias15_parallel)):
        P, V = pos.copy(), vel.copy()
        out = run(P, V, mass, t_end, epsilon=eps, kernel=kernel)
        results[name] = (P, V) + out
    for a, b in zip(results["serial"], results["parallel"]):
        assert np.array_equal(a, b)
    P, V, time, step_state, force_evals, status = results["serial"]
    assert np.all(status == STATUS_OK)
    assert np.array_equal(time, t_end)  # lands exactly on each system's own target
    for i in range(len(pos)):
        Pi, Vi = pos[i : i + 1].copy(), vel[i : i + 1].copy()
        ti, si, fi, sti = run(Pi, Vi, mass[i : i + 1], t_end[i], epsilon=eps[i])
        assert np.array_equal(Pi[0], P[i]) and np.array_equal(Vi[0], V[i])
        assert (ti[0], si[0], fi[0], sti[0]) == (time[i], step_state[i], force_evals[i], status[i])
        # ias15_run is the same integration with step counts.
        Pj, Vj = pos[i].copy(), vel[i].copy()
        stats = ias15_run(Pj, Vj, mass[i], 0.0, t_end[i], eps[i])
        assert np.array_equal(Pj, P[i]) and stats["force_evals"] == force_evals[i]
        assert stats["accepted_steps"] > 0


def test_inactive_system_untouched():
    pos, vel, mass = pythagorean()
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    time, step_state, evals, status = run(P, V, M, 2.5, time=2.5, step_state=0.01)
    assert (time[0], step_state[0], evals[0], status[0]) == (2.5, 0.01, 0, STATUS_OK)
    assert np.array_equal(P[0], pos) and np.array_equal(V[0], vel)


def test_nonfinite_input_gives_status_2():
    pos, vel, mass = pythagorean()
    P, V, M = np.stack([pos, pos]), np.stack([vel, vel]), np.stack([mass, mass])
    P[0, 1, 0] = np.nan
    time, _, evals, status = run(P, V, M, 1.0)
    assert status[0] == STATUS_NONFINITE and time[0] == 0.0 and evals[0] == 0
    assert status[1] == STATUS_OK and time[1] == 1.0  # the other system is unaffected
    # Coincident bodies: infinite accelerations.
    P = pos[None].copy()
    P[0, 1] = P[0, 0]
    assert run(P, vel[None].copy(), mass[None], 1.0)[3][0] == STATUS_NONFINITE


def test_step_limit_gives_status_1():
    pos, vel, mass = pythagorean()
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    time, step_state, evals, status = run(P, V, M, 70.0, max_steps=2)
    assert status[0] == STATUS_STEP_LIMIT
    assert 0.0 < time[0] < 70.0 and step_state[0] > 0.0 and evals[0] > 0
    assert np.all(np.isfinite(P)) and not np.array_equal(P[0], pos)
    # The interrupted integration continues from where it stopped.
    time, _, _, status = run(P, V, M, 10.0, time=time, step_state=step_state)
    assert status[0] == STATUS_OK and time[0] == 10.0


def test_fixed_step_mode():
    """epsilon = 0: REBOUND's non-adaptive IAS15 with the step taken from step_state."""
    pos, vel, mass = pythagorean()
    P, V, M = pos[None].copy(), vel[None].copy(), mass[None].copy()
    time, step_state, evals, status = run(P, V, M, 1.0, epsilon=0.0, step_state=0.01)
    assert status[0] == STATUS_OK and time[0] == 1.0 and step_state[0] == 0.01
    Q, W = pos[None].copy(), vel[None].copy()
    run(Q, W, M, 1.0)
    np.testing.assert_allclose(P, Q, rtol=0, atol=1e-12)
