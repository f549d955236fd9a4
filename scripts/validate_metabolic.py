"""Validate the toy-metabolic-pathway kernel against the published mean trajectories.

    python scripts/validate_metabolic.py                       # all cases, scale 0.1 (~5 min)
    python scripts/validate_metabolic.py --cases continuous --runs 8 --json out.json

Every rate is the MATLAB script's (``Met_Pathway_dataset_80k_20k_20k_10_10_*.m`` of
``LaboratoryForSystemsMedicine/Metamodeling-and-Control-of-Medical-Digital-Twins_2024``);
nothing is calibrated. Cases (published means as summarised in
``shared/references/digital_twin.md``, full-scale molecule counts):

* ``continuous``: feed 1.0 S per step, dilution 0.0005, 50,000 steps; steady state
  S 1,246, P 171, Q 177, R 106, T 304 (mean over steps 30,001-50,000 here).
* ``feed0.2``: the same with feed 0.2; S 233, R 29, T 48.
* ``batch``: closed system, 100,000 steps; S 20.5k, R 36.7k, T 61.4k at t = 1e5 (mean over
  the last 1,000 steps here).

The model runs at ``--scale`` (default 0.1: a 32 x 32 torus with the full model's
concentrations; counts are divided by ``effective_scale`` = 0.1024 before comparing). A case
passes when every published species is within ``--tolerance`` (default 10 %) of the mean over
runs. At scale 0.1 the continuous R and T are only ~10-30 molecules, so their run-to-run scatter
is several percent (printed as the standard error). Exit status 0 when all cases pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from simrl.physics.ecology import spawn_seeds
from simrl.physics.ecology.metabolic import METABOLITES, MetabolicBatch, MetabolicParams

#: case -> (params changes, steps, window (first, last) step, published {species: mean}).
CASES = {
    "continuous": (dict(mode="continuous", feed=1.0), 50_000, (30_001, 50_000),
                   {"S": 1246.0, "P": 171.0, "Q": 177.0, "R": 106.0, "T": 304.0}),
    "feed0.2": (dict(mode="continuous", feed=0.2), 50_000, (30_001, 50_000),
                {"S": 233.0, "R": 29.0, "T": 48.0}),
    "batch": (dict(mode="batch"), 100_000, (99_001, 100_000),
              {"S": 20500.0, "R": 36700.0, "T": 61400.0}),
}


def run_case(case: str, runs: int = 4, scale: float = 0.1, seed: int = 0, parallel: bool = False) -> dict:
    """Run one case and return its summary."""
    if case not in CASES:
        raise ValueError(f"case must be one of {sorted(CASES)}, got {case!r}")
    changes, steps, (lo, hi), published = CASES[case]
    params = MetabolicParams(scale=scale, **changes)
    every = 100 if hi - lo + 1 >= 10_000 else 10
    t0 = time.perf_counter()
    batch = MetabolicBatch(params, spawn_seeds(seed, runs), parallel=parallel)
    traj = batch.run(steps, every=every)  # row r = counts after step (r + 1) * every
    wall = time.perf_counter() - t0
    rows = slice((lo - 1) // every, hi // every)
    per_run = traj[:, rows, : len(METABOLITES)].mean(axis=1) / params.effective_scale
    mean = per_run.mean(axis=0)
    se = per_run.std(axis=0, ddof=1) / np.sqrt(runs) if runs > 1 else np.zeros(len(METABOLITES))
    sims = {m: float(mean[k]) for k, m in enumerate(METABOLITES)}
    return {
        "case": case, "runs": runs, "scale": scale, "side": params.side,
        "effective_scale": params.effective_scale, "steps": steps, "window": [lo, hi], "seed": seed,
        "published": published, "mean": sims,
        "standard_error": {m: float(se[k]) for k, m in enumerate(METABOLITES)},
        "relative_deviation": {m: sims[m] / v - 1.0 for m, v in published.items()},
        "status": batch.status.tolist(), "wall_s": wall,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--tolerance", type=float, default=0.10, help="relative tolerance (default 0.10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parallel", action="store_true", help="one model per thread")
    ap.add_argument("--json", help="also write the summaries to this file (atomically)")
    args = ap.parse_args(argv)

    results, all_ok = [], True
    for case in args.cases:
        res = run_case(case, args.runs, args.scale, args.seed, args.parallel)
        ok = all(abs(d) <= args.tolerance for d in res["relative_deviation"].values()) and not any(res["status"])
        res["passed"], res["tolerance"] = ok, args.tolerance
        all_ok &= ok
        results.append(res)
        print(f"\n{case}: {res['runs']} runs x {res['steps']} steps at scale {res['scale']} "
              f"(side {res['side']}), means over steps {res['window'][0]}-{res['window'][1]}, full-scale counts "
              f"({res['wall_s']:.0f} s)")
        print(f"{'':4s}{'published':>11s}{'simrl':>11s}{'dev':>9s}{'s.e.':>9s}")
        for m in METABOLITES:
            pub = res["published"].get(m)
            dev = f"{100 * res['relative_deviation'][m]:8.1f}%" if pub is not None else f"{'':9s}"
            pubs = f"{pub:11.0f}" if pub is not None else f"{'-':>11s}"
            print(f"{m:4s}{pubs}{res['mean'][m]:11.1f}{dev}{res['standard_error'][m]:9.1f}")
        print("PASS" if ok else f"FAIL (tolerance {100 * args.tolerance:.0f} %)")
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".json.tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(results, fh, indent=2)
        os.replace(tmp, args.json)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
