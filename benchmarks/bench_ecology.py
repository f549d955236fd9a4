#!/usr/bin/env python
"""Benchmarks of the ecology ABMs: the Numba cores against the Mesa 3 models of the same rules.

One run measures and prints (markdown tables, ratios first):

1. predator-prey (sheep-wolves-grass) -- agent-steps per second of ``PredatorPreyModel``
   against ``PredatorPreyMesa`` on the NetLogo big world (255 x 255, 2,500 sheep, 1,250
   wolves; Mesa only a few ticks, it is slow) and on a small world (51 x 51, same densities);
   the wall time of one 1,000-tick run of the full model; batched throughput for B = 1, 4, 16
   models per kernel call (serial and ``parallel=True``).
2. metabolic pathway -- the same for ``MetabolicModel`` against ``MetabolicPathwayMesa`` at
   scale 1 (100 x 100 torus, ~120,800 agents; Mesa: a couple of steps) and a small scale
   (0.02); steps per second at scale 1 and 0.1 (from the initial state, the most crowded one,
   and at the continuous steady state, feed 1.0, where only ~2,000 molecules remain); batched
   throughput for B = 1, 4, 16.

Agent-steps: the number of agents alive at the start of each timed step, summed (sheep +
wolves; metabolites + enzyme units). The predator-prey comparison starts both models from the
same state, warmed up for 500 ticks by the Numba core (``PredatorPreyMesa.from_state``), so
both run at the same population sizes; the metabolic one starts both from setup. The
single-model comparisons time CPU seconds of this process (``time.process_time``: robust to
other processes on a shared machine, both sides are single-threaded); the batched tables time
wall seconds (``parallel=True`` uses several threads). Every Numba timing excludes
compilation (a warm-up call first) and is the median of a few repeats; Mesa timings exclude
model construction. The goal of issue 4 is a Numba/Mesa ratio of at least 100.

Usage::

    nice -n 10 python benchmarks/bench_ecology.py            # ~5 minutes on 2 busy cores
    python benchmarks/bench_ecology.py --quick                # ~2 minutes
    python benchmarks/bench_ecology.py --json out/bench_ecology.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from simrl.physics.ecology import PredatorPreyBatch, PredatorPreyModel, PredatorPreyParams, spawn_seeds
from simrl.physics.ecology.mesa_models import MetabolicPathwayMesa, PredatorPreyMesa
from simrl.physics.ecology.metabolic import MetabolicBatch, MetabolicModel, MetabolicParams

GOAL_RATIO = 100.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def median_time(fn, repeats: int) -> float:
    """Median CPU seconds of ``fn()`` (single-threaded work)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


# --------------------------------------------------------------------------- predator-prey
def pp_numba_rate(state, ticks: int, repeats: int) -> tuple[float, float]:
    """(agent-steps/s, ticks/s) of the Numba core continuing ``state`` (CPU time)."""
    rates, tick_rates = [], []
    for r in range(repeats):
        model = PredatorPreyModel.from_snapshot(state, seed=100 + r)
        start = model.counts
        t0 = time.process_time()
        counts = model.step(ticks)
        dt = time.process_time() - t0
        alive = int(start[1] + start[2]) + int(counts[:-1, 1:].sum())
        rates.append(alive / dt)
        tick_rates.append(ticks / dt)
    return statistics.median(rates), statistics.median(tick_rates)


def pp_mesa_rate(state, ticks: int) -> tuple[float, float]:
    """The same for the Mesa model started from the same state (CPU time)."""
    model = PredatorPreyMesa.from_state(state, seed=1)
    alive, dt = 0, 0.0
    for _ in range(ticks):
        alive += model.sheep_count + model.wolf_count
        t0 = time.process_time()
        model.step()
        dt += time.process_time() - t0
    return alive / dt, ticks / dt


def bench_predator_prey(quick: bool) -> dict:
    out: dict = {"worlds": []}
    big = PredatorPreyParams()
    small = PredatorPreyParams(width=51, height=51, initial_sheep=100, initial_wolves=50)
    PredatorPreyModel(small, seed=0).step(2)  # compile
    for name, params, mesa_ticks, numba_ticks in (("255x255 (NetLogo big world)", big, 2 if quick else 4, 200),
                                                  ("51x51 (100 sheep, 50 wolves)", small, 50 if quick else 150, 1000)):
        log(f"predator-prey {name}: warm-up (500 ticks), then Numba ...")
        warm = PredatorPreyModel(params, seed=1)
        warm.step(500)
        state = warm.snapshot()
        nr, nt = pp_numba_rate(state, numba_ticks, 3)
        log(f"predator-prey {name}: Mesa ({mesa_ticks} ticks) ...")
        mr, mt = pp_mesa_rate(state, mesa_ticks)
        out["worlds"].append({"world": name, "numba_agent_steps_per_s": nr, "mesa_agent_steps_per_s": mr,
                              "numba_ticks_per_s": nt, "mesa_ticks_per_s": mt, "ratio": nr / mr})
    log("predator-prey: one 1,000-tick run of the big world ...")
    out["run_1000_ticks_s"] = median_time(lambda: PredatorPreyModel(big, seed=3).step(1000), 1 if quick else 3)
    out["run_1000_ticks_note"] = "CPU seconds from setup, one thread"
    batched = []
    for b in (1, 4, 16):
        for parallel in (False, True):
            batch = PredatorPreyBatch(big, spawn_seeds(5, b), parallel=parallel)
            batch.step(2)  # compile / warm
            ticks = 50 if quick else 100
            t0 = time.perf_counter()
            counts = batch.step(ticks)
            dt = time.perf_counter() - t0
            agents = int(counts[:, :, 1:].sum())
            batched.append({"B": b, "parallel": parallel, "model_ticks_per_s": b * ticks / dt,
                            "agent_steps_per_s": agents / dt})
            log(f"predator-prey batch B={b} parallel={parallel}: {b * ticks / dt:.0f} model-ticks/s")
    out["batched"] = batched
    return out


# --------------------------------------------------------------------------- metabolic
def met_numba_rate(params: MetabolicParams, steps: int, repeats: int, warm_state=None) -> tuple[float, float]:
    rates, step_rates = [], []
    for r in range(repeats):
        model = (MetabolicModel.from_snapshot(warm_state, seed=50 + r) if warm_state is not None
                 else MetabolicModel(params, seed=50 + r))
        c0 = model.counts()
        t0 = time.process_time()
        traj = model.run(steps, every=1)
        dt = time.process_time() - t0
        alive = int(c0.sum()) + int(traj[:-1].sum())
        rates.append(alive / dt)
        step_rates.append(steps / dt)
    return statistics.median(rates), statistics.median(step_rates)


def met_mesa_rate(params: MetabolicParams, steps: int) -> tuple[float, float]:
    model = MetabolicPathwayMesa(params, seed=1)
    alive, dt = 0, 0.0
    for _ in range(steps):
        alive += len(model.agents)
        t0 = time.process_time()
        model.step()
        dt += time.process_time() - t0
    return alive / dt, steps / dt


def bench_metabolic(quick: bool) -> dict:
    out: dict = {"scales": []}
    MetabolicModel(MetabolicParams(scale=0.01), seed=0).step(2)  # compile
    for scale, mesa_steps, numba_steps in ((1.0, 1 if quick else 2, 100), (0.02, 10 if quick else 30, 2000)):
        p = MetabolicParams(scale=scale)
        log(f"metabolic scale {scale}: Numba ...")
        nr, ns = met_numba_rate(p, numba_steps, 3)
        log(f"metabolic scale {scale}: Mesa ({mesa_steps} steps) ...")
        mr, ms = met_mesa_rate(p, mesa_steps)
        out["scales"].append({"scale": scale, "agents_at_start": int(p.initial_counts().sum()),
                              "numba_agent_steps_per_s": nr, "mesa_agent_steps_per_s": mr,
                              "numba_steps_per_s": ns, "mesa_steps_per_s": ms, "ratio": nr / mr})
    steps_table = []
    for scale in (1.0, 0.1):
        p = MetabolicParams(scale=scale)
        log(f"metabolic scale {scale}: steps/s from the initial state ...")
        _, initial = met_numba_rate(p, 200 if scale == 1.0 else 2000, 3)
        log(f"metabolic scale {scale}: warming up to the continuous steady state ...")
        warm = MetabolicModel(p, seed=9)
        warm.step(30_000 if scale < 1.0 else (15_000 if quick else 30_000))
        _, steady = met_numba_rate(p, 5000, 3, warm.snapshot())
        steps_table.append({"scale": scale, "initial_steps_per_s": initial, "steady_state_steps_per_s": steady,
                            "steady_state_molecules": int(warm.counts()[:5].sum())})
    out["steps_per_s"] = steps_table
    batched = []
    p = MetabolicParams(scale=0.1)
    for b in (1, 4, 16):
        for parallel in (False, True):
            batch = MetabolicBatch(p, spawn_seeds(7, b), parallel=parallel)
            batch.step(2)
            steps = 200 if quick else 500
            t0 = time.perf_counter()
            batch.step(steps)
            dt = time.perf_counter() - t0
            batched.append({"B": b, "parallel": parallel, "model_steps_per_s": b * steps / dt})
            log(f"metabolic batch B={b} parallel={parallel}: {b * steps / dt:.0f} model-steps/s")
    out["batched_scale_0.1_initial_state"] = batched
    return out


# --------------------------------------------------------------------------- report
def print_tables(res: dict) -> None:
    pp, met = res["predator_prey"], res["metabolic"]
    print("\n### Numba core vs Mesa 3 model (agent-steps per second, same rules, one run)\n")
    print("| model | world | Numba | Mesa | ratio | goal >= 100x |")
    print("|---|---|---:|---:|---:|---|")
    for w in pp["worlds"]:
        print(f"| predator-prey | {w['world']} | {w['numba_agent_steps_per_s']:.3g} | "
              f"{w['mesa_agent_steps_per_s']:.3g} | {w['ratio']:.0f}x | {'met' if w['ratio'] >= GOAL_RATIO else 'MISSED'} |")
    for s in met["scales"]:
        print(f"| metabolic | scale {s['scale']} ({s['agents_at_start']} agents) | {s['numba_agent_steps_per_s']:.3g} | "
              f"{s['mesa_agent_steps_per_s']:.3g} | {s['ratio']:.0f}x | {'met' if s['ratio'] >= GOAL_RATIO else 'MISSED'} |")
    print(f"\nPredator-prey, NetLogo big world: one 1,000-tick run takes {pp['run_1000_ticks_s']:.2f} CPU s "
          f"(from setup, one thread).")
    print("\n### Batched throughput (models x ticks per second; ratio to B = 1 serial)\n")
    print("| model | B | serial | ratio | parallel=True | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rows, key in (("predator-prey 255x255", pp["batched"], "model_ticks_per_s"),
                            ("metabolic scale 0.1", met["batched_scale_0.1_initial_state"], "model_steps_per_s")):
        ref = next(r[key] for r in rows if r["B"] == 1 and not r["parallel"])
        for b in (1, 4, 16):
            s = next(r[key] for r in rows if r["B"] == b and not r["parallel"])
            p = next(r[key] for r in rows if r["B"] == b and r["parallel"])
            print(f"| {name} | {b} | {s:.0f} | {s / ref:.2f} | {p:.0f} | {p / ref:.2f} |")
    print("\n### Metabolic steps per second (one model, one thread)\n")
    print("| scale | from the initial state | at the continuous steady state (feed 1) | molecules there |")  # CPU time
    print("|---|---:|---:|---:|")
    for s in met["steps_per_s"]:
        print(f"| {s['scale']} | {s['initial_steps_per_s']:.0f} | {s['steady_state_steps_per_s']:.0f} | "
              f"{s['steady_state_molecules']} |")
    print(f"\nload average: start {res['load_start']}, end {res['load_end']}; {res['machine']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="also write the results here (atomically)")
    args = ap.parse_args(argv)
    res = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
           "load_start": [round(v, 2) for v in os.getloadavg()]}
    res["predator_prey"] = bench_predator_prey(args.quick)
    res["metabolic"] = bench_metabolic(args.quick)
    res["load_end"] = [round(v, 2) for v in os.getloadavg()]
    print_tables(res)
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".json.tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(res, fh, indent=2)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
