"""simrl/MetabolicPathway-v0: Gymnasium/SB3 API, whole-episode determinism, vector == single, the
yield reward, snapshots, bad input. A scale-0.05 model (22 x 22 torus) keeps it fast."""

from __future__ import annotations

import numpy as np
import pytest

from simrl.envs.metabolic import (
    DEFAULT_SNAPSHOTS,
    MetabolicPathwayEnv,
    MetabolicPathwayVectorEnv,
    generate_snapshot_set,
    load_snapshot_set,
)
from simrl.physics.ecology.metabolic import PUBLISHED_CONTINUOUS_STEADY_STATE, SUBSTRATE_POOL, MetabolicParams

SMALL = MetabolicParams(scale=0.05)


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    path = tmp_path_factory.mktemp("met") / "small.npz"
    generate_snapshot_set(path, SMALL, count=8, steps=3000, seed=5)
    return str(path)


def make(snaps, **kwargs):
    kwargs.setdefault("episode_steps", 1000)
    kwargs.setdefault("steps_per_action", 100)
    return MetabolicPathwayEnv(snapshots=snaps, **kwargs)


def test_gymnasium_and_sb3_check_env(snaps, passes_env_checkers):
    passes_env_checkers(lambda: make(snaps, episode_steps=500), (14,))


def test_same_seed_same_actions_give_identical_whole_episodes(snaps, rollout):
    actions = np.random.default_rng(3).random((12, 1)).astype(np.float32)
    a = rollout(make(snaps), actions, seed=7)
    b = rollout(make(snaps), actions, seed=7)
    assert len(a) == len(b) == 11 and a[-1][2] and not a[-1][3]
    for (oa, ra, ta, ua, ia), (ob, rb, tb, ub, ib) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb and ta == tb and ua == ub and ia == ib
    c = rollout(make(snaps), actions, seed=8, options={"snapshot": a[0][4]["snapshot"]})
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a[1:], c[1:]))


def test_return_is_the_episode_yield_on_substrate_supplied(snaps):
    for product, reaction in (("T", 3), ("R", 2)):
        env = make(snaps, product=product, feed_max=3.5, feed_min=0.5)
        env.reset(seed=2)
        model = env.unwrapped.model
        fed0, made0 = model.fed[0], model.reactions[0, reaction]
        pool0 = model.counts()[0] @ SUBSTRATE_POOL
        total = 0.0
        for t in range(10):
            _, r, term, trunc, info = env.step(np.array([0.1 * t], np.float32))
            total += r
            assert info["feed"] == pytest.approx(0.5 + 0.3 * t, abs=1e-6)
            assert info["pool"] == model.counts()[0] @ SUBSTRATE_POOL
            assert 0.0 <= info["window_yield"] <= 1.0
        fed, made = model.fed[0] - fed0, model.reactions[0, reaction] - made0
        assert term and not trunc and info["fed"] == fed and info["product"] == made and info["supplied"] == pool0 + fed
        assert total == pytest.approx(made / (pool0 + fed), abs=1e-12)
        assert info["yield"] == pytest.approx(total) and info["objective"] == -info["yield"]


def test_linearised_reward_is_product_minus_its_worth_in_substrate(snaps):
    kwargs = dict(episode_steps=1000, steps_per_action=100)
    env, ref = make(snaps, reward="linearised", yield_reference=0.2, **kwargs), make(snaps, **kwargs)
    total = 0.0
    for e in (env, ref):
        e.reset(seed=4)
    for t in range(10):
        action = np.array([0.05 * t], np.float32)
        _, r, term, _, info = env.step(action)
        _, _, _, _, info_ref = ref.step(action)
        total += r
        assert info["yield"] == info_ref["yield"]  # same trajectory, same objective
    assert term
    assert total == pytest.approx((info["product"] - 0.2 * info["fed"]) / (100 * SMALL.effective_scale), rel=1e-12)


def test_starving_the_pathway_does_not_pay(snaps):
    """Draining the stock present at reset is charged to the yield (the earlier P/F form was not)."""
    env = make(snaps, episode_steps=2000, steps_per_action=200, feed_min=0.0)
    yields = {}
    for feed in (0.0, 0.25):
        env.reset(seed=0, options={"snapshot": 0})
        for _ in range(10):
            _, r, term, _, info = env.step(np.array([feed], np.float32))
            assert np.isfinite(r) and np.isfinite(info["window_yield"])
        assert term and (info["fed"] == 0) == (feed == 0) and info["product"] > 0
        yields[feed] = info["yield"]
    assert 0 < yields[0.0] < 2 * yields[0.25] and yields[0.25] < 0.5


def test_vector_env_matches_single_envs_over_whole_episodes_and_autoresets(snaps, vector_matches_singles):
    n, steps = 3, 13  # 5-step episodes: two same-step autoresets per sub-environment
    actions = np.random.default_rng(5).random((steps, n, 1)).astype(np.float32)
    venv = MetabolicPathwayVectorEnv(num_envs=n, snapshots=snaps, episode_steps=500, steps_per_action=100)
    singles = [make(snaps, episode_steps=500) for _ in range(n)]
    assert vector_matches_singles(venv, singles, actions, 40, "step") == 2 * n


def test_vector_env_disabled_autoreset_and_sb3_adapter(snaps):
    from simrl.agents.sb3_vec_env import GymnasiumVecEnvAdapter

    venv = MetabolicPathwayVectorEnv(num_envs=2, snapshots=snaps, episode_steps=200, steps_per_action=100,
                                     autoreset_mode="Disabled", render_mode="rgb_array")
    venv.reset(seed=[1, 2])
    for _ in range(2):
        _, _, term, trunc, info = venv.step(np.full((2, 1), 0.5, np.float32))
    assert term.all() and not trunc.any()
    frames = venv.render()
    _, rewards, term2, trunc2, info2 = venv.step(np.ones((2, 1), np.float32))
    assert term2.all() and not rewards.any() and (info2["step"] == 200).all() and (info2["fed"] == info["fed"]).all()
    np.testing.assert_array_equal(venv.render()[0], frames[0])
    adapter = GymnasiumVecEnvAdapter(MetabolicPathwayVectorEnv(num_envs=2, snapshots=snaps, episode_steps=200,
                                                               steps_per_action=100))
    assert adapter.reset().shape == (2, 14)
    for _ in range(2):
        adapter.step_async(np.full((2, 1), 0.5, np.float32))
        _, _, dones, infos = adapter.step_wait()
    assert dones.all() and infos[1]["terminal_observation"].shape == (14,)


def test_snapshot_sets_pickle_by_reference_to_their_checksummed_file(tmp_path):
    import pickle

    path = tmp_path / "ref.npz"
    generate_snapshot_set(path, SMALL, count=2, steps=300, seed=1)
    snap = load_snapshot_set(path)
    blob = pickle.dumps(snap)
    assert len(blob) < 2000 and pickle.loads(blob) is snap  # the cached set, not a copy
    env = MetabolicPathwayEnv(snapshots=str(path), episode_steps=200, steps_per_action=100)
    env.reset(seed=0)
    env_blob = pickle.dumps(env)  # what an SB3 checkpoint stores: the env's own state and a reference
    assert b"_reload_snapshot_set" in env_blob and b"MetabolicSnapshotSet" not in env_blob
    generate_snapshot_set(path, SMALL, count=2, steps=300, seed=2)  # a different file at the same path
    with pytest.raises(ValueError, match="changed since this environment was saved"):
        pickle.loads(blob)


def test_splits_global_state_and_render(snaps):
    assert load_snapshot_set(snaps).splits["eval"] == (6, 7)
    env = make(snaps, snapshot_split="eval", render_mode="rgb_array")
    assert {env.reset(seed=s)[1]["snapshot"] for s in range(20)} == {6, 7}
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    env.reset(seed=3)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (22 * 11, 22 * 11, 3)
    env.step(np.ones(1, np.float32))
    assert not np.array_equal(frame, env.render())
    assert np.array_equal(before, np.random.get_state()[1])


def test_bad_actions_are_rejected_and_out_of_range_clipped(snaps, rollout):
    a = rollout(make(snaps), [np.array([3.0], np.float32)] * 2, seed=4)
    b = rollout(make(snaps), [np.array([1.0], np.float32)] * 2, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
    env = make(snaps)
    env.reset(seed=0)
    for bad in (np.zeros(2), np.zeros((1, 1)), np.array([np.inf]), None):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps_per_action": 0}, "steps_per_action"),
        ({"episode_steps": 1050}, "multiple"),
        ({"feed_max": 0.0}, "feed_max"),
        ({"feed_max": -1.0}, "feed_max"),
        ({"feed_min": -0.1}, "feed_min"),
        ({"feed_min": 5.0}, "feed_min < feed_max"),
        ({"reward": "ratio"}, "accepted"),
        ({"yield_reference": 0.0}, "yield_reference"),
        ({"product": "S"}, "accepted"),
        ({"snapshot_split": "test"}, "accepted"),
        ({"params": {"scale": 0.5}}, "snapshot set"),
        ({"params": {"mode": "batch"}}, "continuous"),
        ({"params": {"feed": -1.0}}, "feed"),
        ({"params": {"colour": 1}}, "accepted"),
    ],
)
def test_bad_arguments_name_what_is_accepted(snaps, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(snaps, **kwargs)


def test_missing_or_corrupt_snapshot_files_name_the_regeneration(snaps, tmp_path,
                                                              snapshot_errors_name_the_regeneration):
    snapshot_errors_name_the_regeneration(make, snaps, tmp_path)


def test_shipped_snapshots_are_the_published_continuous_steady_state():
    snap = load_snapshot_set(DEFAULT_SNAPSHOTS)
    assert len(snap.states) == 32 and snap.params.scale == 0.1 and snap.params.feed == 1.0
    mean = np.array(snap.manifest["mean_metabolites_last_steps_full_scale"])
    # Published means (feed 1.0): S 1,246, P 171, Q 177, R 106, T 304 (scale-0.1 counts are noisy).
    np.testing.assert_allclose(mean, PUBLISHED_CONTINUOUS_STEADY_STATE, rtol=0.2)
    env = MetabolicPathwayEnv()
    obs, info = env.reset(seed=0)
    assert obs.shape == (14,) and info["S"] > 0
    _, r, term, trunc, info = env.step(np.array([0.25], np.float32))
    assert np.isfinite(r) and not (term or trunc) and info["step"] == 250


def test_molecule_cap_ends_the_episode_as_a_blowup(snaps):
    cap = max(s.molecules.shape[1] for s in load_snapshot_set(snaps).states) + 50
    params = {"max_molecules": cap, "initial_s": 0, "initial_p": 0, "initial_q": 0}
    env = make(snaps, params=params, feed_max=1000.0)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.ones(1, np.float32))
    assert truncated and not terminated and info["blowup"] and np.isfinite(reward) and info["step"] == 100


# --------------------------------------------------------------------------------------
# Reliability: manifests, parameters that no stored state fits, upper bounds, messages
# --------------------------------------------------------------------------------------


def test_another_models_set_and_edited_manifests_are_refused_naming_the_command(snaps, tmp_path):
    import json
    import shutil
    from pathlib import Path

    from simrl.envs.digital_twin_core import SnapshotDataError
    from simrl.envs.predator_prey import DEFAULT_SNAPSHOTS as PREDATOR_PREY_SNAPSHOTS

    for src, edit, match in (
        (PREDATOR_PREY_SNAPSHOTS, None, "of kind 'predator_prey_snapshots', expected 'metabolic_snapshots'"),
        (Path(snaps), lambda m: m["splits"]["train"].append(7), 'the held-out "eval" split overlaps "train" at indices \\[7\\]'),
        (Path(snaps), lambda m: m["splits"]["eval"].append(-1), "outside"),
        (Path(snaps), lambda m: m["params"].update(mode="batch"), r'"params" differ .*\[\'mode\'\]'),
    ):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        npz = folder / src.name
        shutil.copy(src, npz)
        manifest = json.loads(src.with_suffix(".json").read_text())
        if edit is not None:
            edit(manifest)
        npz.with_suffix(".json").write_text(json.dumps(manifest))
        with pytest.raises(SnapshotDataError, match=match) as err:
            make(str(npz))
        assert str(npz) in str(err.value) and "regenerate it with: simrl.envs.metabolic.generate_snapshot_set" in str(err.value)


def test_a_max_molecules_below_the_stored_molecules_is_refused_at_construction(snaps):
    """Accepted before, then every reset failed ("more molecules than max_molecules")."""
    stored = max(s.molecules.shape[1] for s in load_snapshot_set(snaps).states)
    params = {"max_molecules": stored - 1, "initial_s": 0, "initial_p": 0, "initial_q": 0}
    with pytest.raises(ValueError, match=r"params \(changed: .*'max_molecules'.*\) do not fit the snapshot set"):
        make(snaps, params=params)


def test_upper_bounds_are_refused_at_construction_without_hanging(snaps, monkeypatch):
    import time

    from simrl.envs import digital_twin_core
    from simrl.envs.metabolic import MetabolicCore

    cases = [
        (lambda: make(snaps, feed_max=1e4), r"feed_max must be a finite number in \[0.001, 1000\]"),
        (lambda: make(snaps, feed_min=1001.0, feed_max=1000.0), "feed_min"),
        (lambda: MetabolicPathwayVectorEnv(num_envs=10**7, snapshots=snaps), r"num_envs must be an integer in \[1, 4096\]"),
        (lambda: make(snaps, steps_per_action=100_001, episode_steps=100_001), "steps_per_action"),
        (lambda: make(snaps, episode_steps=10**7 + 100), "episode_steps"),
        (lambda: MetabolicPathwayVectorEnv(num_envs=True, snapshots=snaps), "num_envs"),
    ]
    for build, match in cases:
        start = time.perf_counter()
        with pytest.raises(ValueError, match=match):
            build()
        assert time.perf_counter() - start < 2.0
    with pytest.raises(ValueError, match="feed_max"):
        make(snaps, feed_max=1e-300, feed_min=0.0)  # made the observations inf/NaN
    make(snaps, feed_max=1000.0)  # the bounds themselves are accepted
    env = make(snaps, feed_max=1e-3, feed_min=0.0)
    env.reset(seed=0)
    assert np.isfinite(env.step(np.ones(1, np.float32))[0]).all()
    # The memory estimate grows with the largest feed: the molecules it accumulates.
    small = MetabolicCore.bytes_per_model(make(snaps).settings)
    large = MetabolicCore.bytes_per_model(make(snaps, feed_max=1000.0).settings)
    assert large > 10 * small
    monkeypatch.setattr(digital_twin_core, "machine_memory_bytes", lambda: 100 * large)
    with pytest.raises(ValueError, match="num_envs=101 models would need"):
        MetabolicPathwayVectorEnv(num_envs=101, snapshots=snaps, feed_max=1000.0)
    MetabolicPathwayVectorEnv(num_envs=101, snapshots=snaps)


def test_bad_actions_and_reset_options_are_refused_with_what_is_accepted(snaps):
    env = make(snaps)
    with pytest.raises(TypeError, match="options"):
        env.reset(options="abc")
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['seed'\]; accepted: \['snapshot'\]"):
        env.reset(options={"seed": 3})
    env.reset(seed=0)
    for bad, match in ((None, "got None"), (["0.5"], "real numbers"), (np.array([0.5 + 1j]), "complex"),
                       ([0.5j], "complex"), ([None], "NoneType")):
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    with pytest.raises(ValueError, match="parallel"):
        make(snaps, parallel=1)
