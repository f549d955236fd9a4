"""The Hydra training script: config composition, override errors, and a small end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from simrl.evaluation import EPISODE_COLUMNS, read_episodes

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SCRIPT = ROOT / "scripts" / "train_agent.py"


@pytest.mark.parametrize("agent", ["ppo", "dqn", "a2c", "paper_dqn"])
def test_every_agent_config_composes_with_threebody(agent):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose(config_name="config", overrides=["env=threebody", f"agent={agent}"])
    assert cfg.env.id == "simrl/ThreeBody-v0"
    assert cfg.agent.name == agent
    assert cfg.evaluation.n_seeds == 100


def test_paper_experiment_switches_to_the_papers_agent_reward_and_observation():
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose(config_name="config", overrides=["+experiment=paper"])
    assert cfg.agent.name == "paper_dqn"
    assert cfg.env.kwargs.reward == "paper" and cfg.env.kwargs.obs_mode == "paper"


def _run(args, tmp_path, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), f"hydra.run.dir={tmp_path}", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path,
    )  # fmt: skip


def test_unknown_override_fails_with_hydras_message_before_any_work(tmp_path):
    result = _run(["agent.kwargs.no_such_key=1"], tmp_path, timeout=120)
    assert result.returncode != 0
    assert "no_such_key" in result.stderr and "Could not override" in result.stderr
    assert not (tmp_path / "final_model.zip").exists()


@pytest.mark.parametrize("agent", ["ppo", "paper_dqn"])
def test_small_training_run_writes_model_and_evaluation(tmp_path, agent):
    args = [
        f"agent={agent}", "total_timesteps=512", "n_envs=4", "progress_bar=false",
        "evaluation.n_seeds=4", "checkpoint_every=256", "eval_callback.every=256",
        "eval_callback.n_envs=2", "eval_callback.n_episodes=2", "env.kwargs.episode_steps=10",
        "env.evaluation_kwargs.episode_steps=20",
    ]  # fmt: skip
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "final_model.zip").exists()
    summary = json.loads((tmp_path / "evaluation" / "summary.json").read_text())
    names = [s["policy"] for s in summary["summaries"]]
    assert names[0] == agent and "fixed 0.03" in names and len(names) == 12
    assert all(s["episodes"] == 4 for s in summary["summaries"])
    assert (tmp_path / "evaluation" / "front.png").stat().st_size > 1000
    episodes = read_episodes(tmp_path)
    assert list(episodes.columns[: len(EPISODE_COLUMNS)]) == list(EPISODE_COLUMNS)
    assert len(episodes) == 12 * 4 and set(episodes.loc[~episodes["is_baseline"], "policy"]) == {agent}
    assert set(episodes["agent"]) == {agent} and set(episodes["run"]) == {str(tmp_path.resolve())}
    run_info = json.loads((tmp_path / "run_info.json").read_text())
    assert run_info["status"] == "complete" and run_info["agent"] == agent and run_info["num_timesteps"] >= 512
    assert "median force evaluations" in result.stdout
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents*"))
    if agent == "ppo":
        assert (tmp_path / "eval_callback" / "evaluations.npz").exists()
        assert list((tmp_path / "checkpoints").glob("*.zip"))


def test_overlapping_seed_ranges_are_refused():
    from simrl.agents.training import _check_seeds

    ok = {"seed": 0, "n_envs": 16, "eval_callback": {"seed": 500000, "n_envs": 8},
          "evaluation": {"first_seed": 1000000, "n_seeds": 100}}  # fmt: skip
    _check_seeds(ok)
    with pytest.raises(ValueError, match="training .* and EvalCallback"):
        _check_seeds({**ok, "seed": 499990})
    with pytest.raises(ValueError, match="held-out"):
        _check_seeds({**ok, "evaluation": {"first_seed": 5, "n_seeds": 100}})
