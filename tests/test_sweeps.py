"""Hydra multirun sweeps of scripts/train_agent.py: joblib (the default), Ray, SLURM (the submission it
would make), Optuna; failed jobs recorded while the others go on; scripts/aggregate_sweep.py; the dashboard."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TRAIN = ROOT / "scripts" / "train_agent.py"
AGGREGATE = ROOT / "scripts" / "aggregate_sweep.py"
# Tiny real jobs: 256 steps on 2 envs, 10-step training and 20-step evaluation episodes, 2 held-out seeds.
TINY = [
    "env=threebody", "total_timesteps=256", "n_envs=2", "progress_bar=false", "evaluation.n_seeds=2",
    "checkpoint_every=128", "eval_callback.every=128", "eval_callback.n_envs=2", "eval_callback.n_episodes=2",
    "env.kwargs.episode_steps=10", "env.evaluation_kwargs.episode_steps=20", "agent.kwargs.n_steps=32",
    "agent.kwargs.batch_size=32", "agent.kwargs.n_epochs=2",
]  # fmt: skip


def _run(script: Path, args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    # One torch thread per process: tiny MLPs on a loaded 2-core machine are many times slower with more.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)  # fmt: skip


def _jobs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if (p / ".hydra" / "config.yaml").is_file()), key=lambda p: p.name)


def _run_info(job: Path) -> dict:
    return json.loads((job / "run_info.json").read_text())


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory):
    """A default (joblib) multirun of two PPO jobs, the second with a learning rate torch refuses."""
    tmp = tmp_path_factory.mktemp("joblib")
    sweep = tmp / "sweep"
    result = _run(TRAIN, ["-m", f"hydra.sweep.dir={sweep}", "agent=ppo", "agent.kwargs.learning_rate=3e-4,-1.0", *TINY], tmp)
    return sweep, result


def test_joblib_is_the_multirun_default_with_one_process_per_core():
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose(config_name="config", return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert cfg.hydra.launcher.n_jobs == -1 and cfg.hydra.launcher.prefer == "processes"  # -1: every core


def test_a_failing_job_is_recorded_and_the_others_complete(joblib_sweep):
    sweep, result = joblib_sweep
    assert result.returncode == 1, result.stderr[-3000:]  # documented: 1 when any job failed, after all ran
    good, bad = _jobs(sweep)
    assert (good / "evaluation" / "episodes.parquet").is_file()
    assert _run_info(good)["status"] == "complete" and math.isfinite(_run_info(good)["objective"])
    info = _run_info(bad)
    assert info["status"] == "failed" and "learning rate" in info["error"].lower()
    assert not (bad / "evaluation" / "episodes.parquet").exists()
    # the summary the sweep printed and wrote
    assert "1 complete, 1 failed of 2 jobs" in result.stdout and "failed jobs:" in result.stdout
    table = pd.read_csv(sweep / "sweep_summary.csv")
    assert list(table["status"]) == ["complete", "failed"]
    assert list(table["agent.kwargs.learning_rate"].astype(float)) == [3e-4, -1.0]
    assert table.loc[0, "eval_episodes"] == 2 and math.isnan(table.loc[1, "objective"])


def _aggregate_main():
    spec = importlib.util.spec_from_file_location("aggregate_sweep", AGGREGATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_aggregate_sweep_script_tabulates_every_job(joblib_sweep, tmp_path, capsys):
    sweep, _ = joblib_sweep
    out = tmp_path / "table.csv"
    main = _aggregate_main()  # in-process: the script is a thin front-end, the subprocess start is the cost
    assert main([str(sweep), "--csv", str(out)]) == 1  # a failed job
    stdout = capsys.readouterr().out
    assert "failed jobs:" in stdout and "Invalid learning rate" in stdout
    table = pd.read_csv(out)
    assert len(table) == 2 and set(table.columns) >= {"job", "status", "objective", "error", "overrides", "eval_mean_return",
                                                       "eval_median_energy_error", "eval_median_total_force_evaluations"}
    assert table.loc[0, "objective"] == pytest.approx(_run_info(_jobs(sweep)[0])["objective"])
    assert main([str(tmp_path / "nothing")]) == 2 and "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*"))  # the CSV was written atomically, no temporary file left


def test_the_dashboard_finds_the_sweep_jobs(joblib_sweep):
    from simrl.dashboard import runs

    sweep, _ = joblib_sweep
    table = runs.load_runs(sweep.parent).sort_values("path")
    assert len(table) == 2 and table["sweep"].notna().all()
    assert list(table["status"]) == [runs.STATUS_COMPLETE, runs.STATUS_BROKEN]
    assert "learning rate" in table["problem"].iloc[1].lower()


@pytest.mark.slow
def test_ray_sweep_on_a_local_cluster(tmp_path):
    """The launcher starts a local 2-CPU Ray cluster (address=local), which ends with the command."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the cluster extra (hydra-ray-launcher) is not installed")
    sweep = tmp_path / "sweep"
    args = [
        "-m", "hydra/launcher=ray", "hydra.launcher.ray.init.address=local", "+hydra.launcher.ray.init.num_cpus=2",
        "hydra.launcher.ray.init.object_store_memory=100000000", "+hydra.launcher.ray.init.include_dashboard=false",
        f"hydra.sweep.dir={sweep}", "agent=ppo", "seed=0,1", *TINY,
    ]  # fmt: skip
    result = _run(TRAIN, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _jobs(sweep)
    assert len(jobs) == 2
    for job in jobs:
        assert (job / "evaluation" / "episodes.parquet").is_file()
        assert _run_info(job)["status"] == "complete"
    assert [_run_info(j)["seed"] for j in jobs] == [0, 1]
    assert "Ray Launcher is launching 2 jobs" in result.stdout + result.stderr


def test_slurm_launcher_submits_the_configured_resources(tmp_path, monkeypatch):
    """No SLURM here: run the real launcher up to sbatch and inspect the job array it would submit."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra (hydra-submitit-launcher) is not installed")
    import submitit
    from hydra.core.utils import JobReturn, JobStatus

    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1",
                 f"hydra.sweep.dir={tmp_path}"]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        default = compose(config_name="config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert default.hydra.launcher.partition is None and default.hydra.launcher.gpus_per_node is None
    assert (default.hydra.launcher.timeout_min, default.hydra.launcher.cpus_per_task, default.hydra.launcher.mem_gb) == (720, 8, 16)

    submitted = {}

    class FakeJob:
        def __init__(self, index):
            self.index = index

        def results(self):
            return [JobReturn(status=JobStatus.COMPLETED, _return_value=float(self.index))]

    def fake_submit(self, delayed_submissions):
        submitted["parameters"] = dict(self.parameters)
        submitted["max_num_timeout"] = self.max_num_timeout
        submitted["sbatch"] = self._make_submission_file_text("python -u -m submitit.core._submit FOLDER", "uid")
        submitted["n"] = len(delayed_submissions)
        return [FakeJob(i) for i in range(len(delayed_submissions))]

    monkeypatch.setattr(submitit.SlurmExecutor, "_internal_process_submissions", fake_submit)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun is there"
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: 0.0, config=cfg)
    returns = launcher.launch([["seed=0"], ["seed=1"], ["seed=2"]], initial_job_idx=0)
    assert [r.return_value for r in returns] == [0.0, 1.0, 2.0]
    assert submitted["n"] == 3 and submitted["max_num_timeout"] == 3
    sbatch = submitted["sbatch"]
    for flag in ("--partition=gpu", "--time=720", "--cpus-per-task=8", "--gpus-per-node=1", "--mem=16GB",
                 "--nodes=1", "--ntasks-per-node=1", "--signal=USR2@120"):  # fmt: skip
        assert f"#SBATCH {flag}" in sbatch, (flag, sbatch)
    assert str(tmp_path / ".submitit") in sbatch
    # by default: no GPU request and no partition, so no flag at all (CPU partitions may reject --gpus-per-node)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cpu = compose(config_name="config", overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)
    cpu_launcher = instantiate(cpu.hydra.launcher)
    cpu_launcher.setup(hydra_context=None, task_function=lambda c: 0.0, config=cpu)
    cpu_launcher.launch([["seed=0"]], initial_job_idx=0)
    assert "--gpus-per-node" not in submitted["sbatch"] and "--partition" not in submitted["sbatch"]


@pytest.mark.slow
def test_optuna_search_runs_trials_and_minimises_the_evaluation_objective(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the cluster extra (hydra-optuna-sweeper) is not installed")
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=optuna_ppo", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2", "agent=ppo",
            f"hydra.sweep.dir={sweep}", *[a for a in TINY if not a.startswith("agent.kwargs.n_steps")]]  # fmt: skip
    result = _run(TRAIN, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _jobs(sweep)
    assert len(jobs) == 2
    objectives = [_run_info(j)["objective"] for j in jobs]
    assert all(math.isfinite(o) for o in objectives)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(objectives))
    assert set(best["best_params"]) == {"agent.kwargs.learning_rate", "agent.kwargs.gamma", "agent.kwargs.n_steps",
                                        "agent.kwargs.gae_lambda"}  # fmt: skip
    for job in jobs:  # each trial trained with the parameters Optuna chose
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert any(o.startswith("agent.kwargs.learning_rate=") for o in overrides)
        assert (job / "evaluation" / "episodes.parquet").is_file()


# ---------------------------------------------------------------------------------------------
# device=auto / cpu / cuda: every agent's torch modules on the resolved device, environments on the CPU
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["cpu", "auto"])
@pytest.mark.parametrize("agent", ["ppo", "dqn", "a2c", "paper_dqn"])
def test_every_agent_puts_its_networks_on_the_resolved_device_and_keeps_envs_on_the_cpu(agent, device):
    import numpy as np
    import torch

    from simrl.agents.factory import build_agent, resolve_device
    from simrl.agents.sb3_vec_env import make_sb3_vec_env

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIGS)):
        cfg = compose(config_name="config", overrides=[f"agent={agent}"])
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else torch.device("cpu")
    assert torch.device(resolve_device(device)).type == expected.type
    env = make_sb3_vec_env(cfg.env.id, 2, seed=0, episode_steps=5)
    try:
        model = build_agent(cfg.agent.class_path, env, policy=cfg.agent.policy, seed=0, device=device,
                            kwargs={k: v for k, v in dict(cfg.agent.kwargs).items() if k in ("learning_rate", "gamma")})  # fmt: skip
        modules = [model.policy] + [getattr(model, n) for n in ("target_network", "q_net_target") if hasattr(model, n)]
        devices = {p.device.type for m in modules for p in m.parameters()}
        assert devices == {expected.type} and torch.device(model.device).type == expected.type
        obs = env.reset()
        assert isinstance(obs, np.ndarray)  # the physics and its observations stay NumPy on the CPU
        actions, _ = model.predict(obs, deterministic=True)
        assert isinstance(actions, np.ndarray) and actions.shape == (2,)
        env.step(actions)
    finally:
        env.close()


def test_a_cuda_request_without_cuda_fails_naming_what_is_accepted():
    import torch

    from simrl.agents.factory import resolve_device

    with pytest.raises(ValueError, match="accepted: 'auto', 'cpu', 'cuda', 'cuda:N'"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").startswith("cuda")
    else:
        with pytest.raises(ValueError, match="torch sees no CUDA GPU; use 'auto' or 'cpu'"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda:1")
