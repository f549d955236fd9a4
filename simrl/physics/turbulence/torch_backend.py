"""torch backend of the batched beta-plane vorticity solver (``torch.fft``; CPU or GPU).

:class:`TorchTurbulenceModel` integrates exactly the scheme of
:class:`simrl.physics.turbulence.model.TurbulenceModel` (read that module's docstring for the
equation, the conventions and the reasons behind the scheme)::

    d(omega)/dt = - J(psi, omega) + nu lap(omega) - alpha omega + F - beta v + div(nu_e grad omega)

* integrating-factor RK3 (Heun's tableau, c = 0, 1/3, 2/3) with the exact linear operator
  ``L(k) = -(nu + mean(nu_e)) |k|^2 - alpha + i beta k_x / |k|^2``;
* Basdevant's four-FFT velocity form of the advection, 2/3-rule dealiasing, Nyquist modes and
  k = 0 removed from every tendency (the kept-mode mask folded into each coefficient);
* the closure ``div((nu_e - mean nu_e) grad omega)`` in flux form (four more FFTs), the mean part
  inside ``L``, so a uniform ``nu_e`` is exactly ``nu -> nu + nu_e``;
* ``scipy.fft.rfft2`` layout and normalisation (``torch.fft.rfft2`` has the same), 'ij' indexing.

The difference is the execution: all B systems of a batch go through every stage together, one
batched ``torch.fft.irfft2``/``rfft2`` per stage (12 real 2-D FFTs per step and system without
closure, 24 with a non-uniform ``nu_e``), and the field stays on ``device`` between calls; only
the arguments (NumPy or torch) and the per-system scalars are converted at the boundaries.
In float64 it agrees with the NumPy backend to ~1e-14 (the tests demand < 1e-10 after 50 forced
steps with beta and a non-uniform ``nu_e``).

What lives where:

==================  ===============================  =========================================
object              type / shape                     where
==================  ===============================  =========================================
``omega_hat``       torch (B, N, N//2+1) complex     ``device`` (complex128 for float64)
``time``            NumPy (B,) float64               host (per-system bookkeeping)
``steps``           NumPy (B,) int64                 host
``status``          NumPy (B,) int64                 host (``STATUS_OK`` / ``STATUS_NONFINITE``)
``nu_e`` argument   NumPy or torch (B, N, N)/(N, N)  moved to ``device`` once per call
fields returned     torch tensors                    ``device`` (:meth:`vorticity`, ...)
``cfl``             NumPy (B,)                       host
==================  ===============================  =========================================

Blow-ups: a system whose state or ``nu_e`` is non-finite at the start, or whose new state is
non-finite after a step, gets ``STATUS_NONFINITE`` and keeps its last finite state, time and step
count, as in the NumPy backend; nothing is raised. The check runs on the device every step
(a masked update, no host synchronisation); the host looks at it every ``sync_every`` steps only
to stop early when every system has blown up.

Running the paper's 1024^2 DNS on a GPU (Re = 20,000, alpha = 0.1, k_f = 4; reference
``turbulence.md`` sect. 1; the DNS step is not in the paper's code, Guan et al. use ~5e-5, and the
IF-RK3 needs ``cfl() < cfl_limit`` = 0.84 for N = 1024 dealiased)::

    import numpy as np, torch
    from simrl.physics.turbulence import TurbulenceParameters, random_vorticity
    from simrl.physics.turbulence.torch_backend import TorchTurbulenceModel

    params = TurbulenceParameters.paper("fhit", n=1024, dt=5e-5)      # or "beta"
    model = TorchTurbulenceModel(params, device="cuda")               # float64 by default
    omega0 = random_vorticity(model.grid, np.random.default_rng(0), batch_size=1)
    state = model.initial_state(omega0)                               # NumPy in, device state
    for chunk in range(1000):
        status = model.advance(state, 1000)                           # stays on the GPU
        if status[0] != 0:
            raise RuntimeError(f"blow-up at t = {state.time[0]}: reduce dt")
        if chunk % 10 == 0:
            print(state.time[0], model.cfl(state)[0])
    snapshot = model.to_numpy_state(state)                            # a NumPy TurbulenceState

The NumPy diagnostics (:mod:`~simrl.physics.turbulence.diagnostics`) then apply to
``snapshot.omega_hat``. ``dtype=torch.float32`` halves memory and is several times faster on
consumer GPUs (round-off ~1e-7 relative instead of 1e-16); float64 is the reference.
On a CPU prefer the NumPy/Numba :class:`~simrl.physics.turbulence.model.TurbulenceModel`
for single systems (see ``benchmarks/bench_turbulence.py``).

>>> import numpy as np
>>> from simrl.physics.turbulence import TurbulenceParameters, random_vorticity
>>> from simrl.physics.turbulence.torch_backend import TorchTurbulenceModel
>>> model = TorchTurbulenceModel(TurbulenceParameters.paper("beta", n=32, dt=1e-3))
>>> state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0), batch_size=2))
>>> model.advance(state, 10, nu_e=np.full((32, 32), 1e-4))
array([0, 0])
>>> state.omega_hat.device.type, tuple(state.omega_hat.shape), state.steps.tolist()
('cpu', (2, 32, 17), [10, 10])
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch

from simrl.physics.turbulence import STATUS_NONFINITE, STATUS_OK
from simrl.physics.turbulence.grid import SpectralGrid
from simrl.physics.turbulence.model import (
    RK3_IMAGINARY_AXIS_LIMIT,
    TurbulenceState,
    forcing_field,
    linear_operator,
)
from simrl.physics.turbulence.parameters import TurbulenceParameters

_COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


def _finite_rows(x: torch.Tensor) -> torch.Tensor:
    """(B,) bool: is system b of ``x`` (B, ...) finite? One reduction pass instead of isfinite's
    several: a NaN or inf anywhere makes the sum non-finite. The sum of finite entries overflows
    only when they approach 1e308 / x[b].numel(), i.e. a state that is blowing up anyway (the
    NumPy backend would overflow one step later)."""
    return torch.isfinite(torch.view_as_real(x).sum(dim=tuple(range(1, x.ndim + 1))))


@dataclass
class TorchTurbulenceState:
    """The prognostic state of B systems of :class:`TorchTurbulenceModel` (see the module's table).

    ``omega_hat`` (B, N, N//2+1) complex torch tensor on the model's device (zero outside the kept
    modes and at k = 0); ``time`` (B,) float64, ``steps`` (B,) int64 and ``status`` (B,) int64 are
    NumPy arrays, with the meaning of :class:`~simrl.physics.turbulence.model.TurbulenceState`.
    """

    omega_hat: torch.Tensor
    time: np.ndarray
    steps: np.ndarray
    status: np.ndarray

    @property
    def batch_size(self) -> int:
        return int(self.omega_hat.shape[0])

    def copy(self) -> "TorchTurbulenceState":
        return TorchTurbulenceState(self.omega_hat.clone(), self.time.copy(), self.steps.copy(), self.status.copy())


class TorchTurbulenceModel:
    """Advance B forced beta-plane vorticity fields with integrating-factor RK3 on a torch device.

    ``params``: a :class:`~.parameters.TurbulenceParameters` shared by the batch.
    ``device``: any torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a ``torch.device``).
    ``dtype``: ``torch.float64`` (default; complex128 spectra) or ``torch.float32``.
    ``sync_every``: steps between the host's checks whether every system has blown up (results
    never depend on it; default 1 on a CPU, 64 elsewhere, to keep the GPU queue full).

    The methods mirror :class:`~simrl.physics.turbulence.model.TurbulenceModel`:
    :meth:`initial_state`, :meth:`state_from_spectral`, :meth:`advance`, :meth:`tendency`,
    :meth:`vorticity`, :meth:`streamfunction`, :meth:`velocity`, :meth:`cfl`, :attr:`cfl_limit`;
    :meth:`to_numpy_state` / :meth:`from_numpy_state` convert whole states.
    """

    def __init__(
        self,
        params: TurbulenceParameters,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
        sync_every: int | None = None,
    ):
        if not isinstance(params, TurbulenceParameters):
            raise TypeError(f"params must be a TurbulenceParameters, got {type(params).__name__}")
        if dtype not in _COMPLEX:
            raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must be a torch device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}"
            ) from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but torch.cuda.is_available() is False (this torch: {torch.__version__})")
        if sync_every is None:
            sync_every = 1 if self.device.type == "cpu" else 64
        if isinstance(sync_every, bool) or not isinstance(sync_every, Integral) or sync_every < 1:
            raise ValueError(f"sync_every must be None or an integer >= 1, got {sync_every!r}")
        self.params = params
        self.dtype = dtype
        self.cdtype = _COMPLEX[dtype]
        self.sync_every = int(sync_every)
        self.grid = grid = SpectralGrid(params.n, dealias=params.dealias)

        # The same coefficient arrays as the NumPy model (built with NumPy in float64, then moved),
        # each with the kept-mode mask folded in so aliased, Nyquist and k = 0 content never enters.
        kept = grid.mask & (grid.k2 > 0)
        self.kept_np = kept
        full = np.ones(grid.spectral_shape)
        spec = self._to_device_complex
        self.kept = torch.as_tensor(kept, device=self.device)
        self._u_coef = spec(kept * (grid.iky * grid.inv_k2))  # u_hat = -i k_y psi_hat = i k_y w / k^2
        self._v_coef = spec(kept * (-grid.ikx * grid.inv_k2))  # v_hat = i k_x psi_hat
        self._ikx = spec(kept * grid.ikx * full)
        self._iky = spec(kept * grid.iky * full)
        # Real symbols of (d_xx - d_yy) and d_x d_y, already negated as they enter N = F - J + ...:
        # -J_hat = -(k_y^2 - k_x^2) (uv)^ + k_x k_y (v^2 - u^2)^.
        # (stored complex so that each enters through one fused multiply-add, ``addcmul_``).
        self._minus_a = spec(-(kept * (grid.ky**2 - grid.kx**2)) * full)
        self._minus_c = spec(kept * (grid.kx * grid.ky))
        self.forcing = forcing_field(grid, params.k_f, params.amplitude)  # NumPy (N, N), for reference
        self.forcing_hat = spec(kept * grid.to_spectral(self.forcing))
        self._inv_k2 = torch.tensor(grid.inv_k2, dtype=dtype, device=self.device)  # (a copy: grid arrays are read-only)
        self._k2 = torch.as_tensor(np.where(kept, grid.k2, 0.0), dtype=dtype, device=self.device)
        self._linear_np = linear_operator(grid, params)
        self.linear = spec(self._linear_np)
        self._zero_mean = torch.zeros(1, dtype=torch.float64, device=self.device)
        self._workspaces: dict[tuple[int, int], dict[str, torch.Tensor]] = {}

    # -------------------------------------------------------------- conversions
    def _to_device_complex(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.complex128)).to(self.device, self.cdtype)

    def _as_tensor(self, x, dtype: torch.dtype, name: str) -> torch.Tensor:
        """NumPy array / torch tensor / nested sequence -> tensor of ``dtype`` on the device (a copy)."""
        if isinstance(x, torch.Tensor):
            t = x.detach()
        else:
            try:
                t = torch.as_tensor(np.asarray(x))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ValueError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}") from exc
        if t.is_complex() and not dtype.is_complex:
            raise ValueError(f"{name} must be real, got dtype {t.dtype}")
        return t.to(device=self.device, dtype=dtype, copy=True)

    def _hat_tensor(self, x) -> torch.Tensor:
        if isinstance(x, TorchTurbulenceState):
            return x.omega_hat
        if isinstance(x, TurbulenceState):
            x = x.omega_hat
        t = self._as_tensor(x, self.cdtype, "omega_hat")
        if t.shape[-2:] != self.grid.spectral_shape:
            raise ValueError(f"spectral field must end in shape {self.grid.spectral_shape}, got {tuple(t.shape)}")
        return t

    def _irfft2(self, f_hat: torch.Tensor) -> torch.Tensor:
        n = self.grid.n
        return torch.fft.irfft2(f_hat, s=(n, n))

    # -------------------------------------------------------------- states and fields
    def initial_state(self, omega, time: float | np.ndarray = 0.0) -> TorchTurbulenceState:
        """State from physical vorticity ``(N, N)`` or ``(B, N, N)`` (NumPy or torch, any device).

        Projected onto the kept modes (mean, dealiased and Nyquist modes removed), as the NumPy model.
        """
        w = self._as_tensor(omega, self.dtype, "omega")
        if w.ndim == 2:
            w = w[None]
        n = self.grid.n
        if w.ndim != 3 or tuple(w.shape[1:]) != (n, n):
            raise ValueError(f"omega must have shape ({n}, {n}) or (B, {n}, {n}), got {tuple(w.shape)}")
        return self.state_from_spectral(torch.fft.rfft2(w), time)

    def state_from_spectral(self, omega_hat, time: float | np.ndarray = 0.0) -> TorchTurbulenceState:
        """State from ``rfft2`` vorticity ``(N, N//2+1)`` or ``(B, N, N//2+1)`` (NumPy or torch).

        Projected onto the kept modes as in :meth:`initial_state`.
        """
        w = self._as_tensor(omega_hat, self.cdtype, "omega_hat")
        if w.ndim == 2:
            w = w[None]
        if w.ndim != 3 or tuple(w.shape[1:]) != self.grid.spectral_shape:
            raise ValueError(
                f"omega_hat must have shape {self.grid.spectral_shape} or (B, *{self.grid.spectral_shape}), "
                f"got {tuple(w.shape)}"
            )
        b = int(w.shape[0])
        w = torch.where(self.kept, w, torch.zeros((), dtype=w.dtype, device=self.device)).contiguous()
        t = np.broadcast_to(np.asarray(time, dtype=np.float64), (b,)).copy()
        return TorchTurbulenceState(w, t, np.zeros(b, np.int64), np.zeros(b, np.int64))

    def from_numpy_state(self, state: TurbulenceState) -> TorchTurbulenceState:
        """A device copy of a NumPy :class:`~simrl.physics.turbulence.model.TurbulenceState`."""
        if not isinstance(state, TurbulenceState):
            raise TypeError(f"state must be a TurbulenceState, got {type(state).__name__}")
        out = self.state_from_spectral(state.omega_hat, state.time)
        out.steps[:] = state.steps
        out.status[:] = state.status
        return out

    def to_numpy_state(self, state: TorchTurbulenceState) -> TurbulenceState:
        """A host (NumPy, complex128) copy of ``state``, usable with the NumPy model and diagnostics."""
        if not isinstance(state, TorchTurbulenceState):
            raise TypeError(f"state must be a TorchTurbulenceState, got {type(state).__name__}")
        w = state.omega_hat.detach().to("cpu", torch.complex128).numpy().copy()
        return TurbulenceState(w, state.time.copy(), state.steps.copy(), state.status.copy())

    def vorticity(self, state) -> torch.Tensor:
        """Physical vorticity ``omega = lap psi`` (torch, on the device) of a state or ``omega_hat``."""
        return self._irfft2(self._hat_tensor(state))

    def streamfunction(self, state) -> torch.Tensor:
        """Physical streamfunction ``psi`` (zero mean; torch, on the device)."""
        return self._irfft2(-self._hat_tensor(state) * self._inv_k2)

    def velocity(self, state) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical velocity ``(u, v) = (-psi_y, psi_x)`` (torch, on the device)."""
        w = self._hat_tensor(state)
        uv = self._irfft2(torch.stack([self._u_coef * w, self._v_coef * w]))
        return uv[0], uv[1]

    # -------------------------------------------------------------- right-hand side
    def _workspace(self, batch: int, ncomp: int) -> dict[str, torch.Tensor]:
        """Preallocated buffers of one evaluation of ``N`` and of the RK stages (cached per shape)."""
        key = (batch, ncomp)
        ws = self._workspaces.get(key)
        if ws is None:
            n, shape = self.grid.n, self.grid.spectral_shape
            c = dict(dtype=self.cdtype, device=self.device)
            r = dict(dtype=self.dtype, device=self.device)
            ws = {
                "spec_in": torch.empty((batch, ncomp, *shape), **c),
                "prods": torch.empty((batch, ncomp, n, n), **r),
                "nl": torch.empty((batch, *shape), **c),
                "stage": torch.empty((batch, *shape), **c),
                "acc": torch.empty((batch, *shape), **c),
                "tmp": torch.empty((batch, *shape), **c),
            }
            self._workspaces = {key: ws}  # keep only the latest shape (a GPU DNS needs its memory)
        return ws

    def _nonlinear(self, w: torch.Tensor, nu_prime: torch.Tensor | None, ws: dict | None = None) -> torch.Tensor:
        """``N(w) = F - J(psi, w) + div(nu' grad w)`` (spectral, kept modes) for a batch (B, N, M).

        Writes into ``ws["nl"]`` and returns it (a fresh workspace when ``ws`` is None). Every
        step is an out-of-place or in-place op on preallocated buffers (on a CPU the step is
        dominated by per-op overhead at small N and by memory passes at large N).
        """
        closure = nu_prime is not None
        if ws is None:
            ws = self._workspace(int(w.shape[0]), 4 if closure else 2)
            self._workspaces = {}  # do not keep a one-off workspace
        spec_in, prods, out = ws["spec_in"], ws["prods"], ws["nl"]
        torch.mul(w, self._u_coef, out=spec_in[:, 0])
        torch.mul(w, self._v_coef, out=spec_in[:, 1])
        if closure:
            torch.mul(w, self._ikx, out=spec_in[:, 2])
            torch.mul(w, self._iky, out=spec_in[:, 3])
        # One batched transform each way for all components and systems. Allocating calls: with
        # ``out=`` (or as two 1-D passes) torch 2.13 on the CPU added copies and was slower at N = 256.
        phys = torch.fft.irfft2(spec_in, s=(self.grid.n, self.grid.n))
        u, v = phys[:, 0], phys[:, 1]
        torch.mul(u, v, out=prods[:, 0])
        p1 = prods[:, 1]
        torch.sub(v, u, out=p1)
        v.add_(u)
        p1.mul_(v)  # v^2 - u^2 = (v - u)(v + u), as the NumPy kernel
        if closure:
            torch.mul(phys[:, 2:], nu_prime[:, None], out=prods[:, 2:])
        f = torch.fft.rfft2(prods)
        torch.mul(f[:, 0], self._minus_a, out=out)
        out.addcmul_(f[:, 1], self._minus_c).add_(self.forcing_hat)
        if closure:
            out.addcmul_(f[:, 2], self._ikx).addcmul_(f[:, 3], self._iky)
        return out

    def tendency(self, state, nu_e=None) -> torch.Tensor:
        """``d(omega_hat)/dt`` of the full equation for a state or ``omega_hat`` (B, N, N//2+1); torch, on the device.

        The continuous right-hand side the stepper integrates: ``L w + N(w)`` with the closure
        split ``div(nu_e grad w) = mean(nu_e) lap w + div((nu_e - mean) grad w)`` (exact).
        """
        w = self._hat_tensor(state)
        squeeze = w.ndim == 2
        if squeeze:
            w = w[None]
        if nu_e is None:
            rhs = self.linear * w + self._nonlinear(w, None)
        else:
            nu = self._check_nu_e(nu_e, int(w.shape[0]))
            mean = nu.mean(dim=(-2, -1))
            rhs = (self.linear - (mean[:, None, None] * self._k2)) * w + self._nonlinear(w, nu - mean[:, None, None])
        rhs = torch.where(self.kept, rhs, torch.zeros((), dtype=rhs.dtype, device=self.device))
        return rhs[0] if squeeze else rhs

    def cfl(self, state) -> np.ndarray:
        """Grid CFL number ``dt max(|u| + |v|) / dx`` of each system, NumPy (B,) (see the NumPy model)."""
        u, v = self.velocity(state)
        speed = torch.amax(u.abs() + v.abs(), dim=(-2, -1))
        return (self.params.dt * speed / self.grid.dx).to("cpu", torch.float64).numpy()

    @property
    def cfl_limit(self) -> float:
        """Largest stable :meth:`cfl` (the NumPy model's bound ``sqrt(3) N / (2 pi k_cut)``)."""
        return RK3_IMAGINARY_AXIS_LIMIT / (self.grid.k_cut * self.grid.dx)

    # -------------------------------------------------------------- time stepping
    def _check_nu_e(self, nu_e, batch: int) -> torch.Tensor:
        t = self._as_tensor(nu_e, self.dtype, "nu_e")
        n = self.grid.n
        if tuple(t.shape) == (n, n):
            t = t.expand(batch, n, n)
        if tuple(t.shape) != (batch, n, n):
            raise ValueError(
                f"nu_e must be None or have shape ({n}, {n}) or (B={batch}, {n}, {n}), got {tuple(t.shape)}"
            )
        return t

    def _factors(self, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``E(h/3), E(2h/3), E(h)`` for per-system mean eddy viscosities ``mean`` (B,) or (1,).

        Built in float64/complex128 from the NumPy operator (as the NumPy model does), then cast,
        so float32 runs get correctly rounded factors.
        """
        dt = self.params.dt
        lin = torch.as_tensor(self._linear_np, device=self.device)  # complex128
        k2 = torch.as_tensor(np.where(self.kept_np, self.grid.k2, 0.0), device=self.device)
        lin = lin[None] - mean.to(torch.float64)[:, None, None] * k2
        return tuple(torch.exp(lin * (dt * c)).to(self.cdtype).contiguous() for c in (1.0 / 3.0, 2.0 / 3.0, 1.0))

    def advance(self, state: TorchTurbulenceState, n_steps: int, nu_e=None) -> np.ndarray:
        """Advance every system of ``state`` in place by ``n_steps`` steps; return ``state.status`` (NumPy (B,)).

        ``nu_e``: eddy viscosity ``(B, N, N)`` or ``(N, N)`` (NumPy or torch), held fixed during the
        call; None for no closure; negative values (backscatter) allowed. A system that is
        non-finite at the start (state, ``nu_e`` or its integrating factors) or after a step gets
        ``STATUS_NONFINITE`` and stays at its last finite state (time and steps included);
        nothing is raised.
        """
        if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 0:
            raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
        if not isinstance(state, TorchTurbulenceState):
            raise TypeError(f"state must be a TorchTurbulenceState (from this model's initial_state), got {type(state).__name__}")
        w = state.omega_hat
        if not isinstance(w, torch.Tensor) or w.ndim != 3 or tuple(w.shape[1:]) != self.grid.spectral_shape:
            raise ValueError(f"state.omega_hat must be a tensor of shape (B, *{self.grid.spectral_shape})")
        if w.dtype != self.cdtype or w.device != self.device:
            raise ValueError(
                f"state.omega_hat must be {self.cdtype} on {self.device}, got {w.dtype} on {w.device}"
            )
        batch = state.batch_size
        n_steps = int(n_steps)

        # ----- per-system set-up: closure split, integrating factors, start-of-call finiteness
        alive = torch.isfinite(torch.view_as_real(w)).flatten(1).all(dim=1)
        nu_prime = None
        if nu_e is None:
            e1, e2, e3 = self._factors(self._zero_mean)
        else:
            nu = self._check_nu_e(nu_e, batch)
            flat = nu.flatten(1)
            alive &= torch.isfinite(flat).all(dim=1)
            nu = torch.where(alive[:, None, None], nu, torch.zeros((), dtype=nu.dtype, device=self.device))
            lo, hi = flat.amin(dim=1), flat.amax(dim=1)
            # Uniform systems put all of nu_e into L (exactly nu -> nu + nu_e, as the NumPy model);
            # the others the domain mean (computed in float64, as NumPy's).
            mean = torch.where(lo == hi, lo.to(torch.float64), nu.to(torch.float64).mean(dim=(-2, -1)))
            mean = torch.where(alive, mean, torch.zeros((), dtype=torch.float64, device=self.device))
            if bool((lo != hi).any()):
                nu_prime = (nu.to(torch.float64) - mean[:, None, None]).to(self.dtype)
                nu_prime = torch.where((lo == hi)[:, None, None], torch.zeros((), dtype=self.dtype, device=self.device), nu_prime)
            e1, e2, e3 = self._factors(mean)
        for e in (e1, e2, e3):
            alive &= torch.isfinite(torch.view_as_real(e)).flatten(1).all(dim=1)

        done = torch.zeros(batch, dtype=torch.int64, device=self.device)
        if n_steps > 0 and bool(alive.any()):
            ws = self._workspace(batch, 4 if nu_prime is not None else 2)
            w = w.clone()
            stage, acc, tmp = ws["stage"], ws["acc"], ws["tmp"]
            dt = self.params.dt
            host_checks = self.sync_every == 1
            for step in range(n_steps):
                # stage 1: stage = E(h/3)(w + h/3 N1),  acc = E(h)(w + h/4 N1)
                n1 = self._nonlinear(w, nu_prime, ws)
                torch.add(w, n1, alpha=dt / 3.0, out=stage).mul_(e1)
                torch.add(w, n1, alpha=dt / 4.0, out=acc).mul_(e3)
                # stage 2: stage = E(2h/3) w + 2h/3 E(h/3) N2
                n2 = self._nonlinear(stage, nu_prime, ws)
                torch.mul(e1, n2, out=tmp)
                torch.mul(e2, w, out=stage).add_(tmp, alpha=2.0 * dt / 3.0)
                # stage 3: new = acc + 3h/4 E(h/3) N3
                n3 = self._nonlinear(stage, nu_prime, ws)
                acc.addcmul_(e1, n3, value=0.75 * dt)
                ok = alive & _finite_rows(acc)
                if host_checks and bool(ok.all()):
                    w, ws["acc"] = acc, w  # every system finite: swap buffers, no masked copy
                    acc = ws["acc"]
                else:
                    w.copy_(torch.where(ok[:, None, None], acc, w))
                done += ok
                alive = ok
                if (step + 1) % self.sync_every == 0 and step + 1 < n_steps and not bool(alive.any()):
                    break
            state.omega_hat.copy_(w)

        done_np = done.cpu().numpy()
        alive_np = alive.cpu().numpy()
        state.time += done_np * self.params.dt
        state.steps += done_np
        state.status[:] = np.where(alive_np, STATUS_OK, STATUS_NONFINITE)
        return state.status


__all__ = ["TorchTurbulenceModel", "TorchTurbulenceState"]
