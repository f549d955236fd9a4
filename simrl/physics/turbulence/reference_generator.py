"""Generate the reference DNS data of a :class:`~.reference.ReferenceCase` (resumable, atomic).

Plan (all in model time; one "chunk" = ``sample_interval`` of DNS time):

1. Start from a seeded random field (:func:`~.initial_conditions.random_vorticity`, rms 1) and run
   ``spinup_time`` (several drag times ``1/alpha``) to statistical steady state; ``E`` and ``Z`` are
   recorded after every chunk.
2. Run ``averaging_time`` more; after every chunk accumulate the DNS statistics and those of the filtered
   DNS at each LES resolution (spectra, ``log Z(k)`` moments, vorticity histograms), and store a filtered
   snapshot every ``averaging_time / n_snapshots``.
3. Check stationarity: the mean ``E`` and ``Z`` (and the spectrum) over the two halves of the averaging
   window must agree (reported in the manifest and printed; the shipped data are tested for it).
4. Write ``<case>.npz`` and the manifest ``<case>.json`` atomically (temporary file + ``os.replace``).

Resuming: every ``checkpoint_seconds`` of wall time (and at the end of the spin-up) the DNS state and all
accumulators are written atomically to ``.<case>.checkpoint.npz`` beside the output. A re-run with the same
configuration continues from it and gives bitwise the same file as an uninterrupted run (the solver is
deterministic and the chunks are the same); a checkpoint of another configuration is ignored (and
overwritten). The checkpoint is removed once the output is written.

Solvers (``backend``): "numpy" runs the NumPy/Numba :class:`~.model.TurbulenceModel` (its FFT library,
FFTW or numpy.fft, chosen as the model chooses it: ``$SIMRL_FFT``, else FFTW when pyfftw imports);
"torch" runs :class:`~.torch_backend.TorchTurbulenceModel` in float64 on ``device`` (default "cuda" when
available, else "cpu"), which is how the paper-scale 1024^2 cases are meant to be run: the field stays
on the device and only a host copy per chunk (``to_numpy_state``) feeds the NumPy statistics. The two
solvers agree to round-off, but a turbulent DNS amplifies round-off, so the solver is part of the run's
identity: it is recorded in the manifest (``"solver"``, e.g. "numpy/fftw", "torch/cuda/float64") and in
the checkpoint, and a checkpoint of another solver is not resumed (a restart keeps the output bitwise
reproducible).

PDFs: the DNS sigma is only known at the end, so each sample's vorticity goes into a fine histogram in
vorticity units (``FINE_BINS`` bins over ``+-hist_range``, fixed at the end of the spin-up as
``HIST_RANGE_SIGMAS`` times the then sigma); at the end its CDF is interpolated onto ``PDF_BINS`` bins of
``omega / sigma_DNS`` over ``+-pdf_n_sigma`` (bin width error < 1e-3 of a coarse bin).
"""

from __future__ import annotations

import io
import json
import time
import warnings
from pathlib import Path
from typing import Callable

BACKENDS = ("numpy", "torch")
"""Accepted values of ``generate_reference(backend=...)`` / ``--backend``."""

import numpy as np

from simrl.atomic_io import atomic_write_bytes
from simrl.physics.turbulence import diagnostics
from simrl.physics.turbulence.grid import SpectralGrid
from simrl.physics.turbulence.initial_conditions import random_vorticity
from simrl.physics.turbulence.model import TurbulenceModel
from simrl.physics.turbulence.reference import (
    FORMAT_VERSION,
    PDF_BINS,
    SPECTRUM_DIRECTIONS,
    TAIL_THRESHOLDS,
    ReferenceCase,
    les_key,
    manifest_path,
    reference_case,
    reference_path,
    regenerate_command,
    sha256_of,
)

FINE_BINS = 6000
HIST_RANGE_SIGMAS = 15.0
STATIONARITY_TOLERANCE = 0.15
"""Largest accepted relative difference of the mean E or Z between the two halves of the averaging window."""


def _atomic_write_bytes(path: Path, write: Callable[[object], None]) -> None:
    """Write through ``write(file)`` into memory, then :func:`simrl.atomic_io.atomic_write_bytes`."""
    buffer = io.BytesIO()
    write(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _save_npz(path: Path, arrays: dict, compressed: bool = True) -> None:
    _atomic_write_bytes(path, lambda f: (np.savez_compressed if compressed else np.savez)(f, **arrays))


class _Stats:
    """Accumulators of one resolution (the DNS or one filtered-DNS grid); flat arrays for checkpointing."""

    def __init__(self, grid: SpectralGrid, prefix: str, hist_range: float, n_snapshots: int):
        self.grid = grid
        self.prefix = prefix
        n = grid.n
        self.kcut = grid.k_cut
        shells = grid.n_shells
        self.a = {
            "count": np.zeros(()),
            "z": np.zeros(shells),
            "e": np.zeros(shells),
            "z_half0": np.zeros(shells),
            "z_half1": np.zeros(shells),
            "count_half0": np.zeros(()),
            "logz": np.zeros(self.kcut),
            "logz2": np.zeros(self.kcut),
            "px": np.zeros(n // 2),
            "py": np.zeros(n // 2),
            "hist": np.zeros(FINE_BINS),
            "w_n": np.zeros(()),
            "w2": np.zeros(()),
            "w4": np.zeros(()),
            "snapshots": np.zeros((n_snapshots, n, n // 2 + 1), np.complex64),
            "snapshot_times": np.zeros(n_snapshots),
            "n_snap": np.zeros((), np.int64),
        }
        self.edges = np.linspace(-hist_range, hist_range, FINE_BINS + 1)

    def add(self, w_hat: np.ndarray, first_half: bool) -> None:
        """Accumulate one sample ``w_hat`` (N, N//2+1) of this grid."""
        a, g = self.a, self.grid
        _, z = diagnostics.enstrophy_spectrum(g, w_hat)
        _, e = diagnostics.energy_spectrum(g, w_hat)
        _, px = diagnostics.paper_enstrophy_spectrum(g, w_hat, "x")
        _, py = diagnostics.paper_enstrophy_spectrum(g, w_hat, "y")
        a["count"] += 1
        a["z"] += z
        a["e"] += e
        if first_half:
            a["z_half0"] += z
            a["count_half0"] += 1
        else:
            a["z_half1"] += z
        logz = np.log(z[1 : self.kcut + 1])
        a["logz"] += logz
        a["logz2"] += logz**2
        a["px"] += px
        a["py"] += py
        w = g.to_physical(w_hat)
        a["hist"] += np.histogram(w, bins=self.edges)[0]
        a["w_n"] += w.size
        a["w2"] += np.sum(w**2)
        a["w4"] += np.sum(w**4)

    def add_snapshot(self, w_hat: np.ndarray, t: float) -> None:
        a = self.a
        i = int(a["n_snap"])
        a["snapshots"][i] = w_hat.astype(np.complex64)
        a["snapshot_times"][i] = t
        a["n_snap"] += 1

    def state(self) -> dict:
        return {f"{self.prefix}{k}": v for k, v in self.a.items()}

    def load(self, arrays: dict) -> None:
        for k in self.a:
            self.a[k] = np.array(arrays[f"{self.prefix}{k}"])

    def results(self, sigma_dns: float, pdf_n_sigma: float) -> dict:
        """Final time means (keys without the resolution prefix)."""
        a = self.a
        c = float(a["count"])
        c0 = float(a["count_half0"])
        mean_logz = a["logz"] / c
        var_logz = np.maximum(a["logz2"] / c - mean_logz**2, 0.0) * c / max(c - 1.0, 1.0)  # unbiased
        px, py = a["px"] / c, a["py"] / c
        # PDF: fine histogram (vorticity units) -> CDF -> coarse bins of omega / sigma_dns
        outside_hist = a["w_n"] - a["hist"].sum()
        coarse = np.linspace(-pdf_n_sigma, pdf_n_sigma, PDF_BINS + 1)
        if pdf_n_sigma * sigma_dns > self.edges[-1]:
            raise RuntimeError(
                f"PDF window {pdf_n_sigma} sigma = {pdf_n_sigma * sigma_dns:.3g} exceeds the histogram range "
                f"{self.edges[-1]:.3g} fixed at the end of the spin-up (the flow was far from steady)"
            )
        cdf = np.concatenate([[0.0], np.cumsum(a["hist"])]) + 0.5 * outside_hist
        cdf_coarse = np.interp(coarse * sigma_dns, self.edges, cdf)
        density = np.diff(cdf_coarse) / (a["w_n"] * np.diff(coarse))
        std = float(np.sqrt(a["w2"] / a["w_n"]))
        kurt = float(a["w4"] / a["w_n"] / std**4) if std > 0 else float("nan")
        tails = []
        for t in TAIL_THRESHOLDS:
            thr = t * sigma_dns
            inside = np.interp(thr, self.edges, cdf) - np.interp(-thr, self.edges, cdf)
            tails.append(1.0 - inside / a["w_n"])
        return {
            "enstrophy_spectrum": a["z"] / c,
            "energy_spectrum": a["e"] / c,
            "enstrophy_spectrum_half0": a["z_half0"] / c0,
            "enstrophy_spectrum_half1": a["z_half1"] / (c - c0),
            "log_enstrophy_mean": mean_logz,
            "log_enstrophy_var": var_logz,
            "paper_spectrum_x": px,
            "paper_spectrum_y": py,
            "paper_spectrum_xy": 0.5 * (px + py),
            "pdf_density": density,
            "sigma_omega": np.float64(std),
            "kurtosis": np.float64(kurt),
            "tail_fractions": np.array(tails),
            "snapshots": a["snapshots"][: int(a["n_snap"])],
            "snapshot_times": a["snapshot_times"][: int(a["n_snap"])],
        }


NOT_IN_FINGERPRINT = ("les_dt_factor",)
"""ReferenceCase fields that do not change the DNS (a checkpoint made before they changed is still resumed)."""


def _sigma(grid: SpectralGrid, w_hat: np.ndarray) -> float:
    """``sigma_omega = sqrt(<omega^2>) = sqrt(2 Z)`` of one field."""
    return float(np.sqrt(2.0 * diagnostics.enstrophy(grid, w_hat)))


def _fingerprint(case: ReferenceCase) -> str:
    d = {k: v for k, v in case.to_dict().items() if k not in NOT_IN_FINGERPRINT}
    return json.dumps({"format_version": FORMAT_VERSION, **d}, sort_keys=True)


def _chunks(case: ReferenceCase) -> tuple[int, int, int]:
    """``(steps per chunk, spin-up chunks, averaging chunks)``; every time must be a multiple of dt."""
    steps = case.sample_interval / case.dt
    spin = case.spinup_time / case.sample_interval
    avg = case.averaging_time / case.sample_interval
    for name, v in (("sample_interval / dt", steps), ("spinup_time / sample_interval", spin),
                    ("averaging_time / sample_interval", avg)):
        if abs(v - round(v)) > 1e-9 * max(1.0, abs(v)) or round(v) < (1 if name != "spinup_time / sample_interval" else 0):
            raise ValueError(f"{name} must be a positive integer (spin-up may be 0), got {v!r} for case {case.name!r}")
    if round(avg) < 2 * case.n_snapshots and case.n_snapshots > 0:
        raise ValueError(f"averaging_time / sample_interval = {round(avg)} must be >= 2 n_snapshots = {2 * case.n_snapshots}")
    return int(round(steps)), int(round(spin)), int(round(avg))


def _coarse_chunks(case: ReferenceCase) -> tuple[int, int]:
    """``(steps per chunk, chunks)`` of the coarse pre-spin-up (``(0, 0)`` without one)."""
    if case.coarse_parameters() is None:
        return 0, 0
    steps = case.sample_interval / case.coarse_dt
    chunks = case.coarse_spinup_time / case.sample_interval
    for name, v in (("sample_interval / coarse_dt", steps), ("coarse_spinup_time / sample_interval", chunks)):
        if abs(v - round(v)) > 1e-9 * max(1.0, abs(v)) or round(v) < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {v!r} for case {case.name!r}")
    return int(round(steps)), int(round(chunks))


def spectral_slope(spectrum: np.ndarray, k_range: tuple[int, int]) -> float:
    """Least-squares slope of ``log spectrum`` against ``log k`` over the shells ``k_range[0] .. k_range[1]``."""
    k = np.arange(k_range[0], k_range[1] + 1)
    return float(np.polyfit(np.log(k), np.log(spectrum[k]), 1)[0])


SLOPE_RANGES = ((5, 16), (8, 32), (16, 64))
"""Shell ranges of the reported spectral slopes (manifest ``"spectral_slopes"``)."""


def generate_reference(
    case: str | ReferenceCase,
    output_dir: str | Path | None = None,
    progress: bool = True,
    checkpoint_seconds: float = 60.0,
    max_chunks: int | None = None,
    log: Callable[[str], None] = print,
    backend: str = "numpy",
    device: str | None = None,
) -> dict | None:
    """Run (or resume) the reference DNS of ``case`` and write ``<case>.npz`` + ``<case>.json`` to ``output_dir``.

    ``case``: a name of :data:`~.reference.REFERENCE_CASES` or a :class:`~.reference.ReferenceCase`.
    ``output_dir``: default the shipped ``simrl/data/turbulence``. ``progress``: tqdm bar.
    ``checkpoint_seconds``: wall time between checkpoints. ``max_chunks``: stop (after a checkpoint) once this
    many chunks have been run in *this call* and return None, as an interruption would (used by the tests).
    ``backend``: "numpy" (:class:`~.model.TurbulenceModel`) or "torch" (:class:`~.torch_backend.TorchTurbulenceModel`,
    float64); ``device``: the torch device (default "cuda" when available, else "cpu"; only "cpu" or None
    with the NumPy backend). Returns the manifest dict when the files were written.
    """
    case = reference_case(case)

    def holds_forcing(m: int) -> bool:
        return m >= 8 and SpectralGrid(m).k_cut > case.k_f

    for n_les in case.les_resolutions:
        if isinstance(n_les, bool) or not isinstance(n_les, (int, np.integer)) or n_les < 2 or n_les > case.n or case.n % n_les:
            accepted = [m for m in range(2, case.n + 1, 2) if case.n % m == 0 and holds_forcing(m)]
            raise ValueError(f"LES resolution {n_les!r} must divide the DNS N = {case.n}; accepted: {accepted}")
        if not holds_forcing(int(n_les)):
            raise ValueError(
                f"LES resolution {n_les} cannot hold the forcing wavenumber k_f = {case.k_f} (its 2/3-rule cutoff is "
                f"k = {int(n_les) // 3 if n_les < 8 else SpectralGrid(int(n_les)).k_cut}); "
                f"use N >= {next(m for m in range(2, case.n + 1, 2) if holds_forcing(m))}"
            )
    out = reference_path(case.name, output_dir)
    ckpt = out.parent / f".{case.name}.checkpoint.npz"
    steps_per_chunk, n_spin, n_avg = _chunks(case)
    # temporaries of a run killed while writing (the files they would have replaced are intact)
    for name in (ckpt.name, out.name, out.with_suffix(".json").name):
        for stale in out.parent.glob(f".{name}.*.tmp"):  # the pattern of _atomic_write_bytes
            stale.unlink(missing_ok=True)
    coarse_steps, n_coarse = _coarse_chunks(case)
    n_pre = n_coarse + n_spin  # chunks before the averaging window
    total = n_pre + n_avg
    params = case.parameters()
    model, to_host, solver = _make_solver(params, backend, device)
    grid = model.grid
    coarse_model = coarse_to_host = coarse_grid = None
    if n_coarse:
        coarse_model, coarse_to_host, _ = _make_solver(case.coarse_parameters(), backend, device)
        coarse_grid = coarse_model.grid
    coarse_first = n_coarse - n_coarse // 2  # the coarse statistics cover the second half of the coarse phase

    def is_coarse(st) -> bool:
        return n_coarse > 0 and int(st.omega_hat.shape[-2]) == case.coarse_n

    def host(st):
        return coarse_to_host(st) if is_coarse(st) else to_host(st)
    les_grids = {n: SpectralGrid(n) for n in case.les_resolutions}
    snap_every = n_avg // case.n_snapshots if case.n_snapshots else 0
    fingerprint = _fingerprint(case)

    # ------------------------------------------------------------------ fresh start or resume
    chunk = 0
    series = {"time": [], "energy": [], "enstrophy": [], "cfl": []}
    stats: dict | None = None
    coarse_stats: _Stats | None = None
    hist_range = 0.0
    wall_before = 0.0
    resumed = False
    if ckpt.is_file():
        try:
            with np.load(ckpt, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if str(arrays["fingerprint"]) != fingerprint:
                log(f"ignoring checkpoint {ckpt}: it belongs to another configuration")
            elif str(arrays.get("solver", "unrecorded")) != solver:
                log(
                    f"ignoring checkpoint {ckpt}: it was made by the solver {str(arrays.get('solver', 'unrecorded'))!r}, "
                    f"this run uses {solver!r} (round-off differences would grow in the turbulent DNS)"
                )
            else:
                resumed = True
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint only costs a restart
            log(f"ignoring unreadable checkpoint {ckpt} ({type(exc).__name__}: {exc})")
    if resumed:
        coarse_field = n_coarse > 0 and arrays["omega_hat"].shape[-2] == case.coarse_n
        state = (coarse_model if coarse_field else model).state_from_spectral(arrays["omega_hat"], float(arrays["time"]))
        chunk = int(arrays["chunk"])
        series = {k: list(arrays[f"series_{k}"]) for k in series}
        wall_before = float(arrays["wall_time"])
        hist_range = float(arrays["hist_range"])
        if "coarse_count" in arrays:
            coarse_stats = _Stats(coarse_grid, "coarse_", float(arrays["coarse_hist_range"]), 0)
            coarse_stats.load(arrays)
        if chunk >= n_pre and "dns_count" in arrays:
            # (a checkpoint taken at the last spin-up chunk, before the accumulators existed, has none:
            # they are then made at the top of the loop from the same state, as in an uninterrupted run)
            stats = _make_stats(case, grid, les_grids, hist_range)
            for s in stats.values():
                s.load(arrays)
        log(f"resuming {case.name} from {ckpt} at chunk {chunk}/{total} (t = {state.time[0]:.2f})")
    else:
        rng = np.random.default_rng(case.seed)
        start_model = coarse_model if n_coarse else model
        state = start_model.initial_state(random_vorticity(start_model.grid, rng, batch_size=1, rms=1.0))

    def checkpoint() -> None:
        arrays = {
            "fingerprint": np.array(fingerprint),
            "solver": np.array(solver),
            "omega_hat": host(state).omega_hat[0],
            "time": np.float64(state.time[0]),
            "chunk": np.int64(chunk),
            "wall_time": np.float64(wall_before + time.perf_counter() - t_start),
            "hist_range": np.float64(hist_range),
            **{f"series_{k}": np.array(v, dtype=np.float64) for k, v in series.items()},
        }
        if stats is not None:
            for s in stats.values():
                arrays.update(s.state())
        if coarse_stats is not None:
            arrays.update(coarse_stats.state())
            arrays["coarse_hist_range"] = np.float64(coarse_stats.edges[-1])
        _save_npz(ckpt, arrays, compressed=False)

    # ------------------------------------------------------------------ run
    t_start = time.perf_counter()
    last_ckpt = t_start
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # one unit = one DNS-grid chunk; a coarse chunk counts its share of the work (steps x N^2 log N), so the
        # ETA holds across the two phases
        coarse_weight = (
            coarse_steps * case.coarse_n**2 * np.log(case.coarse_n) / (steps_per_chunk * case.n**2 * np.log(case.n))
            if n_coarse else 0.0
        )
        done_work = min(chunk, n_coarse) * coarse_weight + max(chunk - n_coarse, 0)
        bar = tqdm(total=round(n_coarse * coarse_weight + n_pre - n_coarse + n_avg, 2), initial=round(done_work, 2),
                   desc=f"{case.name} DNS {case.n}^2 ({solver})", unit="chunk",
                   bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} [{elapsed}<{remaining}{postfix}]")
    done_here = 0
    try:
        while chunk < total:
            in_coarse = chunk < n_coarse
            if in_coarse and coarse_stats is None and chunk >= coarse_first:
                w = host(state).omega_hat[0]
                coarse_stats = _Stats(coarse_grid, "coarse_", HIST_RANGE_SIGMAS * max(_sigma(coarse_grid, w), 1e-12), 0)
            if not in_coarse and is_coarse(state):
                # end of the coarse pre-spin-up: refine the field spectrally onto the DNS grid
                w = host(state).omega_hat[0]
                sigma_c = _sigma(coarse_grid, w)
                state = model.state_from_spectral(diagnostics.spectral_refine(w, case.n)[None], float(state.time[0]))
                log(f"coarse {case.coarse_n}^2 spin-up done at t = {state.time[0]:.1f} (sigma_omega = {sigma_c:.4g}); "
                    f"refined to {case.n}^2")  # fmt: skip
            if stats is None and chunk >= n_pre:
                # end of the spin-up: fix the fine histogram's range from the current sigma
                w = host(state).omega_hat[0]
                sigma = _sigma(grid, w)
                hist_range = HIST_RANGE_SIGMAS * max(sigma, 1e-12)
                stats = _make_stats(case, grid, les_grids, hist_range)
                e, z = np.array(series["energy"]), np.array(series["enstrophy"])
                msg = f"spin-up done at t = {state.time[0]:.1f}: sigma_omega = {sigma:.4g}"
                if len(e) >= 2:
                    q = max(len(e) // 4, 1)
                    msg += (
                        f", E = {e[-1]:.4g}, Z = {z[-1]:.4g}; mean E over the last two quarters of the spin-up "
                        f"{e[-2 * q:-q].mean():.4g} -> {e[-q:].mean():.4g}, Z {z[-2 * q:-q].mean():.4g} -> {z[-q:].mean():.4g}"
                    )
                log(msg)
                checkpoint()
                last_ckpt = time.perf_counter()
            if max_chunks is not None and done_here >= max_chunks:
                checkpoint()
                log(f"stopped after {done_here} chunks (checkpoint {ckpt})")
                return None
            solver_now = coarse_model if is_coarse(state) else model
            status = solver_now.advance(state, coarse_steps if is_coarse(state) else steps_per_chunk)
            if status[0] != 0:
                raise RuntimeError(
                    f"the DNS of {case.name} became non-finite at t = {state.time[0]:.3f}: reduce dt (now {case.dt})"
                )
            chunk += 1
            done_here += 1
            w = host(state).omega_hat[0]  # (a host copy with the torch backend)
            grid_now = solver_now.grid
            series["time"].append(float(state.time[0]))
            series["energy"].append(float(diagnostics.energy(grid_now, w)))
            series["enstrophy"].append(float(diagnostics.enstrophy(grid_now, w)))
            series["cfl"].append(float(solver_now.cfl(state)[0]))
            if coarse_stats is not None and is_coarse(state):
                coarse_stats.add(w, first_half=chunk - coarse_first <= (n_coarse - coarse_first) // 2)
            if chunk > n_pre:
                i = chunk - n_pre - 1  # averaging chunk index 0 .. n_avg-1
                first_half = i < n_avg // 2
                stats["dns"].add(w, first_half)
                running_sigma = float(np.sqrt(stats["dns"].a["w2"] / stats["dns"].a["w_n"]))
                if case.pdf_n_sigma * running_sigma > hist_range:
                    raise RuntimeError(
                        f"sigma_omega grew from {hist_range / HIST_RANGE_SIGMAS:.3g} at the end of the spin-up to "
                        f"{running_sigma:.3g}: the flow is far from steady; use a longer spin-up (now {case.spinup_time})"
                    )
                take_snapshot = snap_every and (i + 1) % snap_every == 0 and (i + 1) // snap_every <= case.n_snapshots
                for n_les, g in les_grids.items():
                    w_les = _filtered(w, g)
                    stats[n_les].add(w_les, first_half)
                    if take_snapshot and int(stats[n_les].a["n_snap"]) < case.snapshots_for(n_les):
                        stats[n_les].add_snapshot(w_les, float(state.time[0]))
            if bar is not None:
                bar.update(coarse_weight if chunk <= n_coarse else 1)
                bar.set_postfix(t=f"{state.time[0]:.1f}", E=f"{series['energy'][-1]:.3g}", Z=f"{series['enstrophy'][-1]:.3g}")
            if time.perf_counter() - last_ckpt > checkpoint_seconds and chunk < total:
                checkpoint()
                last_ckpt = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()

    wall = wall_before + time.perf_counter() - t_start
    manifest = _write_outputs(case, out, grid, stats, series, n_pre, wall, output_dir, log, model.cfl_limit, solver,
                              coarse_stats, snap_every * case.sample_interval if snap_every else None)
    if ckpt.exists():
        ckpt.unlink()
    return manifest


def _make_solver(params, backend: str, device: str | None):
    """``(model, to_host, solver label)`` of ``backend``; ``to_host(state)`` is a NumPy :class:`~.model.TurbulenceState`."""
    if backend == "numpy":
        if device is not None and str(device) != "cpu":
            raise ValueError(f"device must be None or 'cpu' with backend='numpy', got {device!r} (use backend='torch')")
        model = TurbulenceModel(params)
        return model, (lambda state: state), f"numpy/{model.fft}"
    if backend == "torch":
        import torch

        from simrl.physics.turbulence.torch_backend import TorchTurbulenceModel

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = TorchTurbulenceModel(params, device=device, dtype=torch.float64)
        return model, model.to_numpy_state, f"torch/{model.device.type}/float64"
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _filtered(w_hat: np.ndarray, g: SpectralGrid) -> np.ndarray:
    """The DNS field coarse-grained to ``g`` and projected on its kept modes (2/3 rule, no mean)."""
    w = diagnostics.coarse_grain(w_hat, g.n)
    return np.where(g.mask & (g.k2 > 0), w, 0.0)


def _make_stats(case: ReferenceCase, grid: SpectralGrid, les_grids: dict, hist_range: float) -> dict:
    stats = {"dns": _Stats(grid, "dns_", hist_range, 0)}
    for n, g in les_grids.items():
        stats[n] = _Stats(g, f"les{n}_", hist_range, case.snapshots_for(n))
    return stats


def _write_outputs(case, out: Path, grid, stats, series, n_spin, wall, output_dir, log, model_cfl_limit, solver,
                   coarse_stats, snapshot_interval) -> dict:
    dns = stats["dns"]
    e_all = np.array(series["energy"])
    z_all = np.array(series["enstrophy"])
    # sigma_DNS from the exact accumulated <omega^2>
    sigma = float(np.sqrt(dns.a["w2"] / dns.a["w_n"]))
    r = dns.results(sigma, case.pdf_n_sigma)
    arrays = {
        "les_resolutions": np.array(case.les_resolutions, dtype=np.int64),
        "n_samples": np.int64(dns.a["count"]),
        "pdf_bin_edges": np.linspace(-case.pdf_n_sigma, case.pdf_n_sigma, PDF_BINS + 1),
        "series_time": np.array(series["time"]),
        "series_energy": e_all,
        "series_enstrophy": z_all,
        "series_cfl": np.array(series["cfl"]),
    }
    for key in ("enstrophy_spectrum", "energy_spectrum", "enstrophy_spectrum_half0", "enstrophy_spectrum_half1",
                "log_enstrophy_mean", "log_enstrophy_var", "pdf_density", "sigma_omega", "kurtosis", "tail_fractions"):
        arrays[key] = r[key]
    for d in SPECTRUM_DIRECTIONS:
        arrays[f"paper_spectrum_{d}"] = r[f"paper_spectrum_{d}"]
    for n in case.les_resolutions:
        rl = stats[n].results(sigma, case.pdf_n_sigma)
        kc = stats[n].kcut
        for key in ("enstrophy_spectrum", "energy_spectrum", "log_enstrophy_mean", "log_enstrophy_var",
                    "pdf_density", "sigma_omega", "kurtosis", "tail_fractions", "snapshot_times"):
            arrays[les_key(n, key)] = rl[key]
        for d in SPECTRUM_DIRECTIONS:
            arrays[les_key(n, f"paper_spectrum_{d}")] = rl[f"paper_spectrum_{d}"]
        arrays[les_key(n, "snapshots")] = rl["snapshots"]
        arrays[les_key(n, "dns_enstrophy_spectrum")] = r["enstrophy_spectrum"][: kc + 1]
        arrays[les_key(n, "dns_energy_spectrum")] = r["energy_spectrum"][: kc + 1]

    # stationarity over the two halves of the averaging window
    e_avg, z_avg = e_all[n_spin:], z_all[n_spin:]
    h = len(e_avg) // 2
    kc = grid.k_cut
    z0, z1 = r["enstrophy_spectrum_half0"][1 : kc + 1], r["enstrophy_spectrum_half1"][1 : kc + 1]
    stationarity = {
        "energy_halves": [float(e_avg[:h].mean()), float(e_avg[h:].mean())],
        "enstrophy_halves": [float(z_avg[:h].mean()), float(z_avg[h:].mean())],
        "energy_relative_change": float(abs(e_avg[h:].mean() - e_avg[:h].mean()) / e_avg.mean()),
        "enstrophy_relative_change": float(abs(z_avg[h:].mean() - z_avg[:h].mean()) / z_avg.mean()),
        "spectrum_max_log10_change": float(np.max(np.abs(np.log10(z1 / z0)))),
        "tolerance": STATIONARITY_TOLERANCE,
    }
    stationarity["stationary"] = bool(
        stationarity["energy_relative_change"] < STATIONARITY_TOLERANCE
        and stationarity["enstrophy_relative_change"] < STATIONARITY_TOLERANCE
    )
    log(
        f"stationarity ({'OK' if stationarity['stationary'] else 'NOT REACHED'}): mean E over the two halves "
        f"{stationarity['energy_halves'][0]:.4g} / {stationarity['energy_halves'][1]:.4g}, "
        f"Z {stationarity['enstrophy_halves'][0]:.4g} / {stationarity['enstrophy_halves'][1]:.4g}, "
        f"largest spectrum change {stationarity['spectrum_max_log10_change']:.3f} decades"
    )

    resolution, coarse_arrays = _resolution_report(case, grid, r, coarse_stats, sigma)
    arrays.update(coarse_arrays)
    slopes = {
        f"{kind}_{a}_{b}": spectral_slope(r[f"{kind}_spectrum"], (a, b))
        for kind in ("energy", "enstrophy") for a, b in SLOPE_RANGES if b <= grid.k_cut
    }
    _save_npz(out, arrays, compressed=True)
    manifest = {
        "case": case.name,
        "file": out.name,
        "format_version": FORMAT_VERSION,
        "sha256": sha256_of(out),
        "bytes": out.stat().st_size,
        "command": regenerate_command(case.name, output_dir)
        + (f" --backend torch --device {solver.split('/')[1]}" if solver.startswith("torch/") else ""),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_time_s": round(wall, 1),
        "solver": solver,
        "dns": {**case.parameters().__dict__, "forcing_amplitude": float(case.k_f)},
        "sampling": case.to_dict(),
        "n_samples": int(arrays["n_samples"]),
        "sigma_omega": sigma,
        "snapshot_interval": snapshot_interval,
        "snapshot_interval_eddy_turnovers": None if snapshot_interval is None else snapshot_interval * sigma,
        "max_cfl": float(np.max(series["cfl"])),
        "cfl_limit": float(model_cfl_limit),
        "stationarity": stationarity,
        "resolution": resolution,
        "spectral_slopes": slopes,
        "shapes": {k: list(np.shape(v)) for k, v in sorted(arrays.items())},
    }
    if manifest["max_cfl"] > manifest["cfl_limit"]:
        # Stable runs above the bound exist (it is conservative, see TurbulenceModel.cfl_limit),
        # but a reference should not rely on it.
        message = (f"{case.name}: the DNS reached CFL {manifest['max_cfl']:.3f}, above the solver's stability bound "
                   f"{manifest['cfl_limit']:.3f} (it stayed finite); regenerate with a smaller dt (now {case.dt}) "
                   f"for margin")  # fmt: skip
        log(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    mpath = manifest_path(case.name, out.parent)
    _atomic_write_bytes(mpath, lambda f: f.write((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()))
    log(f"wrote {out} ({manifest['bytes'] / 1e6:.2f} MB) and {mpath.name}; sigma_omega = {sigma:.4g}, wall {wall:.0f} s")
    return manifest


def _resolution_report(case, grid, r, coarse_stats, sigma) -> tuple[dict, dict]:
    """Evidence that the DNS resolves the enstrophy cascade (manifest ``"resolution"``), and the coarse run's
    time-mean arrays for the ``.npz`` (empty without a coarse pre-spin-up).

    ``z_cut_over_z_half_cut``: ``Z(k_cut) / Z(k_cut / 2)`` of the time-mean shell spectrum (a resolved
    spectrum falls by orders of magnitude over the last octave; a pile-up gives ~1). ``dissipation_resolved``:
    per LES size, the share of the viscous enstrophy dissipation ``2 nu sum k^2 Z(k)`` at shells ``k <= k_cut``
    of that LES (what an LES without closure dissipates of it). With a coarse pre-spin-up, its time-mean
    spectrum (second half of the coarse phase, ``coarse_*`` arrays) is compared with the DNS on the shells
    both resolve: ``coarse_max_log10_difference`` over ``k <= k_cut(coarse) / 2`` and the two ``sigma_omega``.
    """
    z = r["enstrophy_spectrum"]
    kc = grid.k_cut
    k = np.arange(z.shape[0])
    diss = k**2 * z
    report = {
        "k_cut": int(kc),
        "z_cut_over_z_half_cut": float(z[kc] / z[kc // 2]),
        "z_cut_over_z_peak": float(z[kc] / z[1:].max()),
        "dissipation_resolved": {
            str(n): float(diss[: SpectralGrid(n).k_cut + 1].sum() / diss[: kc + 1].sum()) for n in case.les_resolutions
        },
    }
    arrays: dict[str, np.ndarray] = {}
    if coarse_stats is not None and float(coarse_stats.a["count"]) > 0:
        c = float(coarse_stats.a["count"])
        zc = coarse_stats.a["z"] / c
        arrays["coarse_enstrophy_spectrum"] = zc
        arrays["coarse_energy_spectrum"] = coarse_stats.a["e"] / c
        arrays["coarse_sigma_omega"] = np.float64(np.sqrt(coarse_stats.a["w2"] / coarse_stats.a["w_n"]))
        kcc = coarse_stats.grid.k_cut
        both = slice(1, kcc // 2 + 1)
        report.update(
            coarse_n=int(case.coarse_n),
            coarse_samples=int(c),
            coarse_sigma_omega=float(arrays["coarse_sigma_omega"]),
            sigma_omega=float(sigma),
            coarse_z_cut_over_z_half_cut=float(zc[kcc] / zc[kcc // 2]),
            coarse_max_log10_difference=float(np.max(np.abs(np.log10(zc[both] / z[both])))),
            dns_z_at_coarse_cut_over_z_half=float(z[kcc] / z[kcc // 2]),
        )
    return report, arrays
