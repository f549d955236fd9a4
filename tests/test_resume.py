"""Resumable checkpoints (simrl.agents.checkpoints): bit-exact continuation, corrupt/partial
checkpoints, pruning, config checks; and a real training run killed with SIGKILL and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

from simrl.agents.checkpoints import (
    CheckpointCallback,
    CheckpointError,
    check_run_config,
    find_sidecars,
    read_checkpoint,
    reset_seed,
    resume_latest,
    save_checkpoint,
    write_run_config,
)
from simrl.agents.paper_dqn import PaperDQN

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_agent.py"

AGENTS = {
    "ppo": (PPO, dict(policy="MlpPolicy", n_steps=32, batch_size=32, n_epochs=2, policy_kwargs={"net_arch": [16]})),
    "dqn": (DQN, dict(policy="MlpPolicy", learning_starts=64, buffer_size=500, train_freq=4, target_update_interval=50,
                      batch_size=16, policy_kwargs={"net_arch": [16]})),
    "paper_dqn": (PaperDQN, dict(hidden_width=16, hidden_applications=2, buffer_size=500, batch_size=16)),
}  # fmt: skip
TOTAL, EVERY = 384, 128


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cartpole(seed: int):
    return make_vec_env("CartPole-v1", n_envs=2, seed=seed)


def _build(name: str, seed: int = 0):
    cls, kwargs = AGENTS[name]
    kwargs = dict(kwargs)
    policy = kwargs.pop("policy", None)
    env = _cartpole(seed)
    model = cls(policy, env, seed=seed, device="cpu", **kwargs) if policy else cls(env, seed=seed, device="cpu", **kwargs)
    return cls, model


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()])


@pytest.mark.parametrize("name", list(AGENTS))
def test_resumed_training_is_bit_identical_to_an_uninterrupted_one(tmp_path, name):
    cls, model = _build(name)
    model.learn(TOTAL, callback=CheckpointCallback(tmp_path, every=EVERY, prefix=name, keep=10))
    reference = _params(model).clone()
    sidecars = find_sidecars(tmp_path)
    assert [read_checkpoint(s).step for s in sidecars] == [384, 256, 128]  # 384: the end of learn()
    assert all(read_checkpoint(s).env_state == "exact" for s in sidecars)
    if name != "ppo":
        assert "replay_buffer" in read_checkpoint(sidecars[0]).files
    for sidecar in sidecars[:2]:  # as if killed while writing the step-256 checkpoint: resume from 128
        sidecar.unlink()
    np.random.seed(12345)  # scramble every global stream: the checkpoint must restore them
    torch.manual_seed(678)
    resumed = resume_latest(tmp_path, cls, _cartpole, seed=0, device="cpu")
    assert resumed is not None and resumed.checkpoint.step == 128
    assert any("step 256 is partial" in p for p in resumed.problems)
    resumed.model.learn(TOTAL - resumed.model.num_timesteps, reset_num_timesteps=False)
    assert resumed.model.num_timesteps == model.num_timesteps
    assert torch.equal(_params(resumed.model), reference)


def _two_checkpoints(tmp_path, name="ppo"):
    _, model = _build(name)
    model.learn(TOTAL, callback=CheckpointCallback(tmp_path, every=EVERY, prefix=name, keep=2))
    return model, find_sidecars(tmp_path)


def test_corrupt_or_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    _, (newest, previous) = _two_checkpoints(tmp_path)
    state = tmp_path / json.loads(newest.read_text())["files"]["state"]["name"]
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    state.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        read_checkpoint(newest)
    resumed = resume_latest(tmp_path, PPO, _cartpole, seed=0, device="cpu")
    assert resumed.checkpoint.step == read_checkpoint(previous).step == 256
    assert any("SHA-256" in p and "trying the previous checkpoint" in p for p in resumed.problems)
    assert "SHA-256" in caplog.text

    model_zip = tmp_path / json.loads(previous.read_text())["files"]["model"]["name"]
    model_zip.write_bytes(model_zip.read_bytes()[:100])  # a truncated write
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(previous)
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        resume_latest(tmp_path, PPO, _cartpole, seed=0, device="cpu")


def test_unreadable_sidecar_is_reported(tmp_path):
    _, (newest, _) = _two_checkpoints(tmp_path)
    newest.write_text('{"format": "simrl-checkpoint", "step": 2')
    with pytest.raises(CheckpointError, match="unreadable"):
        read_checkpoint(newest)
    assert resume_latest(tmp_path, PPO, _cartpole, seed=0, device="cpu").checkpoint.step == 256


def test_only_the_newest_checkpoints_stay_resumable_and_every_model_zip_is_kept(tmp_path):
    _, model = _build("dqn")
    model.learn(640, callback=CheckpointCallback(tmp_path, every=EVERY, prefix="dqn", keep=2))
    assert [read_checkpoint(s).step for s in find_sidecars(tmp_path)] == [640, 512]
    assert sorted(p.name for p in tmp_path.glob("dqn_*_steps.zip")) == sorted(f"dqn_{s}_steps.zip" for s in (128, 256, 384, 512, 640))
    assert len(list(tmp_path.glob("*.replay_buffer.pkl"))) == len(list(tmp_path.glob("*.state.pkl"))) == 2
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_no_checkpoint_means_none_and_bad_arguments_are_refused(tmp_path):
    assert resume_latest(tmp_path / "absent", PPO, _cartpole, seed=0) is None
    with pytest.raises(ValueError, match="interval"):
        CheckpointCallback(tmp_path, every=0, prefix="x")
    _, model = _build("ppo")
    with pytest.raises(ValueError, match="keep"):
        save_checkpoint(model, tmp_path, "x", keep=0)


def test_reset_seeds_lie_above_every_configured_seed_range():
    seeds = {reset_seed(s, step) for s in (0, 1) for step in (2048, 4096, 10**9)}
    assert len(seeds) == 6 and min(seeds) >= 2**31 and max(seeds) < 2**32 - 2**16


def test_resume_refuses_a_different_config(tmp_path):
    cfg = {"seed": 0, "total_timesteps": 1000, "agent": {"kwargs": {"learning_rate": 3e-4}}, "resume": False,
           "progress_bar": True, "device": "auto"}  # fmt: skip
    write_run_config(tmp_path, cfg)
    check_run_config(tmp_path, {**cfg, "resume": True, "progress_bar": False, "device": "cpu"})
    with pytest.raises(CheckpointError, match=r"agent\.kwargs\.learning_rate: 0\.0003 -> 0\.001"):
        check_run_config(tmp_path, {**cfg, "agent": {"kwargs": {"learning_rate": 1e-3}}})
    with pytest.raises(CheckpointError, match="no .*run_config.json"):
        check_run_config(tmp_path / "other", cfg)


# ---------------------------------------------------------------------------------------------
# A real training run, killed outright after its first checkpoint, then resumed with resume=true
# ---------------------------------------------------------------------------------------------
def _train_args(run_dir: Path, agent: str) -> list[str]:
    per_agent = {
        "ppo": ["agent.kwargs.n_steps=64", "agent.kwargs.batch_size=64", "agent.kwargs.n_epochs=1"],
        "dqn": ["agent.kwargs.learning_starts=128", "agent.kwargs.batch_size=32", "agent.kwargs.buffer_size=4096",
                "agent.kwargs.target_update_interval=256"],
    }[agent]
    return [
        f"hydra.run.dir={run_dir}", f"agent={agent}", "total_timesteps=2048", "n_envs=2", "progress_bar=false",
        "checkpoint_every=256", "eval_callback.every=512", "eval_callback.n_envs=2", "eval_callback.n_episodes=2",
        "evaluation.n_seeds=2", "env.kwargs.episode_steps=10", "env.evaluation_kwargs.episode_steps=20", *per_agent,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_a_run_killed_after_its_first_checkpoint_resumes_exactly_to_the_full_step_count(tmp_path, kill_after_first_checkpoint):
    """SB3 DQN on ThreeBody (model, optimiser, replay buffer, exploration schedule, RNGs, environments),
    SIGKILLed right after its first checkpoint, resumed with resume=true: same final step count, and
    the same final network as a run that was never interrupted."""
    from stable_baselines3 import DQN

    run_dir, reference_dir = tmp_path / "run", tmp_path / "reference"
    args = _train_args(run_dir, "dqn")
    returncode = kill_after_first_checkpoint(args, run_dir, tmp_path)
    assert returncode == -signal.SIGKILL
    assert json.loads((run_dir / "run_info.json").read_text())["status"] == "training"
    first = read_checkpoint(find_sidecars(run_dir / "checkpoints")[-1])
    assert first.env_state == "exact", first.meta["env_state_reason"]

    result = subprocess.run([sys.executable, str(SCRIPT), *args, "resume=true"], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["status"] == "complete" and info["num_timesteps"] == 2048 and info["resumes"] == 1
    assert info["resumed_from"]["step"] >= first.step >= 256
    assert (run_dir / "evaluation" / "episodes.parquet").is_file()
    # the EvalCallback history continues (its evaluations before the checkpoint are kept)
    evaluations = np.load(run_dir / "eval_callback" / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [512, 1024, 1536, 2048]

    reference = subprocess.run([sys.executable, str(SCRIPT), *_train_args(reference_dir, "dqn")], cwd=tmp_path,
                               env=_env(), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-3000:]
    resumed_net = DQN.load(run_dir / "final_model.zip", device="cpu").policy.state_dict()
    reference_net = DQN.load(reference_dir / "final_model.zip", device="cpu").policy.state_dict()
    assert all(torch.equal(resumed_net[k], reference_net[k]) for k in reference_net)


def test_resume_true_without_a_checkpoint_is_refused_and_auto_starts_afresh(tmp_path):
    from simrl.agents.training import resume_point

    with pytest.raises(CheckpointError, match="resume=true.*no checkpoint"):
        resume_point(tmp_path, True)
    assert resume_point(tmp_path, "auto") is None and resume_point(tmp_path, False) is None
    with pytest.raises(ValueError, match="resume must be"):
        resume_point(tmp_path, "sometimes")


def test_auto_resume_starts_afresh_when_only_a_partial_first_checkpoint_exists(tmp_path):
    """A run killed while writing its first checkpoint: resume=auto restarts (a requeue must not fail forever)."""
    from simrl.agents import checkpoints as ckpt
    from simrl.agents.training import resume_point

    folder = tmp_path / ckpt.CHECKPOINT_DIR
    folder.mkdir()
    (folder / "ppo_128_steps.zip").write_bytes(b"half a zip")
    assert resume_point(tmp_path, "auto") is None
    assert resume_point(tmp_path, True) == folder  # resume_latest then names what is wrong with the file
