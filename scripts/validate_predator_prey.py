"""Validate the sheep-wolves-grass kernel against NetLogo's uncontrolled big-world steady state.

    python scripts/validate_predator_prey.py                 # 100 runs x 1,000 ticks (~2 min)
    python scripts/validate_predator_prey.py --runs 20 --json out.json

Runs ``--runs`` independent uncontrolled models with the default (NetLogo big-world)
parameters, seeded by ``spawn_seeds(--seed, runs)``, one after another on one thread, and
averages each run's (grass, sheep, wolves) over ticks ``--window`` (inclusive; tick t is the
state after t ticks, NetLogo's plot point t). Passes when the mean over runs of these window
means lies within ``--tolerance`` (relative) of NetLogo's means over 100 runs
(``NETLOGO_BIGWORLD_STEADY_STATE``: grass 24,200, sheep 4,020, wolves 1,910). Prints the means,
their spread across runs (standard deviation of the run means, standard error, min/max), the
typical within-run fluctuation over the window, extinctions, and the wall time per run.
Exit status 0 on pass, 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from simrl.physics.ecology import (
    COUNT_FIELDS,
    NETLOGO_BIGWORLD_STEADY_STATE,
    PredatorPreyModel,
    PredatorPreyParams,
    spawn_seeds,
)


def run_validation(runs: int = 100, ticks: int = 1000, window: tuple[int, int] = (500, 1000),
                   seed: int = 0, params: PredatorPreyParams | None = None, verbose: bool = True) -> dict:
    """Run the uncontrolled models and return the summary (see the module docstring)."""
    lo, hi = window
    if not 1 <= lo <= hi <= ticks:
        raise ValueError(f"window must satisfy 1 <= start <= end <= ticks = {ticks}, got {window}")
    params = params or PredatorPreyParams()
    PredatorPreyModel(params.replace(width=8, height=8, initial_sheep=2, initial_wolves=1), seed=0).step(2)  # compile
    window_means, window_sds, walls, extinct = [], [], [], 0
    for k, ss in enumerate(spawn_seeds(seed, runs)):
        t0 = time.perf_counter()
        model = PredatorPreyModel(params, seed=ss)
        counts = model.step(ticks)
        walls.append(time.perf_counter() - t0)
        w = counts[lo - 1 : hi].astype(np.float64)  # row t-1 holds the state after tick t
        window_means.append(w.mean(axis=0))
        window_sds.append(w.std(axis=0))
        extinct += int(counts[-1, 1] == 0 or counts[-1, 2] == 0)
        if verbose:
            print(f"run {k + 1:3d}/{runs}: window means grass {w[:, 0].mean():8.1f} sheep {w[:, 1].mean():7.1f} "
                  f"wolves {w[:, 2].mean():7.1f}  ({walls[-1]:.2f} s)", flush=True)
    m = np.array(window_means)
    mean = m.mean(axis=0)
    sd = m.std(axis=0, ddof=1) if runs > 1 else np.zeros(3)
    target = np.array(NETLOGO_BIGWORLD_STEADY_STATE)
    return {
        "runs": runs, "ticks": ticks, "window": [lo, hi], "seed": seed, "params": params.__dict__,
        "fields": list(COUNT_FIELDS),
        "netlogo_mean": target.tolist(),
        "mean": mean.tolist(),
        "relative_deviation": (mean / target - 1).tolist(),
        "sd_of_run_means": sd.tolist(),
        "standard_error": (sd / np.sqrt(runs)).tolist(),
        "min_run_mean": m.min(axis=0).tolist(),
        "max_run_mean": m.max(axis=0).tolist(),
        "mean_within_run_sd": np.mean(window_sds, axis=0).tolist(),
        "extinctions": extinct,
        "wall_s_per_run_mean": float(np.mean(walls)),
        "wall_s_per_run_sd": float(np.std(walls)),
        "wall_s_total": float(np.sum(walls)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--window", type=int, nargs=2, default=(500, 1000), metavar=("START", "END"))
    ap.add_argument("--tolerance", type=float, default=0.05, help="relative tolerance (default 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the summary to this file")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    res = run_validation(args.runs, args.ticks, tuple(args.window), args.seed, verbose=not args.quiet)
    ok = all(abs(d) <= args.tolerance for d in res["relative_deviation"])
    res["tolerance"] = args.tolerance
    res["passed"] = ok
    print(f"\n{res['runs']} runs x {res['ticks']} ticks, means over ticks {res['window'][0]}-{res['window'][1]}:")
    header = (("NetLogo", 10), ("simrl", 10), ("dev", 8), ("sd(run)", 9), ("s.e.", 8),
              ("min", 9), ("max", 9), ("fluct.", 8))
    print(" " * 8 + "".join(f"{h:>{w}s}" for h, w in header))
    for i, f in enumerate(res["fields"]):
        print(f"{f:8s}{res['netlogo_mean'][i]:10.0f}{res['mean'][i]:10.1f}{100 * res['relative_deviation'][i]:7.2f}%"
              f"{res['sd_of_run_means'][i]:9.1f}{res['standard_error'][i]:8.1f}{res['min_run_mean'][i]:9.1f}"
              f"{res['max_run_mean'][i]:9.1f}{res['mean_within_run_sd'][i]:8.1f}")
    print(f"extinctions: {res['extinctions']}; wall time per run {res['wall_s_per_run_mean']:.2f} "
          f"+- {res['wall_s_per_run_sd']:.2f} s (total {res['wall_s_total']:.0f} s, one thread)")
    print("PASS" if ok else f"FAIL (tolerance {100 * args.tolerance:.1f} %)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
