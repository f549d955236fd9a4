"""simrl/ThreeBody-v0: Gymnasium API, determinism over whole episodes, rewards, bad input, blow-ups."""

from __future__ import annotations

import importlib
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simrl
from simrl.envs.threebody import ThreeBodyEnv, ThreeBodyVectorEnv

ENV_ID = "simrl/ThreeBody-v0"


def test_registry_is_idempotent_and_lists_the_environment():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(simrl)
        simrl.register_environments()
    assert ENV_ID in simrl.list_environments()
    assert ENV_ID in simrl.list_environments("single-agent")
    split = simrl.list_environments("single-agent") + simrl.list_environments("multi-agent")
    assert sorted(split) == sorted(simrl.list_environments())
    assert gym.spec(ENV_ID).vector_entry_point is not None
    with pytest.raises(ValueError, match="accepted"):
        simrl.list_environments("robots")
    with pytest.raises(ValueError, match="simrl/ThreeBody-v0"):
        simrl.environment_entry("simrl/Nope-v0")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"obs_mode": "paper", "reward": "paper"},
        {"action_type": "continuous"},
        {"integrator": "ias15", "episode_steps": 5},
        {"integrator": "leapfrog", "episode_steps": 5, "action_range": (1e-5, 1e-3)},
        {"preset": "random", "preset_kwargs": {"n_bodies": 4}, "episode_steps": 5},
    ],
)
def test_gymnasium_check_env(kwargs):
    # Wall-clock times differ between two identical steps, which check_env compares.
    env = gym.make(ENV_ID, measure_wall_time=False, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_sb3_check_env():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(ThreeBodyEnv(measure_wall_time=False), warn=True, skip_render_check=True)


def test_same_seed_same_actions_give_identical_whole_episodes(rollout):
    actions = np.random.default_rng(123).integers(0, 10, size=100)
    a = rollout(gym.make(ENV_ID), actions, seed=7)
    b = rollout(gym.make(ENV_ID), actions, seed=7)
    assert len(a) == len(b) == 101
    for (oa, ra, ta, ua, ia), (ob, rb, tb, ub, ib) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb and ta == tb and ua == ub
        # assert_equal treats NaN (no parameter used yet, at reset) as equal to itself.
        np.testing.assert_equal({k: v for k, v in ia.items() if "wall" not in k}, {k: v for k, v in ib.items() if "wall" not in k})
    assert a[-1][3], "a 100-step training episode ends truncated"
    c = rollout(gym.make(ENV_ID), actions, seed=8)
    assert not np.array_equal(a[0][0], c[0][0])


def test_environment_never_touches_global_numpy_state():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    env = gym.make(ENV_ID)
    env.reset(seed=3)
    for _ in range(5):
        env.step(env.action_space.sample())
    env.reset()
    assert np.array_equal(before, np.random.get_state()[1])


def test_unseeded_resets_draw_fresh_initial_conditions():
    env = gym.make(ENV_ID)
    first, _ = env.reset(seed=0)
    second, _ = env.reset()
    assert not np.array_equal(first, second)


def test_vector_env_matches_single_envs_over_whole_episodes_and_autoresets():
    num_envs, steps = 4, 130  # past the 100-step limit: covers the same-step autoreset
    actions = np.random.default_rng(5).integers(3, 10, size=(steps, num_envs))
    venv = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")
    assert isinstance(venv, ThreeBodyVectorEnv)
    obs, _ = venv.reset(seed=40)
    singles = [gym.make(ENV_ID) for _ in range(num_envs)]
    single_obs = [env.reset(seed=40 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack(single_obs))
    autoresets = 0
    for t in range(steps):
        obs, rewards, term, trunc, info = venv.step(actions[t])
        for i, env in enumerate(singles):
            o, r, te, tr, inf = env.step(actions[t, i])
            assert r == rewards[i] and te == term[i] and tr == trunc[i]
            assert inf["total_force_evaluations"] == (info["final_info"] if te or tr else info)["total_force_evaluations"][i]
            if te or tr:
                np.testing.assert_array_equal(info["final_obs"][i], o)
                assert info["_final_obs"][i]
                autoresets += 1
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
    assert autoresets >= num_envs


def test_vector_env_disabled_autoreset_freezes_finished_systems():
    venv = ThreeBodyVectorEnv(num_envs=2, autoreset_mode="Disabled", episode_steps=3)
    venv.reset(seed=[1, 2])
    for _ in range(3):
        _, _, term, trunc, info = venv.step(np.array([5, 5]))
    assert (term | trunc).all()
    evals = info["total_force_evaluations"].copy()
    _, rewards, term2, trunc2, info = venv.step(np.array([5, 5]))
    assert np.array_equal(info["total_force_evaluations"], evals) and not rewards.any()
    assert np.array_equal(term | trunc, term2 | trunc2)


def test_info_and_state_contents():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    _, _, _, _, info = env.step(3)
    for key in ("energy_error", "force_evaluations", "total_force_evaluations", "sim_time", "wall_time", "parameter", "blowup"):
        assert key in info
    assert info["parameter"] == pytest.approx(1e-3)
    assert info["sim_time"] == pytest.approx(0.1)
    assert info["force_evaluations"] == info["total_force_evaluations"] > 0
    state = env.unwrapped.state
    assert state["positions"].shape == (3, 3) and state["masses"].shape == (3,)
    assert state["time_yr"] == pytest.approx(0.1)
    np.testing.assert_allclose(state["masses"], 1 / 3)  # 1 M_sun in units of 3 M_sun


def test_markov_reward_telescopes_to_log_error_and_log_cost():
    env = gym.make(ENV_ID, cost_weight=0.7)
    env.reset(seed=2)
    total = 0.0
    rng = np.random.default_rng(0)
    for _ in range(100):
        _, r, term, trunc, info = env.step(int(rng.integers(2, 10)))
        total += r
        if term or trunc:
            break
    log_error = math.log10(max(info["energy_error"], 1e-16))
    expected = -(log_error + 16) - 0.7 * math.log10(info["total_force_evaluations"])
    assert total == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("error", "step", "expected"),
    # The energy term tabulated in the reference (W0 = 3500): 1e-8 / 1e-6 / 1e-4 at i = 1, 10, 100.
    [(1e-8, 1, -13.7), (1e-6, 10, -6.5), (1e-4, 100, -3.3), (1e-2, 1, -3500.0), (1e-12, 1, 4.05)],
)
def test_paper_reward_energy_term_matches_the_papers_table(error, step, expected):
    from simrl.envs.threebody_core import paper_reward

    value = paper_reward(np.array([error]), np.array([0.01]), np.array([step]), np.zeros(1), (3500.0, 0.0, 0.0))[0]
    assert value == pytest.approx(expected, rel=0.02)


def test_paper_reward_over_an_episode_follows_the_formula():
    env = gym.make(ENV_ID, reward="paper", obs_mode="paper")
    env.reset(seed=4)
    for i in range(1, 31):
        obs, r, term, trunc, info = env.step(i % 10)
        err = info["energy_error"] + 1e-20
        mu = info["parameter"]
        expected = -3000 * (math.log10(err / 1e-10) / abs(math.log10(err)) ** 3) / i + 4 / abs(math.log10(mu))
        # The paper's code returns 0 on the first step (its previous energy error is still 0).
        assert r == (0.0 if i == 1 else pytest.approx(expected, rel=1e-9))
        assert obs[-1] == pytest.approx(-math.log10(err), rel=1e-5)
        assert obs.shape == (13,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"integrator": "rk4"}, "accepted"),
        ({"preset": "solar"}, "accepted"),
        ({"reward": "sparse"}, "accepted"),
        ({"obs_mode": "pixels"}, "accepted"),
        ({"action_type": "multi"}, "accepted"),
        ({"hermite_criterion": "kepler"}, "accepted"),
        ({"action_range": (0.0, 0.1)}, "positive"),
        ({"action_range": (-1e-3, 0.1)}, "positive"),
        ({"step_interval_yr": -0.1}, "positive"),
        ({"episode_steps": 0}, "positive integer"),
    ],
)
def test_bad_arguments_name_what_is_accepted(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ThreeBodyEnv(**kwargs)


def test_bad_actions_and_states_are_rejected_clearly():
    env = ThreeBodyEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(10)
    with pytest.raises(ValueError, match="action"):
        env.step(-1)
    cont = ThreeBodyEnv(action_type="continuous")
    cont.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        cont.step(np.array([0.5], dtype=np.float32))
    with pytest.raises(ValueError, match="action"):
        cont.step(np.array([np.nan], dtype=np.float32))
    pos = np.array([[0.0, 0, 0], [1, 0, 0], [np.nan, 1, 0]])
    with pytest.raises(ValueError, match="NaN"):
        env.reset(options={"initial_conditions": (pos, np.zeros((3, 3)), np.ones(3))})
    with pytest.raises(ValueError, match="masses must be positive"):
        env.reset(options={"initial_conditions": (np.eye(3), np.zeros((3, 3)), np.array([1.0, -1.0, 1.0]))})
    with pytest.raises(ValueError, match="shapes"):
        env.reset(options={"initial_conditions": (np.eye(2), np.zeros((2, 3)), np.ones(2))})


def test_head_on_collision_ends_the_episode_as_a_blowup_not_an_exception():
    # Two bodies falling straight at each other from rest: the collision time goes to zero,
    # Hermite's steps shrink without bound and the step cap ends the episode cleanly.
    pos = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 30.0, 0.0]])
    env = gym.make(ENV_ID, max_integrator_steps=20_000, blowup_penalty=50.0)
    env.reset(seed=0, options={"initial_conditions": (pos, np.zeros((3, 3)), np.ones(3))})
    for _ in range(100):
        _, reward, terminated, truncated, info = env.step(9)
        if terminated or truncated:
            break
    assert truncated and not terminated
    assert info["blowup"] is True and info["integrator_status"] != 0
    assert reward == -50.0


def test_energy_limit_terminates_like_the_paper():
    env = gym.make(ENV_ID, energy_error_limit=1e-9)
    env.reset(seed=0)
    for _ in range(100):
        _, _, terminated, truncated, info = env.step(9)  # eta = 0.1: coarse
        if terminated or truncated:
            break
    assert terminated and info["energy_error"] > 1e-9 and not info["blowup"]


def test_render_draws_the_orbits():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(5):
        env.step(5)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert frame.std() > 0
    with pytest.raises(ValueError, match="render_mode"):
        ThreeBodyEnv(render_mode="human")


def test_disabled_mode_partial_reset_keeps_the_other_finished_flags_and_seeds():
    venv = ThreeBodyVectorEnv(num_envs=2, autoreset_mode="Disabled", episode_steps=2)
    venv.reset(seed=[1, 2])
    for _ in range(2):
        venv.step(np.array([5, 5]))
    reference = ThreeBodyVectorEnv(num_envs=2, autoreset_mode="Disabled", episode_steps=2)
    reference.reset(seed=[1, 2])
    # Reset only sub-environment 0 with a new seed: sub-environment 1 stays finished and keeps its stream.
    obs, _ = venv.reset(seed=[7, 99], options={"reset_mask": np.array([True, False])})
    single = ThreeBodyEnv(episode_steps=2)
    np.testing.assert_array_equal(obs[0], single.reset(seed=7)[0])
    _, rewards, term, trunc, _ = venv.step(np.array([5, 5]))
    assert not (term[0] or trunc[0]) and trunc[1] and rewards[1] == 0.0
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.array([True])})


def test_same_step_autoreset_info_of_a_reset_row_is_its_reset_info():
    venv = ThreeBodyVectorEnv(num_envs=2, episode_steps=1)
    venv.reset(seed=0)
    _, _, _, trunc, info = venv.step(np.array([5, 5]))
    assert trunc.all()
    assert (info["step_index"] == 0).all() and not info["blowup"].any() and (info["integrator_status"] == 0).all()
    assert (info["final_info"]["step_index"] == 1).all()
    with pytest.raises(RuntimeError, match="reset"):
        ThreeBodyVectorEnv(num_envs=2).step(np.array([5, 5]))


def test_paper_reward_is_finite_even_where_the_formula_diverges():
    from simrl.envs.threebody_core import ThreeBodyBatch, ThreeBodySettings

    batch = ThreeBodyBatch(ThreeBodySettings(reward="paper", blowup_penalty=77.0), 1)
    batch.step_index[:] = 5
    assert batch._paper_reward(np.array([1.0 - 1e-20]), np.array([0.01]))[0] == -77.0
