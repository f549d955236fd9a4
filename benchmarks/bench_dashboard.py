#!/usr/bin/env python
"""How long the dashboard takes to load many runs: 200 run folders, cold and warm.

Trains one tiny real run with ``scripts/train_agent.py`` (or takes ``--source RUN_DIR``), copies
it into ``--n-runs`` run folders under a temporary root -- half as single runs
(``outputs/threebody/ppo/<stamp>``), half as multirun jobs (``multirun/<stamp>/<k>_threebody_ppo``
with ``multirun.yaml``), every copy with its own ``seed`` in ``.hydra/config.yaml`` and
``run_info.json``, and 5 % of them "killed" (no model, no evaluation, status "training") --
then times:

* the runs overview table (``simrl.dashboard.runs.load_runs``): cold (empty file cache) and
  warm (cached by path and mtime), and warm after one run folder changed;
* the same in a fresh interpreter, imports included (what the first page view pays);
* the Runs page rendered by Streamlit (``AppTest``), cold and warm;
* learning curves across seeds, the evaluation episodes of every run, and the baseline
  comparison (IQM / mean / median with bootstrap CIs) of three metrics.

Goal of the issue: the runs overview of 200 runs in under 3 s.

Usage::

    python benchmarks/bench_dashboard.py                 # 200 runs, about a minute
    python benchmarks/bench_dashboard.py --n-runs 500 --repeats 5
    python benchmarks/bench_dashboard.py --source outputs/threebody/ppo/<stamp>   # no training
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

GOAL_SECONDS = 3.0
TINY = [
    "total_timesteps=256", "n_envs=2", "evaluation.n_seeds=10", "env.kwargs.episode_steps=5",
    "env.evaluation_kwargs.episode_steps=10", "eval_callback.every=64", "eval_callback.n_envs=1",
    "eval_callback.n_episodes=2", "checkpoint_every=128", "progress_bar=false", "device=cpu",
]  # fmt: skip


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_source(workdir: Path) -> Path:
    run = workdir / "source_run"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "train_agent.py"), *TINY, f"hydra.run.dir={run}"]
    result = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"training the source run failed:\n{result.stderr[-3000:]}")
    return run


def build_tree(source: Path, root: Path, n_runs: int) -> dict[str, int]:
    """``n_runs`` copies of ``source`` under ``root``; returns counts of each kind."""
    import yaml

    config = yaml.safe_load((source / ".hydra" / "config.yaml").read_text())
    info_path = source / "run_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    counts = {"single": 0, "multirun": 0, "killed": 0}
    killed_every = 20
    for i in range(n_runs):
        if i % 2 == 0:
            target = root / "outputs" / "threebody" / "ppo" / f"2026-01-01_00-00-{i:04d}"
            counts["single"] += 1
        else:
            sweep = root / "multirun" / f"2026-01-02_00-{i // 20:02d}-00"
            sweep.mkdir(parents=True, exist_ok=True)
            (sweep / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
            target = sweep / f"{i}_threebody_ppo"
            counts["multirun"] += 1
        shutil.copytree(source, target)
        cfg = {**config, "seed": i}
        (target / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        run_info = {**info, "seed": i, "run_dir": str(target)}
        if i % killed_every == killed_every - 1:
            (target / "final_model.zip").unlink(missing_ok=True)
            shutil.rmtree(target / "evaluation", ignore_errors=True)
            run_info = {k: v for k, v in run_info.items() if k not in ("train_seconds", "num_timesteps", "finished_at")}
            run_info["status"] = "training"
            counts["killed"] += 1
        (target / "run_info.json").write_text(json.dumps(run_info))
    return counts


def timed(fn: Callable[[], object], repeats: int, before: Callable[[], None] | None = None) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls (``before`` runs untimed ahead of each) and the last result."""
    times, result = [], None
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def fresh_interpreter_seconds(root: Path, repeats: int) -> float:
    code = (
        "import time; t = time.perf_counter(); from simrl.dashboard import runs; "
        f"frame = runs.load_runs({str(root)!r}); print(time.perf_counter() - t, len(frame))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        times.append(float(out.split()[0]))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per row (median)")
    parser.add_argument("--source", type=Path, default=None, help="a finished run folder to copy (default: train one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary tree (its path is printed)")
    args = parser.parse_args()

    from simrl.dashboard import runs

    workdir = Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    try:
        t0 = time.perf_counter()
        source = args.source.resolve() if args.source else train_source(workdir)
        log(f"source run: {source} ({time.perf_counter() - t0:.1f} s)")
        root = workdir / "runs"
        t0 = time.perf_counter()
        counts = build_tree(source, root, args.n_runs)
        size_mb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20
        log(f"built {args.n_runs} run folders ({counts}, {size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")

        rows: list[tuple[str, str, str, str]] = []
        r = args.repeats

        cold, frame = timed(lambda: runs.load_runs(root), r, before=runs.clear_cache)
        warm, frame = timed(lambda: runs.load_runs(root), max(r, 5))
        assert len(frame) == args.n_runs, len(frame)
        status = frame["status"].value_counts().to_dict()
        one = Path(frame["path"].iloc[0]) / "run_info.json"

        def touch_one() -> None:
            st = one.stat()
            os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

        changed, _ = timed(lambda: runs.load_runs(root), r, before=touch_one)
        fresh = fresh_interpreter_seconds(root, r)
        rows.append(("runs overview table (load_runs)", f"{cold:.3f}", f"{warm:.3f}", f"{changed:.3f} (1 run changed)"))
        rows.append(("  same, fresh interpreter incl. imports", f"{fresh:.3f}", "-", "-"))

        from streamlit.testing.v1 import AppTest

        os.environ["SIMRL_RUNS"] = str(root)
        script = str(REPO_ROOT / "scripts" / "dashboard.py")

        def app_cold() -> None:
            runs.clear_cache()
            at = AppTest.from_file(script, default_timeout=120)
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            app_cold.at = at  # type: ignore[attr-defined]

        app_first, _ = timed(app_cold, r)
        at = app_cold.at  # type: ignore[attr-defined]
        app_warm, _ = timed(lambda: at.run(), max(r, 5))
        assert at.metric[0].value == str(args.n_runs), at.metric[0].value
        rows.append(("Runs page rendered (Streamlit AppTest)", f"{app_first:.3f}", f"{app_warm:.3f}", "-"))

        curves_t, curves = timed(lambda: runs.learning_curves(frame), r)
        rows.append(("learning curves across seeds (warm files)", "-", f"{curves_t:.3f}", f"{len(curves)} points"))

        def episodes_cold():
            runs.clear_cache()
            return runs.load_episodes_for(frame)

        ep_cold, episodes = timed(episodes_cold, r)
        ep_warm, episodes = timed(lambda: runs.load_episodes_for(frame), r)
        rows.append(("evaluation episodes of every run", f"{ep_cold:.3f}", f"{ep_warm:.3f}", f"{len(episodes)} rows"))
        metrics = ["total_force_evaluations", "energy_error", "return"]
        cmp_t, comparison = timed(lambda: runs.baseline_comparison(episodes, metrics=metrics), r)
        rows.append(("baseline comparison, 3 metrics x IQM/mean/median", "-", f"{cmp_t:.3f}",
                     f"{comparison['policy'].nunique()} policies, 1000 bootstrap reps"))  # fmt: skip

        print(f"\n## Dashboard load times: {args.n_runs} run folders ({counts['single']} single runs, "
              f"{counts['multirun']} multirun jobs, {counts['killed']} killed; statuses {status}), {size_mb:.0f} MB\n")  # fmt: skip
        print("| step | cold (s) | warm (s) | note |")
        print("|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\nmedian of {r} (warm: of {max(r, 5)}) repeats; cold = empty file cache (the OS page cache stays warm); "
              "warm = unchanged files, one stat per file.")  # fmt: skip
        verdict = "met" if max(cold, app_first, fresh) < GOAL_SECONDS else "NOT met"
        print(f"\nGoal: runs overview of {args.n_runs} runs under {GOAL_SECONDS:.0f} s -- {verdict} "
              f"(table cold {cold:.2f} s, fresh interpreter {fresh:.2f} s, page cold {app_first:.2f} s, warm {app_warm:.2f} s).")  # fmt: skip
        load = os.getloadavg()
        print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
              f"Python {platform.python_version()}, {platform.platform()}; load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")  # fmt: skip
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
