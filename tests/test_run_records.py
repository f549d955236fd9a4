"""Run folder records are append-only facts: a refused resume of scripts/train_agent.py changes nothing
in the run folder (.hydra/, run_info.json, evaluation/), for a complete and a killed run alike; a
resume of a folder that does not exist creates nothing; a complete run resumed with its own config
is left as it is. Real runs of the script on tiny budgets (ThreeBody, PPO)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simrl.agents.checkpoints import ResumeRefused
from simrl.agents.training import check_resume, load_run_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_agent.py"
# 256 PPO steps on 2 envs, 10-step training and 20-step evaluation episodes, 2 held-out seeds.
TINY = [
    "env=threebody", "agent=ppo", "total_timesteps=256", "n_envs=2", "progress_bar=false", "evaluation.n_seeds=2",
    "checkpoint_every=128", "eval_callback.every=128", "eval_callback.n_envs=2", "eval_callback.n_episodes=2",
    "env.kwargs.episode_steps=10", "env.evaluation_kwargs.episode_steps=20", "agent.kwargs.n_steps=32",
    "agent.kwargs.batch_size=32", "agent.kwargs.n_epochs=2",
]  # fmt: skip


def _env() -> dict[str, str]:
    # One torch thread per process: tiny MLPs on a loaded machine are many times slower with more.
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def _train(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(), cwd=cwd)  # fmt: skip


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder and its bytes, except Hydra's job log (a log only grows)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.suffix != ".log"}  # fmt: skip


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _seed_in_hydra_config(run_dir: Path) -> int:
    return yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())["seed"]


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory) -> Path:
    """A complete, evaluated run (seed 0). Tests copy it before running commands on it."""
    tmp = tmp_path_factory.mktemp("complete")
    run_dir = tmp / "run"
    result = _train([*TINY, f"hydra.run.dir={run_dir}"], tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "run_info.json").read_text())["status"] == "complete"
    return run_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def test_resuming_a_complete_run_with_another_config_is_refused_and_changes_nothing(complete_run, tmp_path):
    run_dir = _copy(complete_run, tmp_path)
    before = _files(run_dir)
    changes = (("seed=1", "seed: 0 -> 1"), ("env.kwargs.episode_steps=11", "env.kwargs.episode_steps: 10 -> 11"))
    for override, named in changes:
        result = _train([*TINY, override, f"hydra.run.dir={run_dir}", "resume=true"], tmp_path)
        assert result.returncode != 0, f"{override}: the resume was not refused"
        assert "cannot resume" in result.stderr and named in result.stderr, result.stderr[-3000:]
        assert not _changed(before, _files(run_dir)), f"{override}: {_changed(before, _files(run_dir))} changed"
    assert _seed_in_hydra_config(run_dir) == 0
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["status"] == "complete" and info["seed"] == 0


def test_resuming_a_complete_run_with_its_own_config_trains_and_writes_nothing(complete_run, tmp_path):
    """resume=true (device may change) on a complete run: "already complete", nothing written --
    not even a re-evaluation (its tables would differ in their wall-time columns)."""
    run_dir = _copy(complete_run, tmp_path)
    before = _files(run_dir)
    result = _train([*TINY, f"hydra.run.dir={run_dir}", "resume=true", "device=cpu"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is already complete" in result.stdout + result.stderr
    assert not _changed(before, _files(run_dir))


def test_a_refused_resume_of_a_run_made_before_the_record_was_kept_restores_its_config(complete_run, tmp_path):
    """A run without checkpoints/job_config/ (made before simrl kept it): config.yaml comes back
    from checkpoints/run_config.json, and Hydra's files describing the refused command go."""
    run_dir = _copy(complete_run, tmp_path)
    shutil.rmtree(run_dir / "checkpoints" / "job_config")
    info_before = (run_dir / "run_info.json").read_bytes()
    result = _train([*TINY, "seed=1", f"hydra.run.dir={run_dir}", "resume=true"], tmp_path)
    assert result.returncode != 0 and "seed: 0 -> 1" in result.stderr, result.stderr[-3000:]
    assert (run_dir / "run_info.json").read_bytes() == info_before
    assert load_run_config(run_dir) == json.loads((run_dir / "checkpoints" / "run_config.json").read_text())
    assert not (run_dir / ".hydra" / "overrides.yaml").exists() and not (run_dir / ".hydra" / "hydra.yaml").exists()


def test_check_resume_compares_a_complete_runs_config_and_evaluation_settings(complete_run):
    """In-process: the decision alone (it never writes)."""
    cfg = load_run_config(complete_run)
    assert check_resume({**cfg, "resume": False}, complete_run).action == "start"
    assert check_resume({**cfg, "resume": True, "device": "cpu", "progress_bar": True}, complete_run).action == "complete"
    assert check_resume({**cfg, "resume": "auto"}, complete_run).action == "complete"
    with pytest.raises(ResumeRefused, match=r"total_timesteps: 256 -> 512"):
        check_resume({**cfg, "resume": True, "total_timesteps": 512}, complete_run)
    evaluated = r"evaluated with other settings \(evaluation\.n_seeds: 2 -> 5\).*scripts/evaluate\.py"
    with pytest.raises(ResumeRefused, match=evaluated):
        check_resume({**cfg, "resume": "auto", "evaluation": {**cfg["evaluation"], "n_seeds": 5}}, complete_run)
    with pytest.raises(ResumeRefused, match="resume must be false, true or auto"):
        check_resume({**cfg, "resume": "sometimes"}, complete_run)


def test_a_refused_resume_of_a_killed_run_changes_nothing_and_the_right_command_still_resumes(tmp_path, kill_after_first_checkpoint):
    run_dir = tmp_path / "run"
    # 4096 steps (a few seconds), no EvalCallback evaluation: killed long before the end.
    args = [*TINY, "total_timesteps=4096", "eval_callback.every=1000000", f"hydra.run.dir={run_dir}"]
    kill_after_first_checkpoint(args, run_dir, tmp_path)
    before = _files(run_dir)
    assert json.loads(before["run_info.json"])["status"] == "training"

    refused = _train([*args, "seed=1", "resume=true"], tmp_path)
    assert refused.returncode != 0
    assert "cannot resume" in refused.stderr and "seed: 0 -> 1" in refused.stderr, refused.stderr[-3000:]
    assert not _changed(before, _files(run_dir)), _changed(before, _files(run_dir))
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["status"] == "training" and info["seed"] == 0 and "error" not in info
    assert _seed_in_hydra_config(run_dir) == 0

    resumed = _train([*args, "resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["status"] == "complete" and info["num_timesteps"] == 4096 and info["resumes"] == 1
    # training proceeded: this command's config is now the run's record, and the kept copy matches
    assert yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())["resume"] is True
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        assert (run_dir / ".hydra" / name).read_bytes() == (run_dir / "checkpoints" / "job_config" / name).read_bytes()


def test_resume_true_on_a_folder_that_does_not_exist_creates_nothing(tmp_path):
    missing = tmp_path / "no_such_run"
    result = _train([*TINY, f"hydra.run.dir={missing}", "resume=true"], tmp_path)
    assert result.returncode != 0
    assert "resume=true" in result.stderr and "holds no checkpoint" in result.stderr, result.stderr[-3000:]
    assert not missing.exists(), sorted(str(p) for p in missing.rglob("*"))


def test_a_sweep_relaunch_refuses_a_changed_config_without_touching_its_jobs(tmp_path):
    """Multirun: the refused job's folder stays as it was (not "failed"), the sweep lists the
    refusal and exits 1; relaunched with its own config the complete job is left as it is."""
    sweep = tmp_path / "sweep"
    first = _train(["-m", f"hydra.sweep.dir={sweep}", *TINY], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (job,) = [p for p in sweep.iterdir() if (p / "run_info.json").is_file()]
    before = _files(job)

    refused = _train(["-m", f"hydra.sweep.dir={sweep}", *TINY, "env.kwargs.episode_steps=11", "resume=auto"], tmp_path)
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "resume refused for 1 jobs" in refused.stdout and "env.kwargs.episode_steps: 10 -> 11" in refused.stdout
    assert not _changed(before, _files(job)), _changed(before, _files(job))

    again = _train(["-m", f"hydra.sweep.dir={sweep}", *TINY, "resume=auto"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resume refused" not in again.stdout  # the earlier launch's refusal is not counted again
    assert not _changed(before, _files(job)), _changed(before, _files(job))
