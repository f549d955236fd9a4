#!/usr/bin/env python
"""Benchmarks of the three-body physics and environment against REBOUND and Gymnasium's SyncVectorEnv.

One run measures and prints three tables (see ``benchmarks/README.md``):

1. integrators -- the Pythagorean problem (Burrau; masses 3, 4, 5 at rest at (1, 3), (-2, -1),
   (1, -1), G = 1) with our IAS15 against REBOUND's IAS15 (both epsilon = 1e-9, PRS23 step),
   plus our Hermite and leapfrog, and REBOUND's leapfrog at the same dt;
2. environment -- env-steps/s of the native batched ``ThreeBodyVectorEnv`` against
   ``gymnasium.vector.SyncVectorEnv`` of single ``ThreeBodyEnv`` at N = 1, 16, 256, and the
   serial against the ``parallel=True`` (prange) kernel at N = 256;
3. compile -- Numba's first-use time in fresh interpreters, with an empty on-disk cache
   (compile) and again with the filled cache (load).

Every timing is the median of several repeats after a warm-up call (JIT compile or cache
load excluded); the tables lead with ratios because absolute times depend on the machine.

Usage::

    python benchmarks/bench_threebody.py            # full run, a few minutes on 2 cores
    python benchmarks/bench_threebody.py --quick    # about a minute
    python benchmarks/bench_threebody.py --json results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "simrl/ThreeBody-v0"
IAS15_EPSILON = 1e-9
#: Goal of the issue: our IAS15 within this factor of REBOUND per step, at equal accuracy.
IAS15_GOAL_RATIO = 2.0
#: "Equal accuracy": our |dE/E0| at most this factor above REBOUND's (or both below the floor).
ACCURACY_FACTOR = 10.0
ACCURACY_FLOOR = 1e-13
#: Goal of the issue: native batched env at least this much faster than SyncVectorEnv at N = 256.
ENV_GOAL_SPEEDUP = 20.0
ENV_GOAL_N = 256


# --------------------------------------------------------------------------- configuration
@dataclass
class Config:
    quick: bool
    repeats: int  # integrator timings
    env_repeats: int
    env_steps: dict[int, int]  # vector steps per repeat, by N
    env_sizes: tuple[int, ...]
    env_integrator: str
    leapfrog_dts: tuple[float, ...]
    compile_warm_repeats: int
    seed: int = 0
    repeats_override: int | None = None


def make_config(args: argparse.Namespace) -> Config:
    if args.quick:
        cfg = Config(
            quick=True,
            repeats=3,
            env_repeats=2,
            env_steps={1: 500, 16: 60, 256: 12},
            env_sizes=(1, 16, 256),
            env_integrator=args.env_integrator,
            leapfrog_dts=(1e-3, 1e-4),
            compile_warm_repeats=1,
        )
    else:
        cfg = Config(
            quick=False,
            repeats=7,
            env_repeats=5,
            # N = 256 runs one whole episode (100 steps), so the autoreset is inside the timing.
            env_steps={1: 2000, 16: 250, 256: 100},
            env_sizes=(1, 16, 256),
            env_integrator=args.env_integrator,
            leapfrog_dts=(1e-3, 1e-4, 1e-5),
            compile_warm_repeats=3,
        )
    if args.repeats is not None:
        cfg.repeats = cfg.env_repeats = cfg.repeats_override = max(1, args.repeats)
    return cfg


# --------------------------------------------------------------------------- formatting
def fmt_sig(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(digits - 1 - mag, 0)
    return f"{x:,.{decimals}f}"


def fmt_err(x: float | None) -> str:
    return "–" if x is None else f"{x:.1e}"


def fmt_ratio(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.2f}x"


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def median_time(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> tuple[float, Any]:
    """Median wall time of ``fn(setup())`` over ``repeats`` (setup untimed); also the last result."""
    times = []
    result = None
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            result = fn(arg)
            times.append(time.perf_counter() - start)
        finally:
            if gc_was_enabled:
                gc.enable()
    return statistics.median(times), result


# --------------------------------------------------------------------------- machine info
def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                key, value = (part.strip() for part in line.split(":", 1))
                fields.setdefault(key.lower(), value)
        if "model name" in fields:
            cpu = fields["model name"]
            if "cpu family" in fields and "model" in fields:
                cpu += f" (family {fields['cpu family']}, model {fields['model']})"
            if " hypervisor" in f" {fields.get('flags', '')} ":
                cpu += ", virtual machine"
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {"python": platform.python_version()}
    for mod in ("numpy", "numba", "rebound", "gymnasium"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001 - report, do not fail
            versions[mod] = f"unavailable ({type(exc).__name__})"
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "versions": versions,
        "loadavg_start": os.getloadavg(),
    }
    try:
        import numba

        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    except Exception:  # noqa: BLE001
        pass
    return info


def machine_lines(info: dict[str, Any]) -> list[str]:
    v = info["versions"]
    load = lambda t: ", ".join(f"{x:.2f}" for x in t)  # noqa: E731
    lines = [
        f"- CPU: {info['cpu']}; {info['cores']} logical cores ({info['usable_cores']} usable); "
        f"Numba threads: {info.get('numba_threads', '?')}",
        f"- Python {v['python']}, numpy {v['numpy']}, numba {v['numba']}, rebound {v['rebound']}, "
        f"gymnasium {v['gymnasium']}; {info['platform']}",
        f"- Load average (1, 5, 15 min) at start: {load(info['loadavg_start'])}"
        + (f"; at end: {load(info['loadavg_end'])}" if "loadavg_end" in info else ""),
    ]
    busy = max(info["loadavg_start"][0], info.get("loadavg_end", (0.0,))[0])
    if busy > 0.75 * (info["usable_cores"] or 1) + 1.0:
        lines.append(
            f"- WARNING: the machine was loaded (1-min load {busy:.2f} on {info['usable_cores']} cores, "
            "this benchmark itself counts about 1): absolute times are inflated and noisier; ratios less so."
        )
    return lines


# --------------------------------------------------------------------------- 1. integrators
def pythagorean() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Burrau's problem exactly as given to REBOUND (centre of mass already at the origin)."""
    pos = np.array([[1.0, 3.0, 0.0], [-2.0, -1.0, 0.0], [1.0, -1.0, 0.0]])
    vel = np.zeros((3, 3))
    mass = np.array([3.0, 4.0, 5.0])
    return pos, vel, mass


def energy(pos: np.ndarray, vel: np.ndarray, mass: np.ndarray) -> float:
    kinetic = 0.5 * float(np.sum(mass * np.sum(vel * vel, axis=1)))
    potential = 0.0
    n = len(mass)
    for i in range(n):
        for j in range(i + 1, n):
            potential -= mass[i] * mass[j] / float(np.linalg.norm(pos[i] - pos[j]))
    return float(kinetic + potential)


class OurRun:
    """One system in the batched kernel contract (B = 1)."""

    def __init__(self, name: str, param: float, t_end: float, chunks: int = 1) -> None:
        from simrl.physics.nbody.integrators import get_kernel

        self.kernel = get_kernel(name, parallel=False)
        self.param = param
        self.t_end = t_end
        self.chunks = chunks

    def setup(self) -> dict[str, np.ndarray]:
        pos, vel, mass = pythagorean()
        return {
            "pos": pos[None].copy(),
            "vel": vel[None].copy(),
            "mass": mass[None].copy(),
            "time": np.zeros(1),
            "t_end": np.zeros(1),
            "param": np.array([self.param]),
            "step_state": np.zeros(1),
            "force_evals": np.zeros(1, dtype=np.int64),
            "status": np.zeros(1, dtype=np.int64),
            "total_evals": np.zeros(1, dtype=np.int64),
        }

    def __call__(self, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        k = self.kernel
        for c in range(1, self.chunks + 1):
            a["t_end"][0] = self.t_end * c / self.chunks
            k(a["pos"], a["vel"], a["mass"], a["time"], a["t_end"], a["param"], a["step_state"], 10**9,
              a["force_evals"], a["status"])  # fmt: skip
            a["total_evals"] += a["force_evals"]
        return a


def ias15_step_counts(t_end: float, chunks: int = 1) -> tuple[int, int, int] | None:
    """Accepted and rejected IAS15 steps and force evaluations via ``ias15_run`` (same numerics)."""
    try:
        from simrl.physics.nbody.ias15 import ias15_run
    except ImportError:
        return None
    pos, vel, mass = pythagorean()
    t, step_state = 0.0, 0.0
    accepted = rejected = evals = 0
    for c in range(1, chunks + 1):
        out = ias15_run(pos, vel, mass, t, t_end * c / chunks, IAS15_EPSILON, step_state)
        t, step_state = out["time"], out["step_state"]
        accepted += out["accepted_steps"]
        rejected += out["rejected_steps"]
        evals += out["force_evals"]
    return accepted, rejected, evals


def rebound_sim(integrator: str, dt: float | None = None):
    import rebound

    sim = rebound.Simulation()
    sim.G = 1.0
    pos, _, mass = pythagorean()
    for m, p in zip(mass, pos):
        sim.add(m=float(m), x=float(p[0]), y=float(p[1]), z=float(p[2]))
    sim.move_to_com()
    sim.integrator = integrator
    if integrator == "ias15":
        sim.integrator.epsilon = IAS15_EPSILON  # the default; set explicitly
    if dt is not None:
        sim.dt = dt
    return sim


def rebound_run(integrator: str, t_end: float, repeats: int, dt: float | None = None, chunks: int = 1) -> dict[str, Any]:
    def setup():
        sim = rebound_sim(integrator, dt)
        return sim, sim.energy()

    def run(arg):
        sim, _ = arg
        for c in range(1, chunks + 1):
            sim.integrate(t_end * c / chunks)
        return arg

    run(setup())  # warm-up (first call into librebound)
    wall, (sim, e0) = median_time(run, repeats, setup)
    steps = int(sim.steps_done)
    return {"steps": steps, "wall_s": wall, "us_per_step": wall / steps * 1e6, "dE": abs((sim.energy() - e0) / e0)}


def our_run(name: str, param: float, t_end: float, repeats: int, chunks: int = 1) -> dict[str, Any]:
    runner = OurRun(name, param, t_end, chunks)
    runner(runner.setup())  # warm-up: JIT compile or cache load
    wall, a = median_time(runner, repeats, runner.setup)
    pos0, vel0, mass = pythagorean()
    e0 = energy(pos0, vel0, mass)
    evals = int(a["total_evals"][0])
    out: dict[str, Any] = {
        "force_evals": evals,
        "status": int(a["status"][0]),
        "wall_s": wall,
        "dE": abs((energy(a["pos"][0], a["vel"][0], mass) - e0) / e0),
        "rejected": 0,
        "steps_source": "force_evals - calls",
    }
    if name == "ias15":
        counts = ias15_step_counts(t_end, chunks)
        if counts is None:
            out["steps"] = None
            out["steps_source"] = "unavailable (no ias15_run)"
        else:
            accepted, rejected, evals_check = counts
            out["steps"], out["rejected"] = accepted, rejected
            out["steps_source"] = "ias15_run accepted_steps"
            if evals_check != evals:
                out["steps_source"] += f" (WARNING: ias15_run made {evals_check} force evaluations, kernel {evals})"
    else:
        # Hermite and leapfrog: one force evaluation at the start of each call, one per step.
        out["steps"] = evals - chunks
    out["us_per_step"] = wall / out["steps"] * 1e6 if out["steps"] else None
    return out


def bench_integrators(cfg: Config, log: Callable[[str], None]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    goals: list[dict[str, Any]] = []
    error = None
    try:
        import simrl.physics.nbody.ias15  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - the module may be mid-edit by another engineer
        error = f"{type(exc).__name__}: {exc}"
        log(f"  our IAS15 is not importable ({error}); IAS15 rows skipped")

    # --- IAS15 vs REBOUND IAS15
    cases = [(10.0, 1), (70.0, 1), (70.0, 700)]
    for t_end, chunks in cases:
        label = f"T={t_end:g}" + (f", {chunks} calls of 0.1" if chunks > 1 else "")
        log(f"  IAS15 {label} ...")
        reb = rebound_run("ias15", t_end, cfg.repeats, chunks=chunks)
        ours = None if error else our_run("ias15", IAS15_EPSILON, t_end, cfg.repeats, chunks)
        row = {"kind": "ias15", "case": label, "t_end": t_end, "chunks": chunks, "rebound": reb, "ours": ours}
        if ours is not None:
            row["ratio_per_run"] = ours["wall_s"] / reb["wall_s"]
            row["ratio_per_step"] = ours["us_per_step"] / reb["us_per_step"] if ours["us_per_step"] else None
            row["ratio_steps"] = ours["steps"] / reb["steps"] if ours["steps"] else None
            row["accuracy_ok"] = bool(ours["dE"] <= max(ACCURACY_FACTOR * reb["dE"], ACCURACY_FLOOR))
            if chunks == 1:
                met = row["ratio_per_step"] is not None and row["ratio_per_step"] <= IAS15_GOAL_RATIO and row["accuracy_ok"]
                goals.append(
                    {
                        "goal": f"IAS15 within {IAS15_GOAL_RATIO:g}x of REBOUND per step at equal accuracy, {label}",
                        "value": row["ratio_per_step"],
                        "accuracy_ok": row["accuracy_ok"],
                        "met": bool(met),
                    }
                )
        rows.append(row)
    if error:
        goals.append({"goal": f"IAS15 within {IAS15_GOAL_RATIO:g}x of REBOUND per step", "met": None, "error": error})

    # --- Hermite for context (relative to our IAS15 run of the same length, else REBOUND's)
    ias_wall = {r["t_end"]: (r["ours"] or r["rebound"])["wall_s"] for r in rows if r["chunks"] == 1}
    ias_is_ours = error is None
    for t_end in (10.0, 70.0):
        for eta in (0.03, 0.003):
            log(f"  Hermite eta={eta:g} T={t_end:g} ...")
            ours = our_run("hermite", eta, t_end, cfg.repeats)
            rows.append(
                {
                    "kind": "hermite",
                    "case": f"eta={eta:g}, T={t_end:g}",
                    "t_end": t_end,
                    "param": eta,
                    "ours": ours,
                    "ratio_to_ias15_run": ours["wall_s"] / ias_wall[t_end],
                    "ias15_reference": "ours" if ias_is_ours else "REBOUND",
                }
            )

    # --- leapfrog vs REBOUND leapfrog (REBOUND: drift-kick-drift; ours: kick-drift-kick)
    for dt in cfg.leapfrog_dts:
        t_end = 10.0
        log(f"  leapfrog dt={dt:g} T={t_end:g} ...")
        ours = our_run("leapfrog", dt, t_end, cfg.repeats)
        reb = rebound_run("leapfrog", t_end, cfg.repeats, dt=dt)
        rows.append(
            {
                "kind": "leapfrog",
                "case": f"dt={dt:g}, T={t_end:g}",
                "t_end": t_end,
                "param": dt,
                "ours": ours,
                "rebound": reb,
                "ratio_per_step": ours["us_per_step"] / reb["us_per_step"],
                "ratio_per_run": ours["wall_s"] / reb["wall_s"],
            }
        )
    return {"rows": rows, "goals": goals, "ias15_error": error}


def integrator_tables(res: dict[str, Any]) -> str:
    out = []
    h = [
        "IAS15 ε=1e-9, Pythagorean", "steps ours / REB", "rejected (ours)", "µs/step ours / REB",
        "time per step ours/REB", "time per run ours/REB", "|dE/E0| ours / REB",
    ]  # fmt: skip
    rows = []
    for r in res["rows"]:
        if r["kind"] != "ias15":
            continue
        reb, ours = r["rebound"], r["ours"]
        if ours is None:
            rows.append([r["case"], f"– / {reb['steps']}", "–", f"– / {fmt_sig(reb['us_per_step'])}", "–", "–",
                         f"– / {fmt_err(reb['dE'])}"])  # fmt: skip
            continue
        steps = "–" if ours["steps"] is None else str(ours["steps"])
        rows.append(
            [
                r["case"],
                f"{steps} / {reb['steps']}",
                str(ours["rejected"]),
                f"{fmt_sig(ours['us_per_step'])} / {fmt_sig(reb['us_per_step'])}",
                fmt_ratio(r.get("ratio_per_step")),
                fmt_ratio(r["ratio_per_run"]),
                f"{fmt_err(ours['dE'])} / {fmt_err(reb['dE'])}" + ("" if r["accuracy_ok"] else " (worse)"),
            ]
        )
    out.append(md_table(h, rows))
    out.append("")
    h = ["Hermite (ours), Pythagorean", "steps", "µs/step", "wall / our IAS15 wall", "|dE/E0|"]
    rows = []
    for r in res["rows"]:
        if r["kind"] != "hermite":
            continue
        o = r["ours"]
        rows.append([r["case"], str(o["steps"]), fmt_sig(o["us_per_step"]), fmt_ratio(r["ratio_to_ias15_run"]), fmt_err(o["dE"])])
    if res["ias15_error"]:
        h[3] = "wall / REBOUND IAS15 wall"
    out.append(md_table(h, rows))
    out.append("")
    h = ["leapfrog, Pythagorean", "steps ours / REB", "µs/step ours / REB", "time per step ours/REB", "|dE/E0| ours (KDK) / REB (DKD)"]
    rows = []
    for r in res["rows"]:
        if r["kind"] != "leapfrog":
            continue
        o, reb = r["ours"], r["rebound"]
        rows.append(
            [
                r["case"],
                f"{o['steps']} / {reb['steps']}",
                f"{fmt_sig(o['us_per_step'])} / {fmt_sig(reb['us_per_step'])}",
                fmt_ratio(r["ratio_per_step"]),
                f"{fmt_err(o['dE'])} / {fmt_err(reb['dE'])}",
            ]
        )
    out.append(md_table(h, rows))
    return "\n".join(out)


# --------------------------------------------------------------------------- 2. environment
def make_vector_env(mode: str, n: int, integrator: str, parallel: bool = False):
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    import simrl  # noqa: F401 - registers the environment

    # wall time is opt-in on the single env (its info must be deterministic for Gymnasium's checker); the
    # kernel-time share of the table needs it on both faces
    kwargs: dict[str, Any] = {"integrator": integrator, "measure_wall_time": True}
    if parallel:
        kwargs["parallel"] = True
    if mode == "native":
        return gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    # Same autoreset semantics as the native env (SAME_STEP), so that both do the same work.
    return gym.make_vec(
        ENV_ID, num_envs=n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs
    )


def env_rate(envs, actions: np.ndarray, repeats: int, seed: int) -> tuple[float, int, float]:
    """Run ``len(actions)`` vector steps from ``reset(seed)``, ``repeats`` times.

    Returns the median env-steps/s, the force evaluations of a run (a check that two
    vectorisations did the same work) and the median share of the wall time spent in the
    integrator kernel (from ``info["wall_time"]``: per env, the kernel time divided by the
    active envs of that call, so the sum over envs is the kernel time in both vectorisations).
    """
    n = envs.num_envs
    steps = len(actions)
    envs.reset(seed=seed)
    for a in actions[: min(3, steps)]:  # warm-up: JIT compile / cache load, first-call paths
        envs.step(a)
    rates, shares = [], []
    work = 0
    for _ in range(repeats):
        envs.reset(seed=seed)
        evals = 0
        kernel = 0.0
        start = time.perf_counter()
        for a in actions:
            _, _, _, _, info = envs.step(a)
            evals += int(info["force_evaluations"].sum())
            kernel += float(info["wall_time"].sum())
        wall = time.perf_counter() - start
        rates.append(steps * n / wall)
        shares.append(kernel / wall)
        work = evals
    return statistics.median(rates), work, statistics.median(shares)


def action_sets(cfg: Config) -> dict[tuple[str, int], np.ndarray]:
    """Pre-sampled actions (vector steps, N) per (label, N): the same in every process of a run."""
    rng = np.random.default_rng(cfg.seed)
    sets: dict[tuple[str, int], np.ndarray] = {}
    for n in cfg.env_sizes:
        steps = cfg.env_steps[n]
        sets[("fixed 6", n)] = np.full((steps, n), 6, dtype=np.int64)
        sets[("random", n)] = rng.integers(0, 10, size=(steps, n), dtype=np.int64)
    return sets


def threading_layer() -> str | None:
    """Numba's threading layer, or None while no parallel (prange) code has run in this process."""
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:
        return None


def parallel_env_worker(cfg: Config) -> dict[str, Any]:
    """Run in a subprocess with its own NUMBA_CACHE_DIR: the native env with ``parallel=True``.

    Only the parallel kernel is compiled in that cache, so it cannot be swapped for the
    serial one (Numba's cache index ignores ``parallel``, numba#6845; see ``cache_collision``).
    """
    n = parallel_n(cfg)
    sets = action_sets(cfg)
    out: dict[str, Any] = {"n": n, "runs": {}}
    for label in ("fixed 6", "random"):
        par = make_vector_env("native", n, cfg.env_integrator, parallel=True)
        rate, work, share = env_rate(par, sets[(label, n)], cfg.env_repeats, cfg.seed)
        par.close()
        out["runs"][label] = {"rate": rate, "work": work, "share": share}
    out["threading_layer"] = threading_layer()
    import numba

    out["threads"] = numba.get_num_threads()
    return out


def parallel_n(cfg: Config) -> int:
    return ENV_GOAL_N if ENV_GOAL_N in cfg.env_sizes else max(cfg.env_sizes)


def run_parallel_worker(cfg: Config, cache_dir: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_parallel-worker", "--env-integrator", cfg.env_integrator]
    if cfg.quick:
        cmd.append("--quick")
    if cfg.repeats_override is not None:
        cmd += ["--repeats", str(cfg.repeats_override)]
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"parallel worker exit {proc.returncode}: " + " | ".join(tail))


_COLLISION_SNIPPET = """
import numpy as np, numba
from simrl.physics.nbody.integrators import get_kernel
def args():
    b = 4
    pos = np.array([[[1.0, 3.0, 0.0], [-2.0, -1.0, 0.0], [1.0, -1.0, 0.0]]] * b)
    return (pos, np.zeros((b, 3, 3)), np.array([[3.0, 4.0, 5.0]] * b), np.zeros(b), np.full(b, 0.01),
            np.full(b, {param}), np.zeros(b), 10**6, np.zeros(b, np.int64), np.zeros(b, np.int64))
def layer():
    try:
        return str(numba.threading_layer())
    except ValueError:
        return None
get_kernel("{name}", parallel=False)(*args())
after_serial = layer()
get_kernel("{name}", parallel=True)(*args())
print("BENCH_RESULT " + __import__("json").dumps({{"after_serial": after_serial, "after_parallel": layer()}}))
"""


def cache_collision(name: str) -> dict[str, Any]:
    """Does the ``parallel=True`` kernel still run parallel code after the serial one filled the cache?

    Fresh interpreter, empty NUMBA_CACHE_DIR: call the serial kernel, then the parallel one,
    and ask Numba whether any parallel region has run (the threading layer starts then).
    """
    param = {"hermite": 1e-2, "ias15": IAS15_EPSILON, "leapfrog": 1e-3}[name]
    with tempfile.TemporaryDirectory(prefix="simrl-bench-numba-") as cache_dir:
        res = run_snippet(_COLLISION_SNIPPET.format(name=name, param=param), cache_dir)
    res["integrator"] = name
    res["parallel_runs_parallel_code"] = res["after_parallel"] is not None
    res["serial_runs_serial_code"] = res["after_serial"] is None
    return res


def bench_env(cfg: Config, log: Callable[[str], None], parallel_cache_dir: str) -> dict[str, Any]:
    rows = []
    sets = action_sets(cfg)
    for n in cfg.env_sizes:
        for label in ("fixed 6", "random"):
            actions = sets[(label, n)]
            log(f"  N={n} actions={label}: native ...")
            native = make_vector_env("native", n, cfg.env_integrator)
            native_rate, native_work, native_share = env_rate(native, actions, cfg.env_repeats, cfg.seed)
            native.close()
            log(f"  N={n} actions={label}: sync ...")
            sync = make_vector_env("sync", n, cfg.env_integrator)
            sync_rate, sync_work, sync_share = env_rate(sync, actions, cfg.env_repeats, cfg.seed)
            sync.close()
            rows.append(
                {
                    "kind": "native_vs_sync",
                    "n": n,
                    "actions": label,
                    "steps": len(actions),
                    "native_steps_per_s": native_rate,
                    "sync_steps_per_s": sync_rate,
                    "speedup": native_rate / sync_rate,
                    "same_work": native_work == sync_work,
                    "force_evals": native_work,
                    "native_kernel_share": native_share,
                    "sync_kernel_share": sync_share,
                }
            )
    # Only serial kernels have run in this process: no parallel region may have started.
    serial_layer = threading_layer()
    n = parallel_n(cfg)
    log(f"  N={n}: native parallel=True (subprocess with its own Numba cache) ...")
    parallel_error = None
    try:
        worker = run_parallel_worker(cfg, parallel_cache_dir)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        parallel_error = str(exc)
        log(f"    failed: {exc}")
        worker = None
    for label in ("fixed 6", "random"):
        if worker is None:
            break
        run = worker["runs"][label]
        serial = next(r for r in rows if r["n"] == n and r["actions"] == label)
        rows.append(
            {
                "kind": "serial_vs_parallel",
                "n": n,
                "actions": label,
                "steps": serial["steps"],
                "serial_steps_per_s": serial["native_steps_per_s"],
                "parallel_steps_per_s": run["rate"],
                "speedup": run["rate"] / serial["native_steps_per_s"],
                "same_work": run["work"] == serial["force_evals"],
                "serial_kernel_share": serial["native_kernel_share"],
                "parallel_kernel_share": run["share"],
            }
        )
    log(f"  Numba cache check: serial then parallel {cfg.env_integrator} kernel in one fresh cache ...")
    try:
        collision = cache_collision(cfg.env_integrator)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        collision = {"integrator": cfg.env_integrator, "error": str(exc)}
    checks = {
        "serial_process_threading_layer": serial_layer,
        "parallel_worker_threading_layer": None if worker is None else worker["threading_layer"],
        "parallel_worker_threads": None if worker is None else worker["threads"],
        "parallel_error": parallel_error,
        "cache_collision": collision,
    }
    goals = []
    for r in rows:
        if r["kind"] == "native_vs_sync" and r["n"] == ENV_GOAL_N:
            goal = {
                "goal": f"native vector env >= {ENV_GOAL_SPEEDUP:g}x SyncVectorEnv at N={ENV_GOAL_N}, actions {r['actions']}",
                "value": r["speedup"],
                "met": r["speedup"] >= ENV_GOAL_SPEEDUP,
            }
            if r["actions"] != "fixed 6":
                # Expensive small-eta actions make the run physics-bound: both do the same kernel
                # work, so the speed-up cannot exceed sync time / kernel time = 1 / (sync kernel share).
                goal["informational"] = (
                    f"the kernel takes {r['sync_kernel_share']:.0%} of the SyncVectorEnv time, which bounds "
                    f"any vectorisation's speed-up near {1 / max(r['sync_kernel_share'], 1e-9):.1f}x"
                )
            goals.append(goal)
    from simrl.envs.threebody_core import ThreeBodySettings
    from simrl.physics.nbody.integrators import integrator_spec

    spec = integrator_spec(cfg.env_integrator)
    action6 = f"{spec.parameter_name} = {ThreeBodySettings(integrator=cfg.env_integrator).parameter_values[6]:.3g}"
    if spec.parameter_is_time:
        action6 += " yr"
    return {"rows": rows, "goals": goals, "integrator": cfg.env_integrator, "action6": action6, "checks": checks}


def env_tables(res: dict[str, Any]) -> str:
    h = ["N", "actions", "vector steps", "native env-steps/s", "SyncVectorEnv env-steps/s", "speed-up native/sync",
         "kernel share native / sync", "same work"]  # fmt: skip
    rows = [
        [str(r["n"]), r["actions"], str(r["steps"]), fmt_sig(r["native_steps_per_s"]), fmt_sig(r["sync_steps_per_s"]),
         fmt_ratio(r["speedup"]), f"{r['native_kernel_share']:.0%} / {r['sync_kernel_share']:.0%}",
         "yes" if r["same_work"] else "NO"]  # fmt: skip
        for r in res["rows"]
        if r["kind"] == "native_vs_sync"
    ]
    out = [f"Integrator: {res['integrator']}; 'fixed 6' = action 6 for every env ({res['action6']}); "
           "'random' = pre-sampled uniform actions 0..9.", "", md_table(h, rows), ""]  # fmt: skip
    h = ["N", "actions", "serial env-steps/s", "parallel=True env-steps/s", "parallel / serial",
         "kernel share serial / parallel", "same work"]  # fmt: skip
    rows = [
        [str(r["n"]), r["actions"], fmt_sig(r["serial_steps_per_s"]), fmt_sig(r["parallel_steps_per_s"]),
         fmt_ratio(r["speedup"]), f"{r['serial_kernel_share']:.0%} / {r['parallel_kernel_share']:.0%}",
         "yes" if r["same_work"] else "NO"]  # fmt: skip
        for r in res["rows"]
        if r["kind"] == "serial_vs_parallel"
    ]
    out.append(md_table(h, rows))
    out.append("")
    out.extend(parallel_check_lines(res["checks"]))
    return "\n".join(out)


def parallel_check_lines(checks: dict[str, Any]) -> list[str]:
    lines = []
    serial = checks["serial_process_threading_layer"]
    lines.append(
        "- Serial runs (this process, its own Numba cache): "
        + ("no parallel region started (serial code, as intended)." if serial is None
           else f"a parallel region started (threading layer {serial}): the serial kernel ran prange code!")
    )  # fmt: skip
    if checks["parallel_error"]:
        lines.append(f"- parallel=True run failed: {checks['parallel_error']}")
    else:
        layer = checks["parallel_worker_threading_layer"]
        lines.append(
            f"- parallel=True runs (subprocess, separate Numba cache, {checks['parallel_worker_threads']} threads): "
            + (f"parallel code ran (threading layer {layer})." if layer else "NO parallel region started: serial code ran.")
        )
    c = checks["cache_collision"]
    if "error" in c:
        lines.append(f"- Numba cache check ({c['integrator']}) failed: {c['error']}")
    elif c["parallel_runs_parallel_code"] and c["serial_runs_serial_code"]:
        lines.append(f"- Numba cache check ({c['integrator']}): serial then parallel=True in one cache directory: both correct.")
    else:
        lines.append(
            f"- Numba cache check ({c['integrator']}): after the serial kernel filled an empty cache, the parallel=True "
            "kernel " + ("still ran parallel code" if c["parallel_runs_parallel_code"] else "ran the cached SERIAL code")
            + ": the serial and parallel variants share one cache entry again (Numba's cache index ignores "
            "`parallel`, numba#6845; simrl.physics.compile is meant to prevent this). The table above "
            "avoids it with separate cache directories."
        )  # fmt: skip
    return lines


# --------------------------------------------------------------------------- 3. compile
_PREAMBLE = """
import json, time
t0 = time.perf_counter()
import numpy as np, numba{extra}
t1 = time.perf_counter()
"""

_KERNEL_SNIPPET = """
from simrl.physics.nbody import {module} as mod
pos = np.array([[[1.0, 3.0, 0.0], [-2.0, -1.0, 0.0], [1.0, -1.0, 0.0]]])
args = (pos, np.zeros((1, 3, 3)), np.array([[3.0, 4.0, 5.0]]), np.zeros(1), np.array([0.01]),
        np.array([{param}]), np.zeros(1), 10**6, np.zeros(1, np.int64), np.zeros(1, np.int64){extra_arg})
mod.integrate_{module}_serial(*args)
assert args[9][0] == 0, args[9]
"""

_ENV_SNIPPET = """
import gymnasium as gym, simrl
env = gym.make("simrl/ThreeBody-v0", integrator="{integrator}")
env.reset(seed=0)
env.step(6)
"""

_EPILOGUE = """
t2 = time.perf_counter()
print("BENCH_RESULT " + json.dumps({"baseline_import_s": t1 - t0, "first_use_s": t2 - t1}))
"""


def compile_snippets(env_integrator: str) -> dict[str, str]:
    snippets = {}
    for module, param, extra_arg in (
        ("hermite", 0.03, ", np.int64(0)"),  # the criterion as get_kernel passes it
        ("ias15", IAS15_EPSILON, ""),
        ("leapfrog", 1e-3, ""),
    ):
        body = _KERNEL_SNIPPET.format(module=module, param=param, extra_arg=extra_arg)
        snippets[module] = _PREAMBLE.format(extra="") + body + _EPILOGUE
    snippets[f"env reset+step ({env_integrator})"] = (
        _PREAMBLE.format(extra=", gymnasium") + _ENV_SNIPPET.format(integrator=env_integrator) + _EPILOGUE
    )
    return snippets


def run_snippet(code: str, cache_dir: str) -> dict[str, float]:
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"exit {proc.returncode}: " + " | ".join(tail))


def bench_compile(cfg: Config, log: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    for name, code in compile_snippets(cfg.env_integrator).items():
        log(f"  {name}: cold (empty NUMBA_CACHE_DIR) then warm x{cfg.compile_warm_repeats} ...")
        with tempfile.TemporaryDirectory(prefix="simrl-bench-numba-") as cache_dir:
            try:
                cold = run_snippet(code, cache_dir)
                n_files = sum(len(files) for _, _, files in os.walk(cache_dir))
                warm_runs = [run_snippet(code, cache_dir) for _ in range(cfg.compile_warm_repeats)]
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log(f"    failed: {exc}")
                rows.append({"name": name, "error": str(exc)})
                continue
        warm = statistics.median(r["first_use_s"] for r in warm_runs)
        baseline = statistics.median([cold["baseline_import_s"], *(r["baseline_import_s"] for r in warm_runs)])
        rows.append(
            {
                "name": name,
                "cold_s": cold["first_use_s"],
                "warm_s": warm,
                "cold_over_warm": cold["first_use_s"] / warm,
                "baseline_import_s": baseline,
                "cache_files": n_files,
            }
        )
    return {"rows": rows}


def compile_table(res: dict[str, Any]) -> str:
    h = ["first use (import + first call)", "cold: compile [s]", "warm: cache load [s]", "cold / warm",
         "cache files", "import numpy+numba(+gymnasium) [s]"]  # fmt: skip
    rows = []
    for r in res["rows"]:
        if "error" in r:
            rows.append([r["name"], "failed", "–", "–", "–", r["error"][:60]])
            continue
        rows.append([r["name"], f"{r['cold_s']:.2f}", f"{r['warm_s']:.2f}", fmt_ratio(r["cold_over_warm"]),
                     str(r["cache_files"]), f"{r['baseline_import_s']:.2f}"])  # fmt: skip
    return md_table(h, rows)


# --------------------------------------------------------------------------- main
def goals_lines(goals: list[dict[str, Any]]) -> list[str]:
    lines = []
    for g in goals:
        if g.get("met") is None:
            lines.append(f"- {g['goal']}: NOT MEASURED ({g.get('error', '')})")
            continue
        verdict = "MET" if g["met"] else "NOT MET"
        if g.get("informational"):
            verdict += f" (for information, not the goal: {g['informational']})"
        extra = ""
        if "accuracy_ok" in g:
            extra = ", accuracy " + ("equal" if g["accuracy_ok"] else f"worse than {ACCURACY_FACTOR:g}x REBOUND")
        lines.append(f"- {g['goal']}: {fmt_ratio(g['value'])}{extra} -> {verdict}")
    return lines


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps: about a minute")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path (atomically)")
    parser.add_argument(
        "--sections", default="integrators,env,compile",
        help="comma-separated subset of: integrators, env, compile (default: all)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, help="override the number of timed repeats (median is reported)")
    parser.add_argument("--env-integrator", default="hermite", choices=("hermite", "ias15", "leapfrog"),
                        help="integrator of the environment benchmarks (default: hermite, the env default)")  # fmt: skip
    parser.add_argument("--_parallel-worker", dest="parallel_worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parallel_worker:
        print("BENCH_RESULT " + json.dumps(parallel_env_worker(make_config(args)), default=_json_default), flush=True)
        return 0
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - {"integrators", "env", "compile"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; accepted: integrators, env, compile")
    cfg = make_config(args)
    started = time.perf_counter()
    # Private Numba caches: this process compiles only serial kernels, the parallel worker only
    # parallel ones, so the timings cannot be mixed up even if simrl.physics.compile's guard
    # against numba#6845 (cache index ignores `parallel`) ever regressed.
    cache_root = Path(tempfile.gettempdir()) / f"simrl-bench-numba-{os.getuid()}"
    os.environ["NUMBA_CACHE_DIR"] = str(cache_root / "serial")
    if "numba" in sys.modules:
        import numba

        numba.config.reload_config()
    info = machine_info()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    log(f"bench_threebody ({'quick' if cfg.quick else 'full'}): {', '.join(sections)}")

    results: dict[str, Any] = {}
    blocks: list[str] = []
    if "integrators" in sections:
        log("1. integrators (Pythagorean problem)")
        results["integrators"] = bench_integrators(cfg, log)
        blocks.append("### 1. Integrators: Pythagorean three-body problem\n\n" + integrator_tables(results["integrators"]))
        print(blocks[-1] + "\n", flush=True)
    if "env" in sections:
        log("2. environment throughput")
        results["env"] = bench_env(cfg, log, str(cache_root / "parallel"))
        blocks.append("### 2. Environment steps per second\n\n" + env_tables(results["env"]))
        print(blocks[-1] + "\n", flush=True)
    if "compile" in sections:
        log("3. Numba first-use time (fresh interpreters)")
        results["compile"] = bench_compile(cfg, log)
        blocks.append("### 3. Numba compile vs cache load on first use\n\n" + compile_table(results["compile"]))
        print(blocks[-1] + "\n", flush=True)

    info["loadavg_end"] = os.getloadavg()
    runtime = time.perf_counter() - started
    goals = [g for key in ("integrators", "env") if key in results for g in results[key]["goals"]]
    readme = [
        "## Benchmark results (`benchmarks/bench_threebody.py" + (" --quick" if cfg.quick else "") + "`)",
        "",
        *machine_lines(info),
        f"- Medians of {cfg.repeats} (integrators) / {cfg.env_repeats} (environments) timed repeats after warm-up; "
        f"script runtime {runtime:.0f} s",
        "",
        "Goals of the issue:",
        "",
        *(goals_lines(goals) or ["- (no goal measured in this run)"]),
        "",
        *(b + "\n" for b in blocks),
    ]
    print("=" * 30 + " markdown for README " + "=" * 30)
    print("\n".join(readme).rstrip())
    print("=" * 81)
    if args.json:
        write_json_atomic(
            args.json,
            {
                "machine": info,
                "config": {**cfg.__dict__, "env_steps": {str(k): v for k, v in cfg.env_steps.items()}},
                "goals": goals,
                "results": results,
                "runtime_s": runtime,
            },
        )
        log(f"wrote {args.json}")
    log(f"runtime {runtime:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
