"""Random initial vorticity fields (the paper's LES runs start from filtered-DNS snapshots instead).

All randomness comes from a caller-owned :class:`numpy.random.Generator`; NumPy's global
random state is never touched (the reference code seeds the global RNG, ``np.random.seed(42)``).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from simrl.physics.turbulence.grid import SpectralGrid


def random_vorticity(
    grid: SpectralGrid,
    rng: np.random.Generator,
    batch_size: int | None = None,
    k_peak: float | None = None,
    rms: float = 1.0,
) -> np.ndarray:
    """Random-phase vorticity with energy spectrum ``E(k) ~ k^4 exp(-(k/k_peak)^2)``, zero mean.

    The spectral shape is that of the reference code's random start (``turb.IC``, k_p = 10;
    McWilliams-type). A shell of radius k holds ~2 pi k modes and ``E(k) = sum_shell |w_hat|^2 / (2 k^2)``,
    so each mode gets ``|w_hat|^2 ~ k E(k)``: Gaussian white noise is filtered by
    ``k^(5/2) exp(-k^2 / (2 k_peak^2))``, restricted to the grid's kept modes (dealiasing mask,
    no Nyquist, no mean) and rescaled to the requested root-mean-square vorticity.

    ``k_peak`` defaults to ``min(10, k_cut / 2)``. Returns ``(N, N)`` when ``batch_size`` is None,
    else ``(batch_size, N, N)``; each system is an independent draw.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), got {type(rng).__name__}"
        )
    bad_batch = isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1
    if batch_size is not None and bad_batch:
        raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
    if k_peak is None:
        k_peak = min(10.0, grid.k_cut / 2.0)
    if isinstance(k_peak, bool) or not isinstance(k_peak, Real) or not 0 < k_peak < np.inf:
        raise ValueError(f"k_peak must be a finite real number > 0, got {k_peak!r}")
    if isinstance(rms, bool) or not isinstance(rms, Real) or not 0 <= rms < np.inf:
        raise ValueError(f"rms must be a finite real number >= 0, got {rms!r}")
    b = 1 if batch_size is None else int(batch_size)
    noise_hat = grid.to_spectral(rng.standard_normal((b, grid.n, grid.n)))
    k = np.sqrt(grid.k2)
    shape = k**2.5 * np.exp(-0.5 * (k / k_peak) ** 2)
    kept = grid.mask & (grid.k2 > 0)
    omega = grid.to_physical(np.where(kept, shape * noise_hat, 0.0))
    norm = np.sqrt(np.mean(omega**2, axis=(-2, -1), keepdims=True))
    omega = omega * (rms / np.where(norm > 0, norm, 1.0))
    return omega[0] if batch_size is None else omega
