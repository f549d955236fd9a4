"""Spectral grid of the doubly periodic box [0, 2 pi)^2 with N x N points (``rfft2`` layout).

Layout ('ij' indexing, as the reference codes RLonKorali and py2d): a physical field
``f[i, j] = f(x_i, y_j)`` with ``x_i = i dx``, ``y_j = j dx``, ``dx = 2 pi / N``; axis 0 is x,
axis 1 is y. ``scipy.fft.rfft2`` transforms both axes and keeps only ``k_y >= 0`` (the last
axis), so a spectral field has shape ``(N, N//2 + 1)``:

* ``kx`` (N, 1): 0, 1, ..., N/2 - 1, -N/2, ..., -1 (``fftfreq`` order; row N/2 is the Nyquist row);
* ``ky`` (1, N/2 + 1): 0, 1, ..., N/2 (column N/2 is the Nyquist column).

Normalisation is scipy's default (``norm="backward"``): the forward transform is unscaled,
so ``f_hat ~ N^2 f`` and Parseval reads (reference ``turbulence.md`` sect. 7)::

    <f g> = (1 / N^4) sum_{rfft modes} w Re(conj(f_hat) g_hat),
    w = 2 for 0 < k_y < N/2 (the mode stands for itself and its conjugate -k), else 1,

with ``<.>`` the domain mean (grid average). :attr:`SpectralGrid.hermitian_weight` holds w.

Nyquist modes. For even N the modes ``k_x = -N/2`` and ``k_y = N/2`` have no partner of
opposite sign, so a spectral derivative ``i k f_hat`` there is not the derivative of a real
trigonometric interpolant (the real part of ``i k`` times a real coefficient is lost by
``irfft2``). Keeping them makes the discrete curl of the discrete velocity differ from the
vorticity by O(1) (0.44 in the reference's measurement); therefore the odd-derivative
multipliers :attr:`ikx`, :attr:`iky` are zero on the Nyquist row/column, and
:attr:`mask` always removes the Nyquist modes from prognostic fields.

Dealiasing (``dealias=True``): Orszag's 2/3 rule with a square mask. A quadratic product of
two fields with ``|k_x|, |k_y| <= K`` has modes up to 2K, whose aliases land at
``|k| >= N - 2K``; they miss the kept band iff ``N - 2K > K``, i.e. ``K < N/3``. The mask
keeps ``|k_x|, |k_y| <= K = floor((N - 1)/3)`` (21 at N = 64, 85 at N = 256), so the
products in the advection and closure terms are exact on every kept mode.
With ``dealias=False`` only the Nyquist modes are removed (the reference code's setting,
whose aliasing is only reduced by its skew-symmetric advection form).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.fft

TWO_PI = 2.0 * np.pi


def dealiased_cutoff(n: int) -> int:
    """Largest kept wavenumber component under the 2/3 rule: the largest K with 3K < N."""
    return (int(n) - 1) // 3


class SpectralGrid:
    """Wavenumbers, masks and transforms of the N x N periodic grid on [0, 2 pi)^2.

    Attributes (all read-only NumPy arrays, broadcastable to the spectral shape ``(N, N//2+1)``):

    ``x`` (N,)
        grid coordinates ``i * 2 pi / N`` (the same for y).
    ``kx`` (N, 1), ``ky`` (1, N//2+1)
        integer wavenumbers as floats (true values, Nyquist included: used by even
        derivatives such as the Laplacian).
    ``ikx``, ``iky``
        ``1j * kx`` and ``1j * ky`` with the Nyquist row/column zeroed: the first-derivative
        multipliers (odd derivatives).
    ``k2`` (N, N//2+1)
        ``|k|^2 = kx^2 + ky^2``.
    ``inv_k2``
        ``1 / |k|^2`` with the k = 0 entry set to 0 (the inverse Laplacian on zero-mean fields).
    ``mask`` (N, N//2+1) bool
        the kept modes: the 2/3-rule square when ``dealias`` else every mode but the
        Nyquist row/column. The k = 0 mode is kept here (it is a mean, not an alias).
    ``k_cut`` int
        largest kept ``|k_x|`` (= largest kept ``k_y``): ``floor((N-1)/3)`` or ``N/2 - 1``.
    ``hermitian_weight`` (1, N//2+1)
        w of the Parseval sum above.
    ``shell`` (N, N//2+1) int
        isotropic shell index ``rint(|k|)``; shells 0 .. ``n_shells - 1``.
    """

    def __init__(self, n: int, dealias: bool = True):
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 8 or n % 2:
            raise ValueError(f"grid size N must be an even integer >= 8, got {n!r}")
        if not isinstance(dealias, (bool, np.bool_)):
            raise ValueError(f"dealias must be True or False, got {dealias!r}")
        n = int(n)
        self.n = n
        self.dealias = bool(dealias)
        self.length = TWO_PI
        self.dx = TWO_PI / n
        self.x = np.arange(n) * self.dx
        self.spectral_shape = (n, n // 2 + 1)

        kx = scipy.fft.fftfreq(n, 1.0 / n)[:, None]
        ky = scipy.fft.rfftfreq(n, 1.0 / n)[None, :]
        self.kx = kx
        self.ky = ky
        nyquist_x = np.abs(kx) == n // 2
        nyquist_y = ky == n // 2
        self.ikx = np.where(nyquist_x, 0.0, 1j * kx)
        self.iky = np.where(nyquist_y, 0.0, 1j * ky)
        self.k2 = kx**2 + ky**2
        self.inv_k2 = np.zeros(self.spectral_shape)
        np.divide(1.0, self.k2, out=self.inv_k2, where=self.k2 > 0)

        self.k_cut = dealiased_cutoff(n) if self.dealias else n // 2 - 1
        self.mask = (np.abs(kx) <= self.k_cut) & (ky <= self.k_cut)

        self.hermitian_weight = np.where((ky > 0) & (ky < n // 2), 2.0, 1.0)
        self.shell = np.rint(np.sqrt(self.k2)).astype(np.intp)
        self.n_shells = int(self.shell.max()) + 1

        for name in ("x", "kx", "ky", "ikx", "iky", "k2", "inv_k2", "mask", "hermitian_weight", "shell"):
            getattr(self, name).setflags(write=False)

    def __repr__(self) -> str:
        return f"SpectralGrid(n={self.n}, dealias={self.dealias}, k_cut={self.k_cut})"

    def meshgrid(self) -> tuple[np.ndarray, np.ndarray]:
        """Physical coordinates ``(X, Y)``, each (N, N), 'ij' indexing."""
        return np.meshgrid(self.x, self.x, indexing="ij")

    def to_spectral(self, f: np.ndarray, workers: int | None = None) -> np.ndarray:
        """``rfft2`` over the last two axes (unscaled forward transform)."""
        f = np.asarray(f, dtype=np.float64)
        if f.shape[-2:] != (self.n, self.n):
            raise ValueError(f"physical field must end in shape ({self.n}, {self.n}), got {f.shape}")
        return scipy.fft.rfft2(f, axes=(-2, -1), workers=workers)

    def to_physical(self, f_hat: np.ndarray, workers: int | None = None) -> np.ndarray:
        """``irfft2`` over the last two axes back to the (N, N) grid."""
        f_hat = np.asarray(f_hat)
        if f_hat.shape[-2:] != self.spectral_shape:
            raise ValueError(f"spectral field must end in shape {self.spectral_shape}, got {f_hat.shape}")
        return scipy.fft.irfft2(f_hat, s=(self.n, self.n), axes=(-2, -1), workers=workers)

    def mean_product(self, f_hat: np.ndarray, g_hat: np.ndarray) -> np.ndarray:
        """Domain mean ``<f g>`` of two real fields from their spectra (Parseval, see module doc)."""
        w = self.hermitian_weight
        return np.sum(w * (np.conj(f_hat) * g_hat).real, axis=(-2, -1)) / float(self.n) ** 4
