"""IAS15: 15th-order Gauss-Radau predictor-corrector with the PRS23 adaptive step (batched, Numba).

References
----------
* Rein & Spiegel 2015, MNRAS 446, 1424 ("IAS15: a fast, adaptive, high-order integrator
  for gravitational dynamics, accurate to machine precision over a billion orbits");
  the scheme goes back to Everhart 1985 (RADAU), IAU Colloq. 83, 185.
* Pham, Rein & Spiegel 2024, OJAp 7, 1 ("PRS23"): the step-size criterion used here, the
  default of REBOUND since January 2024 (``sim.integrator.adaptive_mode = "prs23"``).
* REBOUND ``src/integrator_ias15.c`` (Rein et al.) was read for the control flow and the
  constants; the code below is an independent implementation for batched Numba kernels.

Numerics of one step of length ``dt`` (time ``t0 + h dt``, ``h`` in [0, 1])
------------------------------------------------------------------------
The acceleration of every coordinate is a polynomial of degree 7 in ``h``::

    a(h) = a0 + b0 h + b1 h^2 + ... + b6 h^7
         = a0 + g0 q0(h) + g1 q1(h) + ... + g6 q6(h),   q_j(h) = h (h - h_1) ... (h - h_j),

where ``h_1 .. h_7`` are the Gauss-Radau nodes (:data:`H`; ``h_0 = 0``). Integrating twice,

    x(h) = x0 + v0 h dt + dt^2 h^2 [a0/2 + b0 h/6 + b1 h^2/12 + ... + b6 h^7/72]
    v(h) = v0 + dt h [a0 + b0 h/2 + b1 h^2/3 + ... + b6 h^7/8].

The ``g_j`` are Newton divided differences of the accelerations sampled at the nodes, so
sampling the force at node ``n`` fixes ``g_{n-1}``; ``b = C g`` (:data:`_C`) and
``g = D b`` (:data:`_D`) convert between the two bases. A predictor-corrector iteration
predicts the positions at the 7 nodes from the current ``b``, evaluates the forces
(7 evaluations), updates ``g`` and ``b``, and repeats until the change of ``b6`` relative
to the largest acceleration stops shrinking or drops below 1e-16 (at most 12 iterations;
REBOUND's test). The quadrature of this collocation polynomial is of order 15.

Round-off control: the positions and velocities are accumulated with compensated (Kahan)
summation (``csx``, ``csv``), and so are the ``b`` updates within a step (``csb``), as in
REBOUND.

Step size (PRS23): from the converged ``b`` at the end of the step, per particle,

    |a|^2 = |a0 + sum_k b_k|^2,  |j dt|^2 = |sum_k (k+1) b_k|^2,
    |s dt^2|^2 = |sum_k (k+1) k b_k|^2,   tau^2 = 2 |a|^2 / (|j|^2 + |a||s|),

and ``dt_new = min_i tau_i (5040 epsilon)^(1/7)`` (0.175 min tau at the default
``epsilon = 1e-9``); particles with zero or non-finite start acceleration are skipped, and
without any time scale the step grows 4x. A step whose ``dt_new < dt / 4`` is rejected and
redone with ``dt_new``; the step grows by at most 4x. After an accepted step the ``b`` of the
next step are predicted from the polynomial of this one, re-expanded about its end (``e``
holds the prediction, so that the previous prediction error ``b - e`` is carried along;
REBOUND's ``predict_next_step``); after a rejection the prediction is redone from the last
accepted step (a rejected first step rescales its own ``b_k`` by ``(dt_new/dt)^(k+1)``).
The constants (``C``, ``D``, the reciprocal node differences, the node weights) are derived
from the nodes at import in 40-digit decimal arithmetic; they equal REBOUND's to the bit.

Batched kernel (contract of :mod:`simrl.physics.nbody`)
-------------------------------------------------------
``param`` is epsilon (default 1e-9, :data:`DEFAULT_EPSILON`); ``epsilon <= 0`` integrates
with the fixed step ``step_state`` (REBOUND's non-adaptive mode; the initial choice below if
it is 0), shortening only the landing step. ``step_state`` carries the
proposed step between calls; 0 (or a non-positive/non-finite value) chooses
``1e-3 * min_{ij} min(sqrt(r^3/(m_i+m_j)), r/|v_ij|)``. The last step of a call is shortened so
that each system lands exactly on its ``t_end`` (``time`` is set to ``t_end``; a remainder
within 1e-9 of the step is taken in one step); ``step_state`` then keeps the unclipped
proposal (it shrinks only when the shortened step itself asks for a smaller step, judged
only when that step is at least 1e-3 of the proposal, since the derivative estimate of a
far shorter step is dominated by round-off). The ``b``/``e`` memory and the compensated
summation residuals do not survive between calls (the contract carries only the step), so
the first step of a call starts its iteration from ``b = 0``.

``max_steps`` caps the attempted steps (accepted or rejected) of each system in a call
(status 1). ``force_evals`` counts every evaluation of all accelerations: one at the start of
each call, 7 per predictor-corrector iteration, and one after every accepted step except
the call's last. Status 2: non-finite positions, velocities, time or epsilon on entry, or a
non-finite state or acceleration during the integration (the reached state is written back).

Scratch arrays per system (allocated once per system per call, flattened to ``3n``):
``x0, v0`` state at the start of the step, ``csx, csv`` their Kahan residuals, ``a0``
acceleration at the start of the step, ``xp``/``at`` predicted positions and accelerations
at a node, ``delta`` the change of the newest ``g``, ``b, g, e`` (7, 3n) polynomial
coefficients, divided differences and the
prediction of ``b``, ``csb`` Kahan residuals of ``b``, ``br, er`` the ``b, e`` of the last
accepted step (to re-predict after a rejection).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
from numba import njit, prange

from simrl.physics.compile import serial_and_parallel
from simrl.physics.nbody import STATUS_NONFINITE, STATUS_OK, STATUS_STEP_LIMIT
from simrl.physics.nbody.forces import accelerations, all_finite

DEFAULT_EPSILON = 1e-9
#: A step is rejected when the proposed step is smaller than this fraction of it; the step
#: grows by at most 1 / SAFETY_FACTOR.
SAFETY_FACTOR = 0.25
MAX_ITERATIONS = 12

# Gauss-Radau nodes on [0, 1] with the left end point: the zeros of P_8(2h-1) + P_7(2h-1)
# (P_n: Legendre polynomials), to 31 digits.
_H_DIGITS = (
    "0",
    "0.0562625605369221464656521910323",
    "0.1802406917368923649875799428092",
    "0.3526247171131696373739077701712",
    "0.5471536263305553830014485576523",
    "0.7342101772154105315232106083066",
    "0.8853209468390957680903597629325",
    "0.9775206135612875018911745004292",
)


def _build_constants():
    """Derive every coefficient of the scheme from the nodes in 40-digit decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 40
        return _derive_constants([Decimal(s) for s in _H_DIGITS])


def _derive_constants(h):
    # C[j][k]: coefficient of h^k in prod_{i=1..j} (h - h_i), so that b_k = sum_{j>=k} C[j][k] g_j.
    c = [[Decimal(0)] * 7 for _ in range(7)]
    poly = [Decimal(1)]  # coefficients, lowest degree first
    for j in range(7):
        if j > 0:
            new = [Decimal(0)] * (len(poly) + 1)
            for k, coef in enumerate(poly):
                new[k + 1] += coef
                new[k] -= h[j] * coef
            poly = new
        for k in range(j + 1):
            c[j][k] = poly[k]
    # D = inverse of the unit upper-triangular M[k][j] = C[j][k]: g_j = sum_{k>=j} D[j][k] b_k.
    d = [[Decimal(0)] * 7 for _ in range(7)]
    for j in range(7):
        d[j][j] = Decimal(1)
        for k in range(j + 1, 7):
            # (M^-1)[j][k] = -sum_{m=j..k-1} (M^-1)[j][m] M[m][k]
            d[j][k] = -sum(d[j][m] * c[k][m] for m in range(j, k))
    # Reciprocal divided-difference divisors of node n = j + 1: 1 / (h_n - h_m), m = 0..j.
    rr = [[1 / (h[j + 1] - h[m]) if m <= j else Decimal(1) for m in range(7)] for j in range(7)]
    # Position weights at node n: h^(k+3)/((k+2)(k+3)) for b_k (times dt^2), h^2/2 for a0.
    xc = [[h[n] ** (k + 3) / ((k + 2) * (k + 3)) for k in range(7)] for n in range(8)]
    xa = [h[n] ** 2 / 2 for n in range(8)]
    f = lambda rows: np.array([[float(v) for v in row] for row in rows])  # noqa: E731
    return (
        np.array([float(v) for v in h]),
        f(c),
        f(d),
        f(rr),
        f(xc),
        np.array([float(v) for v in xa]),
    )


H, _C, _D, _RRINV, _XC, _XA = _build_constants()
#: End-of-step weights of b_k: 1/((k+2)(k+3)) for positions, 1/(k+2) for velocities.
_XEND = np.array([1.0 / ((k + 2) * (k + 3)) for k in range(7)])
_VEND = np.array([1.0 / (k + 2) for k in range(7)])
_MIN_NORMAL = 2.2250738585072014e-308
_MAX_FLOAT = 1.7976931348623157e308


@njit(cache=True, inline="always")
def _isnormal(x):
    ax = abs(x)
    return ax >= _MIN_NORMAL and ax <= _MAX_FLOAT


@njit(cache=True, inline="always")
def _kahan(p, cs, inp):
    """Compensated sum: add ``inp`` to ``p`` whose running residual is ``cs``; returns (p, cs)."""
    y = inp - cs
    t = p + y
    return t, (t - p) - y


@njit(cache=True, error_model="numpy")
def _initial_dt(x, v, mass, n):
    """1e-3 times the shortest pair time scale min(sqrt(r^3/(m_i+m_j)), r/|v_ij|); 0 if none."""
    tmin = np.inf
    for i in range(n):
        for j in range(i + 1, n):
            dx = x[3 * j] - x[3 * i]
            dy = x[3 * j + 1] - x[3 * i + 1]
            dz = x[3 * j + 2] - x[3 * i + 2]
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            m = mass[i] + mass[j]
            if m > 0.0:
                tmin = min(tmin, math.sqrt(r * r * r / m))
            dvx = v[3 * j] - v[3 * i]
            dvy = v[3 * j + 1] - v[3 * i + 1]
            dvz = v[3 * j + 2] - v[3 * i + 2]
            vr = math.sqrt(dvx * dvx + dvy * dvy + dvz * dvz)
            if vr > 0.0:
                tmin = min(tmin, r / vr)
    if tmin > 0.0 and math.isfinite(tmin):
        return 1e-3 * tmin
    return 0.0


@njit(cache=True, error_model="numpy")
def _predict_next(ratio, src_e, src_b, dst_e, dst_b):
    """Predict the b of a step ``ratio`` times as long as the one ``src_b`` belongs to.

    a(h) of the old step re-expanded about its end, h = 1 + ratio h', gives the new
    coefficients e_k = ratio^(k+1) sum_{j>=k} binom(j+1, k+1) b_j; the previous prediction
    error b - e is added on. In-place use (src is dst) is safe: coefficient k only reads
    indices >= k of b and index k of e before writing index k.
    """
    n3 = src_b.shape[1]
    if ratio > 20.0:
        for j in range(7):
            for k in range(n3):
                dst_e[j, k] = 0.0
                dst_b[j, k] = 0.0
        return
    q1 = ratio
    q2 = q1 * q1
    q3 = q1 * q2
    q4 = q2 * q2
    q5 = q2 * q3
    q6 = q3 * q3
    q7 = q3 * q4
    for k in range(n3):
        b0 = src_b[0, k]
        b1 = src_b[1, k]
        b2 = src_b[2, k]
        b3 = src_b[3, k]
        b4 = src_b[4, k]
        b5 = src_b[5, k]
        b6 = src_b[6, k]
        d0 = b0 - src_e[0, k]
        d1 = b1 - src_e[1, k]
        d2 = b2 - src_e[2, k]
        d3 = b3 - src_e[3, k]
        d4 = b4 - src_e[4, k]
        d5 = b5 - src_e[5, k]
        d6 = b6 - src_e[6, k]
        e0 = q1 * (7.0 * b6 + 6.0 * b5 + 5.0 * b4 + 4.0 * b3 + 3.0 * b2 + 2.0 * b1 + b0)
        e1 = q2 * (21.0 * b6 + 15.0 * b5 + 10.0 * b4 + 6.0 * b3 + 3.0 * b2 + b1)
        e2 = q3 * (35.0 * b6 + 20.0 * b5 + 10.0 * b4 + 4.0 * b3 + b2)
        e3 = q4 * (35.0 * b6 + 15.0 * b5 + 5.0 * b4 + b3)
        e4 = q5 * (21.0 * b6 + 6.0 * b5 + b4)
        e5 = q6 * (7.0 * b6 + b5)
        e6 = q7 * b6
        dst_e[0, k] = e0
        dst_e[1, k] = e1
        dst_e[2, k] = e2
        dst_e[3, k] = e3
        dst_e[4, k] = e4
        dst_e[5, k] = e5
        dst_e[6, k] = e6
        dst_b[0, k] = e0 + d0
        dst_b[1, k] = e1 + d1
        dst_b[2, k] = e2 + d2
        dst_b[3, k] = e3 + d3
        dst_b[4, k] = e4 + d4
        dst_b[5, k] = e5 + d5
        dst_b[6, k] = e6 + d6


# error_model="numpy": IEEE division (inf/nan instead of ZeroDivisionError), as in C.
@njit(cache=True, error_model="numpy")
def _integrate_system(pos, vel, mass, t, t_end, epsilon, dt_state, max_steps):
    """Advance one system (``pos``/``vel`` (n, 3) in place) from ``t`` to ``t_end``.

    Returns ``(time, step_state, force_evals, status, accepted_steps, rejected_steps)``.
    """
    if not (t_end > t):
        if math.isnan(t) or math.isnan(t_end):
            return t, dt_state, 0, STATUS_NONFINITE, 0, 0
        return t, dt_state, 0, STATUS_OK, 0, 0
    if not (math.isfinite(t) and math.isfinite(t_end)) or math.isnan(epsilon):
        return t, dt_state, 0, STATUS_NONFINITE, 0, 0
    n = pos.shape[0]
    n3 = 3 * n

    # ---- per-system scratch, allocated once per call
    x0 = np.empty(n3)
    v0 = np.empty(n3)
    csx = np.zeros(n3)
    csv = np.zeros(n3)
    a0_2d = np.empty((n, 3))
    a0 = a0_2d.reshape(n3)
    xp_2d = np.empty((n, 3))
    xp = xp_2d.reshape(n3)
    at_2d = np.empty((n, 3))
    at = at_2d.reshape(n3)
    delta = np.empty(n3)
    x0_2d = x0.reshape((n, 3))
    b = np.zeros((7, n3))
    g = np.empty((7, n3))
    e = np.zeros((7, n3))
    csb = np.empty((7, n3))
    br = np.zeros((7, n3))
    er = np.zeros((7, n3))

    for i in range(n):
        for c in range(3):
            x0[3 * i + c] = pos[i, c]
            v0[3 * i + c] = vel[i, c]
    if not (all_finite(x0) and all_finite(v0)):
        return t, dt_state, 0, STATUS_NONFINITE, 0, 0
    accelerations(x0_2d, mass, a0_2d)
    evals = 1
    if not all_finite(a0):
        return t, dt_state, evals, STATUS_NONFINITE, 0, 0

    adaptive = epsilon > 0.0
    safety = (5040.0 * epsilon) ** (1.0 / 7.0) if adaptive else 0.0
    dt = dt_state
    if not (dt > 0.0 and math.isfinite(dt)):
        dt = _initial_dt(x0, v0, mass, n)
        if dt == 0.0:
            dt = 1e-3 * (t_end - t)
    dt_last_done = 0.0
    steps = 0
    rejected = 0
    status = STATUS_OK

    while True:
        if steps >= max_steps:
            status = STATUS_STEP_LIMIT
            break
        steps += 1
        remaining = t_end - t
        final = remaining <= dt * (1.0 + 1e-9)
        dt_step = remaining if final else dt

        # ---- g from b (the predicted b of this step); reset the residuals of b
        for k in range(n3):
            for j in range(7):
                s = b[6, k] * _D[j, 6]
                for m in range(5, j, -1):
                    s += b[m, k] * _D[j, m]
                if j < 6:
                    s += b[j, k]
                g[j, k] = s
                csb[j, k] = 0.0

        # ---- predictor-corrector iteration
        pc_error = 1e300
        pc_error_last = 2.0
        iterations = 0
        while True:
            if pc_error < 1e-16:
                break
            if iterations > 2 and pc_error_last <= pc_error:
                break
            if iterations >= MAX_ITERATIONS:
                break
            pc_error_last = pc_error
            iterations += 1
            max_a = 0.0
            max_db6 = 0.0
            for node in range(1, 8):
                hn = H[node]
                xa = _XA[node]
                # (loops over the 3n coordinates innermost, so that LLVM vectorises them)
                c6 = _XC[node, 6]
                for k in range(n3):
                    xp[k] = c6 * b[6, k]
                for m in range(5, -1, -1):
                    cm = _XC[node, m]
                    for k in range(n3):
                        xp[k] += cm * b[m, k]
                for k in range(n3):
                    xp[k] = (((xp[k] + xa * a0[k]) * dt_step + hn * v0[k]) * dt_step - csx[k]) + x0[k]
                accelerations(xp_2d, mass, at_2d)
                evals += 1
                j = node - 1
                # new g_j: divided differences of the node accelerations
                r0 = _RRINV[j, 0]
                for k in range(n3):
                    delta[k] = (at[k] - a0[k]) * r0
                for m in range(j):
                    rm = _RRINV[j, m + 1]
                    for k in range(n3):
                        delta[k] = (delta[k] - g[m, k]) * rm
                for k in range(n3):
                    gk = delta[k]
                    delta[k] = gk - g[j, k]
                    g[j, k] = gk
                # b_m += C[j, m] (change of g_j), compensated
                for m in range(j):
                    cjm = _C[j, m]
                    for k in range(n3):
                        b[m, k], csb[m, k] = _kahan(b[m, k], csb[m, k], delta[k] * cjm)
                for k in range(n3):
                    b[j, k], csb[j, k] = _kahan(b[j, k], csb[j, k], delta[k])
                if node == 7:
                    for k in range(n3):
                        ak = abs(at[k])
                        if _isnormal(ak) and ak > max_a:
                            max_a = ak
                        dk = abs(delta[k])
                        if _isnormal(dk) and dk > max_db6:
                            max_db6 = dk
            pc_error = max_db6 / max_a if max_a > 0.0 else 0.0

        # ---- step size control
        if adaptive:
            min_ts2 = np.inf
            for i in range(n):
                a0i = 0.0
                y2 = 0.0
                y3 = 0.0
                y4 = 0.0
                for k in range(3 * i, 3 * i + 3):
                    a0i += a0[k] * a0[k]
                    tmp = a0[k] + b[0, k] + b[1, k] + b[2, k] + b[3, k] + b[4, k] + b[5, k] + b[6, k]
                    y2 += tmp * tmp
                    tmp = (
                        b[0, k] + 2.0 * b[1, k] + 3.0 * b[2, k] + 4.0 * b[3, k]
                        + 5.0 * b[4, k] + 6.0 * b[5, k] + 7.0 * b[6, k]
                    )  # fmt: skip
                    y3 += tmp * tmp
                    tmp = (
                        2.0 * b[1, k] + 6.0 * b[2, k] + 12.0 * b[3, k]
                        + 20.0 * b[4, k] + 30.0 * b[5, k] + 42.0 * b[6, k]
                    )  # fmt: skip
                    y4 += tmp * tmp
                if not _isnormal(a0i):
                    continue  # no (or non-finite) acceleration: no time scale
                ts2 = 2.0 * y2 / (y3 + math.sqrt(y4 * y2))
                if _isnormal(ts2) and ts2 < min_ts2:
                    min_ts2 = ts2
            if _isnormal(min_ts2):
                dt_new = math.sqrt(min_ts2) * dt_step * safety
            else:
                dt_new = dt_step / SAFETY_FACTOR
            if abs(dt_new / dt_step) < SAFETY_FACTOR:
                # Reject: redo the step with dt_new, predicting b from the last accepted step.
                if dt_last_done != 0.0:
                    _predict_next(dt_new / dt_last_done, er, br, e, b)
                else:
                    q = dt_new / dt_step
                    qk = q
                    for j in range(7):
                        for k in range(n3):
                            b[j, k] *= qk
                            e[j, k] = 0.0
                        qk *= q
                dt = dt_new
                rejected += 1
                continue
            dt_unlimited = dt_new
            if dt_new > dt_step / SAFETY_FACTOR:
                dt_new = dt_step / SAFETY_FACTOR
        else:
            dt_new = dt
            dt_unlimited = dt

        # ---- accept: x and v at the end of the step (compensated)
        for k in range(n3):
            xk = x0[k]
            cx = csx[k]
            vk = v0[k]
            cv = csv[k]
            for m in range(6, -1, -1):
                xk, cx = _kahan(xk, cx, b[m, k] * _XEND[m] * dt_step * dt_step)
            xk, cx = _kahan(xk, cx, a0[k] * 0.5 * dt_step * dt_step)
            xk, cx = _kahan(xk, cx, vk * dt_step)
            for m in range(6, -1, -1):
                vk, cv = _kahan(vk, cv, b[m, k] * _VEND[m] * dt_step)
            vk, cv = _kahan(vk, cv, a0[k] * dt_step)
            x0[k] = xk
            csx[k] = cx
            v0[k] = vk
            csv[k] = cv
        if final:
            t = t_end
        else:
            t = t + dt_step
        dt_last_done = dt_step
        if not (all_finite(x0) and all_finite(v0)):
            status = STATUS_NONFINITE
            break

        if final:
            if dt_step < dt:
                # Shortened landing step: keep the unclipped proposal unless this step (if
                # long enough to be trusted) asks for a smaller one; grow at most 4x.
                if adaptive and dt_step >= 1e-3 * dt:
                    dt = min(dt_unlimited, dt / SAFETY_FACTOR)
            else:
                dt = dt_new
            break

        for j in range(7):
            for k in range(n3):
                er[j, k] = e[j, k]
                br[j, k] = b[j, k]
        _predict_next(dt_new / dt_step, e, b, e, b)
        dt = dt_new

        accelerations(x0_2d, mass, a0_2d)
        evals += 1
        if not all_finite(a0):
            status = STATUS_NONFINITE
            break

    for i in range(n):
        for c in range(3):
            pos[i, c] = x0[3 * i + c]
            vel[i, c] = v0[3 * i + c]
    return t, dt, evals, status, steps - rejected, rejected


def _integrate_ias15(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status):
    """Advance B systems to their own ``t_end`` with IAS15 (contract of :mod:`simrl.physics.nbody`)."""
    for s in prange(pos.shape[0]):
        t, dt, evals, st, _, _ = _integrate_system(
            pos[s], vel[s], mass[s], time[s], t_end[s], param[s], step_state[s], max_steps
        )
        time[s] = t
        step_state[s] = dt
        force_evals[s] = evals
        status[s] = st


integrate_ias15_serial, integrate_ias15_parallel = serial_and_parallel(_integrate_ias15)
integrate_ias15 = integrate_ias15_serial


def ias15_run(
    pos: np.ndarray,
    vel: np.ndarray,
    mass: np.ndarray,
    t: float,
    t_end: float,
    epsilon: float = DEFAULT_EPSILON,
    step_state: float = 0.0,
    max_steps: int = 10**9,
) -> dict:
    """Integrate one system (``pos``/``vel`` (n, 3) advanced in place) and report the step counts.

    Same numerics as :func:`integrate_ias15` (for benchmarks and diagnostics); returns a dict
    with ``time``, ``step_state``, ``force_evals``, ``status``, ``accepted_steps`` and
    ``rejected_steps``.
    """
    if pos.dtype != np.float64 or vel.dtype != np.float64 or mass.dtype != np.float64:
        raise TypeError("pos, vel and mass must be float64 arrays")
    out = _integrate_system(pos, vel, mass, float(t), float(t_end), float(epsilon), float(step_state), int(max_steps))
    keys = ("time", "step_state", "force_evals", "status", "accepted_steps", "rejected_steps")
    return dict(zip(keys, out))


__all__ = [
    "DEFAULT_EPSILON",
    "H",
    "ias15_run",
    "integrate_ias15",
    "integrate_ias15_parallel",
    "integrate_ias15_serial",
]
