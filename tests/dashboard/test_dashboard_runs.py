"""The dashboard's data layer (simrl.dashboard.runs / rollout / cli): real tiny runs, and broken copies of them."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import trim_mean

from simrl.dashboard import runs
from simrl.dashboard.app import parse_roots
from simrl.dashboard.cli import build_command
from simrl.dashboard.rollout import held_out_seeds, play_episode, policy_choices

ENV_ID = "simrl/ThreeBody-v0"


def _row(frame: pd.DataFrame, path: Path) -> pd.Series:
    match = frame[frame["path"] == str(path.resolve())]
    assert len(match) == 1, f"{path} not found once in {list(frame['path'])}"
    return match.iloc[0]


def _copy(run: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / "root" / name
    shutil.copytree(run, target)
    return target


def _bump_mtime(path: Path) -> None:
    """Make sure a rewritten file gets a new mtime even on coarse-timestamp file systems."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# ---------------------------------------------------------------------------------------------
# Discovery and the runs table
# ---------------------------------------------------------------------------------------------


def test_finds_single_runs_and_multirun_jobs_and_nothing_else(dashboard_runs):
    found = runs.find_run_dirs(dashboard_runs.root)
    assert found == sorted(p.resolve() for p in (dashboard_runs.single, dashboard_runs.sweep_job, dashboard_runs.killed))
    assert runs.find_run_dirs(dashboard_runs.root / "no_such_folder") == []
    # a run folder given as the root itself
    assert runs.find_run_dirs(dashboard_runs.single) == [dashboard_runs.single.resolve()]
    # overlapping roots list a run once
    frame = runs.load_runs([dashboard_runs.root / "outputs", dashboard_runs.root, dashboard_runs.single])
    assert len(frame) == 3 and frame["path"].is_unique
    assert "threebody/ppo/seed0" in set(frame["run"])  # relative to the first root that holds it


def test_runs_table_has_one_row_per_run_with_config_and_results(dashboard_runs):
    frame = runs.load_runs(dashboard_runs.root)
    assert list(frame.columns) == runs.RUN_COLUMNS
    assert len(frame) == 3
    for path, seed in ((dashboard_runs.single, 0), (dashboard_runs.sweep_job, 1)):
        row = _row(frame, path)
        assert row["status"] == "complete", row["problem"]
        assert row["problem"] == ""
        assert (row["env_id"], row["env_name"], row["agent"], row["seed"]) == (ENV_ID, "threebody", "ppo", seed)
        assert row["total_timesteps"] == 256
        assert np.isfinite(row["final_score"])  # last EvalCallback mean return
        assert row["median_cost"] > 0 and row["median_error"] > 0
    assert _row(frame, dashboard_runs.sweep_job)["sweep"] == "multirun/sweep"
    assert _row(frame, dashboard_runs.single)["sweep"] == ""
    assert _row(frame, dashboard_runs.single)["run"] == "outputs/threebody/ppo/seed0"


def test_killed_run_is_an_incomplete_row_with_reasons(dashboard_runs):
    row = _row(runs.load_runs(dashboard_runs.root), dashboard_runs.killed)
    assert row["status"] == "incomplete"
    assert "'training'" in row["problem"] and "killed" in row["problem"]
    assert "final_model.zip" in row["problem"]
    assert "episodes.parquet" in row["problem"]
    assert row["seed"] == 0 and row["agent"] == "ppo"  # the config is still read


@pytest.mark.parametrize(
    "damage, status, reason",
    [
        ("garbage_parquet", "broken", "episodes.parquet unreadable"),
        ("garbage_run_info", "broken", "run_info.json unreadable"),
        ("garbage_config", "broken", "config.yaml unreadable"),
        ("garbage_npz", "broken", "evaluations.npz unreadable"),
        ("garbage_summary", "broken", "summary.json unreadable"),
        ("failed", "broken", "training failed: RuntimeError('boom')"),
        ("no_env_section", "broken", "no 'env' section"),
        ("no_agent", "broken", "lacks agent.name"),
        ("empty_config", "broken", "not a mapping"),
        ("no_model", "incomplete", "no final_model.zip"),
        ("evaluating", "incomplete", "held-out evaluation has not finished"),
    ],
)
def test_damaged_folders_become_rows_with_a_reason_never_exceptions(dashboard_runs, tmp_path, damage, status, reason):
    run = _copy(dashboard_runs.single, tmp_path, damage)
    if damage == "garbage_parquet":
        (run / "evaluation" / "episodes.parquet").write_bytes(b"PAR1 not really parquet")
    elif damage == "garbage_run_info":
        (run / "run_info.json").write_text("{status: complete")
    elif damage == "garbage_config":
        (run / ".hydra" / "config.yaml").write_text("env: [unclosed\n  - : :")
    elif damage == "garbage_npz":
        (run / "eval_callback" / "evaluations.npz").write_bytes(b"\x00" * 50)
    elif damage == "garbage_summary":
        (run / "evaluation" / "summary.json").write_text("[1, 2")
    elif damage == "failed":
        info = json.loads((run / "run_info.json").read_text())
        (run / "run_info.json").write_text(json.dumps({**info, "status": "failed", "error": "RuntimeError('boom')"}))
    elif damage in ("no_env_section", "no_agent"):
        cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
        cfg.pop("env" if damage == "no_env_section" else "agent")
        (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
        if damage == "no_agent":
            (run / "run_info.json").unlink()  # which would name the agent too
    elif damage == "empty_config":
        (run / ".hydra" / "config.yaml").write_text("")
    elif damage == "no_model":
        (run / "final_model.zip").unlink()
    elif damage == "evaluating":
        (run / "evaluation" / "episodes.parquet").unlink()
    frame = runs.load_runs(tmp_path / "root")
    row = _row(frame, run)
    assert row["status"] == status
    assert reason in row["problem"]
    # the other pages' data functions also cope
    runs.learning_curves(frame)
    runs.baseline_comparison(runs.load_episodes_for(frame), metrics=["return"])


def test_older_config_without_keys_and_older_layout_still_load(dashboard_runs, tmp_path):
    run = _copy(dashboard_runs.single, tmp_path, "old")
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    for key in ("id", "cost_key", "error_key", "cost_label", "error_label"):
        cfg["env"].pop(key)
    cfg.pop("n_envs")
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "run_info.json").unlink()
    # the layout before episodes.parquet: episodes.csv with the record columns only
    episodes = pd.read_parquet(run / "evaluation" / "episodes.parquet")
    legacy = episodes.drop(columns=["run", "env", "env_name", "agent", "training_seed", "is_baseline", "episode"])
    legacy.to_csv(run / "evaluation" / "episodes.csv", index=False)
    (run / "evaluation" / "episodes.parquet").unlink()

    loaded = runs.load_run(run)
    assert loaded.status == "complete", loaded.problems
    assert loaded.env_id == ENV_ID  # from env.name
    assert loaded.env_key("cost_key") == "total_force_evaluations"
    notes = "; ".join(loaded.notes)
    assert "run_info.json" in notes and "env.id" in notes and "episodes.csv" in notes and "n_envs" in notes
    table = runs.load_episodes(run)
    assert len(table) == len(episodes)
    assert table["is_baseline"].sum() == (episodes["is_baseline"]).sum()
    assert (table["episode"].to_numpy() == episodes["episode"].to_numpy()).all()
    assert set(table["env"]) == {ENV_ID}


def test_an_unexpected_file_layout_never_raises(tmp_path):
    (tmp_path / "a" / ".hydra").mkdir(parents=True)
    (tmp_path / "a" / ".hydra" / "config.yaml").write_text("seed: 3\n")  # no env, no agent
    (tmp_path / "b" / ".hydra" / "config.yaml").mkdir(parents=True)  # a folder, not a file: not a run
    (tmp_path / "c" / ".hydra").mkdir(parents=True)
    (tmp_path / "c" / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"env": {"id": ENV_ID}, "agent": {"name": "ppo"}}))
    (tmp_path / "c" / "evaluation").mkdir()
    (tmp_path / "c" / "evaluation" / "summary.json").write_text(json.dumps({"summaries": "not a list"}))
    frame = runs.load_runs(tmp_path)
    assert set(frame["run"]) == {"a", "c"}
    assert set(frame["status"]) == {"broken"}
    assert all(frame["problem"].str.len() > 0)


# ---------------------------------------------------------------------------------------------
# Malformed values (issue "Reliability"): one bad folder is a broken row, never an exception
# ---------------------------------------------------------------------------------------------


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _edit_config(run: Path, edit) -> None:
    path = run / ".hydra" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _edit_npz(run: Path, **arrays) -> None:
    path = run / "eval_callback" / "evaluations.npz"
    with np.load(path) as data:
        current = {k: data[k] for k in data.files}
    np.savez(path, **{**current, **arrays})


def _set_seed_line(run: Path, text: str) -> None:
    """Replace the top-level ``seed:`` line of the config as written, e.g. ``seed: .nan``."""
    path = run / ".hydra" / "config.yaml"
    lines = path.read_text().splitlines()
    (i,) = [i for i, line in enumerate(lines) if line.startswith("seed:")]
    lines[i] = text
    path.write_text("\n".join(lines) + "\n")


MALFORMED = {
    "comparison_list": (lambda r: _edit_json(r / "evaluation" / "summary.json", lambda d: d.update(comparison=[1, 2])),
                        "evaluation/summary.json: comparison is a list of 2 (expected an object)"),
    "seed_nan": (lambda r: _set_seed_line(r, "seed: .nan"), ".hydra/config.yaml: seed is nan (expected an integer"),
    "seed_inf": (lambda r: _set_seed_line(r, "seed: .inf"), ".hydra/config.yaml: seed is inf (expected an integer"),
    "seed_huge": (lambda r: _set_seed_line(r, f"seed: {2**70}"), ".hydra/config.yaml: seed is 1180591620717411303424"),
    "kwargs_list": (lambda r: _edit_config(r, lambda c: c["env"].update(kwargs=[1, 2])),
                    ".hydra/config.yaml: env.kwargs is a list of 2 (expected a mapping of argument names)"),
    "results_0d": (lambda r: _edit_npz(r, results=np.array(1.5)),
                   "eval_callback/evaluations.npz: 'results' is an array of shape () (float64)"),
    "results_longer": (lambda r: _edit_npz(r, results=np.zeros((3, 1))),
                       "'results' is an array of shape (3, 1) (float64) (expected numbers, one row per timestep: shape (2,"),
    "lengths_shorter": (lambda r: _edit_npz(r, ep_lengths=np.zeros((1, 1))), "'ep_lengths' is an array of shape (1, 1)"),
    "zero_length": (lambda r: _edit_npz(r, timesteps=np.zeros(0, np.int64), results=np.zeros((0, 1)),
                                        ep_lengths=np.zeros((0, 1))),
                    "eval_callback/evaluations.npz: 'timesteps' is empty (no evaluation recorded)"),
    "timesteps_0d": (lambda r: _edit_npz(r, timesteps=np.array(128)), "'timesteps' is an array of shape () (int64)"),
    "timesteps_unsigned_decreasing": (lambda r: _edit_npz(r, timesteps=np.array([1, 0], np.uint8)),  # found by the fuzz test
                                      "eval_callback/evaluations.npz: 'timesteps' is not in increasing order: [1, 0]"),
    "status_list": (lambda r: _edit_json(r / "run_info.json", lambda d: d.update(status=["complete"])),
                    "run_info.json: status is a list of 1 (expected a string)"),
    "summaries_entry_number": (lambda r: _edit_json(r / "evaluation" / "summary.json", lambda d: d["summaries"].append(7)),
                               "evaluation/summary.json: summaries[12] is 7 (expected an object)"),
    "median_cost_text": (lambda r: _edit_json(r / "evaluation" / "summary.json",
                                              lambda d: d["summaries"][0].update(median_cost="fast")),
                         "evaluation/summary.json: summaries[0].median_cost is 'fast' (expected a number)"),
    "seeds_text": (lambda r: _edit_json(r / "evaluation" / "summary.json", lambda d: d.update(seeds="1,2")),
                   "evaluation/summary.json: seeds is '1,2' (expected a list of non-negative integers)"),
    "episodes_policy_numbers": (
        lambda r: pd.read_parquet(r / "evaluation" / "episodes.parquet").assign(policy=1.0).to_parquet(
            r / "evaluation" / "episodes.parquet"),
        "evaluation/episodes.parquet: column 'policy' is float (expected string)"),
    "episodes_no_rows": (
        lambda r: pd.read_parquet(r / "evaluation" / "episodes.parquet").iloc[:0].to_parquet(
            r / "evaluation" / "episodes.parquet"),
        "evaluation/episodes.parquet: no rows"),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(MALFORMED))
def test_a_malformed_value_makes_that_run_broken_and_every_other_run_still_loads(dashboard_runs, tmp_path, damage):
    make, reason = MALFORMED[damage]
    bad = _copy(dashboard_runs.single, tmp_path, damage)
    good = _copy(dashboard_runs.single, tmp_path, "good")
    make(bad)
    frame = runs.load_runs(tmp_path / "root")  # raised (AttributeError, ValueError, IndexError...) before the fix
    row = _row(frame, bad)
    assert row["status"] == "broken"
    assert reason in row["problem"], row["problem"]
    good_row = _row(frame, good)
    assert good_row["status"] == "complete" and good_row["problem"] == ""
    assert good_row["seed"] == 0 and np.isfinite(good_row["final_score"]) and good_row["median_cost"] > 0
    # every per-run loader a page calls copes with the broken folder
    curve = runs.run_curve(bad)
    if "npz" in reason or "timesteps" in reason:
        assert curve.empty and np.isnan(row["final_score"])
    assert list(runs.run_curve(good)["timestep"]) == [128, 256]
    assert not runs.learning_curves(frame).empty
    runs.baseline_comparison(runs.load_episodes_for(frame), metrics=["return"], n_boot=20)
    runs.load_episodes(bad)
    runs.variant_labels(frame["variant"])
    assert policy_choices(bad)
    seeds = held_out_seeds(bad)
    assert seeds and all(isinstance(s, int) for s in seeds)


def test_malformed_values_are_reported_one_message_per_value(dashboard_runs, tmp_path):
    run = _copy(dashboard_runs.single, tmp_path, "many")
    _edit_config(run, lambda c: (c.update(total_timesteps="lots"), c["env"].update(id=5), c["agent"].update(name=[1])))
    _edit_json(run / "run_info.json", lambda d: d.update(train_seconds="slow", finished_at=3))
    problems = runs.load_run(run).problems
    assert problems[:5] == [
        ".hydra/config.yaml: env.id is 5 (expected a string)",
        ".hydra/config.yaml: agent.name is a list of 1 (expected a string)",
        ".hydra/config.yaml: total_timesteps is 'lots' (expected an integer in [0, 2**63))",
        "run_info.json: train_seconds is 'slow' (expected a non-negative, finite number of seconds)",
        "run_info.json: finished_at is 3 (expected a string)",
    ]
    row = _row(runs.load_runs(tmp_path / "root"), run)
    # wrong values are never shown as if they were right: the row falls back (run_info) or shows nothing
    assert row["env_id"] == ENV_ID and row["agent"] == "ppo"  # from run_info.json
    assert row["total_timesteps"] == 256 and np.isnan(row["train_seconds"]) and row["finished_at"] is None


def test_older_csv_layout_without_the_policy_column_is_broken_not_a_crash(dashboard_runs, tmp_path):
    run = _copy(dashboard_runs.single, tmp_path, "csv")
    episodes = pd.read_parquet(run / "evaluation" / "episodes.parquet")
    episodes.drop(columns=["policy"]).to_csv(run / "evaluation" / "episodes.csv", index=False)
    (run / "evaluation" / "episodes.parquet").unlink()
    row = _row(runs.load_runs(tmp_path / "root"), run)
    assert row["status"] == "broken" and "evaluation/episodes.csv: no column ['policy']" in row["problem"]
    assert runs.load_episodes(run).empty  # raised KeyError: 'policy' before the fix
    (run / "evaluation" / "episodes.csv").write_text("")
    row = _row(runs.load_runs(tmp_path / "root"), run)
    assert row["status"] == "broken" and "evaluation/episodes.csv unreadable" in row["problem"]


def test_hydra_interpolations_in_the_saved_config_are_resolved(dashboard_runs, tmp_path):
    """Hydra saves .hydra/config.yaml unresolved: ``total_timesteps: ${env.total_timesteps}`` in a default run."""
    run = _copy(dashboard_runs.single, tmp_path, "interpolated")

    def interpolate(cfg):
        cfg.update(total_timesteps="${env.total_timesteps}", n_envs="${env.n_envs}")
        cfg["evaluation"]["n_seeds"] = "${oc.select:env.evaluation_n_seeds,100}"
        cfg["evaluation"]["first_seed"] = "${oc.env:SIMRL_NO_SUCH_VARIABLE}"  # does not resolve here

    _edit_config(run, interpolate)
    _edit_json(run / "evaluation" / "summary.json", lambda d: d.pop("seeds"))
    assert held_out_seeds(run) == list(range(1_000_000, 1_000_100))  # ValueError: int('${oc.select:...}') before
    assert _row(runs.load_runs(tmp_path / "root"), run)["total_timesteps"] == 400_000  # NaN before
    loaded = runs.load_run(run)
    assert loaded.status == "complete", loaded.problems
    assert loaded.total_timesteps == 400_000  # env.total_timesteps of configs/env/threebody.yaml as saved
    assert any("evaluation.first_seed is the interpolation" in n for n in loaded.notes)


def test_an_unexpected_error_building_one_row_breaks_that_row_only(dashboard_runs, tmp_path, monkeypatch):
    bad = _copy(dashboard_runs.single, tmp_path, "bad")
    good = _copy(dashboard_runs.single, tmp_path, "good")
    original = runs.Run.final_score

    def final_score(self):
        if self.path.name == "bad":
            raise RuntimeError("a bug")
        return original(self)

    monkeypatch.setattr(runs.Run, "final_score", final_score)
    frame = runs.load_runs(tmp_path / "root")
    assert _row(frame, bad)["status"] == "broken"
    assert "unexpected error building the row: RuntimeError: a bug" in _row(frame, bad)["problem"]
    assert _row(frame, good)["status"] == "complete"


def test_digital_twin_evaluation_files_are_checked_before_the_page_draws_them(tmp_path):
    from simrl.dashboard.digital_twin_page import EvaluationFilesError, read_evaluation

    band = np.ones((3, 2))
    arrays = {"methods": np.array(["no control"]), "state_keys": np.array(["prey", "predators"]),
              "action_labels": np.array(["cull"]), "target": np.array([1.0, np.nan]), "ticks": np.arange(1, 4),
              "m0_states_mean": band, "m0_states_low": band, "m0_states_high": band}  # fmt: skip
    np.savez(tmp_path / "trajectories.npz", **arrays)
    (tmp_path / "summary.json").write_text(json.dumps({"methods": [{"policy": "no control", "objective_mean": 1.0}]}))
    traj, summary = read_evaluation(tmp_path)
    assert traj["state_keys"] == ["prey", "predators"] and summary["methods"][0]["policy"] == "no control"

    for damage, message in (
        ({"m0_states_mean": np.ones((3, 5))}, "'no control' states_mean has shape (3, 5)"),
        ({"target": np.ones(3)}, "'target' has shape (3,)"),
        ({"ticks": np.array(3)}, "'ticks' has shape ()"),
    ):
        np.savez(tmp_path / "trajectories.npz", **{**arrays, **damage})
        with pytest.raises(EvaluationFilesError, match=re.escape(message)):
            read_evaluation(tmp_path)
    np.savez(tmp_path / "trajectories.npz", **{k: v for k, v in arrays.items() if k != "ticks"})
    with pytest.raises(EvaluationFilesError, match="trajectories.npz unreadable"):
        read_evaluation(tmp_path)
    np.savez(tmp_path / "trajectories.npz", **arrays)
    for text, message in (("[1, 2]", "summary.json is a list"), ('{"methods": 3}', "'methods' is not a list"),
                          ("{", "summary.json unreadable")):  # fmt: skip
        (tmp_path / "summary.json").write_text(text)
        with pytest.raises(EvaluationFilesError, match=re.escape(message)):
            read_evaluation(tmp_path)


def test_reads_are_cached_by_mtime_and_see_changes(dashboard_runs, tmp_path, monkeypatch):
    run = _copy(dashboard_runs.single, tmp_path, "cached")
    runs.clear_cache()
    first = runs.load_runs(tmp_path / "root")
    reads = []
    original = runs._read_json
    monkeypatch.setattr(runs, "_read_json", lambda p: reads.append(p) or original(p))
    runs._read_json.__name__ = "_read_json"
    second = runs.load_runs(tmp_path / "root")
    assert reads == []  # warm: nothing re-read
    pd.testing.assert_frame_equal(first, second)
    info = json.loads((run / "run_info.json").read_text())
    (run / "run_info.json").write_text(json.dumps({**info, "status": "training"}))
    _bump_mtime(run / "run_info.json")
    third = runs.load_runs(tmp_path / "root")
    assert [p.name for p in reads] == ["run_info.json"]
    assert third["status"].iloc[0] == "incomplete"


# ---------------------------------------------------------------------------------------------
# Learning curves and the baseline comparison
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", list(runs.INTERVALS))
def test_learning_curves_across_seeds(dashboard_runs, interval):
    frame = runs.load_runs(dashboard_runs.root)
    curves = runs.learning_curves(frame, interval=interval)
    assert set(curves["agent"]) == {"ppo"} and set(curves["env_id"]) == {ENV_ID}
    assert list(curves["timestep"]) == [128, 256]
    # incomplete runs keep their curves: the killed copy of seed 0 still has eval_callback/
    assert (curves["n_seeds"] == 3).all()
    per_run = [runs.run_curve(p) for p in frame["path"]]
    expected = np.mean([c["mean_return"].to_numpy() for c in per_run if not c.empty], axis=0)
    np.testing.assert_allclose(curves["mean"], expected)
    assert (curves["low"] <= curves["mean"] + 1e-12).all() and (curves["mean"] <= curves["high"] + 1e-12).all()


def test_learning_curves_per_run_and_interpolated_on_a_common_grid(tmp_path):
    for name, steps, values in (("a", [100, 200, 300], [0.0, 1.0, 2.0]), ("b", [150, 300], [1.0, 4.0])):
        run = tmp_path / name
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"env": {"id": ENV_ID, "name": "threebody"},
                                                                     "agent": {"name": "ppo"}, "seed": 0}))  # fmt: skip
        (run / "eval_callback").mkdir()
        np.savez(run / "eval_callback" / "evaluations.npz", timesteps=np.array(steps),
                 results=np.array(values)[:, None], ep_lengths=np.ones((len(steps), 1)))  # fmt: skip
    frame = runs.load_runs(tmp_path)
    curves = runs.learning_curves(frame, interval="minmax")
    assert list(curves["timestep"]) == [100, 150, 200, 300]
    assert list(curves["n_seeds"]) == [1, 2, 2, 2]
    np.testing.assert_allclose(curves["mean"], [0.0, (0.5 + 1.0) / 2, (1.0 + 2.0) / 2, 3.0])
    per_run = runs.learning_curves(frame, group_by=("run",))
    assert set(per_run["run"]) == {"a", "b"}


def test_baseline_comparison_pools_training_seeds_and_counts_baselines_once(dashboard_runs):
    frame = runs.load_runs(dashboard_runs.root)
    episodes = runs.load_episodes_for(frame)
    assert set(episodes["run_path"]) == {str(p.resolve()) for p in dashboard_runs.good}  # the killed run has none
    metrics = ["total_force_evaluations", "energy_error", "return"]
    comparison = runs.baseline_comparison(episodes, metrics=metrics, n_boot=300)
    ppo = comparison[comparison["policy"] == "ppo"]
    assert set(ppo["n_runs"]) == {2} and set(ppo["n_episodes"]) == {6}
    baselines = comparison[comparison["is_baseline"]]
    assert baselines["policy"].nunique() == 11  # 10 grid values + eta = 0.03
    assert set(baselines["n_runs"]) == {1} and set(baselines["n_episodes"]) == {3}
    assert set(comparison["statistic"]) == {"iqm", "mean", "median"}
    assert (comparison["low"] <= comparison["estimate"] * (1 + 1e-9) + 1e-300).all()
    assert (comparison["estimate"] <= comparison["high"] * (1 + 1e-9) + 1e-300).all()
    ppo_errors = episodes.loc[episodes["policy"] == "ppo", "energy_error"].to_numpy()
    got = ppo[(ppo["metric"] == "energy_error") & (ppo["statistic"] == "iqm")]["estimate"].item()
    assert got == pytest.approx(trim_mean(ppo_errors, 0.25))
    # deterministic
    again = runs.baseline_comparison(episodes, metrics=metrics, n_boot=300)
    pd.testing.assert_frame_equal(comparison, again)

    stratified = runs.baseline_comparison(episodes, metrics=metrics, n_boot=300, method="stratified")
    fixed = stratified[stratified["is_baseline"]]
    assert np.allclose(fixed["low"], fixed["estimate"]) and np.allclose(fixed["high"], fixed["estimate"])
    pd.testing.assert_series_equal(stratified["estimate"], comparison["estimate"])

    wide = runs.comparison_table(comparison, "median", metrics)
    assert len(wide) == 12 and {"energy_error", "energy_error low", "energy_error high"} <= set(wide.columns)
    points = runs.front_points(comparison, ENV_ID, "total_force_evaluations", "energy_error", "median")
    assert len(points) == 12 and (points["cost"] > 0).all()
    assert points.loc[points["policy"] == "ppo", "is_baseline"].item() is False


def test_baselines_with_different_evaluation_settings_are_not_pooled(dashboard_runs, tmp_path):
    run = _copy(dashboard_runs.single, tmp_path, "ias15")
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    cfg["env"]["kwargs"]["integrator"] = "ias15"
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    frame = pd.concat([runs.load_runs(dashboard_runs.root), runs.load_runs(tmp_path / "root")], ignore_index=True)
    assert frame["variant"].nunique() == 2
    labels = runs.variant_labels(frame["variant"])
    assert sorted(labels.values()) == ["integrator=hermite", "integrator=ias15"]
    comparison = runs.baseline_comparison(runs.load_episodes_for(frame), metrics=["return"], n_boot=50)
    assert comparison["variant"].nunique() == 2


# ---------------------------------------------------------------------------------------------
# Rollouts, CLI
# ---------------------------------------------------------------------------------------------


def test_rollout_of_the_trained_policy_renders_frames_and_records_every_step(dashboard_runs):
    choices = policy_choices(dashboard_runs.single)
    assert choices[0] == "trained (ppo)" and "fixed 0.03" in choices and len(choices) == 12
    assert policy_choices(dashboard_runs.killed)[0] == "fixed 0.0001"  # no model: baselines only
    seeds = held_out_seeds(dashboard_runs.single)
    assert seeds == [1_000_000, 1_000_001, 1_000_002]
    episode = play_episode(dashboard_runs.single, seeds[0], max_frames=4)
    assert episode.length == 10 and episode.truncated  # env.evaluation_kwargs.episode_steps=10
    assert episode.frame_steps[0] == 0 and episode.frame_steps[-1] == 10 and len(episode.frames) <= 5
    assert all(f.ndim == 3 and f.shape[2] == 3 and f.dtype == np.uint8 for f in episode.frames)
    assert episode.positions.shape == (11, 3, 3)
    assert {"energy_error", "total_force_evaluations", "parameter"} <= set(episode.key_quantities)
    assert episode.steps["total_force_evaluations"].is_monotonic_increasing
    assert episode.step_values(10)["step"] == 10 and episode.step_values(0) == {}
    # the same episode as the held-out evaluation recorded
    table = runs.load_episodes(dashboard_runs.single)
    recorded = table[(table["policy"] == "ppo") & (table["seed"] == seeds[0])].iloc[0]
    assert episode.steps["total_force_evaluations"].iloc[-1] == recorded["total_force_evaluations"]
    assert episode.total_return == pytest.approx(recorded["return"])


def test_rollout_of_a_baseline_off_the_grid_without_frames(dashboard_runs):
    episode = play_episode(dashboard_runs.killed, 1_000_001, policy="fixed 0.03", render=False)
    assert episode.frames == [] and episode.env_kwargs["action_type"] == "continuous"
    assert np.allclose(episode.steps["parameter"], 0.03)
    with pytest.raises(ValueError, match="unknown policy"):
        play_episode(dashboard_runs.single, 1, policy="fixed 7")


def test_cli_builds_the_streamlit_command_and_the_app_reads_its_roots(tmp_path):
    cmd = build_command(["--runs", str(tmp_path), "--port", "8765", "--headless", "--", "--theme.base", "dark"])
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("simrl/dashboard/app.py")
    assert cmd[5:] == ["--server.port", "8765", "--server.headless", "true", "--theme.base", "dark",
                       "--", "--runs", str(tmp_path.resolve())]  # fmt: skip
    assert parse_roots(["--runs", "a", "b"], {}) == ["a", "b"]
    assert parse_roots(["-q", "tests/dashboard"], {"SIMRL_RUNS": f"x{os.pathsep}y"}) == ["x", "y"]
    assert parse_roots([], {}) == ["outputs", "multirun"]


def test_loading_is_fast_when_warm(dashboard_runs):
    runs.load_runs(dashboard_runs.root)
    start = time.perf_counter()
    runs.load_runs(dashboard_runs.root)
    assert time.perf_counter() - start < 0.5
