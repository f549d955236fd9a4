"""Run folders for the dashboard tests, made by really training tiny policies once per session.

``dashboard_runs`` holds, under one root:

* ``outputs/threebody/ppo/seed0`` -- a single run (``hydra.run.dir``), training seed 0;
* ``multirun/sweep/0_threebody_ppo`` -- a one-job Hydra sweep (``-m``), training seed 1;
* ``outputs/threebody/ppo/killed`` -- a copy of seed 0 without its model and evaluation and
  with ``run_info.json`` saying ``"training"``: a run killed mid-way.

Both trainings run in parallel subprocesses of ``scripts/train_agent.py`` (about 10 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train_agent.py"

TINY = [
    "total_timesteps=256", "n_envs=2", "evaluation.n_seeds=3", "env.kwargs.episode_steps=5",
    "env.evaluation_kwargs.episode_steps=10", "eval_callback.every=128", "eval_callback.n_envs=1",
    "eval_callback.n_episodes=1", "checkpoint_every=128", "progress_bar=false", "device=cpu",
]  # fmt: skip


@dataclass(frozen=True)
class DashboardRuns:
    root: Path
    single: Path
    sweep_job: Path
    killed: Path

    @property
    def good(self) -> list[Path]:
        return [self.single, self.sweep_job]


def subprocess_env() -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, "MPLBACKEND": "Agg"}


def make_killed_copy(source: Path, target: Path) -> Path:
    """A copy of ``source`` as if training had been killed: no model, no evaluation, status "training"."""
    shutil.copytree(source, target)
    (target / "final_model.zip").unlink(missing_ok=True)
    shutil.rmtree(target / "evaluation", ignore_errors=True)
    info_path = target / "run_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.update(status="training")
    for key in ("train_seconds", "num_timesteps", "finished_at", "model"):
        info.pop(key, None)
    info_path.write_text(json.dumps(info, indent=2))
    return target


@pytest.fixture(scope="session")
def dashboard_runs(tmp_path_factory: pytest.TempPathFactory) -> DashboardRuns:
    root = tmp_path_factory.mktemp("dashboard_runs")
    single = root / "outputs" / "threebody" / "ppo" / "seed0"
    sweep = root / "multirun" / "sweep"
    commands = [
        [sys.executable, str(TRAIN), *TINY, "seed=0", f"hydra.run.dir={single}"],
        [sys.executable, str(TRAIN), "-m", *TINY, "seed=1", f"hydra.sweep.dir={sweep}"],
    ]
    work = tmp_path_factory.mktemp("dashboard_train_cwd")
    procs = [
        subprocess.Popen(cmd, cwd=work, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd in commands
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out, cmd in zip(procs, outputs, commands):
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-4000:]}"
    sweep_job = sweep / "0_threebody_ppo"
    assert (single / "final_model.zip").exists() and (sweep_job / "final_model.zip").exists()
    killed = make_killed_copy(single, root / "outputs" / "threebody" / "ppo" / "killed")
    return DashboardRuns(root=root, single=single, sweep_job=sweep_job, killed=killed)


@pytest.fixture()
def artifacts_dir(tmp_path: Path) -> Path:
    """Where tests leave files for people to look at: $SIMRL_TEST_ARTIFACTS, else the test's tmp_path."""
    base = os.environ.get("SIMRL_TEST_ARTIFACTS")
    path = Path(base) if base else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path
