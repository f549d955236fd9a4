"""simrl/ThreeBody-v0: Gymnasium API, determinism over whole episodes, rewards, bad input, blow-ups."""

from __future__ import annotations

import importlib
import math
import re
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


# ---------------------------------------------------------------- reliability (issue "Reliability")


def test_default_env_passes_gymnasium_check_env_and_wall_time_is_opt_in():
    # Wall-clock times differ between two identical steps, which check_env compares: the single
    # environment measures them only when asked; the vector env (evaluation, benchmarks) by default.
    check_env(gym.make(ENV_ID).unwrapped, skip_render_check=True)
    env = ThreeBodyEnv()
    env.reset(seed=0)
    _, _, _, _, info = env.step(5)
    assert info["wall_time"] == 0.0 and info["total_wall_time"] == 0.0
    timed = ThreeBodyEnv(measure_wall_time=True)
    timed.reset(seed=0)
    _, _, _, _, info = timed.step(5)
    assert info["wall_time"] > 0.0 and info["total_wall_time"] == info["wall_time"]
    venv = ThreeBodyVectorEnv(num_envs=2)
    venv.reset(seed=0)
    assert (venv.step(np.array([5, 5]))[4]["wall_time"] > 0).all()
    assert not (ThreeBodyVectorEnv(num_envs=2, measure_wall_time=False).settings.measure_wall_time)


def _ic(pos_scale=1.0, vel_scale=1.0, masses=(1.0, 1.0, 1.0)):
    pos = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.3, 0.0]]) * pos_scale
    vel = np.array([[0.0, 0.1, 0.0], [-0.1, 0.0, 0.0], [0.0, 0.0, 0.05]]) * vel_scale
    return pos, vel, np.asarray(masses, dtype=float)


_COINCIDENT = (np.array([[0.0, 0, 0], [0.0, 0, 0], [0, 1.0, 0]]), np.zeros((3, 3)), np.ones(3))


@pytest.mark.parametrize(
    ("obs_mode", "initial_conditions", "match"),
    [
        ("markov", _ic(pos_scale=1e150), "positions must have magnitudes <= 1e\\+100"),  # used to give inf
        ("markov", _ic(vel_scale=1e160), "velocities must have magnitudes"),
        ("markov", _ic(masses=(1e-300, 1.0, 1e300)), "masses must lie in"),  # was a raw OverflowError
        ("markov", _ic(pos_scale=1e50, vel_scale=1e100, masses=(1e-100,) * 3), "out of the representable range"),
        ("paper", _ic(pos_scale=1e40), "out of the representable range"),  # float32 overflow of positions / 10
        ("markov", _COINCIDENT, "non-finite or zero total energy"),
        ("markov", (np.array([["1", "0", "0"]] * 3), np.zeros((3, 3)), np.ones(3)), "real numbers"),
        ("markov", (np.eye(3), np.zeros((3, 3)) + 0j, np.ones(3)), "real numbers"),
        ("markov", (np.eye(3), np.zeros((3, 3)), np.array([True, True, True])), "real numbers"),
        ("markov", "abc", "must be a tuple"),
        ("markov", (np.eye(3), np.zeros((3, 3))), "3 arrays"),
    ],
)
def test_unrepresentable_initial_conditions_are_refused_at_reset_and_change_nothing(obs_mode, initial_conditions, match):
    env = ThreeBodyEnv(obs_mode=obs_mode)
    env.reset(seed=0)
    env.step(5)
    before = env.state
    with pytest.raises(ValueError, match=match) as caught:
        env.reset(seed=1, options={"initial_conditions": initial_conditions})
    assert str(caught.value).startswith("initial_conditions")
    after = env.state
    assert all(np.array_equal(before[k], after[k]) for k in before)
    env.step(5)  # the episode in progress goes on
    venv = ThreeBodyVectorEnv(num_envs=2, obs_mode=obs_mode)
    with pytest.raises(ValueError, match=match):
        venv.reset(seed=1, options={"initial_conditions": initial_conditions})


@pytest.mark.parametrize("obs_mode", ["markov", "paper"])
def test_a_state_that_overflows_the_observation_ends_as_a_blowup_with_finite_numbers(obs_mode):
    # Allowed initial conditions that fly apart so fast that one step puts them beyond what the
    # (float32) observation can hold: the episode ends truncated with info["blowup"], and the
    # observation and reward stay finite (they used to be inf).
    if obs_mode == "markov":  # 1e-20 masses at 1e99: the virial length unit is ~1e-180
        env = ThreeBodyEnv(blowup_penalty=7.0)
        initial_conditions = _ic(vel_scale=1e100, masses=(1e-20,) * 3)
    else:  # velocities of 1e33 for 1e6 yr: positions / 10 beyond float32's 3.4e38
        env = ThreeBodyEnv(obs_mode=obs_mode, step_interval_yr=1e6, blowup_penalty=7.0)
        initial_conditions = _ic(vel_scale=1e34)
    obs, _ = env.reset(seed=0, options={"initial_conditions": initial_conditions})
    assert np.isfinite(obs).all()
    obs, reward, terminated, truncated, info = env.step(9)
    assert np.isfinite(obs).all() and env.observation_space.contains(obs)
    assert truncated and not terminated and info["blowup"] is True and reward == -7.0
    assert np.isfinite(env.unwrapped.state["positions"]).all()


def test_vector_env_blowup_of_one_copy_leaves_the_others_and_stays_finite():
    venv = ThreeBodyVectorEnv(num_envs=2, autoreset_mode="Disabled")
    venv.reset(seed=0)
    venv.reset(options={"initial_conditions": _ic(vel_scale=1e100, masses=(1e-20,) * 3), "reset_mask": np.array([True, False])})
    obs, rewards, _, trunc, info = venv.step(np.array([9, 9]))
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()
    assert trunc.tolist() == [True, False] and info["blowup"].tolist() == [True, False]
    single = ThreeBodyEnv()
    single.reset(seed=1)  # copy 1 was reset with seed 0 + 1
    np.testing.assert_array_equal(obs[1], single.step(9)[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"cost_weight": math.nan}, ValueError, "cost_weight"),  # every reward was NaN
        ({"cost_weight": math.inf}, ValueError, "cost_weight"),  # -inf rewards
        ({"cost_weight": "1"}, TypeError, "cost_weight"),
        ({"blowup_penalty": math.nan}, ValueError, "blowup_penalty"),
        ({"blowup_penalty": -1.0}, ValueError, "blowup_penalty"),  # a positive reward for blowing up
        ({"blowup_penalty": None}, TypeError, "blowup_penalty"),  # was a TypeError at the first step
        ({"reward": "paper", "paper_reward_weights": (math.nan, 0, 4)}, ValueError, "paper_reward_weights"),
        ({"paper_reward_weights": "abc"}, TypeError, "paper_reward_weights"),
        ({"paper_reward_weights": (1.0, 2.0)}, ValueError, "paper_reward_weights"),
        ({"preset_kwargs": "x"}, TypeError, "preset_kwargs"),
        ({"preset_kwargs": {"nope": 1}}, ValueError, "preset_kwargs"),
        ({"preset": "random", "preset_kwargs": {"nope": 1}}, ValueError, "preset_kwargs"),
        ({"preset": "random", "preset_kwargs": {"virial_ratio": 1e300}}, ValueError, "virial_ratio"),
        ({"preset": "random", "preset_kwargs": {"virial_ratio": 1.0}}, ValueError, "virial_ratio"),  # E = 0
        ({"preset": "random", "preset_kwargs": {"n_bodies": 10**6}}, ValueError, "n_bodies"),
        ({"preset": "random", "preset_kwargs": {"mass_range": (2.0, 1.0)}}, ValueError, "mass_range"),
        ({"preset": "random", "preset_kwargs": {"planar": 1}}, TypeError, "planar"),
        ({"n_actions": 10**12}, ValueError, "n_actions"),  # was a MemoryError at the first step
        ({"n_actions": "10"}, TypeError, "n_actions"),
        ({"n_actions": True}, TypeError, "n_actions"),
        ({"episode_steps": 2.5}, ValueError, "episode_steps"),
        ({"step_interval_yr": "0.1"}, TypeError, "step_interval_yr"),  # was "'>' not supported ..."
        ({"energy_error_limit": math.nan}, ValueError, "energy_error_limit"),
        ({"max_integrator_steps": 10**30}, ValueError, "max_integrator_steps"),
        ({"action_range": "ab"}, TypeError, "action_range"),  # was "could not convert string to float"
        ({"action_range": (1e-3,)}, ValueError, "action_range"),  # was "not enough values to unpack"
        ({"action_range": (1e10, 1e10 * (1 + 1e-15))}, ValueError, "action_range"),  # log10 range ~ 0
        ({"integrator": ["hermite"]}, TypeError, "integrator"),
        ({"parallel": "no"}, TypeError, "parallel"),  # was True by truthiness
        ({"parallel": 1}, TypeError, "parallel"),
        ({"measure_wall_time": 0}, TypeError, "measure_wall_time"),
        ({"measure_wall_time": None}, TypeError, "measure_wall_time"),
        ({"no_such_argument": 1}, TypeError, "no_such_argument"),
    ],
)
def test_settings_are_validated_at_construction_naming_the_argument(kwargs, error, name):
    with pytest.raises(error, match=re.escape(name)) as caught:
        ThreeBodyEnv(**kwargs)
    assert "must" in str(caught.value) or "accepted" in str(caught.value)
    with pytest.raises(error, match=re.escape(name)):
        ThreeBodyVectorEnv(num_envs=2, **kwargs)


def test_valid_settings_are_normalised_and_numpy_values_accepted():
    env = ThreeBodyEnv(
        n_actions=np.int64(12), cost_weight=np.float32(0.5), episode_steps=50.0, parallel=np.False_,
        paper_reward_weights=np.array([3000.0, 0.0, 4.0]), preset="random",
        preset_kwargs={"n_bodies": np.int64(3), "mass_range": [0.5, 2], "virial_ratio": 0, "planar": np.True_},
    )  # fmt: skip
    s = env.settings
    assert type(s.n_actions) is int and s.n_actions == 12 and env.action_space.n == 12
    assert type(s.cost_weight) is float and s.cost_weight == float(np.float32(0.5))
    assert s.episode_steps == 50 and s.parallel is False and s.paper_reward_weights == (3000.0, 0.0, 4.0)
    assert s.preset_kwargs == {"n_bodies": 3, "mass_range": (0.5, 2.0), "virial_ratio": 0.0, "planar": True}
    assert ThreeBodyEnv(n_actions=1000).action_space.n == 1000


@pytest.mark.parametrize("action_type", ["discrete", "continuous"])
@pytest.mark.parametrize("action", ["5", "-2", "-2.0", 5 + 0j, -2 + 0j, True, np.True_, None, object(), [[1], [2, 3]]])
def test_non_numeric_actions_are_refused_not_converted(action_type, action):
    # In the shape of the space ((), or (1,) for the Box): "-2" used to be read as -2.0, 5 + 0j as 5.
    single = [action] if action_type == "continuous" else action
    env = ThreeBodyEnv(action_type=action_type)
    env.reset(seed=0)
    before = env.state
    with pytest.raises(ValueError, match="action"):
        env.step(single)
    assert all(np.array_equal(before[k], env.state[k]) for k in before)
    venv = ThreeBodyVectorEnv(num_envs=2, action_type=action_type)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        venv.step([single, single])


def test_integral_float_discrete_actions_mean_their_integer():
    a, b = ThreeBodyEnv(), ThreeBodyEnv()
    a.reset(seed=0), b.reset(seed=0)
    ra, rb = a.step(5)[1], b.step(np.float32(5.0))[1]
    assert ra == rb
    with pytest.raises(ValueError, match="action"):
        b.step(5.5)


def test_reset_options_must_be_a_dict_with_known_keys():
    env = ThreeBodyEnv()
    with pytest.raises(TypeError, match="dict or None"):
        env.reset(options="abc")  # was AttributeError
    with pytest.raises(ValueError, match="initial_condition.*accepted keys.*'initial_conditions'"):
        env.reset(options={"initial_condition": _ic()})  # a typo used to be ignored silently
    env.reset(options={})
    env.reset(options={"initial_conditions": None})
    venv = ThreeBodyVectorEnv(num_envs=2)
    with pytest.raises(TypeError, match="dict or None"):
        venv.reset(options=["reset_mask"])
    with pytest.raises(ValueError, match="'initial_conditions', 'reset_mask'"):
        venv.reset(options={"mask": np.array([True, False])})


@pytest.mark.parametrize(
    ("num_envs", "error"),
    [(True, TypeError), (False, TypeError), ("2", TypeError), (None, TypeError), (0, ValueError), (2.5, ValueError), (10**9, ValueError)],
)
def test_vector_env_num_envs_must_be_a_real_integer(num_envs, error):
    with pytest.raises(error, match="num_envs"):
        ThreeBodyVectorEnv(num_envs=num_envs)
    assert ThreeBodyVectorEnv(num_envs=np.int64(3)).num_envs == 3
