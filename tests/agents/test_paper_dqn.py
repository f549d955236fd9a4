"""Tests for simrl.agents.paper_dqn (the paper's DQN with its training bugs fixed)."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

from simrl.agents.paper_dqn import (
    PaperDQN,
    PaperQNetwork,
    epsilon_at,
    real_next_observations,
    td_targets,
    terminations,
)


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Small networks run fastest on one thread, and the suite shares 2 cores with other jobs."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


class CounterEnv(gym.Env):
    """obs = [step index within the episode]; reward 1; terminates at ``terminate_at`` if given.

    Without ``terminate_at`` it runs forever, so a ``TimeLimit`` wrapper makes every episode end
    by truncation.
    """

    def __init__(self, terminate_at: int | None = None, n_actions: int = 3):
        self.observation_space = gym.spaces.Box(0.0, 1e6, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self.terminate_at = terminate_at
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return np.array([float(self.t)], dtype=np.float32), 1.0, terminated, False, {}


def truncating_vec_env(n_envs: int = 2, max_steps: int = 3) -> DummyVecEnv:
    return DummyVecEnv([lambda: TimeLimit(CounterEnv(), max_episode_steps=max_steps) for _ in range(n_envs)])


def terminating_vec_env(n_envs: int = 2, terminate_at: int = 3) -> DummyVecEnv:
    return DummyVecEnv([lambda: CounterEnv(terminate_at=terminate_at) for _ in range(n_envs)])


def greedy_mean_return(model: PaperDQN, n_episodes: int = 20, seed: int = 10_000) -> float:
    env = gym.make("CartPole-v1")
    returns = []
    for k in range(n_episodes):
        obs, _ = env.reset(seed=seed + k)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


# --- network ------------------------------------------------------------------------------------
def test_network_shapes_and_shared_hidden_layer():
    net = PaperQNetwork(13, 10, hidden_width=200, hidden_applications=5)
    assert net(torch.zeros(7, 13)).shape == (7, 10)
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == (13 * 200 + 200) + (200 * 200 + 200) + (200 * 10 + 10) == 45_010
    # The hidden layer is shared: more applications add no parameters.
    deeper = PaperQNetwork(13, 10, hidden_width=200, hidden_applications=9)
    assert sum(p.numel() for p in deeper.parameters()) == n_params
    assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 3

    # Forward pass == input layer, 5 x the same hidden layer, output layer.
    x = torch.randn(4, 13, generator=torch.Generator().manual_seed(0))
    h = torch.relu(net.input_layer(x))
    for _ in range(5):
        h = torch.relu(net.hidden_layer(h))
    torch.testing.assert_close(net(x), net.output_layer(h))


def test_network_init_uses_given_generator():
    a = PaperQNetwork(13, 10, generator=torch.Generator().manual_seed(1))
    b = PaperQNetwork(13, 10, generator=torch.Generator().manual_seed(1))
    c = PaperQNetwork(13, 10, generator=torch.Generator().manual_seed(2))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.input_layer.weight, c.input_layer.weight)


# --- epsilon schedule ---------------------------------------------------------------------------
def test_epsilon_formula():
    assert epsilon_at(0, 0.9, 0.05, 1000) == pytest.approx(0.9)
    assert epsilon_at(1000, 0.9, 0.05, 1000) == pytest.approx(0.05 + 0.85 * np.exp(-1))
    assert epsilon_at(10**9, 0.9, 0.05, 1000) == pytest.approx(0.05)


def test_epsilon_decays_over_global_steps_not_episodes():
    # 3-step episodes: the paper's per-episode counter would keep epsilon >= 0.9 * ... ~0.89.
    env = truncating_vec_env(n_envs=2, max_steps=3)
    seen = []

    class RecordEpsilon(BaseCallback):
        def _on_step(self) -> bool:
            seen.append(self.model.exploration_rate)
            return True

    total = 2_000
    model = PaperDQN(env, seed=0, learning_starts=10**9, device="cpu")  # no gradient steps: fast
    model.learn(total, callback=RecordEpsilon())
    assert model.num_timesteps == total
    assert seen[0] == pytest.approx(0.9)
    assert np.all(np.diff(seen) <= 0)
    # Default decay = 0.1 * total_timesteps: ~eps_end at the end of training.
    assert model.exploration_rate < 0.05 + 1e-3
    assert seen[len(seen) // 2] < 0.06
    # Explicit override (in global env steps).
    model = PaperDQN(env, seed=0, learning_starts=10**9, eps_decay=10 * total, device="cpu").learn(total)
    assert model.exploration_rate == pytest.approx(epsilon_at(total - 2, 0.9, 0.05, 10 * total))


# --- replay buffer contents -----------------------------------------------------------------------
def test_first_transition_is_stored():
    env = truncating_vec_env(n_envs=2, max_steps=3)
    model = PaperDQN(env, seed=0, learning_starts=10**9, device="cpu").learn(2)  # one env.step call
    buf = model.replay_buffer
    assert len(buf) == 2
    np.testing.assert_array_equal(buf.obs[:2, 0], [0.0, 0.0])  # the reset observation
    np.testing.assert_array_equal(buf.next_obs[:2, 0], [1.0, 1.0])
    np.testing.assert_array_equal(buf.rewards[:2], [1.0, 1.0])

    # Over several episodes every transition is stored: n_envs per env.step call.
    model = PaperDQN(env, seed=0, learning_starts=10**9, device="cpu").learn(20)
    assert len(model.replay_buffer) == 20
    assert np.sum(model.replay_buffer.obs[:20, 0] == 0.0) == 8  # 4 episode starts x 2 envs


def test_truncation_keeps_bootstrap_in_target():
    dones = np.array([True, True, False])
    infos = [
        {"TimeLimit.truncated": True, "terminal_observation": np.array([7.0])},
        {"TimeLimit.truncated": False, "terminal_observation": np.array([8.0])},
        {},
    ]
    terminated = terminations(dones, infos)
    np.testing.assert_array_equal(terminated, [False, True, False])
    next_obs = real_next_observations(np.array([[0.0], [0.0], [5.0]]), dones, infos)
    np.testing.assert_array_equal(next_obs[:, 0], [7.0, 8.0, 5.0])

    targets = td_targets(
        torch.ones(3), torch.full((3,), 10.0), torch.as_tensor(terminated, dtype=torch.float32), gamma=0.99
    )
    torch.testing.assert_close(targets, torch.tensor([1.0 + 0.99 * 10.0, 1.0, 1.0 + 0.99 * 10.0]))


def test_buffer_marks_truncation_and_termination_correctly():
    # Truncated episodes (TimeLimit): never terminated, s' = real last observation, not the reset one.
    model = PaperDQN(truncating_vec_env(2, 3), seed=0, learning_starts=10**9, device="cpu").learn(12)
    buf = model.replay_buffer
    assert not buf.terminated[:12].any()
    last = buf.obs[:12, 0] == 2.0
    np.testing.assert_array_equal(buf.next_obs[:12, 0][last], 3.0)

    # Terminated episodes: terminated = 1 exactly on the last transition.
    model = PaperDQN(terminating_vec_env(2, 3), seed=0, learning_starts=10**9, device="cpu").learn(12)
    buf = model.replay_buffer
    np.testing.assert_array_equal(buf.terminated[:12], (buf.next_obs[:12, 0] == 3.0).astype(np.float32))
    assert buf.terminated[:12].sum() == 4


# --- learning on CartPole -----------------------------------------------------------------------
def test_learns_cartpole():
    """The algorithm learns: greedy return far above a random policy's (~22) after ~6 s of training.

    Uses one hidden application and lr 5e-4: with the paper's 5 shared applications and lr 1e-3 the
    final greedy return after 20-30k steps scatters between ~15 and ~200 across seeds (the deeper
    net learns too, but not reliably within this budget), whereas this setting gave 173-302 at 20k
    steps (and 122-500 at 30k) over seeds 0-5.  The network itself is tested above.
    """
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = PaperDQN(env, learning_rate=5e-4, hidden_applications=1, seed=0, device="cpu")
    model.learn(total_timesteps=20_000)
    env.close()
    assert model.exploration_rate < 0.051
    assert greedy_mean_return(model) > 100


# --- API ----------------------------------------------------------------------------------------
def test_predict_single_and_batch():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = PaperDQN(env, seed=0, device="cpu")
    obs = env.reset()
    actions, state = model.predict(obs)
    assert state is None and actions.shape == (2,)
    action, _ = model.predict(obs[0])
    assert action.shape == () and 0 <= int(action) < 2
    assert int(action) == int(actions[0])
    with pytest.raises(ValueError):
        model.predict(np.zeros(3))


def test_save_load_roundtrip(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = PaperDQN(env, seed=0, batch_size=32, hidden_width=32, device="cpu").learn(400)
    path = tmp_path / "sub" / "model"
    model.save(path)
    assert os.listdir(tmp_path / "sub") == ["model.zip"]  # no temp file left behind

    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    for loaded in (PaperDQN.load(path), PaperDQN.load(str(path) + ".zip", env=env, device="cpu")):
        np.testing.assert_array_equal(loaded.predict(obs)[0], model.predict(obs)[0])
        assert loaded.num_timesteps == model.num_timesteps == 400
        assert loaded.batch_size == 32 and loaded.hidden_width == 32 and loaded.hidden_applications == 5
        for a, b in zip(loaded.policy.state_dict().values(), model.policy.state_dict().values()):
            assert torch.equal(a.cpu(), b.cpu())
    assert PaperDQN.load(path, device="cpu").device == torch.device("cpu")
    loaded.learn(100, reset_num_timesteps=False)  # a loaded model keeps training
    assert loaded.num_timesteps == 500
    with pytest.raises(ValueError, match="learn"):
        PaperDQN.load(path).learn(10)


def test_non_discrete_action_space_raises():
    with pytest.raises(ValueError, match="Discrete"):
        PaperDQN(make_vec_env("Pendulum-v1", n_envs=1), device="cpu")

    class MultiDiscreteEnv(CounterEnv):
        def __init__(self):
            super().__init__()
            self.action_space = gym.spaces.MultiDiscrete([2, 2])

    with pytest.raises(ValueError, match="Discrete"):
        PaperDQN(DummyVecEnv([MultiDiscreteEnv]), device="cpu")


def test_same_seed_identical_weights():
    def train(seed):
        env = make_vec_env("CartPole-v1", n_envs=2, seed=123)
        model = PaperDQN(env, seed=seed, batch_size=32, hidden_width=32, device="cpu")
        return model.learn(600).policy.state_dict()

    a, b, c = train(7), train(7), train(8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_agent_leaves_global_rngs_alone():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    torch_state, numpy_state = torch.get_rng_state().clone(), np.random.get_state()[1].copy()
    model = PaperDQN(env, seed=1, batch_size=32, hidden_width=16, device="cpu").learn(200)
    model.predict(np.zeros(4), deterministic=False)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)


def test_callbacks_and_tensorboard(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)

    class StopAfter(BaseCallback):
        def _on_training_start(self) -> None:
            assert self.training_env is env

        def _on_step(self) -> bool:
            self.logger.record("custom/value", 1.0)
            return self.n_calls < 10

    class Count(BaseCallback):
        def _on_step(self) -> bool:
            return True

    stopper, counter = StopAfter(), Count()
    model = PaperDQN(env, seed=0, batch_size=32, device="cpu", tensorboard_log=str(tmp_path))
    model.learn(1_000, callback=[stopper, counter], tb_log_name="run")
    assert stopper.n_calls == 10 and counter.n_calls == 10
    assert model.num_timesteps == 20
    assert os.listdir(tmp_path) == ["run_1"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "run_1"))

    # A plain callable (locals, globals) -> bool, as in SB3; a second run gets its own folder.
    calls = []
    model.learn(100, callback=lambda _locals, _globals: calls.append(1) or True, tb_log_name="run")
    assert len(calls) == 50 and model.num_timesteps == 100
    assert sorted(os.listdir(tmp_path)) == ["run_1", "run_2"]
