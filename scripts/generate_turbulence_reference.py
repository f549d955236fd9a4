"""Generate the reference DNS data of a 2-D turbulence case (spectra, vorticity PDF, filtered-DNS snapshots).

Spins a DNS up to statistical steady state (reports whether E and Z are stationary), records time-mean
enstrophy/energy spectra, the paper's directional spectra, log-spectrum moments and the vorticity PDF,
at the DNS resolution and for the filtered DNS at each LES resolution (16, 32, 64, 128), plus filtered
snapshots (LES initial conditions) spaced >= 1 large-eddy turnover apart. Details:
:mod:`simrl.physics.turbulence.reference` (data, cases) and
:mod:`simrl.physics.turbulence.reference_generator` (plan, checkpoints).

Usage (argparse)::

    python scripts/generate_turbulence_reference.py --case fhit_cpu            # writes simrl/data/turbulence/
    nice -n 10 python scripts/generate_turbulence_reference.py --case beta_cpu
    python scripts/generate_turbulence_reference.py --case fhit_paper        # 1024^2, Re = 20,000: ~1.5-2 h, one core
    python scripts/generate_turbulence_reference.py --case fhit_paper --backend torch --device cuda   # on a GPU
    python scripts/generate_turbulence_reference.py --case fhit_cpu --output-dir /tmp/ref \\
        --spinup-time 20 --averaging-time 40 --n-snapshots 10

Options: ``--case`` (``fhit_cpu`` default, ``beta_cpu``; the 1024^2 paper cases ``fhit_paper`` and
``beta_paper``, 1.5-2 h each on one CPU core after a 512^2 pre-spin-up; ``fhit_kf25_paper``, whose plan
still takes ~11 h), ``--output-dir``,
``--n-snapshots``, ``--spinup-time``, ``--averaging-time``, ``--sample-interval``, and for tests and
experiments ``--n`` (DNS grid), ``--dt``, ``--les-resolutions``; ``--checkpoint-seconds`` (default 60),
``--no-progress``; ``--backend numpy|torch`` (default numpy: the NumPy/Numba solver, FFTW when pyfftw is
installed, ``SIMRL_FFT=numpy|fftw`` to choose) and ``--device`` (torch device, default "cuda" when available,
else "cpu"): the torch backend (float64) keeps the DNS on the GPU, which is how the 1024^2 paper cases are
meant to be run. The solver used is recorded in the manifest; a checkpoint is only resumed by the same solver.

Resumable: progress is checkpointed atomically (``.<case>.checkpoint.npz`` in the output directory);
re-running the same command after an interruption continues where it stopped and produces the same data.
The outputs ``<case>.npz`` and ``<case>.json`` (manifest with SHA-256) are written atomically at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from simrl.physics.turbulence.reference import DEFAULT_CASE, REFERENCE_CASES
from simrl.physics.turbulence.reference_generator import BACKENDS, generate_reference


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", default=DEFAULT_CASE, choices=sorted(REFERENCE_CASES), help="reference case")
    p.add_argument("--output-dir", default=None, help="directory of <case>.npz/.json (default simrl/data/turbulence)")
    p.add_argument("--n-snapshots", type=int, default=None, help="filtered-DNS snapshots per LES resolution")
    p.add_argument("--spinup-time", type=float, default=None, help="discarded spin-up (model time)")
    p.add_argument("--averaging-time", type=float, default=None, help="averaging window (model time)")
    p.add_argument("--sample-interval", type=float, default=None, help="time between samples")
    p.add_argument("--n", type=int, default=None, help="DNS grid points per side (tests/experiments)")
    p.add_argument("--dt", type=float, default=None, help="DNS time step (tests/experiments)")
    p.add_argument("--les-resolutions", type=int, nargs="+", default=None, help="LES grids (default 16 32 64 128)")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0, help="wall time between checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--backend", default="numpy", choices=list(BACKENDS), help="DNS solver (torch: GPU-capable)")
    p.add_argument("--device", default=None, help="torch device of --backend torch (default cuda if available, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    case = REFERENCE_CASES[args.case]
    overrides = {
        "n_snapshots": args.n_snapshots,
        "spinup_time": args.spinup_time,
        "averaging_time": args.averaging_time,
        "sample_interval": args.sample_interval,
        "n": args.n,
        "dt": args.dt,
        "les_resolutions": None if args.les_resolutions is None else tuple(args.les_resolutions),
    }
    case = dataclasses.replace(case, **{k: v for k, v in overrides.items() if v is not None})
    if args.device is not None and args.backend != "torch":
        parser.error("--device needs --backend torch")
    try:
        manifest = generate_reference(
            case, args.output_dir, progress=not args.no_progress, checkpoint_seconds=args.checkpoint_seconds,
            backend=args.backend, device=args.device,
        )
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    if manifest is not None and not manifest["stationarity"]["stationary"]:
        print("warning: the averaging window is not stationary; use a longer --spinup-time", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
