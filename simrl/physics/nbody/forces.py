"""Newtonian gravity in N-body units (G = 1): accelerations, jerks and energies.

All functions work on one system with arrays shaped ``(n, 3)`` (positions,
velocities) and ``(n,)`` (masses), write into caller-owned output arrays and
allocate nothing, so that the batched integrators can call them on slices
``pos[b]`` of ``(B, n, 3)`` arrays inside their loops.

No softening: the three-body problem is studied with point masses. ``error_model="numpy"``
makes a collision (r = 0) produce inf/NaN, which the integrators report as status 2,
instead of raising ZeroDivisionError inside a batch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def accelerations(pos, mass, acc):
    """Write the gravitational acceleration of every body into ``acc`` (n, 3).

    a_i = sum_{j != i} m_j (x_j - x_i) / |x_j - x_i|^3   (G = 1)
    """
    n = pos.shape[0]
    for i in range(n):
        acc[i, 0] = 0.0
        acc[i, 1] = 0.0
        acc[i, 2] = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[j, 0] - pos[i, 0]
            dy = pos[j, 1] - pos[i, 1]
            dz = pos[j, 2] - pos[i, 2]
            r2 = dx * dx + dy * dy + dz * dz
            inv_r3 = 1.0 / (r2 * math.sqrt(r2))
            fi = mass[j] * inv_r3
            fj = mass[i] * inv_r3
            acc[i, 0] += fi * dx
            acc[i, 1] += fi * dy
            acc[i, 2] += fi * dz
            acc[j, 0] -= fj * dx
            acc[j, 1] -= fj * dy
            acc[j, 2] -= fj * dz


@njit(cache=True, error_model="numpy")
def accelerations_and_jerks(pos, vel, mass, acc, jerk):
    """Write accelerations and their time derivatives (jerks) into ``acc`` and ``jerk``.

    j_i = sum_j m_j [ v_ij / r^3 - 3 (r_ij . v_ij) r_ij / r^5 ]   (Hut, Makino & McMillan 1995)
    """
    n = pos.shape[0]
    for i in range(n):
        for k in range(3):
            acc[i, k] = 0.0
            jerk[i, k] = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[j, 0] - pos[i, 0]
            dy = pos[j, 1] - pos[i, 1]
            dz = pos[j, 2] - pos[i, 2]
            dvx = vel[j, 0] - vel[i, 0]
            dvy = vel[j, 1] - vel[i, 1]
            dvz = vel[j, 2] - vel[i, 2]
            r2 = dx * dx + dy * dy + dz * dz
            inv_r2 = 1.0 / r2
            inv_r3 = inv_r2 / math.sqrt(r2)
            rv3 = 3.0 * (dx * dvx + dy * dvy + dz * dvz) * inv_r2
            jx = (dvx - rv3 * dx) * inv_r3
            jy = (dvy - rv3 * dy) * inv_r3
            jz = (dvz - rv3 * dz) * inv_r3
            acc[i, 0] += mass[j] * inv_r3 * dx
            acc[i, 1] += mass[j] * inv_r3 * dy
            acc[i, 2] += mass[j] * inv_r3 * dz
            acc[j, 0] -= mass[i] * inv_r3 * dx
            acc[j, 1] -= mass[i] * inv_r3 * dy
            acc[j, 2] -= mass[i] * inv_r3 * dz
            jerk[i, 0] += mass[j] * jx
            jerk[i, 1] += mass[j] * jy
            jerk[i, 2] += mass[j] * jz
            jerk[j, 0] -= mass[i] * jx
            jerk[j, 1] -= mass[i] * jy
            jerk[j, 2] -= mass[i] * jz


@njit(cache=True)
def all_finite(arr):
    """True when every entry of ``arr`` (any shape) is finite."""
    for value in arr.flat:
        if not math.isfinite(value):
            return False
    return True


@njit(cache=True)
def valid_start(x, v, m, t, t_end, param):
    """True when one system can be integrated: finite ``t`` and ``t_end``, a positive finite
    step parameter ``param`` and finite masses ``m``, positions ``x`` and velocities ``v``.

    The start check of the kernels whose step parameter must be positive (Hermite eta,
    leapfrog dt); they give status 2 where it is False. IAS15 has its own, since its
    ``epsilon = 0`` is valid (fixed-step mode).
    """
    return (
        math.isfinite(t)
        and math.isfinite(t_end)
        and math.isfinite(param)
        and param > 0.0
        and all_finite(m)
        and all_finite(x)
        and all_finite(v)
    )


@njit(cache=True, error_model="numpy")
def total_energy(pos, vel, mass):
    """Kinetic plus potential energy of one system, E = sum m v^2 / 2 - sum_{i<j} m_i m_j / r_ij."""
    n = pos.shape[0]
    kinetic = 0.0
    potential = 0.0
    for i in range(n):
        kinetic += 0.5 * mass[i] * (vel[i, 0] ** 2 + vel[i, 1] ** 2 + vel[i, 2] ** 2)
        for j in range(i + 1, n):
            dx = pos[j, 0] - pos[i, 0]
            dy = pos[j, 1] - pos[i, 1]
            dz = pos[j, 2] - pos[i, 2]
            potential -= mass[i] * mass[j] / math.sqrt(dx * dx + dy * dy + dz * dz)
    return kinetic + potential


@njit(cache=True, error_model="numpy")
def batch_total_energy(pos, vel, mass, out):
    """Total energy of each of B systems: ``pos``/``vel`` (B, n, 3), ``mass`` (B, n), ``out`` (B,)."""
    for b in range(pos.shape[0]):
        out[b] = total_energy(pos[b], vel[b], mass[b])


def angular_momentum(pos: np.ndarray, vel: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Total angular momentum sum m_i x_i cross v_i; works on (n, 3) or batched (B, n, 3) arrays."""
    return np.sum(mass[..., None] * np.cross(pos, vel), axis=-2)


def move_to_center_of_mass(pos: np.ndarray, vel: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return copies of ``pos`` and ``vel`` shifted to the centre-of-mass frame (works batched)."""
    total = np.sum(mass, axis=-1)[..., None, None]
    com_pos = np.sum(mass[..., None] * pos, axis=-2, keepdims=True) / total
    com_vel = np.sum(mass[..., None] * vel, axis=-2, keepdims=True) / total
    return pos - com_pos, vel - com_vel
