"""Local flow invariants at the agents' points: the observation features of the SMARL closure agents.

Mojgani et al. (arXiv 2312.00907, sect. 2; reference ``turbulence.md`` sect. 2, ``statetype =
invariantlocalandglobalgradgrad``) observe at each agent the invariants ``tr S, tr S^2, tr R^2`` of the
velocity-gradient tensor and the same three of the matrix of second derivatives. With the conventions of
:mod:`simrl.physics.turbulence` (``u = -psi_y``, ``v = psi_x``, ``omega = v_x - u_y``):

Velocity-gradient tensor ``A = [[u_x, u_y], [v_x, v_y]]``, ``S = (A + A^T)/2``, ``R = (A - A^T)/2``:

* ``tr S = u_x + v_y = div u = 0`` identically for incompressible flow (the reference code's first feature
  is a wasted constant), so it is dropped;
* ``tr S^2 = 2 (S_11^2 + S_12^2) = |S|^2 / 2`` (strain; :func:`~.closures.strain_rate_magnitude`);
* ``tr R^2 = -2 R_12^2 = -omega^2 / 2`` (rotation);
* in its place the signed vorticity ``omega = v_x - u_y``. A traceless 2 x 2 tensor has three entries and,
  under proper rotations of the plane, exactly two independent invariant magnitudes (``tr S^2`` and
  ``tr R^2``; ``det A = -(tr S^2 + tr R^2)/2`` and the Okubo-Weiss ``Q`` are combinations of them). The one
  remaining rotation invariant is the *sign* of the rotation, which ``tr R^2`` loses: ``omega`` itself
  (the pseudo-scalar ``epsilon_ij d_i u_j``). It separates cyclones from anticyclones, which matters where
  that symmetry is broken (the beta-plane case) and for the vorticity-PDF tails the closure is judged on.

Second-derivative matrix ``H = [[u_xx, v_xx], [u_yy, v_yy]]`` (the paper's ``gradgrad``),
``S_H = (H + H^T)/2``, ``R_H = (H - H^T)/2``: ``tr S_H = u_xx + v_yy`` (not zero: incompressibility
gives ``u_xx + v_xy = 0``, not ``u_xx + v_yy = 0``), ``tr S_H^2 = u_xx^2 + v_yy^2 + 2 S_H12^2`` and
``tr R_H^2 = -2 R_H12^2`` with ``S_H12 = (v_xx + u_yy)/2``, ``R_H12 = (v_xx - u_yy)/2``. ``H`` holds only
the pure second derivatives, so it is not a tensor under rotations and its "invariants" are
frame-dependent features (kept as in the paper).

Feature order (last axis of :func:`local_invariants`), units for a field in the solver's units
(length: the box is 2 pi; time: that of ``omega``)::

    0 tr S^2     [1/T^2]        3 tr S_H     [1/(L T)]
    1 tr R^2     [1/T^2]        4 tr S_H^2   [1/(L T)^2]
    2 omega      [1/T]          5 tr R_H^2   [1/(L T)^2]

No normalisation here: scaling (e.g. by the DNS ``sigma_omega``) is the environment's job.
All derivatives are spectral, of the discrete velocity (Nyquist modes zeroed before odd derivatives,
:class:`~.grid.SpectralGrid`).
"""

from __future__ import annotations

import numpy as np

from simrl.physics.turbulence.grid import SpectralGrid
from simrl.physics.turbulence.model import velocity_hat

INVARIANT_NAMES = ("tr_S2", "tr_R2", "omega", "tr_SH", "tr_SH2", "tr_RH2")
"""Names of the six features of :func:`local_invariants`, in order."""


def _check_points(n: int, ix, iy) -> tuple[np.ndarray, np.ndarray]:
    ix = np.asarray(ix)
    iy = np.asarray(iy)
    if ix.ndim != 1 or ix.shape != iy.shape or not np.issubdtype(ix.dtype, np.integer) or not np.issubdtype(
        iy.dtype, np.integer
    ):
        raise ValueError(
            f"ix and iy must be 1-D integer arrays of the same length (one entry per agent), got "
            f"{ix.dtype}{ix.shape} and {iy.dtype}{iy.shape}"
        )
    if ix.size and (min(ix.min(), iy.min()) < 0 or max(ix.max(), iy.max()) >= n):
        raise ValueError(f"agent indices must lie in [0, {n - 1}]")
    return ix, iy


def gradient_fields(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """Physical ``(..., 7, N, N)`` fields ``u_x, u_y, v_x, u_xx, u_yy, v_xx, v_yy`` (``v_y = -u_x``)."""
    u_hat, v_hat = velocity_hat(grid, np.asarray(omega_hat))
    dx, dy = grid.ikx, grid.iky
    spec = np.stack(
        [dx * u_hat, dy * u_hat, dx * v_hat, dx * dx * u_hat, dy * dy * u_hat, dx * dx * v_hat, dy * dy * v_hat],
        axis=-3,
    )
    return grid.to_physical(spec)


def invariants_from_gradients(g: np.ndarray) -> np.ndarray:
    """The six features (module table) from gradient values ``(..., 7)`` in :func:`gradient_fields` order."""
    ux, uy, vx, uxx, uyy, vxx, vyy = np.moveaxis(g, -1, 0)
    s12 = 0.5 * (uy + vx)
    omega = vx - uy
    sh12 = 0.5 * (vxx + uyy)
    rh12 = 0.5 * (vxx - uyy)
    return np.stack(
        [
            2.0 * (ux**2 + s12**2),  # tr S^2 (S_22 = -S_11)
            -0.5 * omega**2,  # tr R^2
            omega,
            uxx + vyy,  # tr S_H
            uxx**2 + vyy**2 + 2.0 * sh12**2,  # tr S_H^2
            -2.0 * rh12**2,  # tr R_H^2
        ],
        axis=-1,
    )


def local_invariants(grid: SpectralGrid, omega_hat: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Features ``(B, n_agents, 6)`` at the grid points ``(ix[j], iy[j])`` of each system (module doc).

    ``omega_hat``: (B, N, N//2+1) spectral vorticity. ``ix``, ``iy``: integer grid indices of the agents,
    e.g. :func:`~.closures.agent_points` (row-major over the lattice's (x, y)).
    """
    omega_hat = np.asarray(omega_hat)
    if omega_hat.ndim != 3 or omega_hat.shape[1:] != grid.spectral_shape:
        raise ValueError(f"omega_hat must have shape (B, *{grid.spectral_shape}), got {omega_hat.shape}")
    ix, iy = _check_points(grid.n, ix, iy)
    g = gradient_fields(grid, omega_hat)[:, :, ix, iy]  # (B, 7, n_agents)
    return invariants_from_gradients(np.moveaxis(g, 1, -1))
