"""Reference DNS statistics and filtered-DNS initial conditions for the LES-closure environments.

The reward of the closure agents compares the LES enstrophy spectrum with a DNS one, the evaluation
compares vorticity PDFs, and the LES episodes start from coarse-grained DNS snapshots (Mojgani et al.,
arXiv 2312.00907; reference ``turbulence.md`` sects. 1, 2 and 7). This module defines the reference
cases, the data they produce and its loader; :mod:`.reference_generator` (driven by
``scripts/generate_turbulence_reference.py``) produces the files.

Cases (:data:`REFERENCE_CASES`):

================  =====  ==========  =====  ====  ======  =====  ========================================
case              N      nu          dt     k_f   beta    alpha  status
================  =====  ==========  =====  ====  ======  =====  ========================================
``fhit_cpu``      256    2e-3        2e-3   4     0       0.1    default; shipped in ``simrl/data/turbulence``
``beta_cpu``      256    4e-3        1/640  4     20      0.1    shipped
``fhit_paper``    1024   5e-5        4e-4   4     0       0.1    shipped (default of ``-v1``); 512^2 spin-up
``beta_paper``    1024   5e-5        4e-4   4     20      0.1    generated the same way (see README)
``fhit_kf25_paper`` 1024 5e-5        5e-4   25    0       0.1    config only (LES N >= 128)
================  =====  ==========  =====  ====  ======  =====  ========================================

The paper cases (Re = 20,000) run on one CPU core: 40 time units (4 drag times) on a 512^2 grid at
dt = 6.25e-4 (13 ms per step), the field refined spectrally to 1024^2, 3 time units for the small
scales to fill in, then 20 time units of averaging at dt = 4e-4 (75-110 ms per step, depending on what
else runs): 6,680 s for the shipped ``fhit_paper``. dt = 4e-4 kept the grid CFL number <= 0.56; the
paper's AB2 step 5e-4 is not needed for stability but 4e-4 leaves margin. 32 filtered snapshots 0.5 time
units (~3 eddy turnovers) apart over the first 16 time units of the window, at every LES size: the first
16 for training, the last 16 held out. The manifest's ``"resolution"`` compares the 1024^2 spectrum with
the 512^2 run's (within 0.07 decades on k <= 85; sigma_omega 6.02 vs 6.11, the paper's 6.07). Known
shortfalls of the shipped ``fhit_paper`` (strict xfails in the tests): with the 2/3 rule the 1024^2 grid is
marginal at nu = 5e-5 (Z(341)/Z(170) = 0.07; the enstrophy-dissipation spectrum at the cutoff is 16 % of
its peak), and the 20-unit window (2 drag times) is not stationary to 15 % (E 1.75 / 1.51, Z 20.8 / 16.5
between its halves). The CPU cases resolve the enstrophy
cascade on 256^2 (2/3-rule cutoff k = 85) with a 40-80x larger viscosity: the time-mean enstrophy
spectrum falls monotonically by more than two orders of magnitude over the last octave before the
cutoff, with no pile-up (checked by ``tests/physics/test_turbulence_reference.py`` on the shipped data).
How nu was chosen (fhit, 30-time-unit trial runs, Z(85)/Z(42)): 0.05 at nu = 1e-3 with the spectrum flat
over k = 80..85 (under-resolved), 7e-3 at nu = 2e-3, 5e-4 at nu = 4e-3. ``fhit_cpu`` takes nu = 2e-3, the
smallest resolved one, which leaves a third of the viscous dissipation ``2 nu k^2 Z(k)`` above the 64^2
LES cutoff (k = 21), so that LES still needs a closure; shipped: Z(85)/Z(42) = 8.7e-3, sigma_omega = 5.20
(the paper's 1024^2 DNS: 6.07). The beta case is more energetic (sigma_omega = 9.3 at nu = 2e-3, where
Z(85)/Z(42) was only 2e-2), so it takes nu = 4e-3, and dt = 1/640 for its faster jets (grid CFL <= ~0.8).

Data (all spectra are *sums over modes* as in :mod:`.diagnostics`, so ``sum_k Z(k)`` is the mean
enstrophy ``<omega^2>/2``; time means over ``n_samples`` samples taken every ``sample_interval`` after the
spin-up):

* DNS resolution: shell spectra ``enstrophy_spectrum``, ``energy_spectrum`` on ``k = 0 .. n_shells-1``;
  the paper reward's directional spectra ``paper_spectrum["x" | "y" | "xy"]``
  (:func:`.diagnostics.paper_enstrophy_spectrum`, ``m = 0 .. N/2-1``); ``log_k`` (``1 .. k_cut``) with
  the per-shell mean and variance of ``log Z(k)`` over the samples (for a normalised log-spectrum
  reward); the vorticity PDF on fixed bins of ``omega / sigma_omega`` and ``sigma_omega = sqrt(<omega^2>)``.
* per LES resolution ``n`` (:class:`LESReference`): the same statistics of the *filtered DNS*: each
  sample coarse-grained to ``n`` (:func:`.diagnostics.coarse_grain`) and projected on the LES grid's
  kept modes (2/3 rule), i.e. exactly the field an LES started from it holds; the DNS shell spectra
  truncated to the LES cutoff (``dns_enstrophy_spectrum``, ``k <= k_cut(n)``); and ``snapshots``:
  ``(M, n, n//2+1)`` complex filtered-DNS vorticity fields, spaced ``snapshot_interval`` apart (>= 1
  large-eddy turnover), the LES initial conditions. PDFs of the filtered DNS use the *DNS* sigma
  (as the reference's ``pdf_case0*_FDNS`` files).

Files: ``<case>.npz`` plus a manifest ``<case>.json`` holding the SHA-256, the array shapes, the DNS
parameters, the stationarity check and the command that made it. :func:`load_reference` verifies them
and raises :class:`ReferenceDataError` naming the regenerate command when anything is wrong.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np

from simrl.atomic_io import sha256_file
from simrl.physics.turbulence.parameters import PAPER_ALPHA, PAPER_DT, PAPER_NU, TurbulenceParameters

FORMAT_VERSION = 1
"""Version of the ``.npz`` layout; bumped when keys change (old files then fail to load with the command)."""

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "turbulence"
"""Where the shipped reference files live (``simrl/data/turbulence``)."""

GENERATOR_SCRIPT = "scripts/generate_turbulence_reference.py"

PDF_BINS = 100
"""Bins of the stored PDFs over ``[-pdf_n_sigma, pdf_n_sigma]`` (in units of the DNS sigma)."""

TAIL_THRESHOLDS = (3.0, 4.0, 5.0)
"""``P(|omega| > t sigma)`` is stored for these ``t``."""


class ReferenceDataError(RuntimeError):
    """The reference file of a case is missing, corrupt or stale; the message names the regenerate command."""


@dataclass(frozen=True)
class ReferenceCase:
    """DNS configuration and sampling plan of one reference case (see the module table).

    ``n``, ``nu``, ``alpha``, ``beta``, ``k_f``, ``dt``: the DNS (:class:`~.parameters.TurbulenceParameters`,
    forcing amplitude ``k_f``, 2/3 dealiasing). ``les_resolutions``: LES grids of the filtered-DNS data.
    ``spinup_time``: discarded start (the drag time is ``1/alpha = 10``). ``averaging_time``: time over which
    the statistics are averaged, one sample every ``sample_interval``. ``n_snapshots``: filtered-DNS initial
    conditions per LES resolution (``max_snapshots_large`` for ``n >= 128``, to keep the files small), evenly
    spaced over the averaging window. ``pdf_n_sigma``: PDF window (5 for k_f = 4, 8 for k_f = 25, as the
    reference's post-processing). ``seed``: of the random initial field. ``cpu``: regenerable here in < 30 min.

    Coarse pre-spin-up (the paper cases): with ``coarse_n > 0`` the run starts with ``coarse_spinup_time``
    on a ``coarse_n`` grid at step ``coarse_dt`` (same physics), then the field is refined spectrally
    (:func:`.diagnostics.spectral_refine`) to ``n`` and ``spinup_time`` more lets the small scales fill in
    before the averaging. The large scales equilibrate on the drag time ``1/alpha = 10`` and cost 5-6x
    less per time unit on a grid half as fine; the small scales of the enstrophy cascade adjust within a
    few eddy turnovers ``1/sigma_omega ~ 0.2``. The time-mean spectrum of the second half of the coarse
    phase is kept as a resolution check (manifest ``"resolution"``).

    ``les_dt_factor``: the default LES time step at ``n_les`` is ``les_dt_factor * dt * n / n_les`` (the DNS
    step scaled to the LES grid at the same CFL number, times the factor); 0 keeps the DNS step (the CPU cases,
    whose DNS step is already an LES-sized one). It does not change the DNS, so it is not part of a
    checkpoint's identity.
    """

    name: str
    n: int
    nu: float
    alpha: float
    beta: float
    k_f: int
    dt: float
    les_resolutions: tuple[int, ...] = (16, 32, 64, 128)
    spinup_time: float = 30.0
    averaging_time: float = 50.0
    sample_interval: float = 0.25
    n_snapshots: int = 20
    max_snapshots_large: int = 10
    pdf_n_sigma: float = 5.0
    seed: int = 0
    cpu: bool = True
    description: str = ""
    coarse_n: int = 0
    coarse_dt: float = 0.0
    coarse_spinup_time: float = 0.0
    les_dt_factor: float = 0.0

    def parameters(self) -> TurbulenceParameters:
        """The DNS's :class:`~.parameters.TurbulenceParameters`."""
        return TurbulenceParameters(
            n=self.n, nu=self.nu, alpha=self.alpha, beta=self.beta, k_f=self.k_f, dt=self.dt, dealias=True
        )

    def coarse_parameters(self) -> TurbulenceParameters | None:
        """The :class:`~.parameters.TurbulenceParameters` of the coarse pre-spin-up (None without one)."""
        if not self.coarse_n:
            return None
        if self.coarse_n % 2 or not 0 < self.coarse_n < self.n or self.coarse_dt <= 0 or self.coarse_spinup_time <= 0:
            raise ValueError(
                f"case {self.name!r}: the coarse pre-spin-up needs an even coarse_n in (0, n = {self.n}), "
                f"coarse_dt > 0 and coarse_spinup_time > 0; got coarse_n={self.coarse_n!r}, "
                f"coarse_dt={self.coarse_dt!r}, coarse_spinup_time={self.coarse_spinup_time!r}"
            )
        return TurbulenceParameters(
            n=self.coarse_n, nu=self.nu, alpha=self.alpha, beta=self.beta, k_f=self.k_f, dt=self.coarse_dt, dealias=True
        )

    def les_dt(self, n_les: int) -> float:
        """The default LES time step at resolution ``n_les`` (see ``les_dt_factor``)."""
        return self.les_dt_factor * self.dt * self.n / n_les if self.les_dt_factor else self.dt

    def snapshots_for(self, n_les: int) -> int:
        """Number of stored snapshots at LES resolution ``n_les``."""
        return min(self.n_snapshots, self.max_snapshots_large) if n_les >= 128 else self.n_snapshots

    def to_dict(self) -> dict:
        d = asdict(self)
        d["les_resolutions"] = list(self.les_resolutions)
        return d


REFERENCE_CASES: dict[str, ReferenceCase] = {
    "fhit_cpu": ReferenceCase(
        "fhit_cpu", n=256, nu=2e-3, alpha=PAPER_ALPHA, beta=0.0, k_f=4, dt=2e-3, seed=1,
        description="2D forced homogeneous isotropic turbulence, k_f = 4, 256^2 DNS with nu = 2e-3 (CPU default)",
    ),
    "beta_cpu": ReferenceCase(
        "beta_cpu", n=256, nu=4e-3, alpha=PAPER_ALPHA, beta=20.0, k_f=4, dt=1.0 / 640.0, spinup_time=40.0, seed=2,
        description="beta-plane turbulence (zonal jets), k_f = 4, beta = 20, 256^2 DNS with nu = 4e-3 (CPU)",
    ),
    # The paper cases at Re = 20,000 on the CPU: 40 time units at 512^2 (dt = 6.25e-4, 13 ms/step), then 3 at
    # 1024^2 to fill in the small scales and 20 of averaging (dt = 4e-4: measured grid CFL <= 0.56; 75-110
    # ms/step on one core). 32 snapshots 0.5 time units (~3 eddy turnovers) apart: 16 train, 16 held out.
    "fhit_paper": ReferenceCase(
        "fhit_paper", n=1024, nu=PAPER_NU, alpha=PAPER_ALPHA, beta=0.0, k_f=4, dt=4e-4,
        les_resolutions=(16, 32, 64, 128), spinup_time=3.0, averaging_time=20.0, n_snapshots=32,
        max_snapshots_large=32, seed=1, cpu=False, coarse_n=512, coarse_dt=6.25e-4, coarse_spinup_time=40.0,
        les_dt_factor=0.5,
        description="Mojgani et al. case 1 (Re = 20,000, k_f = 4), 1024^2 after a 512^2 spin-up, ~1.5 h on one CPU core",
    ),
    "beta_paper": ReferenceCase(
        "beta_paper", n=1024, nu=PAPER_NU, alpha=PAPER_ALPHA, beta=20.0, k_f=4, dt=4e-4,
        les_resolutions=(16, 32, 64, 128), spinup_time=3.0, averaging_time=20.0, n_snapshots=32,
        max_snapshots_large=32, seed=2, cpu=False, coarse_n=512, coarse_dt=6.25e-4, coarse_spinup_time=40.0,
        les_dt_factor=0.5,
        description="Mojgani et al. case 2 (beta = 20, zonal jets), 1024^2 after a 512^2 spin-up, ~1.5 h on one CPU core",
    ),
    "fhit_kf25_paper": ReferenceCase(
        "fhit_kf25_paper", n=1024, nu=PAPER_NU, alpha=PAPER_ALPHA, beta=0.0, k_f=25, dt=PAPER_DT,
        les_resolutions=(128, 256), spinup_time=100.0, averaging_time=100.0, pdf_n_sigma=8.0, seed=4, cpu=False,
        description="Mojgani et al. case 4 (k_f = 25), 1024^2: config only; LES needs N >= 78 to hold k_f",
    ),
}
"""Reference cases by name (module table)."""

DEFAULT_CASE = "fhit_cpu"


def reference_case(case: str) -> ReferenceCase:
    """The :class:`ReferenceCase` called ``case`` or a ValueError naming the accepted ones."""
    if isinstance(case, ReferenceCase):
        return case
    try:
        return REFERENCE_CASES[case]
    except (KeyError, TypeError):
        raise ValueError(f"unknown reference case {case!r}; accepted: {sorted(REFERENCE_CASES)}") from None


def reference_path(case: str, directory: str | Path | None = None) -> Path:
    """Path of the ``.npz`` file of ``case`` (its manifest is the same path with ``.json``)."""
    c = reference_case(case)
    return Path(DATA_DIR if directory is None else directory) / f"{c.name}.npz"


def manifest_path(case: str, directory: str | Path | None = None) -> Path:
    """Path of the JSON manifest beside :func:`reference_path`."""
    return reference_path(case, directory).with_suffix(".json")


def regenerate_command(case: str, directory: str | Path | None = None) -> str:
    """The shell command that (re)creates the reference file of ``case``."""
    name = reference_case(case).name
    cmd = f"python {GENERATOR_SCRIPT} --case {name}"
    if directory is not None and Path(directory).resolve() != DATA_DIR:
        cmd += f" --output-dir {directory}"
    return cmd


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file at ``path`` (the manifest's checksum)."""
    return sha256_file(path)


# ----------------------------------------------------------------------------------------
# Data classes
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PDFReference:
    """Time-mean PDF of ``omega / sigma`` on fixed bins and its tails (``sigma`` = the DNS ``sigma_omega``)."""

    bin_edges: np.ndarray
    density: np.ndarray
    sigma: float
    std: float
    kurtosis: float
    tail_fractions: dict

    @property
    def bin_centers(self) -> np.ndarray:
        return 0.5 * (self.bin_edges[1:] + self.bin_edges[:-1])


@dataclass(frozen=True)
class LESReference:
    """Filtered-DNS statistics and initial conditions at one LES resolution ``n`` (module doc).

    ``k`` (n_shells(n),) with ``enstrophy_spectrum``/``energy_spectrum`` of the filtered DNS;
    ``dns_enstrophy_spectrum``/``dns_energy_spectrum``: the DNS shell spectra for ``k = 0 .. k_cut(n)``;
    ``paper_spectrum`` ("x", "y", "xy"; ``m = 0 .. n/2-1``) of the filtered DNS and ``dns_paper_spectrum``
    of the DNS truncated to the same ``m``; ``log_k = 1 .. k_cut(n)`` with ``log_enstrophy_mean/var``
    of the filtered DNS; ``pdf``; ``sigma_omega`` of the filtered DNS; ``snapshots`` (M, n, n//2+1)
    complex128 with their DNS times ``snapshot_times``.
    """

    n: int
    k: np.ndarray
    enstrophy_spectrum: np.ndarray
    energy_spectrum: np.ndarray
    dns_enstrophy_spectrum: np.ndarray
    dns_energy_spectrum: np.ndarray
    paper_spectrum: dict
    dns_paper_spectrum: dict
    log_k: np.ndarray
    log_enstrophy_mean: np.ndarray
    log_enstrophy_var: np.ndarray
    pdf: PDFReference
    sigma_omega: float
    snapshots: np.ndarray
    snapshot_times: np.ndarray

    def __repr__(self) -> str:
        return f"LESReference(n={self.n}, snapshots={self.snapshots.shape}, sigma_omega={self.sigma_omega:.4g})"


@dataclass(frozen=True)
class ReferenceData:
    """Everything stored for one reference case (module doc). ``les[n]`` holds the LES-resolution data."""

    case: str
    parameters: dict
    les_resolutions: tuple[int, ...]
    k: np.ndarray
    enstrophy_spectrum: np.ndarray
    energy_spectrum: np.ndarray
    paper_spectrum: dict
    log_k: np.ndarray
    log_enstrophy_mean: np.ndarray
    log_enstrophy_var: np.ndarray
    pdf: PDFReference
    sigma_omega: float
    les: dict = field(default_factory=dict)
    series: dict = field(default_factory=dict)  # "time", "energy", "enstrophy", "cfl" after every chunk (spin-up too)
    stationarity: dict = field(default_factory=dict)
    n_samples: int = 0
    manifest: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        p = self.parameters
        return (
            f"ReferenceData(case={self.case!r}, n={p.get('n')}, nu={p.get('nu')}, beta={p.get('beta')}, "
            f"les_resolutions={self.les_resolutions}, n_samples={self.n_samples}, sigma_omega={self.sigma_omega:.4g})"
        )

    @property
    def snapshots(self) -> dict[int, np.ndarray]:
        """``{n_les: (M, n_les, n_les//2+1) complex128}``: the filtered-DNS initial conditions."""
        return {n: les.snapshots for n, les in self.les.items()}

    def at(self, n_les: int) -> LESReference:
        """The :class:`LESReference` of resolution ``n_les`` or a ValueError naming the available ones."""
        try:
            return self.les[n_les]
        except (KeyError, TypeError):
            raise ValueError(
                f"no reference data at LES resolution {n_les!r} for case {self.case!r}; available: {sorted(self.les)}"
            ) from None

    @property
    def turbulence_parameters(self) -> TurbulenceParameters:
        """The DNS parameters as :class:`~.parameters.TurbulenceParameters`."""
        p = self.parameters
        return TurbulenceParameters(
            n=p["n"], nu=p["nu"], alpha=p["alpha"], beta=p["beta"], k_f=p["k_f"], dt=p["dt"], dealias=True
        )


# ----------------------------------------------------------------------------------------
# Layout of the .npz file (shared with the generator)
# ----------------------------------------------------------------------------------------

SPECTRUM_DIRECTIONS = ("x", "y", "xy")


def les_key(n: int, name: str) -> str:
    return f"les{n}_{name}"


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)  # own copy
    a.setflags(write=False)
    return a


def _pdf_from(arrays: dict, prefix: str) -> PDFReference:
    tails = arrays[prefix + "tail_fractions"]
    return PDFReference(
        bin_edges=_frozen(arrays["pdf_bin_edges"]),
        density=_frozen(arrays[prefix + "pdf_density"]),
        sigma=float(arrays["sigma_omega"]),
        std=float(arrays[prefix + "sigma_omega"]),
        kurtosis=float(arrays[prefix + "kurtosis"]),
        tail_fractions={float(t): float(v) for t, v in zip(TAIL_THRESHOLDS, tails)},
    )


def _fail(case: str, directory, what: str) -> ReferenceDataError:
    return ReferenceDataError(
        f"turbulence reference data for case {case!r} {what}; regenerate it with: "
        f"{regenerate_command(case, directory)}"
    )


def load_reference(case: str = DEFAULT_CASE, n_les: int | None = None, directory: str | Path | None = None) -> ReferenceData:
    """Load and verify the reference data of ``case`` (see the module doc).

    ``n_les``: keep only that LES resolution in ``data.les`` (None: all). ``directory``: where the files
    are (default: the shipped ``simrl/data/turbulence``). The file's SHA-256 must match its manifest and
    every array must have the manifest's shape; otherwise :class:`ReferenceDataError` names the
    regenerate command. Results are cached per ``(case, n_les, directory)`` and file stamp; arrays are read-only.

    >>> data = load_reference("fhit_cpu", n_les=64)
    >>> les = data.at(64)
    >>> les.snapshots.shape, int(les.log_k[-1]), bool(abs(data.enstrophy_spectrum.sum() - data.sigma_omega**2 / 2) < 1e-9)
    ((20, 64, 33), 21, True)
    """
    c = reference_case(case)
    if n_les is not None and (isinstance(n_les, bool) or not isinstance(n_les, Integral)):
        raise ValueError(f"n_les must be None or an integer, got {n_les!r}")
    directory = None if directory is None else str(Path(directory).resolve())
    path = reference_path(c.name, directory)
    # the files' size and mtime are part of the cache key: a replaced or damaged file is verified again
    stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None for p in (path, path.with_suffix(".json")))
    return _load_cached(c.name, None if n_les is None else int(n_les), directory, stamp)


@functools.lru_cache(maxsize=16)
def _load_cached(case: str, n_les: int | None, directory: str | None, stamp: tuple = ()) -> ReferenceData:
    path = reference_path(case, directory)
    mpath = path.with_suffix(".json")
    if not path.is_file():
        raise _fail(case, directory, f"is missing ({path} not found)")
    if not mpath.is_file():
        raise _fail(case, directory, f"has no manifest ({mpath} not found)")
    try:
        manifest = json.loads(mpath.read_text())
        expected_sha = manifest["sha256"]
        shapes = manifest["shapes"]
        version = manifest["format_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(case, directory, f"has an unreadable manifest {mpath} ({exc})") from None
    if version != FORMAT_VERSION:
        raise _fail(case, directory, f"has format version {version!r}, this code reads {FORMAT_VERSION}")
    actual = sha256_of(path)
    if actual != expected_sha:
        raise _fail(case, directory, f"is corrupt: SHA-256 of {path} is {actual}, the manifest says {expected_sha}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise _fail(case, directory, f"cannot be read from {path} ({type(exc).__name__}: {exc})") from None
    if set(arrays) != set(shapes):
        missing = sorted(set(shapes) - set(arrays))
        extra = sorted(set(arrays) - set(shapes))
        raise _fail(case, directory, f"does not match its manifest (missing keys {missing}, unexpected {extra})")
    for key, shape in shapes.items():
        if list(arrays[key].shape) != list(shape):
            raise _fail(case, directory, f"has array {key!r} of shape {arrays[key].shape}, manifest says {tuple(shape)}")
    resolutions = [int(n) for n in arrays.get("les_resolutions", [])]
    if n_les is not None and n_les not in resolutions:
        raise ValueError(f"no reference data at LES resolution {n_les} for case {case!r}; available: {resolutions}")
    try:
        return _build(case, arrays, manifest, n_les)
    except (KeyError, ValueError) as exc:
        raise _fail(case, directory, f"is inconsistent ({type(exc).__name__}: {exc})") from None


def _build(case: str, a: dict, manifest: dict, n_les: int | None) -> ReferenceData:
    resolutions = tuple(int(n) for n in a["les_resolutions"])
    les = {}
    for n in resolutions if n_les is None else (n_les,):
        g = lambda name: a[les_key(n, name)]  # noqa: E731
        les[n] = LESReference(
            n=n,
            k=_frozen(np.arange(g("enstrophy_spectrum").shape[0])),
            enstrophy_spectrum=_frozen(g("enstrophy_spectrum")),
            energy_spectrum=_frozen(g("energy_spectrum")),
            dns_enstrophy_spectrum=_frozen(g("dns_enstrophy_spectrum")),
            dns_energy_spectrum=_frozen(g("dns_energy_spectrum")),
            paper_spectrum={d: _frozen(g(f"paper_spectrum_{d}")) for d in SPECTRUM_DIRECTIONS},
            dns_paper_spectrum={d: _frozen(a[f"paper_spectrum_{d}"][: n // 2]) for d in SPECTRUM_DIRECTIONS},
            log_k=_frozen(np.arange(1, g("log_enstrophy_mean").shape[0] + 1)),
            log_enstrophy_mean=_frozen(g("log_enstrophy_mean")),
            log_enstrophy_var=_frozen(g("log_enstrophy_var")),
            pdf=_pdf_from(a, les_key(n, "")),
            sigma_omega=float(g("sigma_omega")),
            snapshots=_frozen(g("snapshots").astype(np.complex128)),
            snapshot_times=_frozen(g("snapshot_times")),
        )
    return ReferenceData(
        case=case,
        parameters=dict(manifest["dns"]),
        les_resolutions=resolutions if n_les is None else (n_les,),
        k=_frozen(np.arange(a["enstrophy_spectrum"].shape[0])),
        enstrophy_spectrum=_frozen(a["enstrophy_spectrum"]),
        energy_spectrum=_frozen(a["energy_spectrum"]),
        paper_spectrum={d: _frozen(a[f"paper_spectrum_{d}"]) for d in SPECTRUM_DIRECTIONS},
        log_k=_frozen(np.arange(1, a["log_enstrophy_mean"].shape[0] + 1)),
        log_enstrophy_mean=_frozen(a["log_enstrophy_mean"]),
        log_enstrophy_var=_frozen(a["log_enstrophy_var"]),
        pdf=_pdf_from(a, ""),
        sigma_omega=float(a["sigma_omega"]),
        les=les,
        series={k.removeprefix("series_"): _frozen(v) for k, v in a.items() if k.startswith("series_")},
        stationarity=dict(manifest.get("stationarity", {})),
        n_samples=int(a["n_samples"]),
        manifest=manifest,
    )
