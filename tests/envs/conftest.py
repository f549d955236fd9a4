"""Helpers shared by the environment tests (digital twins: PredatorPrey-v0, MetabolicPathway-v0).

They are fixtures that return plain functions, so each test file states what it uses in its
test signatures and nothing needs ``tests/`` to be an importable package.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest


def _rollout(env, actions, seed, options=None):
    """``[(obs, reward, terminated, truncated, info), ...]`` of one episode: the reset, then one
    entry per action until the episode ends (or the actions run out)."""
    obs, info = env.reset(seed=seed, options=options)
    trace = [(obs.copy(), 0.0, False, False, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        trace.append((obs.copy(), r, term, trunc, info))
        if term or trunc:
            break
    return trace


def _vector_matches_singles(venv, singles, actions, seed, counter):
    """Step ``venv`` (same-step autoreset) and ``singles[i]`` (reset with ``seed + i``, then
    unseeded after each end) with ``actions[t, i]``; assert identical observations, rewards,
    flags and infos (``final_obs``/``final_info`` at episode ends, where the new episode's
    ``snapshot`` must match the single env's and ``info[counter]`` must be 0). Returns the number
    of autoresets."""
    obs, _ = venv.reset(seed=seed)
    np.testing.assert_array_equal(obs, np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]))
    autoresets = 0
    for t in range(len(actions)):
        obs, rewards, term, trunc, info = venv.step(actions[t])
        for i, env in enumerate(singles):
            o, r, te, tr, inf = env.step(actions[t, i])
            assert r == rewards[i] and te == term[i] and tr == trunc[i]
            src = info["final_info"] if te or tr else info
            assert {k: src[k][i].item() for k in inf} == inf
            if te or tr:
                np.testing.assert_array_equal(info["final_obs"][i], o)
                autoresets += 1
                o, reset_info = env.reset()
                assert info["snapshot"][i] == reset_info["snapshot"] and info[counter][i] == 0
            np.testing.assert_array_equal(obs[i], o)
    return autoresets


def _snapshot_errors_name_the_regeneration(make, snaps, tmp_path):
    """A missing file and a corrupt copy of ``snaps`` (one byte flipped; its manifest intact)
    both raise errors that name the regeneration command."""
    with pytest.raises(FileNotFoundError, match="regenerate"):
        make(str(tmp_path / "none.npz"))
    bad = tmp_path / "bad.npz"
    shutil.copy(snaps, bad)
    shutil.copy(snaps.replace(".npz", ".json"), bad.with_suffix(".json"))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="regenerate"):
        make(str(bad))


def _passes_env_checkers(make_env, obs_shape):
    """Gymnasium's and Stable-Baselines3's environment checkers pass on ``make_env()``, and a
    seeded reset gives a float32 observation of ``obs_shape`` inside the observation space."""
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_env()
    check_env(env, skip_render_check=True)
    sb3_check_env(make_env(), warn=True, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.float32 and obs.shape == obs_shape and env.observation_space.contains(obs)


@pytest.fixture
def passes_env_checkers():
    """The function ``passes_env_checkers(make_env, obs_shape)``."""
    return _passes_env_checkers


@pytest.fixture
def rollout():
    """The function ``rollout(env, actions, seed, options=None)`` (see :func:`_rollout`)."""
    return _rollout


@pytest.fixture
def vector_matches_singles():
    """The function ``vector_matches_singles(venv, singles, actions, seed, counter)``."""
    return _vector_matches_singles


@pytest.fixture
def snapshot_errors_name_the_regeneration():
    """The function ``snapshot_errors_name_the_regeneration(make, snaps, tmp_path)``."""
    return _snapshot_errors_name_the_regeneration
