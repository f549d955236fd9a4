"""Named, documented diagnostics of 2-D turbulence fields (reference ``turbulence.md`` sect. 7).

Every function takes the :class:`~.grid.SpectralGrid` and spectral fields shaped
``(..., N, N//2+1)`` (any leading batch/time axes) unless it says otherwise.

Normalisation (scipy's unscaled forward ``rfft2``; Parseval in :mod:`.grid`)::

    <f g> = sum_modes w Re(conj(f_hat) g_hat) / N^4,   w = 2 for 0 < k_y < N/2, else 1

Domain-mean quantities (``<.>`` = average over the grid):

* energy ``E = <u^2 + v^2>/2 = sum w |omega_hat|^2 / (2 |k|^2 N^4)``;
* enstrophy ``Z = <omega^2>/2 = sum w |omega_hat|^2 / (2 N^4)``;
* palinstrophy ``P = <|grad omega|^2>/2 = sum w |k|^2 |omega_hat|^2 / (2 N^4)``.

Spectra are *sums* over modes (not averages), so each one sums exactly to its domain mean
(``sum_k E(k) = E``, ``sum_k Z(k) = Z``): isotropic shells ``k = rint(|k|)`` run from 0 to
``rint(sqrt(2) N/2)``; shells above the kept cutoff are empty for a dealiased field, and shells
above N/2 are only partly covered by the square grid ("corners").

Sign conventions of transfers (the LES equation ``d(omega_bar)/dt + J(psi_bar, omega_bar) = ... - Pi``):
a positive transfer is a *loss* of resolved enstrophy/energy to the subgrid scales (forward
transfer, dissipation); a negative one is backscatter.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from simrl.physics.turbulence.grid import SpectralGrid
from simrl.physics.turbulence.model import (
    TurbulenceModel,
    closure_hat,
    jacobian_hat,
    streamfunction_hat,
)

# ----------------------------------------------------------------------------------------
# Domain means
# ----------------------------------------------------------------------------------------


def _n4(grid: SpectralGrid) -> float:
    return float(grid.n) ** 4


def _modal(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """``w |omega_hat|^2 / (2 N^4)``: each mode's contribution to the enstrophy Z."""
    omega_hat = np.asarray(omega_hat)
    if omega_hat.shape[-2:] != grid.spectral_shape:
        raise ValueError(f"spectral field must end in shape {grid.spectral_shape}, got {omega_hat.shape}")
    return grid.hermitian_weight * np.abs(omega_hat) ** 2 / (2.0 * _n4(grid))


def energy(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """Domain-mean kinetic energy ``E = <u^2 + v^2> / 2``, shape ``omega_hat.shape[:-2]``."""
    return np.sum(_modal(grid, omega_hat) * grid.inv_k2, axis=(-2, -1))


def enstrophy(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """Domain-mean enstrophy ``Z = <omega^2> / 2``."""
    return np.sum(_modal(grid, omega_hat), axis=(-2, -1))


def palinstrophy(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """Domain-mean palinstrophy ``P = <|grad omega|^2> / 2`` (viscous enstrophy loss is ``2 nu P``)."""
    return np.sum(_modal(grid, omega_hat) * grid.k2, axis=(-2, -1))


# ----------------------------------------------------------------------------------------
# Spectra
# ----------------------------------------------------------------------------------------


def _bin(index: np.ndarray, values: np.ndarray, n_bins: int) -> np.ndarray:
    """Sum ``values (..., N, M)`` into bins given by the integer array ``index (N, M)``."""
    flat = values.reshape(-1, values.shape[-2] * values.shape[-1])
    idx = np.broadcast_to(index, values.shape[-2:]).ravel()
    out = np.stack([np.bincount(idx, weights=row, minlength=n_bins) for row in flat])
    return out.reshape(values.shape[:-2] + (n_bins,))


def shell_spectrum(grid: SpectralGrid, modal_density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum a per-mode quantity ``(..., N, N//2+1)`` (already Hermitian-weighted) over shells ``rint(|k|)``.

    Returns ``(k, spectrum)`` with ``k = 0 .. n_shells - 1``; the spectrum sums to the total.
    """
    return np.arange(grid.n_shells), _bin(grid.shell, modal_density, grid.n_shells)


def enstrophy_spectrum(grid: SpectralGrid, omega_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic enstrophy spectrum ``Z(k) = sum_{rint|k'| = k} w |omega_hat|^2 / (2 N^4)``; ``sum_k Z(k) = Z``."""
    return shell_spectrum(grid, _modal(grid, omega_hat))


def energy_spectrum(grid: SpectralGrid, omega_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic energy spectrum ``E(k) = sum_{rint|k'| = k} w |omega_hat|^2 / (2 |k'|^2 N^4)``.

    ``sum_k E(k) = E``.
    """
    return shell_spectrum(grid, _modal(grid, omega_hat) * grid.inv_k2)


def directional_enstrophy_spectra(
    grid: SpectralGrid, omega_hat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-dimensional enstrophy spectra ``(m, Z_of_kx, Z_of_ky)``, ``m = 0 .. N/2``.

    ``Z_of_kx(m)`` sums the enstrophy of all modes with ``|k_x| = m`` (over every k_y), ``Z_of_ky(m)``
    of all modes with ``|k_y| = m``; both fold +m and -m, so each sums to Z. In the beta case
    they differ (zonal jets put enstrophy at k_x = 0, i.e. into ``Z_of_kx(0)``).
    """
    modal = _modal(grid, omega_hat)
    n = grid.n
    m = np.arange(n // 2 + 1)
    abs_kx = np.broadcast_to(np.abs(grid.kx).astype(np.intp), grid.spectral_shape)
    z_of_kx = _bin(abs_kx, modal, n // 2 + 1)
    z_of_ky = np.sum(modal, axis=-2)
    return m, z_of_kx, z_of_ky


def paper_enstrophy_spectrum(
    grid: SpectralGrid, omega_hat: np.ndarray, direction: str = "xy"
) -> tuple[np.ndarray, np.ndarray]:
    """The reward's directional enstrophy spectrum of Mojgani et al. (``turb.enstrophy_spectrum``).

    The reference code computes, from the full ``fft2`` ``W``, ``spec_x = mean_{k_x} |W|^2 / 2``
    (a function of k_y), ``spec_y = mean_{k_y} |W|^2 / 2`` (a function of k_x), combines them with
    weights ``(dir_x, dir_y)``: ``'x'`` = (2, 0), ``'y'`` = (0, 2), ``'xy'`` = (1, 1), as
    ``(dir_x spec_x + dir_y spec_y) / 2``, divides by N^3 and keeps wavenumbers ``m = 0 .. N/2 - 1``
    (reference ``turbulence.md`` sect. 2 "Reward"). These are *one-sided* (only +m), so in terms of
    :func:`directional_enstrophy_spectra`::

        spec_x(m) = Z_of_ky(m) / w(m),   spec_y(m) = Z_of_kx(m) / w(m),   w(0) = 1, w(m > 0) = 2.

    Returns ``(m, spectrum)``. The reward is ``1 / || m * (Z_LES(m) - Z_DNS(m)) ||^2``.
    """
    weights = {"x": (2.0, 0.0), "y": (0.0, 2.0), "xy": (1.0, 1.0)}
    if direction not in weights:
        raise ValueError(f"direction must be one of {sorted(weights)}, got {direction!r}")
    dir_x, dir_y = weights[direction]
    m, z_of_kx, z_of_ky = directional_enstrophy_spectra(grid, omega_hat)
    half = grid.n // 2
    w = np.where(m[:half] == 0, 1.0, 2.0)
    spec_x = z_of_ky[..., :half] / w
    spec_y = z_of_kx[..., :half] / w
    return m[:half], (dir_x * spec_x + dir_y * spec_y) / 2.0


def transfer_spectrum(grid: SpectralGrid, a_hat: np.ndarray, b_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shell co-spectrum ``T(k) = sum_{rint|k'| = k} w Re(conj(a_hat) b_hat) / N^4``; ``sum_k T(k) = <a b>``."""
    co = grid.hermitian_weight * (np.conj(a_hat) * b_hat).real / _n4(grid)
    return shell_spectrum(grid, co)


# ----------------------------------------------------------------------------------------
# Vorticity PDF
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VorticityPDF:
    """Histogram PDF of ``omega / sigma`` and tail statistics of a pooled vorticity sample.

    ``bin_edges``, ``bin_centers``: in units of sigma, spanning ``[-n_sigma, n_sigma]``.
    ``density``: ``count / (n_samples * bin_width)``, the PDF of ``omega / sigma`` (samples outside
    the window count in ``n_samples``, so it integrates to ``1 - outside_fraction``, not to 1).
    ``sigma``: the normalisation used (e.g. the DNS value of the paper case; the reference's
    ``sigma_omega``). ``mean``, ``std``: of the sample, in vorticity units.
    ``kurtosis``: ``<(omega - mean)^4> / std^4`` (3 for a Gaussian; not the excess).
    ``tail_fractions``: ``{n: P(|omega| > n sigma)}`` for the requested thresholds.
    ``outside_fraction``: ``P(|omega| > n_sigma sigma)``.
    """

    bin_edges: np.ndarray
    bin_centers: np.ndarray
    density: np.ndarray
    sigma: float
    mean: float
    std: float
    kurtosis: float
    tail_fractions: dict
    outside_fraction: float
    n_samples: int


def vorticity_pdf(
    omega: np.ndarray,
    sigma: float | None = None,
    n_sigma: float = 5.0,
    n_bins: int = 100,
    thresholds: tuple[float, ...] = (3.0, 4.0, 5.0),
) -> VorticityPDF:
    """PDF and tails of a physical vorticity sample of any shape (snapshots and systems are pooled).

    ``sigma`` normalises the bins and thresholds; None uses the sample's own standard deviation.
    The reference's PDFs use the DNS sigma of each paper case (``PAPER_CASES[...].sigma_omega_dns``)
    over +-5 sigma (+-8 for k_f = 25).
    """
    x = np.asarray(omega, dtype=np.float64).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("omega must be a non-empty array of finite values")
    if isinstance(n_bins, bool) or not isinstance(n_bins, Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    if isinstance(n_sigma, bool) or not isinstance(n_sigma, Real) or not 0 < n_sigma < np.inf:
        raise ValueError(f"n_sigma must be a finite real number > 0, got {n_sigma!r}")
    mean = float(x.mean())
    dev = x - mean
    std = float(np.sqrt(np.mean(dev**2)))
    if sigma is None:
        sigma = std
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not 0 < sigma < np.inf:
        raise ValueError(f"sigma must be a finite real number > 0 (or None for the sample std), got {sigma!r}")
    sigma = float(sigma)
    kurtosis = float(np.mean(dev**4) / std**4) if std > 0 else float("nan")
    edges = np.linspace(-n_sigma, n_sigma, int(n_bins) + 1)
    counts, _ = np.histogram(x / sigma, bins=edges)
    width = edges[1] - edges[0]
    density = counts / (x.size * width)
    ax = np.abs(x) / sigma
    tails = {float(t): float(np.mean(ax > t)) for t in thresholds}
    return VorticityPDF(
        bin_edges=edges,
        bin_centers=0.5 * (edges[1:] + edges[:-1]),
        density=density,
        sigma=sigma,
        mean=mean,
        std=std,
        kurtosis=kurtosis,
        tail_fractions=tails,
        outside_fraction=float(np.mean(ax > n_sigma)),
        n_samples=int(x.size),
    )


# ----------------------------------------------------------------------------------------
# Time series and budgets
# ----------------------------------------------------------------------------------------


def energy_enstrophy_series(grid: SpectralGrid, omega_hat_series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E, Z)`` of a stack of snapshots ``(T, ..., N, N//2+1)``, each shaped ``(T, ...)``."""
    return energy(grid, omega_hat_series), enstrophy(grid, omega_hat_series)


class EnergyEnstrophyRecorder:
    """Collects ``time``, ``E`` and ``Z`` of a batch of systems, one row per :meth:`record` call.

    >>> import numpy as np
    >>> from simrl.physics.turbulence import TurbulenceModel, TurbulenceParameters, random_vorticity
    >>> model = TurbulenceModel(TurbulenceParameters(n=16, k_f=2, dt=1e-2))
    >>> state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0), batch_size=2))
    >>> rec = EnergyEnstrophyRecorder(model.grid)
    >>> for _ in range(3):
    ...     rec.record(state)
    ...     _ = model.advance(state, 5)
    >>> rec.arrays()["enstrophy"].shape
    (3, 2)
    """

    def __init__(self, grid: SpectralGrid):
        self.grid = grid
        self._time: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []
        self._enstrophy: list[np.ndarray] = []

    def record(self, state) -> None:
        """Append the current time, energy and enstrophy of every system of ``state``."""
        self._time.append(np.array(state.time, dtype=np.float64, copy=True))
        self._energy.append(energy(self.grid, state.omega_hat))
        self._enstrophy.append(enstrophy(self.grid, state.omega_hat))

    def arrays(self) -> dict[str, np.ndarray]:
        """``{"time", "energy", "enstrophy"}``, each ``(n_records, B)``."""
        return {
            "time": np.array(self._time),
            "energy": np.array(self._energy),
            "enstrophy": np.array(self._enstrophy),
        }


def budgets(
    model: TurbulenceModel, omega_hat: np.ndarray, nu_e: np.ndarray | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Instantaneous energy and enstrophy budgets, term by term, ``{"energy": {...}, "enstrophy": {...}}``.

    ``dZ/dt = <omega d_t omega>`` and ``dE/dt = -<psi d_t omega>`` split over the terms of the
    equation: ``advection`` (0 to round-off with dealiasing), ``viscous`` (``-2 nu P`` and
    ``-2 nu Z``), ``drag`` (``-2 alpha Z``, ``-2 alpha E``), ``forcing`` (``<F omega>``, ``-<F psi>``),
    ``beta`` (0 for both), ``closure`` (``-<nu_e |grad omega|^2>`` on the grid for Z) and ``total``.
    Each entry has shape ``omega_hat.shape[:-2]``.
    """
    grid = model.grid
    p = model.params
    w = np.asarray(omega_hat)
    psi_hat = streamfunction_hat(grid, w)
    beta_hat = np.where(model.kept, p.beta * grid.ikx * grid.inv_k2 * w, 0.0)  # -beta v
    terms = {
        "advection": -jacobian_hat(grid, w, model.workers),
        "viscous": -p.nu * grid.k2 * w,
        "drag": -p.alpha * w,
        "forcing": np.broadcast_to(model.forcing_hat, w.shape),
        "beta": beta_hat,
    }
    if nu_e is not None:
        terms["closure"] = closure_hat(grid, w, model.eddy_viscosity_like(w, nu_e), model.workers)
    z = {name: grid.mean_product(w, t) for name, t in terms.items()}
    e = {name: -grid.mean_product(psi_hat, t) for name, t in terms.items()}
    z["total"] = sum(z.values())
    e["total"] = sum(e.values())
    return {"energy": e, "enstrophy": z}


# ----------------------------------------------------------------------------------------
# Filters, coarse-graining and subgrid transfer
# ----------------------------------------------------------------------------------------


def sharp_cutoff_filter(grid: SpectralGrid, k_cut: float, shape: str = "circular") -> np.ndarray:
    """Transfer function (N, N//2+1) of a sharp spectral cutoff: 1 on kept modes, 0 elsewhere.

    ``shape="circular"`` keeps ``|k| <= k_cut``; ``"square"`` keeps ``|k_x|, |k_y| <= k_cut`` (what
    spectral truncation to an LES grid of ``N_les > 2 k_cut`` points does).
    """
    if isinstance(k_cut, bool) or not isinstance(k_cut, Real) or not 0 <= k_cut < np.inf:
        raise ValueError(f"k_cut must be a finite real number >= 0, got {k_cut!r}")
    if shape == "circular":
        return (grid.k2 <= k_cut**2).astype(np.float64)
    if shape == "square":
        return ((np.abs(grid.kx) <= k_cut) & (grid.ky <= k_cut)).astype(np.float64)
    raise ValueError(f"shape must be 'circular' or 'square', got {shape!r}")


def gaussian_filter(grid: SpectralGrid, width: float) -> np.ndarray:
    """Gaussian filter transfer function ``exp(-|k|^2 width^2 / 24)`` (py2d's ``filter.py`` convention)."""
    if isinstance(width, bool) or not isinstance(width, Real) or not 0 <= width < np.inf:
        raise ValueError(f"width must be a finite real number >= 0, got {width!r}")
    return np.exp(-grid.k2 * width**2 / 24.0)


def coarse_grain(omega_hat: np.ndarray, n_les: int) -> np.ndarray:
    """Spectral truncation of ``(..., N, N//2+1)`` fields to an ``n_les`` grid, ``(..., n_les, n_les//2+1)``.

    Keeps ``|k_x|, k_y < n_les/2`` (the LES Nyquist modes are dropped, see :mod:`.grid`) and rescales
    by ``(n_les / N)^2`` for the unscaled transform, so the coarse field equals the truncated fine
    field at the coarse grid points (``x_les[i] = x[i N / n_les]``). The result still holds modes above
    the LES dealiasing cutoff; :meth:`~.model.TurbulenceModel.state_from_spectral` removes them.
    """
    omega_hat = np.asarray(omega_hat)
    n = omega_hat.shape[-2]
    if omega_hat.shape[-1] != n // 2 + 1 or n % 2:
        raise ValueError(f"omega_hat must end in (N, N//2+1) with N even, got {omega_hat.shape}")
    if isinstance(n_les, bool) or not isinstance(n_les, Integral) or n_les < 2 or n_les % 2 or n_les > n:
        raise ValueError(f"n_les must be an even integer in [2, {n}], got {n_les!r}")
    h = n_les // 2
    out = np.zeros(omega_hat.shape[:-2] + (n_les, h + 1), dtype=np.complex128)
    out[..., :h, :h] = omega_hat[..., :h, :h]
    out[..., h + 1 :, :h] = omega_hat[..., n - h + 1 :, :h]
    return out * (n_les / n) ** 2


def spectral_refine(omega_hat: np.ndarray, n_fine: int) -> np.ndarray:
    """Spectral interpolation of ``(..., n, n//2+1)`` fields onto an ``n_fine`` grid (zero padding).

    The inverse of :func:`coarse_grain` on the modes both grids hold (``coarse_grain(spectral_refine(w, N), n)
    == w`` for a field without Nyquist modes): the coarse modes ``|k_x|, k_y < n/2`` are copied and
    rescaled by ``(n_fine / n)^2`` for the unscaled transform, so the fine field equals the coarse one's
    trigonometric interpolant; the coarse Nyquist row and column are dropped (see :mod:`.grid`).
    """
    omega_hat = np.asarray(omega_hat)
    n = omega_hat.shape[-2]
    if omega_hat.shape[-1] != n // 2 + 1 or n % 2:
        raise ValueError(f"omega_hat must end in (n, n//2+1) with n even, got {omega_hat.shape}")
    if isinstance(n_fine, bool) or not isinstance(n_fine, Integral) or n_fine % 2 or n_fine < n:
        raise ValueError(f"n_fine must be an even integer >= {n}, got {n_fine!r}")
    h = n // 2
    out = np.zeros(omega_hat.shape[:-2] + (n_fine, n_fine // 2 + 1), dtype=np.complex128)
    out[..., :h, :h] = omega_hat[..., :h, :h]
    out[..., n_fine - h + 1 :, :h] = omega_hat[..., h + 1 :, :h]
    return out * (n_fine / n) ** 2


@dataclass(frozen=True)
class SubgridTransfer:
    """Exact (filtered-DNS) subgrid forcing and its transfer spectra for a given filter.

    ``pi_hat``: ``Pi = filt(J(psi, omega)) - J(psi_bar, omega_bar)`` on the fine grid, where
    the LES obeys ``d(omega_bar)/dt + J(psi_bar, omega_bar) = ... - Pi``.
    ``omega_bar_hat``: the filtered vorticity.
    ``k``, ``enstrophy_transfer``: ``P_Z(k) = sum_shell w Re(conj(omega_bar_hat) pi_hat) / N^4``,
    summing to ``<omega_bar Pi>`` (positive = resolved enstrophy lost to subgrid scales).
    ``energy_transfer``: ``P_E(k) = -sum_shell w Re(conj(psi_bar_hat) pi_hat) / N^4``, summing to
    ``-<psi_bar Pi>`` (positive = resolved energy lost; the inverse cascade makes it negative at large scales).
    ``mean_enstrophy_transfer``, ``mean_energy_transfer``: the two sums.
    ``backscatter_fraction``: fraction of grid points where ``omega_bar Pi < 0``.
    """

    pi_hat: np.ndarray
    omega_bar_hat: np.ndarray
    k: np.ndarray
    enstrophy_transfer: np.ndarray
    energy_transfer: np.ndarray
    mean_enstrophy_transfer: np.ndarray
    mean_energy_transfer: np.ndarray
    backscatter_fraction: np.ndarray


def subgrid_transfer(
    grid: SpectralGrid, omega_hat: np.ndarray, filter_hat: np.ndarray, workers: int | None = None
) -> SubgridTransfer:
    """Subgrid enstrophy/energy transfer of a fine (DNS) field under the filter ``filter_hat`` (N, N//2+1).

    Both Jacobians are evaluated on the fine grid (dealiased by ``grid.mask``); with a sharp cutoff
    ``k_c`` they are exact on the resolved modes when ``grid.k_cut >= 2 k_c`` -- otherwise the
    fine grid's own truncation enters. Coarse-grain ``pi_hat`` with :func:`coarse_grain` to
    compare with an LES closure on the coarse grid (the reference's FDNS truth,
    ``turbulence.md`` sect. 7.3).
    """
    filter_hat = np.asarray(filter_hat, dtype=np.float64)
    if filter_hat.shape != grid.spectral_shape:
        raise ValueError(f"filter_hat must have shape {grid.spectral_shape}, got {filter_hat.shape}")
    w = np.asarray(omega_hat)
    w_bar = filter_hat * w
    pi_hat = filter_hat * jacobian_hat(grid, w, workers) - jacobian_hat(grid, w_bar, workers)
    k, pz = transfer_spectrum(grid, w_bar, pi_hat)
    _, pe = transfer_spectrum(grid, streamfunction_hat(grid, w_bar), pi_hat)
    pe = -pe
    local = grid.to_physical(w_bar, workers) * grid.to_physical(pi_hat, workers)
    return SubgridTransfer(
        pi_hat=pi_hat,
        omega_bar_hat=w_bar,
        k=k,
        enstrophy_transfer=pz,
        energy_transfer=pe,
        mean_enstrophy_transfer=pz.sum(axis=-1),
        mean_energy_transfer=pe.sum(axis=-1),
        backscatter_fraction=np.mean(local < 0, axis=(-2, -1)),
    )
