"""Batched 4th-order Hermite predictor-evaluator-corrector with one shared step per system.

The scheme is the one of Hut, Makino & McMillan (1995, ApJ 443, L93) as implemented by
AMUSE's ``hermite0`` (the integrator of Saz Ulibarrena & Portegies Zwart 2025):

* predictor (Taylor series to the jerk)::

      x_p = x0 + v0 dt + a0 dt^2/2 + j0 dt^3/6,      v_p = v0 + a0 dt + j0 dt^2/2

* one evaluation of accelerations and jerks ``a1, j1`` at the predicted state;
* time-symmetric corrector (Hut, Makino & McMillan 1995; AMUSE hermite0)::

      v1 = v0 + (a0 + a1) dt/2 + (j0 - j1) dt^2/12
      x1 = x0 + (v0 + v1) dt/2 + (a0 - a1) dt^2/12

``a1, j1`` (evaluated at the *predicted* state, as in hermite0) are reused as the next
step's ``a0, j0``, so a call costs one force evaluation per step plus one at its start.

Step rules, chosen by ``criterion``:

* ``0`` (:data:`CRITERION_COLLISION_TIME`, the paper's / AMUSE hermite0 rule):
  ``dt = eta * min_{i<j} min(r_ij / v_ij, sqrt(r_ij^3 / (m_i + m_j)))``, default eta 0.03.
* ``1`` (:data:`CRITERION_AARSETH`, Aarseth 1985; Makino & Aarseth 1992, PASJ 44, 141):
  ``dt = min_i sqrt(eta (|a||a2| + |j|^2) / (|j||a3| + |a2|^2))`` with the 2nd and 3rd
  derivatives from the Hermite interpolation of the step just taken. Each call starts
  (bootstraps) with one step of the collision-time rule with the same eta.

The kernel follows the contract of :mod:`simrl.physics.nbody` with ``criterion`` as an
extra last argument (default 0). ``step_state`` is ignored: both rules are recomputed
from the state, so a call depends only on the state it starts from (the Aarseth rule
restarts from the collision-time bootstrap in every call).

On a non-finite state (or a non-positive/non-finite ``param`` or step) a system gets
status 2 and stops; its ``pos``/``vel``/``time`` are left at the last finite state.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from simrl.physics.compile import serial_and_parallel
from simrl.physics.nbody import STATUS_NONFINITE, STATUS_OK, STATUS_STEP_LIMIT
from simrl.physics.nbody.forces import accelerations_and_jerks, all_finite, valid_start

CRITERION_COLLISION_TIME = 0
CRITERION_AARSETH = 1
DEFAULT_ETA = 0.03
"""AMUSE hermite0's default ``dt_param`` for the collision-time rule."""


@njit(cache=True)
def collision_time(pos, vel, mass):
    """Shortest pairwise time scale ``min_{i<j} min(r_ij/|v_ij|, sqrt(r_ij^3/(m_i+m_j)))``.

    This is the collision-time estimate of AMUSE hermite0 (Hut, Makino & McMillan 1995):
    the crossing time of the closest approaching pair and the free-fall time of the most
    bound pair (G = 1). Returns ``inf`` when no pair constrains the step (a single body).
    """
    n = pos.shape[0]
    tmin = math.inf
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[j, 0] - pos[i, 0]
            dy = pos[j, 1] - pos[i, 1]
            dz = pos[j, 2] - pos[i, 2]
            dvx = vel[j, 0] - vel[i, 0]
            dvy = vel[j, 1] - vel[i, 1]
            dvz = vel[j, 2] - vel[i, 2]
            r2 = dx * dx + dy * dy + dz * dz
            v2 = dvx * dvx + dvy * dvy + dvz * dvz
            r = math.sqrt(r2)
            if v2 > 0.0:
                t_cross = r / math.sqrt(v2)
                if t_cross < tmin:
                    tmin = t_cross
            msum = mass[i] + mass[j]
            if msum > 0.0:
                t_ff = math.sqrt(r2 * r / msum)
                if t_ff < tmin:
                    tmin = t_ff
    return tmin


@njit(cache=True)
def aarseth_time_scale(acc0, jerk0, acc1, jerk1, dt):
    """Aarseth (1985) time scale at the end of a Hermite step of length ``dt``.

    Returns ``min_i sqrt((|a||a2| + |j|^2) / (|j||a3| + |a2|^2))``; the step is
    ``sqrt(eta)`` times this. The higher derivatives come from the cubic Hermite
    interpolation through (a0, j0) and (a1, j1) (Makino & Aarseth 1992; ph4
    ``idata::correct``)::

        a2(t0) = -6 (a0 - a1)/dt^2 - 2 (2 j0 + j1)/dt
        a3     = 12 (a0 - a1)/dt^3 + 6 (j0 + j1)/dt^2

    and, as in Makino & Aarseth (1992), ``a2`` is moved to the end of the step,
    ``a2(t1) = a2(t0) + a3 dt``, because the new step starts at t1, where ``a1`` and
    ``j1`` are the acceleration and jerk. Particles for which the ratio is undefined
    (0/0, e.g. a force-free body) are skipped; returns ``inf`` when all are.
    """
    n = acc0.shape[0]
    inv_dt = 1.0 / dt
    inv_dt2 = inv_dt * inv_dt
    inv_dt3 = inv_dt2 * inv_dt
    best = math.inf
    for i in range(n):
        a_sq = 0.0
        j_sq = 0.0
        a2_sq = 0.0
        a3_sq = 0.0
        for k in range(3):
            da = acc0[i, k] - acc1[i, k]
            a3 = 12.0 * da * inv_dt3 + 6.0 * (jerk0[i, k] + jerk1[i, k]) * inv_dt2
            a2 = -6.0 * da * inv_dt2 - 2.0 * (2.0 * jerk0[i, k] + jerk1[i, k]) * inv_dt + a3 * dt
            a_sq += acc1[i, k] * acc1[i, k]
            j_sq += jerk1[i, k] * jerk1[i, k]
            a2_sq += a2 * a2
            a3_sq += a3 * a3
        num = math.sqrt(a_sq * a2_sq) + j_sq
        den = math.sqrt(j_sq * a3_sq) + a2_sq
        if den > 0.0:
            tau = math.sqrt(num / den)
            if tau > 0.0 and tau < best:
                best = tau
    return best


@njit(cache=True)
def _hermite_system(x, v, m, t_start, t_end, eta, max_steps, criterion):
    """Integrate one system in place from ``t_start`` to ``t_end``.

    Returns ``(time reached, force evaluations, status)``. Scratch arrays are allocated
    once here (per system per call); the step loop itself allocates nothing.
    """
    t = t_start
    if not valid_start(x, v, m, t, t_end, eta):
        return t, 0, STATUS_NONFINITE
    if not (t < t_end):
        # Already at (or past) the target: nothing to do, no force evaluation.
        return t, 0, STATUS_OK
    n = x.shape[0]

    a0 = np.empty((n, 3))
    j0 = np.empty((n, 3))
    a1 = np.empty((n, 3))
    j1 = np.empty((n, 3))
    xp = np.empty((n, 3))
    vp = np.empty((n, 3))

    accelerations_and_jerks(x, v, m, a0, j0)
    nevals = 1
    if not (all_finite(a0) and all_finite(j0)):
        return t, nevals, STATUS_NONFINITE

    # Collision-time rule; for the Aarseth criterion it bootstraps the first step, since
    # the interpolated a2, a3 need a completed step (as in Makino & Aarseth 1992).
    dt_next = eta * collision_time(x, v, m)
    sqrt_eta = math.sqrt(eta)
    steps = 0
    while True:
        if steps >= max_steps:
            return t, nevals, STATUS_STEP_LIMIT
        if criterion == CRITERION_COLLISION_TIME:
            dt = eta * collision_time(x, v, m)
        else:
            dt = dt_next
        if not (dt > 0.0):  # NaN, or an underflowed step that could never progress
            return t, nevals, STATUS_NONFINITE
        remaining = t_end - t
        last = dt >= remaining
        if last:
            dt = remaining  # clip so that the system lands exactly on t_end

        # Predictor: Taylor expansion to the jerk (Hut, Makino & McMillan 1995).
        dt2 = dt * dt
        half_dt2 = 0.5 * dt2
        sixth_dt3 = dt2 * dt / 6.0
        for i in range(n):
            for k in range(3):
                xp[i, k] = x[i, k] + v[i, k] * dt + a0[i, k] * half_dt2 + j0[i, k] * sixth_dt3
                vp[i, k] = v[i, k] + a0[i, k] * dt + j0[i, k] * half_dt2

        accelerations_and_jerks(xp, vp, m, a1, j1)
        nevals += 1

        # Corrector (Hut, Makino & McMillan 1995; AMUSE hermite0): v first, then x uses the new v.
        half_dt = 0.5 * dt
        dt2_12 = dt2 / 12.0
        for i in range(n):
            for k in range(3):
                v1 = v[i, k] + (a0[i, k] + a1[i, k]) * half_dt + (j0[i, k] - j1[i, k]) * dt2_12
                x1 = x[i, k] + (v[i, k] + v1) * half_dt + (a0[i, k] - a1[i, k]) * dt2_12
                vp[i, k] = v1
                xp[i, k] = x1
        if not (all_finite(xp) and all_finite(vp)):
            return t, nevals, STATUS_NONFINITE

        if criterion == CRITERION_AARSETH and not last:
            tau = aarseth_time_scale(a0, j0, a1, j1, dt)
            if math.isfinite(tau):
                dt_next = sqrt_eta * tau
            else:
                dt_next = eta * collision_time(xp, vp, m)

        for i in range(n):
            for k in range(3):
                x[i, k] = xp[i, k]
                v[i, k] = vp[i, k]
        # The evaluation at the predicted state becomes the next step's a0, j0 (hermite0).
        a0, a1 = a1, a0
        j0, j1 = j1, j0
        steps += 1
        if last:
            return t_end, nevals, STATUS_OK
        t = t + dt


def _integrate_hermite(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status, criterion=0):
    """Advance each of B systems from ``time[b]`` to ``t_end[b]`` with the Hermite scheme.

    Follows the kernel contract of :mod:`simrl.physics.nbody`; ``param`` is eta,
    ``criterion`` selects the step rule (0: collision time, AMUSE hermite0; 1: Aarseth
    1985 with Hermite-interpolated derivatives). ``step_state`` is not used.
    ``force_evals[b]`` is set to 1 + (steps taken) for a system that needed stepping and
    0 for one already at ``t_end`` or rejected up front as non-finite.
    """
    if criterion != CRITERION_COLLISION_TIME and criterion != CRITERION_AARSETH:
        raise ValueError("criterion must be 0 (collision time, AMUSE hermite0) or 1 (Aarseth 1985)")
    for b in prange(pos.shape[0]):
        t, nev, st = _hermite_system(pos[b], vel[b], mass[b], time[b], t_end[b], param[b], max_steps, criterion)
        time[b] = t
        force_evals[b] = nev
        status[b] = st


integrate_hermite_serial, integrate_hermite_parallel = serial_and_parallel(_integrate_hermite)
integrate_hermite = integrate_hermite_serial
