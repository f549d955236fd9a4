"""simrl/PredatorPrey-v0: Gymnasium/SB3 API, whole-episode determinism, vector == single, reward
definition, extinction, snapshots, bad input. A 63 x 63 world (big-world densities) keeps it fast."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simrl.envs.predator_prey import (
    DEFAULT_SNAPSHOTS,
    PredatorPreyEnv,
    PredatorPreyVectorEnv,
    load_snapshot_set,
)
from simrl.physics.ecology import NETLOGO_BIGWORLD_STEADY_STATE

@pytest.fixture(scope="module")
def snaps(small_predator_prey_snapshots):
    return small_predator_prey_snapshots  # tests/conftest.py


def make(snaps, **kwargs):
    kwargs.setdefault("episode_ticks", 100)
    return PredatorPreyEnv(snapshots=snaps, **kwargs)


def test_gymnasium_and_sb3_check_env(snaps, passes_env_checkers):
    passes_env_checkers(lambda: make(snaps, episode_ticks=50), (9,))


def test_same_seed_same_actions_give_identical_whole_episodes(snaps, rollout):
    actions = (0.3 * np.random.default_rng(3).random((40, 2))).astype(np.float32)
    a = rollout(make(snaps, episode_ticks=200), actions, seed=7)
    b = rollout(make(snaps, episode_ticks=200), actions, seed=7)
    assert len(a) == len(b) == 21 and a[-1][3]
    for (oa, ra, ta, ua, ia), (ob, rb, tb, ub, ib) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb and ta == tb and ua == ub and ia == ib
    # Same stored start state, different seed: a different episode.
    c = rollout(make(snaps, episode_ticks=200), actions, seed=8, options={"snapshot": a[0][4]["snapshot"]})
    d = rollout(make(snaps, episode_ticks=200), actions, seed=7, options={"snapshot": a[0][4]["snapshot"]})
    np.testing.assert_array_equal(c[0][0], d[0][0])
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(c[1:], d[1:]))
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, d)), "the snapshot option does not shift the stream"


def test_reward_is_minus_the_documented_per_tick_cost(snaps):
    env = make(snaps, ticks_per_action=1, episode_ticks=30, weights=(0.5, 1.0, 2.0), effort_weight=3.0,
               max_removal=(0.04, 0.02), target=(1400.0, 230.0, 60.0))
    s = env.settings
    _, info = env.reset(seed=2)
    rng = np.random.default_rng(0)
    rewards, costs = [], []
    for _ in range(30):
        a = rng.random(2).astype(np.float32)
        _, r, term, trunc, info = env.step(a)
        x = np.array([info["grass"], info["sheep"], info["wolves"]], float)
        p = np.array([0.04, 0.02]) * a.astype(float)
        ref = np.array(s.reference)
        cost = (np.array([0.5, 1.0, 2.0]) * ((x - [1400.0, 230.0, 60.0]) / ref) ** 2).sum() \
            + 3.0 * (p[0] * x[1] / ref[1] + p[1] * x[2] / ref[2])
        assert r == pytest.approx(-cost, rel=1e-12)
        assert info["removed_sheep"] == pytest.approx(p[0] * x[1]) and info["p_wolf"] == pytest.approx(p[1])
        rewards.append(r)
        costs.append(cost)
        assert info["objective"] == pytest.approx(np.mean(costs), rel=1e-12)
    assert trunc and not term and info["tick"] == 30
    np.testing.assert_allclose(s.reference, np.array(NETLOGO_BIGWORLD_STEADY_STATE) * 63 * 63 / 255**2)


def test_extinction_terminates_with_the_documented_penalty(snaps):
    env = make(snaps, max_removal=(0.0, 1.0), episode_ticks=100, ticks_per_action=10)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
    assert terminated and not truncated and info["extinct"] and info["wolves"] == 0
    s = env.settings
    # Every wolf is removed in the first tick: one scored tick, then 99 ticks at extinction_cost.
    expected_ext = s.tick_cost(np.array([s.n_patches, 0.0, 0.0]), np.zeros(2))
    assert s.extinction_cost == pytest.approx(expected_ext)
    assert info["objective"] * 100 >= 99 * s.extinction_cost
    assert reward == pytest.approx(-info["objective"] * 100 / 10)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, np.float32))


def test_truncated_return_equals_minus_objective_over_the_episode(snaps):
    env = make(snaps, episode_ticks=60, ticks_per_action=6)
    env.reset(seed=11)
    total = 0.0
    for _ in range(10):
        _, r, term, trunc, info = env.step(np.array([0.3, 0.1], np.float32))
        total += r
    assert trunc and not term
    assert total == pytest.approx(-info["objective"] * 60 / 6, rel=1e-12)


def test_vector_env_matches_single_envs_over_whole_episodes_and_autoresets(snaps, vector_matches_singles):
    n, steps = 3, 13  # 5-step episodes: two same-step autoresets per sub-environment
    actions = np.random.default_rng(5).random((steps, n, 2)).astype(np.float32)
    venv = PredatorPreyVectorEnv(num_envs=n, snapshots=snaps, episode_ticks=50)
    singles = [make(snaps, episode_ticks=50) for _ in range(n)]
    assert vector_matches_singles(venv, singles, actions, 40, "tick") == 2 * n


def test_vector_env_disabled_autoreset_freezes_finished_rows(snaps):
    venv = PredatorPreyVectorEnv(num_envs=2, snapshots=snaps, episode_ticks=20, autoreset_mode="Disabled",
                                 render_mode="rgb_array", max_removal=(0.0, 1.0))
    venv.reset(seed=[1, 2])
    # Row 0 drives its wolves extinct (terminated); row 1 runs to the time limit.
    _, _, term, trunc, info = venv.step(np.array([[0.0, 1.0], [0.0, 0.0]], np.float32))
    assert term[0] and not trunc[0] and not (term[1] or trunc[1])
    frame0 = venv.render()[0]
    held = {k: v[0] for k, v in info.items()}
    _, rewards, term2, trunc2, info2 = venv.step(np.zeros((2, 2), np.float32))
    assert term2[0] and rewards[0] == 0.0 and trunc2[1] and not term2[1]
    assert {k: v[0] for k, v in info2.items()} == held
    np.testing.assert_array_equal(venv.render()[0], frame0)
    # Partial reset of row 0 only: row 1 keeps its repeated done flag.
    obs, _ = venv.reset(seed=[9, None], options={"reset_mask": np.array([True, False])})
    np.testing.assert_array_equal(obs[0], PredatorPreyEnv(snapshots=snaps, episode_ticks=20).reset(seed=9)[0])
    _, rewards, term3, trunc3, _ = venv.step(np.zeros((2, 2), np.float32))
    assert not (term3[0] or trunc3[0]) and trunc3[1] and rewards[1] == 0.0


def test_sb3_adapter_runs_the_vector_env(snaps):
    from simrl.agents.sb3_vec_env import GymnasiumVecEnvAdapter

    venv = GymnasiumVecEnvAdapter(PredatorPreyVectorEnv(num_envs=2, snapshots=snaps, episode_ticks=20))
    venv.seed(3)
    assert venv.reset().shape == (2, 9)
    for _ in range(2):
        venv.step_async(np.full((2, 2), 0.5, np.float32))
        obs, rewards, dones, infos = venv.step_wait()
    assert dones.all() and infos[0]["terminal_observation"].shape == (9,) and infos[0]["TimeLimit.truncated"]
    assert venv.get_attr("ticks_per_action") == [10, 10]


def test_splits_and_unseeded_resets(snaps):
    manifest = load_snapshot_set(snaps).manifest
    assert manifest["splits"]["eval"] == [6, 7] and manifest["splits"]["train"] == list(range(6))
    env = make(snaps, snapshot_split="eval")
    seen = {env.reset(seed=s)[1]["snapshot"] for s in range(20)}
    assert seen == {6, 7}
    train = make(snaps)
    first, _ = train.reset(seed=0)
    assert {train.reset()[1]["snapshot"] for _ in range(30)} <= set(range(6))
    with pytest.raises(ValueError, match="snapshot"):
        env.reset(options={"snapshot": 2})


def test_environment_never_touches_global_numpy_state(snaps):
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    env = make(snaps)
    env.reset(seed=3)
    for _ in range(5):
        env.step(env.action_space.sample())
    env.reset()
    assert np.array_equal(before, np.random.get_state()[1])


def test_render_shows_the_grid_and_changes(snaps):
    env = make(snaps, render_mode="rgb_array")
    env.reset(seed=0)
    a = env.render()
    assert a.shape == (63, 63, 3) and a.dtype == np.uint8
    colours = {tuple(c) for c in a.reshape(-1, 3)}
    assert {(40, 150, 40), (130, 90, 50), (255, 255, 255), (200, 0, 0)} <= colours
    env.step(np.zeros(2, np.float32))
    assert not np.array_equal(a, env.render())
    with pytest.raises(ValueError, match="render_mode"):
        make(snaps, render_mode="human")


def test_out_of_range_actions_are_clipped_and_bad_actions_rejected(snaps, rollout):
    a = rollout(make(snaps), [np.array([2.0, -1.0], np.float32)] * 3, seed=4)
    b = rollout(make(snaps), [np.array([1.0, 0.0], np.float32)] * 3, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
    env = make(snaps)
    env.reset(seed=0)
    for bad in (np.zeros(3), np.zeros((1, 2)), np.array([np.nan, 0.0]), "culling"):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ticks_per_action": 0}, "ticks_per_action"),
        ({"episode_ticks": 55}, "multiple"),
        ({"max_removal": (1.5, 0.0)}, r"\[0, 1\]"),
        ({"max_removal": (0.1,)}, "two"),
        ({"target": (5000.0, 200.0, 100.0)}, "n_patches"),
        ({"target": (100.0, -1.0, 100.0)}, ">= 0"),
        ({"weights": (1.0, 1.0)}, "three"),
        ({"effort_weight": -1.0}, "effort_weight"),
        ({"snapshot_split": "test"}, "accepted"),
        ({"params": {"width": 64}}, "snapshot set"),
        ({"params": {"wolves": 3}}, "accepted"),
        ({"reference": (0.0, 1.0, 1.0)}, "positive"),
    ],
)
def test_bad_arguments_name_what_is_accepted(snaps, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(snaps, **kwargs)


def test_missing_or_corrupt_snapshot_files_name_the_regeneration(snaps, tmp_path,
                                                              snapshot_errors_name_the_regeneration):
    snapshot_errors_name_the_regeneration(make, snaps, tmp_path)


def test_shipped_big_world_snapshots_are_in_the_netlogo_steady_state():
    manifest = json.loads(DEFAULT_SNAPSHOTS.with_suffix(".json").read_text())
    assert manifest["count"] == 32 and len(manifest["splits"]["eval"]) == 8
    mean = np.array(manifest["mean_counts_second_half"])
    np.testing.assert_allclose(mean, NETLOGO_BIGWORLD_STEADY_STATE, rtol=0.03)
    env = PredatorPreyEnv()  # the default: big world, shipped snapshots, checksum verified
    obs, info = env.reset(seed=0)
    assert info["grass"] + info["sheep"] > 0 and obs.shape == (9,)
    _, r, term, trunc, info = env.step(np.array([0.2, 0.1], np.float32))
    assert np.isfinite(r) and not (term or trunc) and info["tick"] == 10


def test_population_cap_ends_the_episode_as_a_blowup(snaps):
    cap = int(max(s.sheep.shape[1] for s in load_snapshot_set(snaps).states)) + 20
    env = make(snaps, params={"max_population": cap}, max_removal=(0.0, 0.03), episode_ticks=500)
    env.reset(seed=0)
    for _ in range(50):
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        if terminated or truncated:
            break
    assert truncated and not terminated and info["blowup"] and not info["extinct"]
    assert np.isfinite(reward) and info["objective"] >= env.settings.extinction_cost * (500 - info["tick"]) / 500


# --------------------------------------------------------------------------------------
# Reliability: manifests, parameters that no stored state fits, upper bounds, messages
# --------------------------------------------------------------------------------------


def _copy_set(src, folder):
    """A copy of the snapshot set ``src`` (.npz and manifest) in ``folder``; returns (npz, manifest dict)."""
    import shutil
    from pathlib import Path

    src = Path(src)
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst, json.loads(src.with_suffix(".json").read_text())


def test_an_edited_eval_split_of_the_shipped_manifest_is_refused_naming_file_problem_and_command(tmp_path):
    """The checksum covers only the .npz: an eval list edited to overlap training used to load."""
    from simrl.envs.digital_twin_core import SnapshotDataError

    npz, manifest = _copy_set(DEFAULT_SNAPSHOTS, tmp_path)
    manifest["splits"]["eval"].append(manifest["splits"]["train"][0])
    npz.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotDataError) as err:
        PredatorPreyEnv(snapshots=str(npz))
    text = str(err.value)
    assert str(npz) in text and "overlaps" in text and "regenerate it with" in text and "generate_snapshot_set" in text


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["splits"]["eval"].append(99), r"indices \[99\] outside \[0, 7\]"),
        (lambda m: m["splits"].update(test=m["splits"].pop("eval")), 'exactly "train" and "eval"'),
        (lambda m: m.update(split=m.pop("splits")), r"lacks the key\(s\) \['splits'\]"),
        (lambda m: m["splits"].update(eval=[]), "non-empty"),
        (lambda m: m["splits"].update(eval=[6, 6]), "repeats"),
        (lambda m: m.update(count=9), '"count" is 9 but the .npz holds 8'),
        (lambda m: m["params"].update(grass_regrowth_time=20), r"params.*grass_regrowth_time"),
        (lambda m: m.update(kind="metabolic_snapshots"), "of kind 'metabolic_snapshots', expected 'predator_prey_snapshots'"),
        (lambda m: m.pop("kind"), r"lacks the key\(s\) \['kind'\]"),
    ],
)
def test_edited_manifests_are_refused_with_what_is_wrong_and_the_command(snaps, tmp_path, edit, match):
    from simrl.envs.digital_twin_core import SnapshotDataError

    npz, manifest = _copy_set(snaps, tmp_path)
    edit(manifest)
    npz.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotDataError, match=match) as err:
        make(str(npz))
    assert str(npz.stem) in str(err.value) and "regenerate it with: simrl.envs.predator_prey.generate_snapshot_set" in str(err.value)


def test_another_models_snapshot_set_is_refused_by_its_kind(tmp_path):
    from simrl.envs.digital_twin_core import SnapshotDataError
    from simrl.envs.metabolic import DEFAULT_SNAPSHOTS as METABOLIC_SNAPSHOTS

    npz, _ = _copy_set(METABOLIC_SNAPSHOTS, tmp_path)
    with pytest.raises(SnapshotDataError, match="of kind 'metabolic_snapshots', expected 'predator_prey_snapshots'"):
        PredatorPreyEnv(snapshots=str(npz))


def test_a_manifest_edited_after_loading_is_checked_again(snaps, tmp_path):
    """The loader's cache is keyed by the manifest's stamp too, not only the .npz's."""
    import os

    from simrl.envs.digital_twin_core import SnapshotDataError

    npz, manifest = _copy_set(snaps, tmp_path)
    make(str(npz))
    manifest["splits"]["eval"] = [5, 6, 7]  # 5 is in "train" too
    path = npz.with_suffix(".json")
    path.write_text(json.dumps(manifest))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new stamp even on coarse clocks
    with pytest.raises(SnapshotDataError, match="overlaps"):
        make(str(npz))


def test_a_regrowth_time_shorter_than_the_stored_countdowns_is_refused_at_construction(snaps):
    """Was accepted, then every reset failed (the stored countdowns go up to 30)."""
    with pytest.raises(ValueError, match=r"grass_regrowth_time=29 .*accepted with this set: grass_regrowth_time >= 30"
                                         r".*--grass-regrowth-time 29"):
        make(snaps, params={"grass_regrowth_time": 29})
    for regrowth in (30, 45):
        env = make(snaps, params={"grass_regrowth_time": regrowth})
        env.reset(seed=0)
        _, reward, *_ = env.step(np.zeros(2, np.float32))
        assert np.isfinite(reward)


def test_a_max_population_below_the_stored_populations_is_refused_at_construction(snaps):
    stored = max(s.sheep.shape[1] for s in load_snapshot_set(snaps).states)
    with pytest.raises(ValueError, match=r"params \(changed: \['max_population'\]\) do not fit the snapshot set"):
        make(snaps, params={"max_population": stored - 1})


def test_upper_bounds_are_refused_at_construction_without_hanging(snaps):
    import time

    cases = [
        (lambda: PredatorPreyVectorEnv(num_envs=10**7, snapshots=snaps), r"num_envs must be an integer in \[1, 4096\]"),
        (lambda: PredatorPreyVectorEnv(num_envs=4097, snapshots=snaps), "num_envs"),
        (lambda: make(snaps, ticks_per_action=10_001, episode_ticks=10_001), r"ticks_per_action .*\[1, 10000\]"),
        (lambda: make(snaps, episode_ticks=10**7 + 10), "episode_ticks"),
        (lambda: make(snaps, weights=(1.0, 1e7, 1.0)), "weights"),
        (lambda: make(snaps, effort_weight=1e7), "effort_weight"),
        (lambda: make(snaps, extinction_cost=1e31), "extinction_cost"),
        (lambda: make(snaps, reference=(1.0, 1e-4, 1.0)), "reference"),
    ]
    for build, match in cases:
        start = time.perf_counter()
        with pytest.raises(ValueError, match=match):
            build()
        assert time.perf_counter() - start < 2.0


def test_the_batch_memory_estimate_is_checked_against_the_machine(snaps, monkeypatch):
    from simrl.envs import digital_twin_core
    from simrl.envs.predator_prey import PredatorPreyCore

    env = PredatorPreyVectorEnv(num_envs=2, snapshots=snaps)
    per_model = PredatorPreyCore.bytes_per_model(env.settings)
    assert 50_000 < per_model < 5_000_000  # 63 x 63 world: grids, animal buffers, scratch
    monkeypatch.setattr(digital_twin_core, "machine_memory_bytes", lambda: 10 * per_model)
    PredatorPreyVectorEnv(num_envs=10, snapshots=snaps)
    with pytest.raises(ValueError, match=r"num_envs=11 models would need .* more than this machine's .*num_envs <= 10"):
        PredatorPreyVectorEnv(num_envs=11, snapshots=snaps)


def test_messages_name_the_argument_actually_at_fault(snaps):
    # A huge target used to be reported as "extinction_cost must be a finite number" (its default overflowed).
    with pytest.raises(ValueError, match=r"^target must be") as err:
        make(snaps, target=(0.0, 1e300, 1e300))
    assert "extinction_cost" not in str(err.value)
    for bad in (("1", "2", "3"), (1 + 1j, 2.0, 3.0), (True, 2.0, 3.0)):
        with pytest.raises(ValueError, match="target"):
            make(snaps, target=bad)
    for bad in (("0.01", 0.01), (True, 0.01)):
        with pytest.raises(ValueError, match="max_removal"):
            make(snaps, max_removal=bad)
    with pytest.raises(ValueError, match="parallel"):
        make(snaps, parallel="no")
    with pytest.raises(ValueError, match="snapshots"):
        make(5)
    for bad in (True, np.bool_(True), 2.0, "2"):
        with pytest.raises(ValueError, match="num_envs"):
            PredatorPreyVectorEnv(num_envs=bad, snapshots=snaps)


def test_actions_that_are_not_real_numbers_are_refused_not_converted(snaps):
    for env, shape in ((make(snaps), (2,)), (PredatorPreyVectorEnv(num_envs=2, snapshots=snaps, episode_ticks=100), (2, 2))):
        env.reset(seed=0)
        half = np.full(shape, 0.5)
        with pytest.raises(ValueError, match="got None"):
            env.step(None)
        with pytest.raises(ValueError, match="holds NoneType"):
            env.step(np.full(shape, None, dtype=object).tolist())
        with pytest.raises(ValueError, match="real numbers"):
            env.step(half.astype(str))  # numeric strings
        with pytest.raises(ValueError, match="complex"):
            env.step(half + 0.5j)
        with pytest.raises(ValueError, match="complex"):
            env.step(half.astype(complex))  # even with a zero imaginary part
        with pytest.raises(ValueError, match="bool"):
            env.step(np.ones(shape, bool))
        env.step(half.astype(np.float32))  # still steps after the refusals


def test_reset_options_must_be_a_dict_of_known_keys(snaps):
    env, venv = make(snaps), PredatorPreyVectorEnv(num_envs=2, snapshots=snaps, episode_ticks=100)
    for e, accepted in ((env, r"\['snapshot'\]"), (venv, r"\['snapshot', 'reset_mask'\]")):
        for bad in ("abc", 5, ["snapshot"]):
            with pytest.raises(TypeError, match="options"):
                e.reset(seed=0, options=bad)
        with pytest.raises(ValueError, match=rf"unknown reset option\(s\) \['snapshott'\]; accepted: {accepted}"):
            e.reset(seed=0, options={"snapshott": 1})
        with pytest.raises(ValueError, match="snapshot"):
            e.reset(seed=0, options={"snapshot": 6})  # the train split has 6 states
        e.reset(seed=0, options={"snapshot": 5})
        e.reset(seed=0, options={})
