"""Batched pseudo-spectral solver of the forced beta-plane vorticity equation (the numerics).

Equation (physical conventions of :mod:`simrl.physics.turbulence`: ``u = -psi_y``,
``v = psi_x``, ``omega = curl u = lap(psi)``)::

    d(omega)/dt = - J(psi, omega) + nu lap(omega) - alpha omega + F - beta v + div(nu_e grad omega)
                = N(omega) + L omega

with ``J(psi, omega) = psi_x omega_y - psi_y omega_x = u . grad(omega)``.

Split into a linear, diagonal-in-Fourier part ``L`` and the rest ``N``::

    L(k) = -(nu + mean(nu_e)) |k|^2 - alpha + i beta k_x / |k|^2        (-beta v = -beta psi_x)
    N    = F - J(psi, omega) + div((nu_e - mean(nu_e)) grad omega)

``L`` holds viscosity, drag, the beta term and the *domain mean* of the closure viscosity
(the split ``div(nu_e grad w) = mean(nu_e) lap(w) + div((nu_e - mean nu_e) grad w)`` is exact,
so a constant ``nu_e`` is identical to raising ``nu``, and the closure is applied once: the
reference code applied it twice, ``turbulence.md`` sect. 3 bug 1). A single Fourier mode
therefore evolves exactly as ``exp(L t)``: Rossby waves have the exact frequency
``-beta k_x / |k|^2`` at every resolved scale and step size.

Time scheme: integrating-factor Runge-Kutta 3 (Heun's third-order tableau, abscissae
c = 0, 1/3, 2/3; weights 1/4, 0, 3/4). With ``E(s) = exp(L s)`` and ``h = dt``::

    w1 = E(h/3) [w0 + h/3 N(w0)]
    w2 = E(2h/3) w0 + (2h/3) E(h/3) N(w1)
    w_new = E(h) [w0 + h/4 N(w0)] + (3h/4) E(h/3) N(w2)

Why this scheme rather than the paper's AB2/Crank-Nicolson (``turbulence.md`` sect. 1):

* the linear terms are integrated exactly (no stiffness, no CN phase error, no extra
  stability limit from viscosity, drag, beta or a large mean eddy viscosity);
* RK3 is stable on the imaginary axis up to ``|lambda dt| <= sqrt(3)`` whereas AB2 is weakly
  unstable for pure advection -- relevant at nu = 5e-5 and with backscatter (nu_e < 0);
* it is self-starting: the state is ``omega_hat`` alone (no AB2 history), so every system of a
  batch can be reset, copied or given a new ``nu_e`` between calls without a start-up step;
* the abscissae are nondecreasing, so every integrating factor has a non-negative time
  argument (no ``exp(+nu k^2 dt)`` amplification; Isherwood, Grant & Gottlieb 2018, SIAM J.
  Numer. Anal. 56, 3276) -- unlike the Shu-Osher SSP-RK3 (c = 0, 1, 1/2).

It costs three evaluations of ``N`` per step (AB2: one), each four real 2-D FFTs without a
closure and eight with a non-uniform ``nu_e``. At the paper's dt = 5e-4 (grid CFL ~0.01 at N = 64)
both schemes are far inside their stability limits, so a step costs ~3x an AB2 step there; the
third-order accuracy and the larger stability limit (:meth:`TurbulenceModel.cfl_limit`) allow
fewer, larger steps for the same error.

Advection ``J`` uses Basdevant's (1983, J. Comput. Phys. 50, 209) four-FFT velocity form::

    u . grad(omega) = (d_xx - d_yy)(u v) + d_x d_y (v^2 - u^2)

(the curl of ``div(u u)`` for ``div u = 0``). With the 2/3 rule each product is exact on the
kept modes, so this is the Galerkin truncation of ``u . grad omega``: it equals the advective and
conservative forms to round-off and conserves energy and enstrophy exactly
(:func:`jacobian_hat`, the plain advective form, is the cross-check used by the tests).
The closure ``div(nu' grad omega)`` is evaluated in flux form, so its enstrophy tendency is
exactly ``-<nu' |grad omega|^2>`` on the grid (sign-definite for ``nu' >= 0``).

Performance (2-core x86-64 dev machine under load, numpy 2.4, pyfftw 0.15.1, IF-RK3, one system;
``benchmarks/bench_turbulence.py`` has the current table): with FFTW (the default when pyfftw
imports) a step costs 0.14-0.23 ms at N = 64 and 3.5-5 ms at N = 256 without closure (0.8-0.9x
pyqg's AB3 step, which does one evaluation instead of three) and about twice that with a
non-uniform ``nu_e``; 1.6-2.6x less than with numpy.fft at N = 64, 1.1-1.9x at N = 256; i.e. 12 (24) real 2-D FFTs plus three fused Numba passes
per evaluation (transform inputs, products, RK stage; fusing the first into the last, so that the
stage also fills the next evaluation's input, saved nothing measurable: within +-5 % at N = 64 and
256). Each
system is advanced through all its steps before the next one (its working set stays in cache, and a
blown-up system stops on its own); ``threads`` systems run concurrently (FFTW, NumPy's FFTs and the
Numba kernels release the GIL), each thread with its own buffers and FFTW plans. ``scipy.fft``'s
``workers`` (threads inside one transform) did not pay on 2 cores (up to 3.7x slower at N = 64, no
gain at N = 256), so the stepper's transforms are single-threaded into preallocated buffers (see
:class:`_Workspace`); ``workers`` only applies to the field conversions and :meth:`tendency`.
FFTW plans are FFTW_ESTIMATE, never measured, so results are reproducible bit for bit from one
process to the next (see the comment above :func:`resolve_fft_backend`); FFTW and numpy.fft agree to
round-off (~1e-16 relative after 100 steps), but a turbulent run amplifies round-off, so runs that
must reproduce each other must use the same library (``SIMRL_FFT``).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import scipy.fft
from numba import njit

from simrl.physics.turbulence import STATUS_NONFINITE, STATUS_OK
from simrl.physics.turbulence.grid import SpectralGrid
from simrl.physics.turbulence.parameters import TurbulenceParameters

RK3_IMAGINARY_AXIS_LIMIT = math.sqrt(3.0)
"""Every three-stage third-order RK has the stability polynomial 1 + z + z^2/2 + z^3/6, which is
stable on the imaginary axis for |z| <= sqrt(3)."""


# ----------------------------------------------------------------------------------------
# Plain spectral operators (NumPy, batched over leading axes). Used for diagnostics and as
# the independent reference of the fused kernels in the tests.
# ----------------------------------------------------------------------------------------


def streamfunction_hat(grid: SpectralGrid, omega_hat: np.ndarray) -> np.ndarray:
    """``psi_hat = -omega_hat / |k|^2`` (``lap psi = omega``; the k = 0 mode is set to 0)."""
    return -omega_hat * grid.inv_k2


def velocity_hat(grid: SpectralGrid, omega_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(u_hat, v_hat)`` with ``u = -psi_y``, ``v = psi_x`` (Nyquist modes zeroed: odd derivative)."""
    psi_hat = streamfunction_hat(grid, omega_hat)
    return -grid.iky * psi_hat, grid.ikx * psi_hat


def forcing_field(grid: SpectralGrid, k_f: int, amplitude: float) -> np.ndarray:
    """Physical forcing ``F = A [cos(k_f x) + cos(k_f y)]`` on the grid, (N, N)."""
    x, y = grid.meshgrid()
    return amplitude * (np.cos(k_f * x) + np.cos(k_f * y))


def jacobian_hat(grid: SpectralGrid, omega_hat: np.ndarray, workers: int | None = None) -> np.ndarray:
    """Spectrum of ``J(psi, omega) = u omega_x + v omega_y`` (advective form), masked by ``grid.mask``.

    The pseudo-spectral product is exact on the kept modes when ``grid.dealias`` (2/3 rule).
    """
    u_hat, v_hat = velocity_hat(grid, omega_hat)
    fields = np.stack([u_hat, v_hat, grid.ikx * omega_hat, grid.iky * omega_hat])
    u, v, wx, wy = grid.to_physical(fields, workers=workers)
    return grid.mask * grid.to_spectral(u * wx + v * wy, workers=workers)


def closure_hat(
    grid: SpectralGrid, omega_hat: np.ndarray, nu_e: np.ndarray, workers: int | None = None
) -> np.ndarray:
    """Spectrum of the closure term ``div(nu_e grad omega)`` (flux form), masked by ``grid.mask``.

    ``nu_e`` is the physical eddy-viscosity field, broadcastable to ``omega``'s physical shape.
    """
    grads = grid.to_physical(np.stack([grid.ikx * omega_hat, grid.iky * omega_hat]), workers=workers)
    fluxes = grid.to_spectral(nu_e * grads, workers=workers)
    return grid.mask * (grid.ikx * fluxes[0] + grid.iky * fluxes[1])


def linear_operator(grid: SpectralGrid, params: TurbulenceParameters, mean_nu_e: float = 0.0) -> np.ndarray:
    """``L(k) = -(nu + mean_nu_e) |k|^2 - alpha + i beta k_x / |k|^2``, zero outside the kept modes and at k = 0.

    The beta term: ``-beta v = -beta psi_x`` has the symbol ``-beta i k_x (-1/|k|^2) = i beta k_x / |k|^2``,
    so a single mode ``exp(i(k.x - w t))`` has ``w = -beta k_x / |k|^2`` (westward phase speed).
    """
    lin = -(params.nu + mean_nu_e) * grid.k2 - params.alpha + params.beta * grid.ikx * grid.inv_k2
    return np.where(_kept(grid), lin, 0.0)


def _kept(grid: SpectralGrid) -> np.ndarray:
    """The prognostic modes: ``grid.mask`` without k = 0 (a periodic velocity has zero mean vorticity)."""
    return grid.mask & (grid.k2 > 0)


# ----------------------------------------------------------------------------------------
# Fused per-system kernels (Numba, 2-D arrays of one system, GIL released).
# ----------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _spectral_inputs(w, u_coef, v_coef, ikx, iky, out, closure):
    """out[0] = u_hat, out[1] = v_hat (from omega_hat); with the closure also out[2:4] = grad omega_hat."""
    n0, n1 = w.shape
    for i in range(n0):
        for j in range(n1):
            x = w[i, j]
            out[0, i, j] = u_coef[i, j] * x
            out[1, i, j] = v_coef[i, j] * x
            if closure:
                out[2, i, j] = ikx[i, j] * x
                out[3, i, j] = iky[i, j] * x


@njit(cache=True, nogil=True)
def _products(phys, nu_prime, closure):
    """In place: (u, v[, w_x, w_y]) -> (u v, v^2 - u^2[, nu' w_x, nu' w_y])."""
    n0, n1 = phys.shape[1], phys.shape[2]
    for i in range(n0):
        for j in range(n1):
            u = phys[0, i, j]
            v = phys[1, i, j]
            phys[0, i, j] = u * v
            phys[1, i, j] = (v - u) * (v + u)
            if closure:
                nu = nu_prime[i, j]
                phys[2, i, j] = nu * phys[2, i, j]
                phys[3, i, j] = nu * phys[3, i, j]


@njit(cache=True, nogil=True)
def _rk3_stage(stage, spec, closure, a_coef, c_coef, ikx_m, iky_m, forcing, w0, e1, e2, e3, dt, out, acc):
    """One stage of the integrating-factor RK3 (module docstring); returns False if ``out`` is non-finite.

    ``N = F - [(k_y^2 - k_x^2) (uv)^ - k_x k_y (v^2 - u^2)^] + i k . (nu' grad w)^`` with the kept-mode
    mask folded into every coefficient array.
    stage 1: out = E(h/3)(w0 + h/3 N),  acc = E(h)(w0 + h/4 N)
    stage 2: out = E(2h/3) w0 + 2h/3 E(h/3) N
    stage 3: out = acc + 3h/4 E(h/3) N   (the new state)
    """
    n0, n1 = w0.shape
    finite = True
    for i in range(n0):
        for j in range(n1):
            n = forcing[i, j] - (a_coef[i, j] * spec[0, i, j] + c_coef[i, j] * spec[1, i, j])
            if closure:
                n += ikx_m[i, j] * spec[2, i, j] + iky_m[i, j] * spec[3, i, j]
            if stage == 1:
                x = w0[i, j]
                out[i, j] = e1[i, j] * (x + (dt / 3.0) * n)
                acc[i, j] = e3[i, j] * (x + (dt / 4.0) * n)
            elif stage == 2:
                out[i, j] = e2[i, j] * w0[i, j] + (2.0 * dt / 3.0) * (e1[i, j] * n)
            else:
                y = acc[i, j] + (0.75 * dt) * (e1[i, j] * n)
                out[i, j] = y
                if not (math.isfinite(y.real) and math.isfinite(y.imag)):
                    finite = False
    return finite


# ----------------------------------------------------------------------------------------
# Transforms of the time stepper: FFTW (pyfftw) when it imports, NumPy otherwise.
#
# NumPy path. NumPy >= 2 transforms into caller-owned buffers (``out=``): no allocation per
# stage, and no dependence on where the allocator puts a fresh output. That matters: a fresh
# 1 MB array is mmap-ed at a page offset of 16 bytes, and when input and output share their
# offset modulo 4096 (4K aliasing), scipy's irfft2/rfft2 at N = 256 ran 3x slower (1.07 ms
# instead of 0.35 ms per pair of fields, measured on the 2-core dev machine), which made step
# times swing by 2x between runs. The c2c pass along x runs in place, then the c2r pass along y
# writes into ``phys``: bitwise the same as ``irfft2`` (checked on numpy 2.4). Older NumPy falls
# back to scipy.fft (allocating, with ``workers``).
#
# FFTW path. One pair of 2-D plans (c2r over axes (-2, -1) of (ncomp, N, N//2+1), r2c back),
# 1 thread, on SIMD-aligned buffers (``pyfftw.empty_aligned``) owned by one thread of the model
# (:class:`_Workspace`), executed without the Python-level checks of ``FFTW.__call__`` and with
# the GIL released. The inverse's 1/N^2 is folded into the coefficients that fill its input
# (exact for N a power of two). Plans are made with FFTW_ESTIMATE after forgetting all wisdom:
# a measured plan (FFTW_MEASURE) may pick different algorithms in different processes, and an
# ESTIMATE plan would also adopt any wisdom another library (pyqg, a benchmark) left behind;
# either would change results in the last bits from one process to the next and break the
# cross-process reproducibility of evaluations. ESTIMATE plans depend only on the problem, the
# flags, the alignment and the FFTW build, so the same machine reproduces every bit.
# ----------------------------------------------------------------------------------------

_NUMPY_FFT_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
FFT_BACKENDS = ("numpy", "fftw")
"""Accepted values of ``TurbulenceModel(fft=...)`` and of the ``SIMRL_FFT`` environment variable."""
_FFTW_FLAGS = ("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT")
_FFTW_PLAN_LOCK = threading.Lock()


def _import_pyfftw():
    """The ``pyfftw`` module, or None when it is not installed (or not importable)."""
    try:
        import pyfftw
    except ImportError:
        return None
    return pyfftw


def resolve_fft_backend(fft: str | None = None) -> str:
    """The stepper's FFT library: ``fft`` if given, else ``$SIMRL_FFT``, else "fftw" when pyfftw imports.

    Raises ValueError for a name other than "numpy"/"fftw", and ImportError when "fftw" is asked
    for (argument or environment) but pyfftw is not importable.
    """
    source = "fft"
    if fft is None:
        env = os.environ.get("SIMRL_FFT", "").strip()
        if not env:
            return "fftw" if _import_pyfftw() is not None else "numpy"
        fft, source = env, "SIMRL_FFT"
    if not isinstance(fft, str) or fft.lower() not in FFT_BACKENDS:
        raise ValueError(f"{source} must be one of {FFT_BACKENDS} (or unset for the default), got {fft!r}")
    fft = fft.lower()
    if fft == "fftw" and _import_pyfftw() is None:
        raise ImportError(f"{source}='fftw' needs pyfftw (pip install 'pyfftw>=0.15'); use 'numpy' without it")
    return fft


def _inverse_fft(buf, phys, workers):
    """irfft2 of ``buf`` (ncomp, N, N//2+1) into ``phys`` (ncomp, N, N); ``buf`` is overwritten."""
    if _NUMPY_FFT_OUT:
        np.fft.ifft(buf, axis=-2, out=buf)
        return np.fft.irfft(buf, n=phys.shape[-1], axis=-1, out=phys)
    return scipy.fft.irfft2(buf, s=phys.shape[-2:], workers=workers, overwrite_x=True)


def _forward_fft(phys, spec, workers):
    """rfft2 of ``phys`` (ncomp, N, N) into ``spec`` (ncomp, N, N//2+1)."""
    if _NUMPY_FFT_OUT:
        np.fft.rfft(phys, axis=-1, out=spec)
        return np.fft.fft(spec, axis=-2, out=spec)
    return scipy.fft.rfft2(phys, workers=workers)


class _Workspace:
    """Buffers of one right-hand-side evaluation (and, with FFTW, their plans) for one thread.

    ``buf`` (ncomp, N, N//2+1): the inverse transform's input (destroyed by it); ``phys``
    (ncomp, N, N); ``spec`` (ncomp, N, N//2+1): the forward transform's output; ``stage_w``,
    ``acc``, ``new`` (N, N//2+1): RK stage, accumulator and next state. :meth:`inverse` returns
    the physical fields (``phys``, or a new array on NumPy < 2), :meth:`forward` their spectra.
    With FFTW the inverse is unnormalised (the caller scales its input by 1/N^2).
    """

    def __init__(self, n: int, ncomp: int, fft: str, workers: int):
        shape_c = (ncomp, n, n // 2 + 1)
        shape_r = (ncomp, n, n)
        self.workers = workers
        if fft == "fftw":
            pyfftw = _import_pyfftw()
            self.buf = pyfftw.empty_aligned(shape_c, "complex128")
            self.phys = pyfftw.empty_aligned(shape_r, "float64")
            self.spec = pyfftw.empty_aligned(shape_c, "complex128")
            with _FFTW_PLAN_LOCK:
                pyfftw.forget_wisdom()  # no foreign (measured) wisdom: see the section comment
                kw = dict(axes=(-2, -1), flags=_FFTW_FLAGS, threads=1)
                self._inv = pyfftw.FFTW(self.buf, self.phys, direction="FFTW_BACKWARD", **kw)
                self._fwd = pyfftw.FFTW(self.phys, self.spec, direction="FFTW_FORWARD", **kw)
            self.inverse, self.forward = self._inverse_fftw, self._forward_fftw
        else:
            self.buf = np.empty(shape_c, np.complex128)
            self.phys = np.empty(shape_r)
            self.spec = np.empty(shape_c, np.complex128)
            self.inverse, self.forward = self._inverse_numpy, self._forward_numpy
        self.stage_w = np.empty(shape_c[1:], np.complex128)
        self.acc = np.empty_like(self.stage_w)
        self.new = np.empty_like(self.stage_w)

    def _inverse_fftw(self) -> np.ndarray:
        self._inv.execute()
        return self.phys

    def _forward_fftw(self, phys: np.ndarray) -> np.ndarray:
        self._fwd.execute()
        return self.spec

    def _inverse_numpy(self) -> np.ndarray:
        return _inverse_fft(self.buf, self.phys, self.workers)

    def _forward_numpy(self, phys: np.ndarray) -> np.ndarray:
        return _forward_fft(phys, self.spec, self.workers)


# ----------------------------------------------------------------------------------------
# State and model
# ----------------------------------------------------------------------------------------


@dataclass
class TurbulenceState:
    """The prognostic state of B independent systems.

    ``omega_hat`` (B, N, N//2+1) complex128
        ``rfft2`` of the vorticity, zero outside the model's kept modes and at k = 0.
    ``time`` (B,) float64
        model time of each system.
    ``steps`` (B,) int64
        steps taken since the state was made.
    ``status`` (B,) int64
        outcome of the last :meth:`TurbulenceModel.advance` (``STATUS_OK`` / ``STATUS_NONFINITE``).
    """

    omega_hat: np.ndarray
    time: np.ndarray
    steps: np.ndarray
    status: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.omega_hat.shape[0]

    def copy(self) -> "TurbulenceState":
        return TurbulenceState(self.omega_hat.copy(), self.time.copy(), self.steps.copy(), self.status.copy())


class TurbulenceModel:
    """Advance B independent forced beta-plane vorticity fields with integrating-factor RK3.

    ``params``: a :class:`~.parameters.TurbulenceParameters` (shared by the batch).
    ``workers``: ``scipy.fft`` workers of the field conversions and :meth:`tendency` (default 1;
    the time stepper's own transforms are single-threaded, see the module docstring).
    ``threads``: systems advanced concurrently by :meth:`advance` (default 1; pays for B >= 2).
    ``fft``: the time stepper's FFT library, "fftw" (pyfftw, FFTW_ESTIMATE plans) or "numpy";
    default ``$SIMRL_FFT``, else "fftw" when pyfftw imports (see :func:`resolve_fft_backend`).
    Both give the same solution to round-off (~1e-13 relative after 100 steps); each is bitwise
    reproducible from one process to the next on the same machine, and independent of ``threads``.
    The chosen library is :attr:`fft`.

    >>> import numpy as np
    >>> from simrl.physics.turbulence import TurbulenceModel, TurbulenceParameters, random_vorticity
    >>> model = TurbulenceModel(TurbulenceParameters.paper("fhit", n=32, dt=1e-3))
    >>> state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0), batch_size=2))
    >>> model.advance(state, 10)
    array([0, 0])
    >>> state.time
    array([0.01, 0.01])
    """

    def __init__(self, params: TurbulenceParameters, workers: int = 1, threads: int = 1, fft: str | None = None):
        if not isinstance(params, TurbulenceParameters):
            raise TypeError(f"params must be a TurbulenceParameters, got {type(params).__name__}")
        for name, value in (("workers", workers), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.params = params
        self.grid = grid = SpectralGrid(params.n, dealias=params.dealias)
        self.workers = int(workers)
        self.threads = int(threads)
        self.fft = resolve_fft_backend(fft)
        self._executor: ThreadPoolExecutor | None = None
        # One _Workspace per (thread, ncomp): buffers and FFTW plans are never shared by threads.
        self._workspaces: dict[tuple[int, int], _Workspace] = {}
        self._workspaces_lock = threading.Lock()

        kept = _kept(grid)
        self.kept = kept
        shape = grid.spectral_shape
        full = np.ones(shape)
        # Coefficient arrays of the fused kernels, each with the kept-mode mask folded in, so the
        # products' aliased and Nyquist content and the k = 0 mode never enter the state.
        self._u_coef = np.ascontiguousarray(kept * (grid.iky * grid.inv_k2))  # u_hat = -i k_y psi_hat = i k_y w / k^2
        self._v_coef = np.ascontiguousarray(kept * (-grid.ikx * grid.inv_k2))  # v_hat = i k_x psi_hat
        self._ikx = np.ascontiguousarray(kept * grid.ikx * full)
        self._iky = np.ascontiguousarray(kept * grid.iky * full)
        self._a_coef = np.ascontiguousarray(kept * (grid.ky**2 - grid.kx**2))  # (d_xx - d_yy)
        self._c_coef = np.ascontiguousarray(kept * (-grid.kx * grid.ky))  # d_x d_y
        self.forcing = forcing_field(grid, params.k_f, params.amplitude)
        self.forcing_hat = np.ascontiguousarray(kept * grid.to_spectral(self.forcing))
        self.linear = linear_operator(grid, params)
        self._factors_plain = self._factors(0.0)
        # The coefficients that fill the inverse transform's input (u_hat, v_hat, grad omega_hat),
        # times the inverse's normalisation when the library leaves it out (FFTW: 1/N^2).
        scale = 1.0 / (grid.n * grid.n) if self.fft == "fftw" else 1.0
        self._inputs = tuple(
            np.ascontiguousarray(c * scale) if scale != 1.0 else c
            for c in (self._u_coef, self._v_coef, self._ikx, self._iky)
        )

    # -------------------------------------------------------------- states and fields
    def initial_state(self, omega: np.ndarray, time: float | np.ndarray = 0.0) -> TurbulenceState:
        """State from physical vorticity ``(N, N)`` or ``(B, N, N)``.

        The field is projected onto the kept modes: its mean (which must vanish for a periodic
        velocity field) and the modes outside the dealiasing mask / on the Nyquist lines are removed.
        """
        omega = np.asarray(omega, dtype=np.float64)
        if omega.ndim == 2:
            omega = omega[None]
        n = self.grid.n
        if omega.ndim != 3 or omega.shape[1:] != (n, n):
            raise ValueError(f"omega must have shape ({n}, {n}) or (B, {n}, {n}), got {omega.shape}")
        return self.state_from_spectral(self.grid.to_spectral(omega, workers=self.workers), time)

    def state_from_spectral(self, omega_hat: np.ndarray, time: float | np.ndarray = 0.0) -> TurbulenceState:
        """State from ``rfft2`` vorticity ``(N, N//2+1)`` or ``(B, N, N//2+1)``.

        Projected onto the kept modes as in :meth:`initial_state`.
        """
        omega_hat = np.asarray(omega_hat)
        if omega_hat.ndim == 2:
            omega_hat = omega_hat[None]
        if omega_hat.ndim != 3 or omega_hat.shape[1:] != self.grid.spectral_shape:
            raise ValueError(
                f"omega_hat must have shape {self.grid.spectral_shape} or (B, *{self.grid.spectral_shape}), "
                f"got {omega_hat.shape}"
            )
        b = omega_hat.shape[0]
        w = np.ascontiguousarray(np.where(self.kept, omega_hat, 0.0), dtype=np.complex128)
        t = np.broadcast_to(np.asarray(time, dtype=np.float64), (b,)).copy()
        return TurbulenceState(w, t, np.zeros(b, np.int64), np.zeros(b, np.int64))

    @staticmethod
    def _hat(x) -> np.ndarray:
        return x.omega_hat if isinstance(x, TurbulenceState) else np.asarray(x)

    def vorticity(self, state) -> np.ndarray:
        """Physical vorticity ``omega = v_x - u_y = lap psi`` of a state or ``omega_hat``."""
        return self.grid.to_physical(self._hat(state), workers=self.workers)

    def streamfunction(self, state) -> np.ndarray:
        """Physical streamfunction ``psi`` (zero mean) of a state or ``omega_hat``."""
        return self.grid.to_physical(streamfunction_hat(self.grid, self._hat(state)), workers=self.workers)

    def velocity(self, state) -> tuple[np.ndarray, np.ndarray]:
        """Physical velocity ``(u, v) = (-psi_y, psi_x)`` of a state or ``omega_hat``."""
        u_hat, v_hat = velocity_hat(self.grid, self._hat(state))
        uv = self.grid.to_physical(np.stack([u_hat, v_hat]), workers=self.workers)
        return uv[0], uv[1]

    # -------------------------------------------------------------- right-hand side
    def tendency(self, state, nu_e: np.ndarray | None = None) -> np.ndarray:
        """``d(omega_hat)/dt`` of the full equation (all terms), from the plain NumPy operators.

        ``state``: a :class:`TurbulenceState` or spectral vorticity ``(..., N, N//2+1)``; ``nu_e``
        broadcastable to the physical shape ``(..., N, N)``. This is the continuous-time right-hand
        side that the time stepper integrates; diagnostics (budgets) and the tests use it as the
        reference of the fused kernels.
        """
        w = self._hat(state)
        rhs = self.linear * w + self.forcing_hat - jacobian_hat(self.grid, w, self.workers)
        if nu_e is not None:
            rhs = rhs + closure_hat(self.grid, w, self.eddy_viscosity_like(w, nu_e), self.workers)
        return np.where(self.kept, rhs, 0.0)

    def eddy_viscosity_like(self, omega_hat: np.ndarray, nu_e) -> np.ndarray:
        """``nu_e`` broadcast to the physical shape of ``omega_hat`` (``(..., N, N)``), or a ValueError."""
        shape = np.shape(omega_hat)[:-2] + (self.grid.n, self.grid.n)
        try:
            return np.broadcast_to(np.asarray(nu_e, dtype=np.float64), shape)
        except ValueError:
            raise ValueError(f"nu_e must broadcast to the physical shape {shape}, got {np.shape(nu_e)}") from None

    def cfl(self, state) -> np.ndarray:
        """Grid CFL number ``dt max(|u| + |v|) / dx`` of each system, (B,).

        The integrating-factor RK3 is stable (frozen-coefficient estimate) while this stays below
        :attr:`cfl_limit`; viscosity, drag and beta impose no limit (they are integrated exactly).
        """
        u, v = self.velocity(state)
        speed = np.max(np.abs(u) + np.abs(v), axis=(-2, -1))
        return self.params.dt * speed / self.grid.dx

    @property
    def cfl_limit(self) -> float:
        """Largest stable :meth:`cfl`: advection eigenvalues ``i(u k_x + v k_y)`` are bounded by
        ``max(|u| + |v|) k_cut``, and RK3 needs ``|lambda dt| <= sqrt(3)``, so
        ``CFL <= sqrt(3) / (k_cut dx) = sqrt(3) N / (2 pi k_cut)`` (0.84 at N = 64 dealiased,
        0.56 without dealiasing). The bound is conservative: the largest velocities sit at large
        scales, and a forced run (N = 64, paper nu and alpha, k_f = 4, no closure) stayed stable up
        to CFL ~1.3 (dt = 0.015) and blew up at CFL ~1.5-2.5 (dt = 0.02)."""
        return RK3_IMAGINARY_AXIS_LIMIT / (self.grid.k_cut * self.grid.dx)

    # -------------------------------------------------------------- time stepping
    def _factors(self, mean_nu_e: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``E(h/3), E(2h/3), E(h)`` for the linear operator with the given mean eddy viscosity."""
        lin = self.linear if mean_nu_e == 0.0 else linear_operator(self.grid, self.params, mean_nu_e)
        dt = self.params.dt
        with np.errstate(over="ignore", invalid="ignore"):
            return tuple(np.ascontiguousarray(np.exp(lin * (dt * c))) for c in (1.0 / 3.0, 2.0 / 3.0, 1.0))

    def _check_nu_e(self, nu_e, batch: int) -> np.ndarray:
        nu_e = np.asarray(nu_e, dtype=np.float64)
        n = self.grid.n
        if nu_e.shape == (n, n):
            nu_e = np.broadcast_to(nu_e, (batch, n, n))
        if nu_e.shape != (batch, n, n):
            raise ValueError(f"nu_e must be None or have shape ({n}, {n}) or (B={batch}, {n}, {n}), got {nu_e.shape}")
        return nu_e

    def advance(self, state: TurbulenceState, n_steps: int, nu_e: np.ndarray | None = None) -> np.ndarray:
        """Advance every system of ``state`` in place by ``n_steps`` steps; return ``state.status`` (B,).

        ``nu_e``: eddy-viscosity field(s) ``(B, N, N)`` (or ``(N, N)`` for all systems), held fixed
        during the call; None for no closure. Negative values (backscatter) are allowed.

        A system whose state (or ``nu_e``) is non-finite at the start, or becomes non-finite
        during a step, gets ``STATUS_NONFINITE`` and stops: its ``omega_hat``, ``time`` and
        ``steps`` stay at its last finite state. Nothing is raised, so an environment can end
        that episode and carry on with the others.
        """
        if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 0:
            raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
        if not isinstance(state, TurbulenceState):
            raise TypeError(f"state must be a TurbulenceState, got {type(state).__name__}")
        if state.omega_hat.ndim != 3 or state.omega_hat.shape[1:] != self.grid.spectral_shape:
            raise ValueError(
                f"state.omega_hat must have shape (B, *{self.grid.spectral_shape}), got {state.omega_hat.shape}"
            )
        if state.omega_hat.dtype != np.complex128:
            raise ValueError(f"state.omega_hat must be complex128, got {state.omega_hat.dtype}")
        batch = state.batch_size
        if nu_e is not None:
            nu_e = self._check_nu_e(nu_e, batch)

        def run(b: int) -> tuple[int, int]:
            return self._advance_system(state.omega_hat, b, int(n_steps), None if nu_e is None else nu_e[b])

        if self.threads > 1 and batch > 1:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="simrl-turbulence")
            results = list(self._executor.map(run, range(batch)))
        else:
            results = [run(b) for b in range(batch)]
        dt = self.params.dt
        for b, (done, status) in enumerate(results):
            state.time[b] += done * dt
            state.steps[b] += done
            state.status[b] = status
        return state.status

    def _advance_system(
        self, omega_hat: np.ndarray, b: int, n_steps: int, nu_e_b: np.ndarray | None
    ) -> tuple[int, int]:
        """Advance system ``b`` of ``omega_hat`` in place; return ``(steps done, status)``."""
        w = omega_hat[b].copy()
        if not np.isfinite(w).all():
            return 0, STATUS_NONFINITE
        closure = False
        nu_prime = np.zeros((1, 1))
        factors = self._factors_plain
        if nu_e_b is not None:
            if not np.isfinite(nu_e_b).all():
                return 0, STATUS_NONFINITE
            lo, hi = float(nu_e_b.min()), float(nu_e_b.max())
            if lo == hi:  # uniform: all of it goes into L (exactly nu -> nu + nu_e)
                mean = lo
            else:
                mean = float(nu_e_b.mean())
                nu_prime = np.ascontiguousarray(nu_e_b - mean)
                closure = True
            if mean != 0.0:
                factors = self._factors(mean)
        if n_steps == 0:
            return 0, STATUS_OK
        e1, e2, e3 = factors
        if not (np.isfinite(e1).all() and np.isfinite(e2).all() and np.isfinite(e3).all()):
            return 0, STATUS_NONFINITE

        ncomp = 4 if closure else 2
        ws = self._workspace(ncomp)
        buf, stage_w, acc, new = ws.buf, ws.stage_w, ws.acc, ws.new
        dt = self.params.dt
        coefs = (self._a_coef, self._c_coef, self._ikx, self._iky, self.forcing_hat)
        inputs = self._inputs
        inverse, forward = ws.inverse, ws.forward

        def evaluate(x):  # the spectral terms of N(x): u_hat, v_hat (grad x) -> physical products -> spectra
            _spectral_inputs(x, *inputs, buf, closure)
            p = inverse()
            _products(p, nu_prime, closure)
            return forward(p)

        done = 0
        status = STATUS_OK
        # A blowing-up system may feed inf/NaN to the transforms before the stage-3 check stops it;
        # that is reported through the status, so NumPy's floating-point warnings are silenced.
        with np.errstate(all="ignore"):
            for _ in range(n_steps):
                _rk3_stage(1, evaluate(w), closure, *coefs, w, e1, e2, e3, dt, stage_w, acc)
                _rk3_stage(2, evaluate(stage_w), closure, *coefs, w, e1, e2, e3, dt, stage_w, acc)
                if not _rk3_stage(3, evaluate(stage_w), closure, *coefs, w, e1, e2, e3, dt, new, acc):
                    status = STATUS_NONFINITE
                    break
                w, new = new, w
                done += 1
        omega_hat[b] = w
        return done, status

    def _workspace(self, ncomp: int) -> _Workspace:
        """This thread's buffers (and FFTW plans) for ``ncomp`` transformed fields, made once."""
        key = (threading.get_ident(), ncomp)
        ws = self._workspaces.get(key)
        if ws is None:
            # (a dead thread's identifier may be reused by a new thread: it then inherits the
            # workspace, which is safe because the two never run at the same time)
            ws = _Workspace(self.grid.n, ncomp, self.fft, self.workers)
            with self._workspaces_lock:
                self._workspaces[key] = ws
        return ws

    def __getstate__(self) -> dict:
        # Workspaces (FFTW plans), the lock and the thread pool are per process: not pickled/copied.
        state = self.__dict__.copy()
        state["_workspaces"] = {}
        state["_executor"] = None
        del state["_workspaces_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._workspaces_lock = threading.Lock()

    def close(self) -> None:
        """Shut down the worker threads (if ``threads > 1`` started any)."""
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
