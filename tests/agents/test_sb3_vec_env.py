"""The SB3 VecEnv adapter over the native batched ThreeBody vector env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecMonitor

import simrl  # noqa: F401
from simrl.agents.sb3_vec_env import GymnasiumVecEnvAdapter, make_sb3_vec_env

ENV_ID = "simrl/ThreeBody-v0"


def test_adapter_follows_sb3_semantics_through_episode_ends():
    venv = make_sb3_vec_env(ENV_ID, num_envs=3, seed=10, episode_steps=5)
    assert isinstance(venv, VecMonitor)
    obs = venv.reset()
    assert obs.shape == (3, 28) and obs.dtype == np.float32
    for step in range(5):
        obs, rewards, dones, infos = venv.step(np.full(3, 6))
    assert dones.all() and len(infos) == 3
    single = gym.make(ENV_ID, episode_steps=5)
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert "episode" in info and info["episode"]["l"] == 5
        assert info["terminal_observation"].shape == (28,)
        assert not np.array_equal(info["terminal_observation"], obs[i])  # obs is the next episode's
        # The terminal observation is the one a single env with the same seed reaches.
        single.reset(seed=10 + i)
        for _ in range(5):
            last, *_ = single.step(6)
        np.testing.assert_array_equal(info["terminal_observation"], last)
        assert info["step_index"] == 5  # the finished episode's info, not the fresh one's


def test_adapter_rejects_next_step_autoreset_vector_envs():
    cartpole = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    with pytest.raises(ValueError, match="SAME_STEP"):
        GymnasiumVecEnvAdapter(cartpole)


def test_sb3_trains_and_evaluates_on_the_adapter():
    venv = make_sb3_vec_env(ENV_ID, num_envs=4, seed=0, episode_steps=10)
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    assert model.num_timesteps >= 128
    mean_reward, _ = evaluate_policy(model, venv, n_eval_episodes=4, warn=False)
    assert np.isfinite(mean_reward)


def test_seeding_through_sb3_is_reproducible():
    a = make_sb3_vec_env(ENV_ID, num_envs=2, seed=3)
    b = make_sb3_vec_env(ENV_ID, num_envs=2, seed=3)
    np.testing.assert_array_equal(a.reset(), b.reset())
    for _ in range(20):
        oa, ra, *_ = a.step(np.array([4, 7]))
        ob, rb, *_ = b.step(np.array([4, 7]))
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)


def test_settings_are_reachable_through_get_and_set_attr_for_all_envs_only():
    venv = GymnasiumVecEnvAdapter(gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point"))
    assert venv.get_attr("cost_weight") == [1.0, 1.0]
    venv.set_attr("cost_weight", 3.0)
    assert venv.vector_env.settings.cost_weight == 3.0
    with pytest.raises(NotImplementedError, match="subset"):
        venv.set_attr("cost_weight", 2.0, indices=[0])
    with pytest.raises(NotImplementedError, match="subset"):
        venv.env_method("parameter_values", indices=[1])
    with pytest.raises(AttributeError, match="no_such"):
        venv.set_attr("no_such", 1)
    assert len(venv.env_method("parameter_values")[0]) == 10


def test_fixed_reset_seeds_restart_every_evaluation_from_the_same_states():
    fixed = make_sb3_vec_env(ENV_ID, num_envs=2, seed=500, fixed_reset_seeds=True)
    first = fixed.reset()
    fixed.step(np.array([5, 5]))
    np.testing.assert_array_equal(fixed.reset(), first)
    drifting = make_sb3_vec_env(ENV_ID, num_envs=2, seed=500)
    np.testing.assert_array_equal(drifting.reset(), first)
    assert not np.array_equal(drifting.reset(), first)


def test_a_blowup_is_not_a_time_limit_for_sb3():
    """Blow-ups end episodes as truncated with a final penalty: SB3 must not bootstrap past them."""
    from simrl.agents.sb3_vec_env import GymnasiumVecEnvAdapter
    from simrl.envs.turbulence import Turbulence2DGlobalVectorEnv
    from simrl.envs.turbulence_core import synthetic_targets

    venv = GymnasiumVecEnvAdapter(Turbulence2DGlobalVectorEnv(
        num_envs=2, reference=synthetic_targets(16), n_les=16, backscatter=True, coefficient_range=(-5.0, 0.125),
        enstrophy_limit=1.5, episode_steps=100, blowup_penalty=3.0))  # fmt: skip
    venv.seed(0)
    venv.reset()
    for _ in range(10):
        _, rewards, dones, infos = venv.step(np.array([[-5.0], [0.01]], np.float32))
        if dones[0]:
            break
    assert dones[0] and not dones[1] and rewards[0] == -3.0
    assert infos[0]["blowup"] and infos[0]["TimeLimit.truncated"] is False


@pytest.mark.parametrize("env_id", ["simrl/ThreeBody-v0", "simrl/PredatorPrey-v0", "simrl/MetabolicPathway-v0"])
def test_numpy_integer_seeds_give_the_same_resets_as_python_ints(env_id):
    # make_sb3_vec_env(..., seed=np.int64(0)).reset() used to fail with Gymnasium's "Seed must be a python integer"
    a = make_sb3_vec_env(env_id, num_envs=2, seed=np.int64(3)).reset()
    b = make_sb3_vec_env(env_id, num_envs=2, seed=3).reset()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed must be None or an integer >= 0"):
        make_sb3_vec_env(env_id, num_envs=2, seed=1.5)
