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

Removal (the companion paper's control; ``--removal sheep2`` / ``wolves1.5`` / ``both``)::

    python scripts/validate_predator_prey.py --removal sheep2 --runs 20      # ~1 min
    python scripts/validate_predator_prey.py --removal wolves1.5 --runs 20

As the repository's ``Wolf Sheep Predation bigworld_ConSheep2.nlogo`` / ``_ConWolves1.5.nlogo``:
uncontrolled until tick 1000, then every sheep (2 %) or wolf (1.5 %) is removed with that
probability per tick (NetLogo ``if ticks >= 1000 [ ask sheep [ if random-float 1000 < 20 [ die ] ] ]``,
after the wolves, before the grass), for 3,000 ticks in all (the files' run length). The
repository's controlled NetLogo means are only in binary ``.mat`` files, so the measured window
means (default ticks 2001-3000) are printed next to the equilibrium of the companion paper's
mechanistic ODE metamodel fitted to those NetLogo runs (``SWG_Case1_Mech_I_V.m``: logistic
grass, Lotka-Volterra sheep and wolves, proportional removal), which is context, not a target.
The check is qualitative: sheep culling collapses the wolves (to under a third) while sheep and
grass stay within 15 % of the uncontrolled state; wolf culling raises the sheep and lowers the
grass and the wolves; no run reaches the population cap. Measured values are in the report of
the change that added this mode (and printed by it).
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


#: Per-tick removal probabilities (p_sheep, p_wolf) of the repository's controlled NetLogo files.
REMOVAL_VARIANTS = {"sheep2": (0.02, 0.0), "wolves1.5": (0.0, 0.015), "both": (0.02, 0.015)}
#: Fitted parameters of the companion paper's mechanistic metamodel (``SWG_Case1_Mech_I_V.m``).
SWG_CASE1_PARAMS = (0.209782211319144, 4.50613392290133e-06, 2.38108020743778e-05, 1.27393787122488e-06,
                    0.00854743569403738, 1.37641724324446e-05, 1.50182377649022e-05, 0.0633574675792873)


def metamodel_equilibrium(u_sheep: float = 0.0, u_wolf: float = 0.0, p=SWG_CASE1_PARAMS) -> np.ndarray:
    """Equilibrium (grass, sheep, wolves) of the Case-1 ODE metamodel (coexistence if it exists):
    dG = p1 G - p2 G^2 - p3 G S, dS = p4 G S - p5 S - p6 S W - u_s S, dW = p7 S W - p8 W - u_w W."""
    p1, p2, p3, p4, p5, p6, p7, p8 = p
    s = (p8 + u_wolf) / p7
    g = (p1 - p3 * s) / p2
    w = (p4 * g - p5 - u_sheep) / p6
    if w < 0.0:  # no coexistence: the wolf-free equilibrium (grass-sheep subsystem)
        g = (p5 + u_sheep) / p4
        s, w = max(0.0, (p1 - p2 * g) / p3), 0.0
    return np.array([g, s, w])


def run_removal_validation(variant: str, runs: int = 20, ticks: int = 3000, start: int = 1000,
                           window: tuple[int, int] = (2001, 3000), seed: int = 0,
                           params: PredatorPreyParams | None = None, verbose: bool = True) -> dict:
    """Uncontrolled runs until tick ``start``, then per-tick removal of ``variant``; summary dict."""
    if variant not in REMOVAL_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(REMOVAL_VARIANTS)}, got {variant!r}")
    lo, hi = window
    if not 1 <= start < lo <= hi <= ticks:
        raise ValueError(f"need 1 <= start < window start <= window end <= ticks, got start={start}, "
                         f"window={window}, ticks={ticks}")
    params = params or PredatorPreyParams()
    rates = REMOVAL_VARIANTS[variant]
    schedule = np.zeros((ticks, 2))
    schedule[start:] = rates  # row k is tick k + 1, done with NetLogo's ``ticks`` = k
    PredatorPreyModel(params.replace(width=8, height=8, initial_sheep=2, initial_wolves=1), seed=0).step(2)
    means, pre, walls, capped, extinct = [], [], [], 0, 0
    for k, ss in enumerate(spawn_seeds(seed, runs)):
        t0 = time.perf_counter()
        model = PredatorPreyModel(params, seed=ss)
        counts = model.step(ticks, removal=schedule)
        walls.append(time.perf_counter() - t0)
        capped += int(model.status != 0)
        extinct += int(counts[-1, 1] == 0 or counts[-1, 2] == 0)
        means.append(counts[lo - 1 : hi].astype(float).mean(axis=0))
        pre.append(counts[max(0, start - 500) : start].astype(float).mean(axis=0))
        if verbose:
            print(f"run {k + 1:3d}/{runs}: window means grass {means[-1][0]:8.1f} sheep {means[-1][1]:7.1f} "
                  f"wolves {means[-1][2]:7.1f}  ({walls[-1]:.2f} s)", flush=True)
    m, before = np.array(means), np.array(pre).mean(axis=0)
    mean = m.mean(axis=0)
    sd = m.std(axis=0, ddof=1) if runs > 1 else np.zeros(3)
    ratio = mean / before
    if variant == "sheep2":
        ok = ratio[2] < 1 / 3 and abs(ratio[1] - 1) < 0.15 and abs(ratio[0] - 1) < 0.15
    elif variant == "wolves1.5":
        ok = ratio[1] > 1.05 and ratio[0] < 1.0 and ratio[2] < 1.0
    else:
        ok = ratio[2] < 1.0
    return {
        "variant": variant, "removal": list(rates), "runs": runs, "ticks": ticks, "control_start": start,
        "window": [lo, hi], "seed": seed, "fields": list(COUNT_FIELDS),
        "uncontrolled_mean_before_control": before.tolist(), "mean": mean.tolist(),
        "ratio_to_uncontrolled": ratio.tolist(), "sd_of_run_means": sd.tolist(),
        "standard_error": (sd / np.sqrt(runs)).tolist(),
        "metamodel_equilibrium": metamodel_equilibrium(*rates).tolist(),
        "metamodel_uncontrolled": metamodel_equilibrium().tolist(),
        "population_cap_hits": capped, "extinctions": extinct, "passed": bool(ok and capped == 0),
        "wall_s_per_run_mean": float(np.mean(walls)),
    }


def _main_removal(args) -> int:
    res = run_removal_validation(args.removal, args.runs, args.ticks or 3000, 1000,
                                 tuple(args.window) if args.window else (2001, 3000), args.seed,
                                 verbose=not args.quiet)
    print(f"\n{res['runs']} runs, removal {res['removal']} (p_sheep, p_wolf) per tick from tick "
          f"{res['control_start'] + 1}; means over ticks {res['window'][0]}-{res['window'][1]}:")
    print(f"{'':8s}{'before':>10s}{'simrl':>10s}{'ratio':>8s}{'s.e.':>8s}{'ODE eq.':>10s}{'ODE ratio':>10s}")
    for i, f in enumerate(res["fields"]):
        ode, ode0 = res["metamodel_equilibrium"][i], res["metamodel_uncontrolled"][i]
        print(f"{f:8s}{res['uncontrolled_mean_before_control'][i]:10.1f}{res['mean'][i]:10.1f}"
              f"{res['ratio_to_uncontrolled'][i]:8.3f}{res['standard_error'][i]:8.1f}{ode:10.1f}{ode / ode0:10.3f}")
    print(f"extinctions: {res['extinctions']}; population-cap hits: {res['population_cap_hits']}; "
          f"wall time per run {res['wall_s_per_run_mean']:.2f} s")
    print("PASS (qualitative)" if res["passed"] else "FAIL (qualitative check)")
    if args.json:
        _write_json(args.json, res)
    return 0 if res["passed"] else 1


def _write_json(path: str, res: dict) -> None:
    """Write ``res`` atomically (temporary file + rename)."""
    import os
    import tempfile

    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".json.tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(res, fh, indent=2)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--ticks", type=int, default=None, help="default 1000 (3000 with --removal)")
    ap.add_argument("--window", type=int, nargs=2, default=None, metavar=("START", "END"),
                    help="default 500 1000 (2001 3000 with --removal)")
    ap.add_argument("--removal", choices=["none", *REMOVAL_VARIANTS], default="none",
                    help="per-tick removal from tick 1000 as in the repository's controlled NetLogo files")
    ap.add_argument("--tolerance", type=float, default=0.05, help="relative tolerance (default 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the summary to this file")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    if args.removal != "none":
        return _main_removal(args)
    res = run_validation(args.runs, args.ticks or 1000, tuple(args.window) if args.window else (500, 1000),
                         args.seed, verbose=not args.quiet)
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
        _write_json(args.json, res)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
