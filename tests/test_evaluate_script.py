"""The tidy evaluation table, run_info.json, and scripts/evaluate.py on real (tiny) training runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow
import pyarrow.parquet
import pytest

from simrl.evaluation import EPISODE_COLUMNS, read_episodes
from simrl.evaluation.report import WALL_TIME_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "scripts" / "train_agent.py"
EVALUATE = ROOT / "scripts" / "evaluate.py"
TINY = [
    "total_timesteps=512", "n_envs=4", "progress_bar=false", "evaluation.n_seeds=4", "checkpoint_every=256",
    "eval_callback.every=256", "eval_callback.n_envs=2", "eval_callback.n_episodes=2",
    "env.kwargs.episode_steps=10", "env.evaluation_kwargs.episode_steps=20",
]  # fmt: skip
SEEDS = list(range(1_000_000, 1_000_004))


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


def _python(script, args, cwd, timeout=600):
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(), cwd=cwd)  # fmt: skip


_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny real training run per agent, made once per module: ``trained("ppo") -> run_dir``."""

    def make(agent: str) -> Path:
        if agent not in _RUNS:
            run_dir = tmp_path_factory.mktemp(f"run_{agent}")
            result = _python(TRAIN, [f"hydra.run.dir={run_dir}", f"agent={agent}", *TINY], cwd=run_dir)
            assert result.returncode == 0, result.stderr[-3000:]
            _RUNS[agent] = run_dir
        return _RUNS[agent]

    yield make
    _RUNS.clear()


def _without_wall_time(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in WALL_TIME_COLUMNS if c in df.columns])


def test_training_writes_the_tidy_episode_table_and_run_info(trained):
    run_dir = trained("ppo")
    df = read_episodes(run_dir)
    assert list(df.columns[: len(EPISODE_COLUMNS)]) == list(EPISODE_COLUMNS)
    metrics = list(df.columns[len(EPISODE_COLUMNS) :])
    assert {"energy_error", "total_force_evaluations", "total_wall_time", "blowup"} <= set(metrics)
    schema = pyarrow.parquet.read_schema(run_dir / "evaluation" / "episodes.parquet")
    expected = {**EPISODE_COLUMNS, **{m: "float64" for m in metrics}}
    assert {f.name: f.type for f in schema} == {k: pyarrow.type_for_alias(v) for k, v in expected.items()}
    # one row per (policy, held-out seed): the agent and the 11 baselines on 4 seeds
    assert len(df) == 12 * 4 and not df.duplicated(["policy", "seed"]).any()
    assert df["policy"].iloc[0] == "ppo" and df["policy"].nunique() == 12
    assert set(df.loc[~df["is_baseline"], "policy"]) == {"ppo"}
    for _, group in df.groupby("policy"):
        assert list(group["seed"]) == SEEDS and list(group["episode"]) == [0, 1, 2, 3]
    assert set(df["run"]) == {str(run_dir.resolve())}
    assert set(df["env"]) == {"simrl/ThreeBody-v0"} and set(df["env_name"]) == {"threebody"}
    assert set(df["agent"]) == {"ppo"} and set(df["training_seed"]) == {0}
    assert (df["length"] == 20).all() and df["truncated"].all()

    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["status"] == "complete" and info["num_timesteps"] >= info["total_timesteps"] == 512
    assert info["env"] == "simrl/ThreeBody-v0" and info["agent"] == "ppo" and info["seed"] == 0
    assert info["train_seconds"] > 0 and info["finished_at"] >= info["started_at"]
    # atomic writes leave no temporary files behind
    assert not [p.name for p in (run_dir / "evaluation").iterdir() if p.name.startswith(".")]
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".") and p.name != ".hydra"]
    assert not (run_dir / "evaluation" / "episodes.csv").exists()


@pytest.mark.parametrize("agent", ["ppo", "paper_dqn"])
def test_evaluate_script_recreates_the_training_runs_tables(trained, agent):
    run_dir = trained(agent)
    before = read_episodes(run_dir)
    summary_before = json.loads((run_dir / "evaluation" / "summary.json").read_text())
    shutil.rmtree(run_dir / "evaluation")
    # relative run_dir, from another working directory: the run column stays the absolute path
    result = _python(EVALUATE, [f"run_dir={run_dir.name}"], cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "median force evaluations" in result.stdout
    after = read_episodes(run_dir)
    pd.testing.assert_frame_equal(_without_wall_time(before), _without_wall_time(after))
    summary_after = json.loads((run_dir / "evaluation" / "summary.json").read_text())
    for s in summary_before["summaries"] + summary_after["summaries"]:
        s.pop("median_wall_time")
    assert summary_after == summary_before
    assert sorted(p.name for p in (run_dir / "evaluation").iterdir()) == [
        "episodes.parquet", "front.png", "summary.csv", "summary.json",
    ]  # fmt: skip
    assert not (run_dir.parent / "outputs").exists() and not (run_dir.parent / "evaluate.log").exists()


def test_evaluate_script_baselines_only_and_more_seeds(trained):
    run_dir = trained("ppo")
    result = _python(EVALUATE, [f"run_dir={run_dir}", "model=null", "evaluation.n_seeds=6"], cwd=run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    baselines = read_episodes(run_dir / "evaluation_baselines")
    assert baselines["is_baseline"].all() and baselines["policy"].nunique() == 11 and len(baselines) == 66
    trained_table = read_episodes(run_dir)
    same = trained_table[trained_table["is_baseline"]].reset_index(drop=True)
    first_four = baselines[baselines["episode"] < 4].reset_index(drop=True)
    pd.testing.assert_frame_equal(_without_wall_time(same), _without_wall_time(first_four))


def test_evaluate_script_names_what_is_missing(trained, tmp_path):
    run_dir = trained("ppo")
    result = _python(EVALUATE, [f"run_dir={run_dir}", "model=no_such_model.zip"], cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert f"no model at {run_dir / 'no_such_model.zip'}" in result.stderr
    assert "final_model.zip" in result.stderr and "eval_callback/best_model.zip" in result.stderr

    result = _python(EVALUATE, [f"run_dir={tmp_path}"], cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and f"no config at {tmp_path / '.hydra' / 'config.yaml'}" in result.stderr

    broken = tmp_path / "broken.zip"
    broken.write_bytes((run_dir / "final_model.zip").read_bytes()[:1000])
    result = _python(EVALUATE, [f"run_dir={run_dir}", f"model={broken}"], cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and f"cannot load {broken}" in result.stderr
    assert not (run_dir / "evaluation_broken").exists()

    result = _python(EVALUATE, [], cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and "run_dir=" in result.stderr


def test_a_killed_training_run_says_training_and_evaluate_refuses_it(tmp_path):
    args = [f"hydra.run.dir={tmp_path}", *TINY, "total_timesteps=100000000"]
    proc = subprocess.Popen([sys.executable, str(TRAIN), *args], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "run_info.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["status"] == "training" and info["pid"] == proc.pid
    assert not (tmp_path / "final_model.zip").exists()

    result = _python(EVALUATE, [f"run_dir={tmp_path}"], cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert f"no model at {tmp_path / 'final_model.zip'}" in result.stderr and "'training'" in result.stderr
    assert not (tmp_path / "evaluation").exists()
