#!/usr/bin/env python
"""Benchmarks of the 2-D turbulence solver (simrl.physics.turbulence) against pyqg and its FFT floor.

How to run::

    . .venv/bin/activate
    bash benchmarks/setup_pyqg.sh                # once, optional: builds pyqg 0.7.2 (+ pyfftw) into the venv
    nice -n 10 python benchmarks/bench_turbulence.py            # full run, ~1-2 min on 2 idle cores
    nice -n 10 python benchmarks/bench_turbulence.py --quick    # ~30 s: fewer repeats and steps

Options: ``--quick``; ``--repeats K`` (timed repeats per row, default 7, quick 3);
``--sizes 64,256`` (grids of tables 1 and 2); ``--no-pyqg``. Progress goes to stderr, the tables
(markdown) to stdout. Without pyqg (``setup_pyqg.sh`` not run) its rows say so and the rest runs.
Without pyfftw the FFTW rows are skipped.

One run prints three tables, ratios first (absolute times are for orientation only):

1. **LES step vs pyqg.** Time per step of one 64^2 / 256^2 system (paper parameters of the
   beta case: nu = 5e-5, alpha = 0.1, beta = 20, k_f = 4, dt = 5e-4) for our NumPy/Numba solver
   (``TurbulenceModel``) without closure and with a Smagorinsky-like non-uniform ``nu_e``
   (``(0.17 dx)^2 |S|`` from the strain of the field, computed once with NumPy), with each of its
   stepper FFT libraries (``fft="fftw"``: the default when pyfftw imports, FFTW_ESTIMATE plans;
   ``fft="numpy"``: the fallback; checked to agree to round-off), for the torch
   backend on the CPU (float64, 1 thread), and for pyqg's ``BTModel`` on the same grid. Ratios
   ``us / pyqg`` per step, per right-hand-side evaluation (ours: 3 per step, IF-RK3; pyqg: 1,
   AB3) and per unit of simulated time at equal accuracy (see below); goal: <= 1.
2. **Step vs FFT floor.** The same steps against the time of exactly the FFTs the scheme must
   do per step, timed alone on preallocated arrays with the same library and call pattern:
   per step 3 evaluations x (inverse on ``(ncomp, N, N//2+1)`` + forward on ``(ncomp, N, N)``),
   ``ncomp`` = 2 without closure (12 real 2-D FFTs per step) and 4 with a non-uniform ``nu_e``
   (24), with the solver's own plans (FFTW: FFTW_ESTIMATE). Goal: step / floor <= 2. The same
   transforms with FFTW_MEASURE plans (as pyqg plans) show what measured planning would gain (the
   solver does not use it: measured plans may differ between processes and change the last bits of
   the results). pyqg's own step against its 5 FFTW transforms is shown too.
3. **Batched throughput** at 64^2 (no closure): fields x steps per second for B = 1, 8, 64 with
   the NumPy solver (``threads`` = 1 and 2) and the torch backend (1 and 2 torch threads).

Method: every timing is the median of ``--repeats`` repeats, each advancing a fixed number of
steps (our solvers in calls of 10 steps, one call per action as in the environments), after a
warm-up call (Numba compilation or cache loading, FFT planning and torch's first calls
excluded); the garbage collector is paused while a repeat runs. All subjects of a table are
timed round-robin (repeat r times each of them once), so a drift of the machine's load hits
every row alike and the ratios stay meaningful on a shared machine. The load average is
printed at the start and the end: on a shared machine other processes inflate every time and add
noise to the ratios (two timings made seconds apart in one process).

pyqg settings (0.7.2, the sdist built by ``setup_pyqg.sh``): ``BTModel(nx=N, L=2 pi, beta=20,
rek=0.1, rd=0, dt=5e-4, ntd=1, log_level=0, twrite=1e9, taveint=1e9, tmax=1e9)`` -- the
barotropic model with linear drag ``rek`` (its one layer is the bottom layer) and no
deformation radius, i.e. the same equation without forcing and with pyqg's exponential
spectral filter (``filterfac = 23.6``, applied every step) in place of viscosity and dealiasing.
Diagnostics cannot be switched off by ``diagnostics_list`` in 0.7.2 (the 'none' path calls a
missing method), so ``taveint`` = 1e9 keeps them from ever being accumulated, and
``log_level=0`` skips the CFL/energy print-out. The timed call is ``model._step_forward()``,
the body of ``model.run()``'s loop (invert, advect, friction, filter, AB3 update, 3 inverse and
2 forward real 2-D FFTs, FFTW ``FFTW_MEASURE`` plans when built with pyfftw). The initial PV is
the same random vorticity field as ours. ``OMP_WAIT_POLICY=PASSIVE`` is set (unless set already)
before anything loads OpenMP: pyqg, pyfftw and torch each bring an OpenMP runtime, and spinning
idle threads made runs 5-400x slower on 2 cores (reference ``turbulence.md`` sect. 6).

Equal accuracy. Both schemes are third order. On the linear test equation y' = lambda y the
local error of IF-RK3 (any 3-stage, 3rd-order RK: stability polynomial 1 + z + z^2/2 + z^3/6) is
z^4/24 y and that of AB3 is (3/8) z^4 y, so for the same error RK3 can take
9^(1/3) = 2.08x larger steps. The script measures the factor on our own equations instead
(:func:`accuracy_factor`: IF-RK3 and AB3 on the same 64^2 right-hand side from the same field,
errors against a 16x finer run, ``err = C dt^3`` fitted; ~2.3) and divides our time per unit
of simulated time by it. It does not run pyqg at other steps: pyqg applies its filter once per
step, so its error against a small-step run would mix filtering with time-stepping error.
At the stability limit the factor would be larger still: RK3 is stable on the imaginary axis
up to |lambda dt| = sqrt(3) = 1.73, AB3 only up to 0.72 (2.39x).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before numpy/torch/pyqg load an OpenMP runtime

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

from simrl.physics.turbulence import (  # noqa: E402
    SpectralGrid,
    TurbulenceModel,
    TurbulenceParameters,
    random_vorticity,
)

EQUAL_ACCURACY_DT_FACTOR = 9.0 ** (1.0 / 3.0)  # (3/8) / (1/24) = 9: AB3's vs RK3's error constant
EQUAL_STABILITY_DT_FACTOR = math.sqrt(3.0) / 0.7236  # imaginary-axis stability limits RK3 / AB3
RHS_PER_STEP = 3  # IF-RK3 stages (pyqg's AB3: 1)
FFTS_PER_STEP = {False: 12, True: 24}  # real 2-D FFTs per step of model.py, without / with closure
PYQG_FFTS_PER_STEP = 5  # BTModel: ifft q, u, v + fft uq, vq
SMAGORINSKY_CS = 0.17
CASE = "beta"  # paper case: nu = 5e-5, alpha = 0.1, beta = 20, k_f = 4, dt = 5e-4
FIELD_RMS = 10.3789  # the beta case's DNS sigma_omega: a field of realistic amplitude


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Config:
    quick: bool
    repeats: int
    sizes: tuple[int, ...]
    target_s: float  # wall time aimed at per timed repeat
    pyqg: bool


@dataclass
class Runner:
    """``advance(k)`` advances one benchmark subject by k steps; ``k`` is calibrated to ~target_s."""

    advance: Callable[[int], None]
    k: int
    times: list[float] = field(default_factory=list)


CHUNK = 10  # steps per solver call in our rows: one call per action, as the environments do


def calibrate_steps(one_step_s: float, target_s: float, lo: int = 2, hi: int = 5000) -> int:
    return int(min(hi, max(lo, round(target_s / max(one_step_s, 1e-7)))))


def in_chunks(advance: Callable[[int], None]) -> Callable[[int], None]:
    """``advance`` called in chunks of ``CHUNK`` steps (the per-call set-up, e.g. the integrating
    factors of a new ``nu_e``, is then paid once per 10 steps, as in an environment)."""

    def run(k: int) -> None:
        while k > 0:
            advance(min(k, CHUNK))
            k -= CHUNK

    return run


def runner(advance: Callable[[int], None], cfg: Config) -> Runner:
    """Warm ``advance`` up (compile / load caches / plan) and calibrate its steps per repeat
    (a multiple of ``CHUNK``, at least one chunk)."""
    advance(2)
    t0 = time.perf_counter()
    advance(CHUNK)
    k = calibrate_steps((time.perf_counter() - t0) / CHUNK, cfg.target_s, lo=CHUNK)
    return Runner(advance, CHUNK * max(1, round(k / CHUNK)))


def measure(runners: dict[str, Runner], cfg: Config) -> dict[str, float]:
    """Median seconds per step of every runner, timed round-robin: repeat r runs each runner once
    (GC paused), so a drift of the machine's load hits all rows of a table alike."""
    for r in runners.values():
        r.advance(r.k)  # warm-up at the timed size
    for _ in range(cfg.repeats):
        for r in runners.values():
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                r.advance(r.k)
                r.times.append(time.perf_counter() - t0)
            finally:
                gc.enable()
    return {name: statistics.median(r.times) / r.k for name, r in runners.items()}


# --------------------------------------------------------------------------- set-up helpers
def make_params(n: int) -> TurbulenceParameters:
    return TurbulenceParameters.paper(CASE, n=n)


def initial_field(model_grid, seed: int = 0, batch_size: int = 1) -> np.ndarray:
    return random_vorticity(model_grid, np.random.default_rng(seed), batch_size=batch_size, rms=FIELD_RMS)


def smagorinsky_nu_e(model: TurbulenceModel, state) -> np.ndarray:
    """``nu_e = (Cs dx)^2 |S|``, ``|S| = 2 sqrt(S11^2 + S12^2)`` (2-D, S22 = -S11), (B, N, N), NumPy."""
    g = model.grid
    u, v = model.velocity(state)
    u_hat, v_hat = g.to_spectral(u), g.to_spectral(v)
    s11 = g.to_physical(g.ikx * u_hat)
    s12 = 0.5 * g.to_physical(g.iky * u_hat + g.ikx * v_hat)
    return (SMAGORINSKY_CS * g.dx) ** 2 * 2.0 * np.sqrt(s11**2 + s12**2)


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def import_pyfftw():
    try:
        import pyfftw
    except ImportError:
        return None
    return pyfftw


def import_pyqg():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pyqg
            import pyqg.kernel
    except ImportError as exc:
        return None, f"pyqg not importable ({exc}); run benchmarks/setup_pyqg.sh"
    fft = "pyfftw" if hasattr(pyqg.kernel, "pyfftw") else "numpy.fft"
    return pyqg, f"pyqg {pyqg.__version__} ({fft})"


# --------------------------------------------------------------------------- our solvers
def numpy_step(n: int, closure: bool, cfg: Config, fft: str) -> Runner:
    """TurbulenceModel with stepper FFT library ``fft``, one system."""
    model = TurbulenceModel(make_params(n), fft=fft)
    state = model.initial_state(initial_field(model.grid))
    nu_e = smagorinsky_nu_e(model, state) if closure else None

    def advance(k: int) -> None:
        status = model.advance(state, k, nu_e=nu_e)
        assert status[0] == 0, "benchmark run blew up"

    return runner(in_chunks(advance), cfg)


def check_fft_paths() -> float:
    """Max relative difference after 20 forced, closure steps at 64^2: fft="fftw" vs fft="numpy"."""
    results = []
    for fft in ("numpy", "fftw"):
        model = TurbulenceModel(make_params(64), fft=fft)
        state = model.initial_state(initial_field(model.grid))
        model.advance(state, 20, nu_e=smagorinsky_nu_e(model, state))
        results.append(state.omega_hat)
    a, b = results
    return float(np.abs(a - b).max() / np.abs(a).max())


def torch_step(torch, n: int, closure: bool, cfg: Config, batch: int = 1) -> Runner:
    from simrl.physics.turbulence.torch_backend import TorchTurbulenceModel

    ref = TurbulenceModel(make_params(n))
    model = TorchTurbulenceModel(make_params(n), device="cpu", dtype=torch.float64)
    omega = initial_field(ref.grid, batch_size=batch)
    nu_e = smagorinsky_nu_e(ref, ref.initial_state(omega)) if closure else None
    state = model.initial_state(omega)

    def advance(k: int) -> None:
        status = model.advance(state, k, nu_e=nu_e)
        assert (status == 0).all(), "benchmark run blew up"

    return runner(in_chunks(advance), cfg)


def pyqg_step(pyqg, n: int, cfg: Config) -> Runner:
    p = make_params(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyqg's deprecation and "no pyfftw" warnings
        m = pyqg.BTModel(
            nx=n, L=2.0 * np.pi, beta=p.beta, rek=p.alpha, rd=0.0, dt=p.dt, ntd=1,
            tmax=1e9, twrite=10**9, taveint=1e9, log_level=0,
        )
        m.q = initial_field(SpectralGrid(n))  # (1, N, N): same vorticity as ours (BTModel: q = zeta for rd = 0)

    def advance(k: int) -> None:
        for _ in range(k):
            m._step_forward()
        if not np.isfinite(m.q).all():
            raise RuntimeError("pyqg benchmark run blew up")

    return runner(advance, cfg)


# --------------------------------------------------------------------------- FFT floors
def numpy_floor(n: int, ncomp: int, cfg: Config) -> Runner:
    """Seconds per step of exactly the stepper's NumPy transforms (model.py ``_inverse_fft`` and
    ``_forward_fft``: c2c ifft along x in place + c2r along y into ``phys``; r2c along y into
    ``spec`` + c2c fft along x in place), 3 evaluations per step, on preallocated buffers.
    The cycle inverse -> forward maps ``buf`` back onto itself (no drift into denormals)."""
    rng = np.random.default_rng(1)
    m = n // 2 + 1
    buf = np.fft.rfft2(rng.standard_normal((ncomp, n, n)))
    phys = np.empty((ncomp, n, n))

    def evaluation(k: int) -> None:
        for _ in range(3 * k):
            np.fft.ifft(buf, axis=-2, out=buf)
            np.fft.irfft(buf, n=n, axis=-1, out=phys)
            np.fft.rfft(phys, axis=-1, out=buf)
            np.fft.fft(buf, axis=-2, out=buf)

    assert buf.shape == (ncomp, n, m)
    return runner(evaluation, cfg)


def torch_floor(torch, n: int, ncomp: int, cfg: Config) -> Runner:
    """The torch backend's transforms per step: 3 x (one batched irfft2 of (1, ncomp, N, N//2+1),
    one rfft2 of (1, ncomp, N, N)), allocating, as ``TorchTurbulenceModel`` calls them."""
    spec = torch.fft.rfft2(torch.randn(1, ncomp, n, n, dtype=torch.float64))

    def evaluation(k: int) -> None:
        nonlocal spec
        for _ in range(3 * k):
            spec = torch.fft.rfft2(torch.fft.irfft2(spec, s=(n, n)))

    return runner(evaluation, cfg)


def fftw_pair(pyfftw, shape_real: tuple[int, ...], threads: int = 1, flags: tuple[str, ...] = ("FFTW_MEASURE",)):
    """FFTW r2c / c2r plans over the last two axes on aligned arrays (default FFTW_MEASURE, as pyqg)."""
    n = shape_real[-1]
    real = pyfftw.empty_aligned(shape_real, "float64")
    comp = pyfftw.empty_aligned(shape_real[:-1] + (n // 2 + 1,), "complex128")
    fwd = pyfftw.FFTW(real, comp, axes=(-2, -1), direction="FFTW_FORWARD", flags=flags, threads=threads)
    inv = pyfftw.FFTW(comp, real, axes=(-2, -1), direction="FFTW_BACKWARD", flags=flags, threads=threads)
    real[:] = np.random.default_rng(2).standard_normal(shape_real)
    return real, comp, fwd, inv


def pyfftw_floor(pyfftw, n: int, ncomp: int, cfg: Config, measure: bool = False) -> Runner:
    """The same 12 / 24 transforms per step with FFTW plans: model.py's own (FFTW_ESTIMATE +
    FFTW_DESTROY_INPUT, wisdom forgotten first, ``execute()``; its 1/N^2 is folded into the
    coefficients) or, with ``measure``, FFTW_MEASURE plans (what measured planning would give)."""
    from simrl.physics.turbulence.model import _FFTW_FLAGS

    if measure:
        real, comp, fwd, inv = fftw_pair(pyfftw, (ncomp, n, n), flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"))
    else:
        pyfftw.forget_wisdom()
        real, comp, fwd, inv = fftw_pair(pyfftw, (ncomp, n, n), flags=_FFTW_FLAGS)
    fwd.execute()  # comp = rfft2 of random data
    renorm = (1.0 / (n * n)) ** 16  # each unnormalised inverse -> forward cycle multiplies by N^2
    count = 0

    def evaluation(k: int) -> None:
        nonlocal count
        for _ in range(3 * k):
            inv.execute()  # (c2r destroys comp; the r2c below refills it)
            fwd.execute()
            count += 1
            if count % 16 == 0:  # keep the values bounded; amortised, this pass costs ~1/32 of a transform
                np.multiply(comp, renorm, out=comp)

    return runner(evaluation, cfg)


def pyqg_floor(pyfftw, n: int, cfg: Config) -> Runner:
    """pyqg BTModel's 5 FFTW transforms per step (3 c2r of (1, N, N//2+1), 2 r2c of (1, N, N))."""
    real, comp, fwd, inv = fftw_pair(pyfftw, (1, n, n))
    save = comp.copy()

    def steps(k: int) -> None:
        for _ in range(k):
            for _ in range(3):
                comp[:] = save  # c2r destroys its input (as in pyqg, which re-assigns qh)
                inv()
            fwd()
            fwd()

    return runner(steps, cfg)


# --------------------------------------------------------------------------- equal accuracy
def accuracy_factor(cfg: Config) -> tuple[float, str]:
    """Measured dt ratio IF-RK3 / AB3 at equal error on our own 64^2 semi-discrete equations.

    Both schemes integrate the same right-hand side (``TurbulenceModel.tendency``: advection,
    viscosity, drag, beta and forcing of the paper's beta case) from the same field over the same
    time T; AB3 (pyqg's scheme, all terms explicit) is started from the reference trajectory, so
    only its own error is measured. Error = relative L2 distance of ``omega_hat`` at T to an
    IF-RK3 run with a 16x smaller step; for each scheme ``err = C dt^3`` is fitted on the two
    smallest steps; at equal error the step ratio is ``(C_AB3 / C_RK3)^(1/3)``.
    """
    t_end = 0.5
    counts = (64, 128, 256)
    base = make_params(64)

    def model_with(dt: float) -> TurbulenceModel:
        return TurbulenceModel(
            TurbulenceParameters(n=64, nu=base.nu, alpha=base.alpha, beta=base.beta, k_f=base.k_f, dt=dt)
        )

    omega0 = initial_field(SpectralGrid(64))
    ref_model = model_with(t_end / (16 * counts[-1]))
    ref = ref_model.initial_state(omega0)
    ref_model.advance(ref, 16 * counts[-1])
    norm = np.linalg.norm(ref.omega_hat)
    errors: dict[str, list[float]] = {"IF-RK3": [], "AB3": []}
    dts = [t_end / c for c in counts]
    for count, dt in zip(counts, dts):
        m = model_with(dt)
        state = m.initial_state(omega0)
        m.advance(state, count)
        errors["IF-RK3"].append(float(np.linalg.norm(state.omega_hat - ref.omega_hat) / norm))
        # AB3 on the same right-hand side; w_1, w_2 from a 16x finer IF-RK3 run (exact start-up).
        fine = model_with(dt / 16)
        s = fine.initial_state(omega0)
        history = [s.omega_hat[0].copy()]
        for _ in range(2):
            fine.advance(s, 16)
            history.append(s.omega_hat[0].copy())
        f = [m.tendency(w[None])[0] for w in history]
        w = history[-1]
        for _ in range(count - 2):
            w = w + dt * (23.0 * f[-1] - 16.0 * f[-2] + 5.0 * f[-3]) / 12.0
            f = [f[-2], f[-1], m.tendency(w[None])[0]]
        errors["AB3"].append(float(np.linalg.norm(w - ref.omega_hat[0]) / norm))
    consts = {}
    orders = {}
    for name, err in errors.items():
        orders[name] = math.log2(err[-2] / err[-1])
        consts[name] = err[-1] / dts[-1] ** 3
    factor = (consts["AB3"] / consts["IF-RK3"]) ** (1.0 / 3.0)
    lines = ["| dt | " + " | ".join(f"{dt:.2e}" for dt in dts) + " | observed order |", "|---|---|---|---|---|"]
    for name, err in errors.items():
        lines.append(f"| {name} rel. error | " + " | ".join(f"{e:.2e}" for e in err) + f" | {orders[name]:.2f} |")
    detail = (
        f"#### Time-step accuracy on our 64^2 equations (paper '{CASE}' case, T = {t_end}, same RHS and start)\n\n"
        + "\n".join(lines)
        + f"\n\nequal-accuracy step ratio IF-RK3 / AB3 = (C_AB3 / C_RK3)^(1/3) = {factor:.2f} "
        f"(linear test equation: {EQUAL_ACCURACY_DT_FACTOR:.2f}); used in table 1."
    )
    return factor, detail


# --------------------------------------------------------------------------- tables
def fmt_ms(sec: float | None) -> str:
    return "n/a" if sec is None or not np.isfinite(sec) else f"{sec * 1e3:.3f}"


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


def verdict(x: float | None, goal: float) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return "MET" if x <= goal else "NOT MET"


def measure_size(n: int, cfg: Config, torch, pyfftw, pyqg) -> dict[str, float]:
    """Seconds per step of every step and floor subject at grid size n, timed round-robin together."""
    log(f"tables 1-2: N = {n}: set-up and warm-up")
    runners: dict[str, Runner] = {}
    for closure, label in ((False, "no closure"), (True, "Smagorinsky nu_e")):
        ncomp = 4 if closure else 2
        runners[f"NumPy/Numba (numpy.fft), {label}"] = numpy_step(n, closure, cfg, "numpy")
        runners[f"floor numpy {ncomp}"] = numpy_floor(n, ncomp, cfg)
        if pyfftw is not None:
            runners[f"NumPy/Numba (FFTW), {label}"] = numpy_step(n, closure, cfg, "fftw")
            runners[f"floor fftw {ncomp}"] = pyfftw_floor(pyfftw, n, ncomp, cfg)
            runners[f"floor fftw-measure {ncomp}"] = pyfftw_floor(pyfftw, n, ncomp, cfg, measure=True)
        if torch is not None:
            runners[f"torch CPU f64, {label}"] = torch_step(torch, n, closure, cfg)
            runners[f"floor torch {ncomp}"] = torch_floor(torch, n, ncomp, cfg)
    if pyqg is not None:
        runners["pyqg"] = pyqg_step(pyqg, n, cfg)
        if pyfftw is not None:
            runners["floor pyqg"] = pyqg_floor(pyfftw, n, cfg)
    log(f"tables 1-2: N = {n}: timing {len(runners)} subjects x {cfg.repeats} repeats")
    return measure(runners, cfg)


def solver_rows(torch, pyfftw) -> list[tuple[str, bool, str]]:
    """(row name, closure, floor family) of our solvers in table order."""
    rows = []
    for closure, label in ((False, "no closure"), (True, "Smagorinsky nu_e")):
        if pyfftw is not None:
            rows.append((f"NumPy/Numba (FFTW), {label}", closure, "fftw"))
        rows.append((f"NumPy/Numba (numpy.fft), {label}", closure, "numpy"))
        if torch is not None:
            rows.append((f"torch CPU f64, {label}", closure, "torch"))
    return rows


def table_pyqg(cfg: Config, torch, pyfftw, pyqg_label: str, dt_factor: float, fftw_check: float | None,
               sec: dict[int, dict[str, float]]) -> str:
    rows = []
    for n in cfg.sizes:
        ref = sec[n].get("pyqg")
        for name, _, _ in solver_rows(torch, pyfftw):
            t = sec[n][name]
            ratio = t / ref if ref else None
            per_rhs = ratio / RHS_PER_STEP if ratio else None
            per_time = ratio / dt_factor if ratio else None
            rows.append(
                f"| {n}^2 | {name} | {fmt_ms(t)} | {fmt_ms(ref)} | {fmt_ratio(ratio)} | {fmt_ratio(per_rhs)} "
                f"| {fmt_ratio(per_time)} | {verdict(ratio, 1.0)} / {verdict(per_time, 1.0)} |"
            )
    head = (
        f"### 1. LES step vs {pyqg_label} BTModel (1 system, 1 thread, paper '{CASE}' case, dt = 5e-4)\n\n"
        "| N | ours | ours ms/step | pyqg ms/step | us/pyqg per step | per RHS evaluation "
        "| per unit time, equal accuracy | goal <= 1 (step / time) |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    notes = (
        f"\nper RHS evaluation = per step / {RHS_PER_STEP} (IF-RK3 stages; AB3: 1). equal accuracy: our dt "
        f"{dt_factor:.2f}x AB3's for the same error (measured below; linear test equation: "
        f"{EQUAL_ACCURACY_DT_FACTOR:.2f}), so per unit time = per step / {dt_factor:.2f} (at the stability limits "
        f"it would be / {EQUAL_STABILITY_DT_FACTOR:.2f}). "
        "pyqg does no forcing and no closure; its filter replaces viscosity. "
        "(FFTW): TurbulenceModel(fft='fftw'), the default when pyfftw imports (FFTW_ESTIMATE plans on aligned "
        "per-thread buffers); (numpy.fft): fft='numpy', the fallback"
        + (f"; the two agree to {fftw_check:.1e} (max rel. difference, 20 forced closure steps at 64^2)."
           if fftw_check is not None else ".")
    )
    return "\n".join([head, *rows]) + "\n" + notes


def table_floor(cfg: Config, torch, pyfftw, sec: dict[int, dict[str, float]]) -> str:
    rows = []
    libs = {"numpy": "numpy.fft", "fftw": "FFTW", "torch": "torch.fft"}
    for n in cfg.sizes:
        for name, closure, family in solver_rows(torch, pyfftw):
            ncomp = 4 if closure else 2
            step, floor = sec[n][name], sec[n][f"floor {family} {ncomp}"]
            fftw = sec[n].get(f"floor fftw-measure {ncomp}") if family in ("numpy", "fftw") else None
            rows.append(
                f"| {n}^2 | {name} | {FFTS_PER_STEP[closure]} {libs[family]} | {fmt_ms(step)} | {fmt_ms(floor)} "
                f"| {fmt_ratio(step / floor)} | {verdict(step / floor, 2.0)} "
                f"| {fmt_ms(fftw) if fftw else ''} | {fmt_ratio(step / fftw) if fftw else ''} |"
            )
        if "pyqg" in sec[n] and "floor pyqg" in sec[n]:
            q, qf = sec[n]["pyqg"], sec[n]["floor pyqg"]
            rows.append(
                f"| {n}^2 | pyqg BTModel (context) | {PYQG_FFTS_PER_STEP} FFTW | {fmt_ms(q)} | {fmt_ms(qf)} "
                f"| {fmt_ratio(q / qf)} | | | |"
            )
    head = (
        "### 2. Step vs its FFT floor (1 system, 1 thread)\n\n"
        "| N | solver | FFTs per step | step ms | floor ms (same library) | step/floor | goal <= 2 "
        "| FFTW_MEASURE floor ms (same transforms) | step / MEASURE floor |\n|---|---|---|---|---|---|---|---|---|"
    )
    notes = (
        "\nfloor = exactly the transforms of one step (3 evaluations x one inverse of (ncomp, N, N/2+1) + one "
        "forward of (ncomp, N, N)), timed alone on preallocated arrays with the solver's own calls, round-robin "
        "with the steps (FFTW rows: the solver's FFTW_ESTIMATE plans). FFTW_MEASURE floor: the same transforms with "
        "measured plans (1 thread), which the solver does not use (not reproducible across processes). pyqg's floor: "
        "its 5 transforms per step with the same FFTW plans (plus the copy that restores the c2r input)."
    )
    return "\n".join([head, *rows]) + "\n" + notes


def table_batched(cfg: Config, torch) -> str:
    n = 64
    rows = []
    params = make_params(n)
    variants: list[tuple[str, Callable[[int], Callable[[int], None]]]] = []

    def numpy_variant(threads: int):
        def make(batch: int):
            model = TurbulenceModel(params, threads=threads)  # default stepper FFT (FFTW when pyfftw imports)
            state = model.initial_state(initial_field(model.grid, batch_size=batch))
            return lambda k: model.advance(state, k)

        return make

    def torch_variant(threads: int):
        from simrl.physics.turbulence.torch_backend import TorchTurbulenceModel

        def make(batch: int):
            model = TorchTurbulenceModel(params)
            state = model.initial_state(initial_field(model.grid, batch_size=batch))

            def advance(k: int) -> None:
                torch.set_num_threads(threads)
                try:
                    model.advance(state, k)
                finally:
                    torch.set_num_threads(1)

            return advance

        return make

    from simrl.physics.turbulence.model import resolve_fft_backend

    lib = {"fftw": "FFTW", "numpy": "numpy.fft"}[resolve_fft_backend()]
    numpy_base = f"NumPy/Numba ({lib}), threads=1"
    variants.append((numpy_base, numpy_variant(1)))
    variants.append((f"NumPy/Numba ({lib}), threads=2", numpy_variant(2)))
    if torch is not None:
        variants.append(("torch CPU f64, 1 thread", torch_variant(1)))
        variants.append(("torch CPU f64, 2 threads", torch_variant(2)))
    batches = (1, 8, 64)
    runners = {}
    for name, make in variants:
        for b in batches:
            log(f"table 3: {name}, B = {b}: set-up and warm-up")
            runners[f"{name}|{b}"] = runner(in_chunks(make(b)), cfg)
    log(f"table 3: timing {len(runners)} subjects x {cfg.repeats} repeats")
    sec = measure(runners, cfg)
    results = {(key.split("|")[0], int(key.split("|")[1])): int(key.split("|")[1]) / t for key, t in sec.items()}
    base = results[(numpy_base, 1)]
    head = (
        f"### 3. Batched throughput at {n}^2 (no closure), fields x steps per second\n\n"
        "| solver | " + " | ".join(f"B = {b}" for b in batches) + " | B = 64 vs NumPy B = 1 |\n"
        "|---|" + "---|" * (len(batches) + 1)
    )
    for name, _ in variants:
        cells = " | ".join(f"{results[(name, b)]:,.0f}" for b in batches)
        rows.append(f"| {name} | {cells} | {results[(name, 64)] / base:.2f}x |")
    return "\n".join([head, *rows])


def table_env(cfg: Config) -> str:
    """Table 4: what the environment adds to the bare closure solver, per solver step at 64^2.

    "bare closure solver": per step, the local Leith eddy viscosity of the current field
    (``closures.eddy_viscosity``, the same call the env makes) and one ``TurbulenceModel.advance`` step
    with it -- the least any LES with a field-dependent closure must do. "env": the batched env core
    (:class:`~simrl.envs.turbulence_core.TurbulenceBatch`, 16 agents, 10 solver steps per action), one
    action window per call plus the agents' observations the policy needs for the next action, per
    solver step. Goal: env / bare <= 1.3 and batched copies at least as fast per copy as one.
    """
    from simrl.envs.turbulence_core import TurbulenceBatch, TurbulenceSettings, synthetic_targets
    from simrl.physics.turbulence.closures import STATIC_COEFFICIENTS, eddy_viscosity

    n = 64
    targets = synthetic_targets(n)
    settings = TurbulenceSettings(n_les=n, agents_per_side=4, episode_steps=10**8, augment=False)
    coefficient = STATIC_COEFFICIENTS["leith"]
    batches = (1, 8)
    runners: dict[str, Runner] = {}
    for b in batches:
        model = TurbulenceModel(targets.params)
        state = model.state_from_spectral(targets.snapshots[np.arange(b) % targets.snapshots.shape[0]])

        def bare(k: int, model=model, state=state) -> None:
            for _ in range(k):
                nu = eddy_viscosity(model.grid, state.omega_hat, coefficient, "leith", "local")
                model.advance(state, 1, nu)

        core = TurbulenceBatch(settings, b, targets)
        rng = np.random.default_rng(0)
        for i in range(b):
            core.reset_system(i, rng, snapshot_index=i % targets.snapshots.shape[0])
        coefficients = np.full((b, core.n_agents), coefficient)

        def env(k: int, core=core, coefficients=coefficients) -> None:
            for _ in range(max(1, k // settings.steps_per_action)):
                core.step(coefficients)
                core.agent_observations()

        log(f"table 4: B = {b}: warm-up")
        runners[f"bare|{b}"] = runner(bare, cfg)
        runners[f"env|{b}"] = runner(env, cfg)
    log(f"table 4: timing {len(runners)} subjects x {cfg.repeats} repeats")
    sec = measure(runners, cfg)
    per_field = {key: t / int(key.split("|")[1]) for key, t in sec.items()}
    rows = [
        f"### 4. Environment overhead at {n}^2 (16 agents, local Leith, 10 solver steps per action), per solver step and field\n",
        "| B (copies) | bare closure solver (us) | env (us) | env / bare | env per copy vs B = 1 |",
        "|---|---|---|---|---|",
    ]
    for b in batches:
        bare_t, env_t = per_field[f"bare|{b}"], per_field[f"env|{b}"]
        rows.append(f"| {b} | {bare_t * 1e6:,.0f} | {env_t * 1e6:,.0f} | {env_t / bare_t:.2f} | "
                    f"{per_field['env|1'] / env_t:.2f}x |")  # fmt: skip
    return "\n".join(rows)


# --------------------------------------------------------------------------- main
def machine_line() -> str:
    load = os.getloadavg()
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and shorter repeats (~30 s)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per row (default 7, quick 3)")
    ap.add_argument("--sizes", default="64,256", help="grid sizes of tables 1 and 2 (comma-separated, even)")
    ap.add_argument("--no-pyqg", action="store_true", help="skip pyqg even if it is installed")
    ap.add_argument("--env-only", action="store_true", help="only table 4 (the environment's overhead)")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        if any(s < 8 or s % 2 for s in sizes):
            raise ValueError
    except ValueError:
        ap.error(f"--sizes must be comma-separated even integers >= 8, got {args.sizes!r}")
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    if repeats < 1:
        ap.error("--repeats must be >= 1")
    cfg = Config(quick=args.quick, repeats=repeats, sizes=sizes, target_s=0.04 if args.quick else 0.12, pyqg=not args.no_pyqg)

    start_line = machine_line()
    t_start = time.perf_counter()
    if args.env_only:
        t4 = table_env(cfg)
        print(f"## simrl turbulence benchmark, table 4 only\n\n- start: {start_line}\n- end:   {machine_line()}\n")
        print(t4)
        return 0
    torch = import_torch()
    pyfftw = import_pyfftw()
    pyqg, pyqg_label = (None, "pyqg skipped (--no-pyqg)") if args.no_pyqg else import_pyqg()
    if pyqg is None:
        log(pyqg_label)
    libs = [f"torch {torch.__version__}" if torch else "torch: not installed",
            f"pyfftw {pyfftw.__version__}" if pyfftw else "pyfftw: not installed", pyqg_label]

    log("equal-accuracy step ratio (IF-RK3 vs AB3 on our equations)")
    dt_factor, t_acc = accuracy_factor(cfg)
    fftw_check = check_fft_paths() if pyfftw is not None else None
    if fftw_check is not None and not fftw_check < 1e-12:
        raise RuntimeError(f"model.py's FFTW and numpy.fft paths disagree: {fftw_check:.3g}")
    sec = {n: measure_size(n, cfg, torch, pyfftw, pyqg) for n in cfg.sizes}
    t1 = table_pyqg(cfg, torch, pyfftw, pyqg_label if pyqg else "pyqg (not installed)", dt_factor, fftw_check, sec)
    t2 = table_floor(cfg, torch, pyfftw, sec)
    t3 = table_batched(cfg, torch)
    t4 = table_env(cfg)
    end_line = machine_line()
    print("## simrl turbulence benchmark" + (" (--quick)" if cfg.quick else ""))
    print()
    print(f"- start: {start_line}")
    print(f"- end:   {end_line}")
    print(f"- {'; '.join(libs)}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          f"median of {cfg.repeats} repeats; wall {time.perf_counter() - t_start:.0f} s")
    print()
    print(t1)
    print()
    print(t_acc)
    print()
    print(t2)
    print()
    print(t3)
    print()
    print(t4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
