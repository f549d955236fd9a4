"""The digital-twin evaluator (simrl.evaluation.digital_twin) on a 63 x 63 sheep-wolves-grass world:
files written, baselines, grid-search cache on training seeds, and the end-to-end training script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simrl.evaluation import read_episodes
from simrl.evaluation import digital_twin as dt

ROOT = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def snaps(small_predator_prey_snapshots):
    return small_predator_prey_snapshots  # tests/conftest.py


def config(snaps, n_seeds=3):
    return {
        "seed": 0,
        "env": {
            "name": "predator_prey", "id": "simrl/PredatorPrey-v0",
            "kwargs": {"snapshots": snaps, "episode_ticks": 60, "snapshot_split": "train"},
            "evaluation_kwargs": {"snapshot_split": "eval"},
            "baseline_grid": [[0.0, 0.2], [0.0, 0.1]], "baseline_grid_seeds": 2,
        },
        "agent": {"name": "steady"},
        "evaluation": {"n_seeds": n_seeds, "first_seed": 1000},
    }  # fmt: skip


class Steady:
    """A stand-in trained model: a fixed feedback on the wolves' level."""

    def predict(self, obs, deterministic=True):
        wolves = np.asarray(obs)[:, 2:3]
        return np.concatenate([np.full_like(wolves, 0.1), np.clip(wolves - 0.5, 0, 1)], 1).astype(np.float32), None


def test_evaluator_writes_every_file_and_scores_each_method_on_the_held_out_seeds(snaps, tmp_path):
    cfg = config(snaps)
    result = dt.evaluate(Steady(), cfg, tmp_path, "steady", tmp_path / "evaluation")
    out = tmp_path / "evaluation"
    for name in ("episodes.parquet", "summary.json", "summary.csv", "trajectories.png", "trajectories.npz"):
        assert (out / name).is_file() and (out / name).stat().st_size > 100, name
    assert (tmp_path / "constant_grid.json").is_file()
    episodes = read_episodes(out)
    methods = list(dict.fromkeys(episodes["policy"]))
    assert methods[0] == "steady" and methods[1] == dt.NO_CONTROL and methods[2].startswith(dt.BEST_CONSTANT)
    assert len(episodes) == 3 * 3 and set(episodes["seed"]) == {1000, 1001, 1002}
    assert {"objective", "final_sheep", "mean_wolves", "effort", "extinct"} <= set(episodes.columns)
    summary = json.loads((out / "summary.json").read_text())
    rows = {m["policy"]: m for m in summary["methods"]}
    for m in rows.values():
        assert m["objective_low"] <= m["objective_mean"] <= m["objective_high"]
    assert result["objective"] == pytest.approx(rows["steady"]["objective_mean"])
    assert "objective" in result["table"] and result["out_dir"] == str(out)
    assert rows[dt.NO_CONTROL]["effort_mean"] == 0.0
    assert summary["grid_search"]["seeds"] == [0, 1]  # training seeds, not held-out ones
    assert len(summary["grid_search"]["points"]) == 4
    # the objective in the table is the env's own episode objective
    traj = dt.load_trajectories(out / "trajectories.npz")
    assert list(traj["methods"]) == methods and traj["state_keys"] == ["grass", "sheep", "wolves"]
    assert traj["methods"]["steady"]["frame"].shape == (63, 63, 3)
    np.testing.assert_allclose(traj["methods"]["steady"]["objective"], episodes.loc[episodes["policy"] == "steady", "objective"])
    assert traj["ticks"][0] == 10 and np.isfinite(traj["target"]).all()


def test_baselines_only_and_the_grid_search_is_cached(snaps, tmp_path, monkeypatch):
    cfg = config(snaps, n_seeds=2)
    first = dt.evaluate(None, cfg, tmp_path, "x", tmp_path / "a")
    assert np.isnan(first["objective"])
    monkeypatch.setattr(dt, "grid_search", lambda *a, **k: pytest.fail("the cached grid search was recomputed"))
    second = dt.evaluate(None, cfg, tmp_path, "x", tmp_path / "b")
    assert second["grid"]["best_action"] == first["grid"]["best_action"]
    # a different grid is a different search
    cfg["env"]["baseline_grid"] = [[0.0], [0.0, 0.1]]
    with pytest.raises(pytest.fail.Exception):
        dt.evaluate(None, cfg, tmp_path, "x", tmp_path / "c")


def test_evaluator_bad_input_names_what_is_accepted(snaps, tmp_path):
    cfg = config(snaps)
    cfg["env"]["baseline_grid"] = [[0.0, 0.1]]
    with pytest.raises(ValueError, match="one non-empty list"):
        dt.evaluate(None, cfg, tmp_path, "x", tmp_path / "e")
    with pytest.raises(ValueError, match="accepted"):
        dt.family("simrl/ThreeBody-v0")
    cfg = config(snaps)
    with pytest.raises(ValueError, match="baseline's name"):
        dt.evaluate(Steady(), cfg, tmp_path, dt.NO_CONTROL, tmp_path / "e")


@pytest.fixture(scope="module")
def trained_run(snaps, tmp_path_factory):
    """One tiny ``scripts/train_agent.py env=predator_prey agent=nn_controller`` run (shared by two tests)."""
    run_dir = tmp_path_factory.mktemp("runs") / "outputs" / "predator_prey" / "nn_controller" / "tiny"
    run_dir.mkdir(parents=True)
    args = [
        "env=predator_prey", "agent=nn_controller", "total_timesteps=120", "n_envs=4", "progress_bar=false",
        "evaluation.n_seeds=3", f"+env.kwargs.snapshots={snaps}", "env.kwargs.episode_ticks=60",
        "env.baseline_grid=[[0,0.2],[0,0.1]]", "env.baseline_grid_seeds=2", "agent.kwargs.train_iterations=8",
        "agent.kwargs.fit_iterations=20", "agent.kwargs.batch_size=8", "agent.kwargs.horizon_decisions=4",
        "agent.kwargs.fit_horizon=3", "device=cpu",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_agent.py"), f"hydra.run.dir={run_dir}", *args],
                            capture_output=True, text=True, timeout=600, env=env, cwd=run_dir)  # fmt: skip
    return run_dir, result


def test_train_agent_script_end_to_end_with_the_nn_controller(trained_run):
    run_dir, result = trained_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "final_model.zip").is_file()
    run_info = json.loads((run_dir / "run_info.json").read_text())
    assert run_info["status"] == "complete" and run_info["agent"] == "nn_controller"
    episodes = read_episodes(run_dir)
    assert list(dict.fromkeys(episodes["policy"]))[:2] == ["nn_controller", dt.NO_CONTROL]
    assert "objective" in result.stdout and "best constant" in result.stdout
    assert (run_dir / "evaluation" / "trajectories.png").is_file()


def _page_script(root: str) -> None:
    from simrl.dashboard import runs as runs_mod
    from simrl.dashboard.components import PageContext
    from simrl.dashboard.digital_twin_page import predator_prey_page

    runs = runs_mod.load_runs([root])
    predator_prey_page(PageContext(roots=[root], all_runs=runs, runs=runs))


def test_dashboard_page_shows_trajectories_objectives_and_snapshots(trained_run):
    from streamlit.testing.v1 import AppTest

    run_dir, result = trained_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = str(run_dir.parents[2])
    at = AppTest.from_function(_page_script, args=(root,), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.header[0].value.startswith("PredatorPrey")
    assert at.get("plotly_chart"), "no trajectory chart"
    table = at.dataframe[0].value
    assert table["policy"].tolist()[:2] == ["nn_controller", dt.NO_CONTROL]
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions[:2] == ["nn_controller", dt.NO_CONTROL] and len(captions) == 3


def test_evaluator_runs_the_metabolic_pathway_with_its_no_control_feed(tmp_path):
    cfg = {
        "seed": 0,
        "env": {"name": "metabolic", "id": "simrl/MetabolicPathway-v0",
                "kwargs": {"episode_steps": 1000, "steps_per_action": 250},
                "evaluation_kwargs": {"snapshot_split": "eval"},
                "baseline_grid": [[0.25, 0.5]], "baseline_grid_seeds": 1, "baseline_stop_grid": [0.5]},
        "agent": {"name": "feeder"},
        "evaluation": {"n_seeds": 2, "first_seed": 1000},
    }  # fmt: skip

    class Feeder:
        def predict(self, obs, deterministic=True):
            return np.full((len(obs), 1), 0.4, np.float32), None

    result = dt.evaluate(Feeder(), cfg, tmp_path, "feeder", tmp_path / "evaluation")
    episodes = read_episodes(tmp_path / "evaluation")
    methods = list(dict.fromkeys(episodes["policy"]))
    assert methods[0] == "feeder" and methods[1] == "no control (feed 1)" and methods[2].startswith(dt.BEST_CONSTANT)
    assert methods[3].startswith(dt.BEST_SCHEDULE) and methods[3].endswith("until 0.5)")
    # paired difference to the best constant, per seed
    rows = {row["policy"]: row for row in result["summary"]}
    per_seed = episodes.pivot_table(index="seed", columns="policy", values="objective")
    assert rows[methods[2]]["diff_mean"] == 0.0
    assert rows["feeder"]["diff_mean"] == pytest.approx((per_seed["feeder"] - per_seed[methods[2]]).mean())
    assert rows["feeder"]["diff_low"] <= rows["feeder"]["diff_mean"] <= rows["feeder"]["diff_high"]
    assert "- best constant" in result["table"]
    # the objective is minus the yield, and the episodes table keeps the yield
    np.testing.assert_allclose(episodes["objective"], -episodes["yield"])
    assert result["objective"] == pytest.approx(-episodes.loc[episodes["policy"] == "feeder", "yield"].mean())
    traj = dt.load_trajectories(tmp_path / "evaluation" / "trajectories.npz")
    assert traj["state_keys"] == ["S", "P", "Q", "R", "T"] and np.isnan(traj["target"]).all()
    # no control keeps the stored states' feed 1.0: action (1 - 0.5) / (4.5 - 0.5); the two-phase
    # schedule plays its action for the first half of the 4 decisions, then the basal feed (action 0)
    np.testing.assert_allclose(traj["methods"][methods[1]]["actions_mean"][:, 0], 0.125)
    best = result["schedule"]["best_action"]
    assert best[1] == 0.5 and best[0] in (0.25, 0.5)
    np.testing.assert_allclose(traj["methods"][methods[3]]["actions_mean"][:, 0], [best[0], best[0], 0.0, 0.0])


def _metabolic_page_script(root: str) -> None:
    from simrl.dashboard import runs as runs_mod
    from simrl.dashboard.components import PageContext
    from simrl.dashboard.digital_twin_page import metabolic_page

    runs = runs_mod.load_runs([root])
    metabolic_page(PageContext(roots=[root], all_runs=runs, runs=runs))


def test_train_agent_metabolic_ppo_end_to_end_and_its_dashboard_page(tmp_path):
    """``train_agent.py env=metabolic`` (tiny PPO run) -> evaluation with both baselines -> page."""
    from streamlit.testing.v1 import AppTest

    run_dir = tmp_path / "outputs" / "metabolic" / "ppo" / "tiny"
    run_dir.mkdir(parents=True)
    args = [
        "env=metabolic", "total_timesteps=16", "n_envs=2", "progress_bar=false", "evaluation.n_seeds=2",
        "env.kwargs.episode_steps=1000", "env.agent_kwargs.ppo.n_steps=8", "env.agent_kwargs.ppo.batch_size=16",
        "env.baseline_grid=[[0,0.25]]", "env.baseline_grid_seeds=1", "env.baseline_stop_grid=[0.5]", "device=cpu",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_agent.py"), f"hydra.run.dir={run_dir}", *args],
                            capture_output=True, text=True, timeout=600, env=env, cwd=run_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best two-phase" in result.stdout and "- best constant" in result.stdout
    at = AppTest.from_function(_metabolic_page_script, args=(str(tmp_path),), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.header[0].value.startswith("MetabolicPathway")
    assert any("overall yield" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert table["policy"].tolist()[0] == "ppo" and table["policy"].tolist()[3].startswith(dt.BEST_SCHEDULE)
    assert {"diff_mean", "diff_low", "diff_high"} <= set(table.columns)
