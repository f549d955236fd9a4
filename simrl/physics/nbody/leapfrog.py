"""Batched kick-drift-kick leapfrog with a fixed step (``param`` = dt).

KDK leapfrog (velocity Verlet; see e.g. Hut, Makino & McMillan 1995)::

    v_half = v0 + a0 dt/2;   x1 = x0 + v_half dt;   a1 = a(x1);   v1 = v_half + a1 dt/2

It is second order and symplectic for a fixed dt: the simplest fixed-step baseline (the
paper's fixed-step comparison used the symplectic code Symple). The end-of-step
acceleration ``a1`` is cached as the next step's ``a0``, so a call costs one force
evaluation per step plus one at its start. The last step of a call is shortened so that each system lands
exactly on its ``t_end`` (which breaks symplecticity only at the chunk boundaries).

Follows the kernel contract of :mod:`simrl.physics.nbody`; ``step_state`` is ignored.
On a non-finite state (or a non-positive/non-finite ``param``) a system gets status 2
and stops; its ``pos``/``vel``/``time`` are left at the last finite state.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from simrl.physics.compile import serial_and_parallel
from simrl.physics.nbody import STATUS_NONFINITE, STATUS_OK, STATUS_STEP_LIMIT
from simrl.physics.nbody.forces import accelerations, all_finite, valid_start

# A step whose remainder to t_end exceeds dt by less than this (relative to dt, plus a few
# ulps of t_end) is merged into one final step, so that round-off in ``t0 + k dt`` never
# leaves a spurious tiny extra step (and force evaluation) at the end of a chunk.
_LANDING_RTOL = 1e-9
_EPS = 2.220446049250313e-16


@njit(cache=True)
def _leapfrog_system(x, v, m, t_start, t_end, dt, max_steps):
    """Integrate one system in place; returns ``(time reached, force evaluations, status)``."""
    t = t_start
    if not valid_start(x, v, m, t, t_end, dt):
        return t, 0, STATUS_NONFINITE
    if not (t < t_end):
        return t, 0, STATUS_OK
    n = x.shape[0]

    a0 = np.empty((n, 3))
    a1 = np.empty((n, 3))
    xn = np.empty((n, 3))
    vn = np.empty((n, 3))

    accelerations(x, m, a0)
    nevals = 1
    if not all_finite(a0):
        return t, nevals, STATUS_NONFINITE

    tol = _LANDING_RTOL * dt + 4.0 * _EPS * max(abs(t_start), abs(t_end))
    steps = 0
    while True:
        if steps >= max_steps:
            return t, nevals, STATUS_STEP_LIMIT
        remaining = t_end - t
        last = remaining <= dt + tol
        h = remaining if last else dt
        half_h = 0.5 * h
        # Kick (half step) and drift.
        for i in range(n):
            for k in range(3):
                vh = v[i, k] + a0[i, k] * half_h
                vn[i, k] = vh
                xn[i, k] = x[i, k] + vh * h
        accelerations(xn, m, a1)
        nevals += 1
        # Second half kick with the acceleration at the new positions.
        for i in range(n):
            for k in range(3):
                vn[i, k] += a1[i, k] * half_h
        if not (all_finite(xn) and all_finite(vn)):
            return t, nevals, STATUS_NONFINITE
        for i in range(n):
            for k in range(3):
                x[i, k] = xn[i, k]
                v[i, k] = vn[i, k]
        a0, a1 = a1, a0
        steps += 1
        if last:
            return t_end, nevals, STATUS_OK
        # t0 + k dt rather than repeated addition: no drift of the step grid.
        t = t_start + steps * dt


def _integrate_leapfrog(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status):
    """Advance each of B systems from ``time[b]`` to ``t_end[b]`` with KDK leapfrog, dt = ``param[b]``.

    Follows the kernel contract of :mod:`simrl.physics.nbody`. ``force_evals[b]`` is set to
    1 + (steps taken) for a system that needed stepping and 0 for one already at ``t_end``
    or rejected up front as non-finite. ``step_state`` is not used.
    """
    for b in prange(pos.shape[0]):
        t, nev, st = _leapfrog_system(pos[b], vel[b], mass[b], time[b], t_end[b], param[b], max_steps)
        time[b] = t
        force_evals[b] = nev
        status[b] = st


integrate_leapfrog_serial, integrate_leapfrog_parallel = serial_and_parallel(_integrate_leapfrog)
integrate_leapfrog = integrate_leapfrog_serial
