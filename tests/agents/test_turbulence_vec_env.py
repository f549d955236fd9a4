"""The SB3 VecEnv of simrl/Turbulence2D-v0: (copies x agents) rows, dones and terminal observations per row,
equivalence with the PettingZoo env, the registry's make_sb3_vec_env, and a short PPO run (16^2, synthetic reference)."""

from __future__ import annotations

import numpy as np
import pytest

from simrl.agents.turbulence_vec_env import TurbulenceSB3VecEnv, make_turbulence_sb3_vec_env, policy_actions
from simrl.envs.turbulence import Turbulence2DParallelEnv
from simrl.envs.turbulence_core import synthetic_targets

N = 16
KW = {"n_les": N, "agents_per_side": 2, "episode_steps": 30}  # 4 agents, 3 actions per episode


@pytest.fixture(scope="module")
def ref():
    return synthetic_targets(N)


def test_rows_shapes_dones_and_terminal_observations_match_the_parallel_env(ref):
    copies, agents = 3, 4
    venv = make_turbulence_sb3_vec_env(num_envs=copies, seed=10, reference=ref, **KW)
    assert isinstance(venv, TurbulenceSB3VecEnv) and venv.num_envs == copies * agents
    obs = venv.reset()
    d = 6 + ref.params.k_cut
    assert obs.shape == (copies * agents, d) and obs.dtype == np.float32
    singles = [Turbulence2DParallelEnv(reference=ref, **KW) for _ in range(copies)]
    single_obs = [env.reset(seed=10 + c)[0] for c, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.concatenate([np.stack(list(o.values())) for o in single_obs]))
    rng = np.random.default_rng(0)
    for t in range(4):  # the third step ends every episode; the fourth runs in the new ones
        actions = rng.uniform(0.0, 0.03, size=(copies * agents, 1)).astype(np.float32)
        obs, rewards, dones, infos = venv.step(actions)
        assert rewards.shape == dones.shape == (copies * agents,) and len(infos) == copies * agents
        for c, env in enumerate(singles):
            rows = slice(c * agents, (c + 1) * agents)
            o, r, te, tr, inf = env.step({f"agent_{j}": actions[c * agents + j] for j in range(agents)})
            assert np.all(rewards[rows] == np.float32(r["agent_0"])) and np.all(dones[rows] == (t == 2))
            for j in range(agents):
                info = infos[c * agents + j]
                assert info["copy"] == c and info["agent"] == j
                assert info["coefficient"] == pytest.approx(float(actions[c * agents + j, 0]))
                assert info["enstrophy"] == inf[f"agent_{j}"]["enstrophy"]
                if t == 2:
                    np.testing.assert_array_equal(info["terminal_observation"], o[f"agent_{j}"])
                    assert info["TimeLimit.truncated"] is True
                else:
                    assert "terminal_observation" not in info
            if t == 2:
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[rows], np.stack(list(o.values())))


def test_fixed_reset_seeds_restart_from_the_same_fields(ref):
    venv = make_turbulence_sb3_vec_env(num_envs=2, seed=3, fixed_reset_seeds=True, reference=ref, **KW)
    first = venv.reset()
    venv.step(np.zeros((8, 1), np.float32))
    np.testing.assert_array_equal(venv.reset(), first)
    free = make_turbulence_sb3_vec_env(num_envs=2, seed=3, reference=ref, **KW)
    np.testing.assert_array_equal(free.reset(), first)
    assert not np.array_equal(free.reset(), first)
    with pytest.raises(ValueError, match="needs a seed"):
        make_turbulence_sb3_vec_env(num_envs=2, fixed_reset_seeds=True, reference=ref, **KW)


def test_attributes_options_and_bad_actions(ref):
    venv = make_turbulence_sb3_vec_env(num_envs=2, seed=0, reference=ref, **KW)
    assert venv.get_attr("reward_clip") == [10.0] * 8 and venv.get_attr("render_mode") == [None] * 8
    venv.set_attr("reward_clip", 5.0)
    assert venv.settings.reward_clip == 5.0
    with pytest.raises(NotImplementedError):
        venv.set_attr("reward_clip", 1.0, indices=[0])
    venv.set_options({"snapshot_index": [4, 5]})
    venv.reset()
    assert venv.core.snapshot.tolist() == [4, 5]
    with pytest.raises(ValueError, match="shape \\(8, 1\\)"):
        venv.step(np.zeros((2, 4), np.float32))
    assert venv.env_is_wrapped(object) == [False] * 8


def test_registry_make_sb3_vec_env_uses_the_turbulence_entry_point(ref):
    from stable_baselines3.common.vec_env import VecMonitor

    from simrl.agents.sb3_vec_env import make_sb3_vec_env

    venv = make_sb3_vec_env("simrl/Turbulence2D-v0", num_envs=2, seed=1, reference=ref, **KW)
    assert isinstance(venv, VecMonitor) and isinstance(venv.venv, TurbulenceSB3VecEnv)
    venv.reset()
    for _ in range(3):
        _, _, dones, infos = venv.step(np.full((8, 1), 0.01, np.float32))
    assert dones.all() and all("episode" in info and info["episode"]["l"] == 3 for info in infos)


def test_ppo_trains_one_shared_policy_and_drives_the_core(ref):
    from stable_baselines3 import PPO

    venv = make_turbulence_sb3_vec_env(num_envs=2, seed=0, reference=ref, normalized_actions=True, **KW)
    assert venv.action_space.low[0] == -1.0 and venv.action_space.high[0] == 1.0
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    # an evaluator runs the trained shared policy on the batched core directly
    core = venv.core
    coefficients = core.coefficients_from_actions(policy_actions(model, core.agent_observations()))
    low, high = venv.settings.coefficient_range
    assert coefficients.shape == (2, 4) and np.all((coefficients >= low) & (coefficients <= high))
    result = core.step(coefficients)
    assert result["reward"].shape == (2,) and not result["blowup"].any()
    with pytest.raises(ValueError, match="\\(B, n_agents, d\\)"):
        policy_actions(model, core.agent_observations()[0])


def test_blowup_rows_end_without_bootstrapping_and_the_copy_restarts(ref):
    venv = make_turbulence_sb3_vec_env(
        num_envs=2, seed=0, reference=ref, backscatter=True, coefficient_range=(-50.0, 0.125), n_les=N,
        agents_per_side=2, episode_steps=200,
    )  # fmt: skip
    venv.reset()
    actions = np.array([[-50.0]] * 4 + [[0.01]] * 4, np.float32)
    for _ in range(20):
        obs, rewards, dones, infos = venv.step(actions)
        if dones[0]:
            break
    assert dones[:4].all() and not dones[4:].any()
    assert np.all(rewards[:4] == -venv.settings.penalty) and all(info["blowup"] for info in infos[:4])
    assert all(info["TimeLimit.truncated"] is False and np.all(np.isfinite(info["terminal_observation"])) for info in infos[:4])
    assert np.all(np.isfinite(obs)) and venv.core.action_index[0] == 0
