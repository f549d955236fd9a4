"""A-posteriori turbulence evaluation (simrl.evaluation.turbulence) on a tiny synthetic 16^2 case:
every file is written, the metrics are sensible, a policy playing the static Leith coefficient
reproduces the Leith baseline, a blow-up is recorded and not raised; and the training script end
to end on the shipped reference (skipped when the shipped data is absent)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simrl.envs.turbulence_core import synthetic_targets
from simrl.evaluation import read_episodes
from simrl.evaluation.turbulence import (
    BASELINE_LABELS,
    MAX_TUNING_EXTENSIONS,
    METRICS,
    ReferenceStatistics,
    _tail_probability,
    evaluate,
    held_out_indices,
    load_arrays,
    pdf_tail_l1,
)
from simrl.physics.turbulence.closures import STATIC_COEFFICIENTS

ROOT = Path(__file__).resolve().parents[1]
FILES = ("summary.json", "table.txt", "spectra.npz", "spectra.png", "pdf.png", "fields.png", "episodes.parquet")


def _cfg(n_seeds=2, baselines=("none", "smagorinsky", "leith"), steps=200, **env):
    # Training fields: the synthetic reference's first 7 of 12 snapshots (the last 5 are held out).
    kwargs = {"n_les": 16, "agents_per_side": 4, "episode_steps": 20, "reference": synthetic_targets(16),
              "snapshot_indices": list(range(7)), **env}
    return {
        "env": {"name": "turbulence", "id": "simrl/Turbulence2D-v0", "kwargs": kwargs,
                "evaluation_kwargs": {"episode_steps": steps, "transient_steps": 40, "record_every": 20,
                                      "baselines": list(baselines)}},
        "evaluation": {"n_seeds": n_seeds, "first_seed": 1000000},
        "agent": {"name": "tiny"},
        "seed": 0,
    }  # fmt: skip


class ConstantCoefficient:
    """A 'trained model' that plays one coefficient for every agent (SB3-style predict)."""

    def __init__(self, value: float):
        self.value = value

    def predict(self, obs, deterministic=True):
        return np.full((obs.shape[0], 1), self.value, dtype=np.float32), None


def test_held_out_snapshots_are_the_last_40_percent():
    assert held_out_indices(20).tolist() == list(range(12, 20))
    assert held_out_indices(10).tolist() == [6, 7, 8, 9]
    assert held_out_indices(2).tolist() == [1]
    with pytest.raises(ValueError, match="at least 2"):
        held_out_indices(1)


def test_tail_metrics_by_hand():
    edges = np.linspace(-5, 5, 11)  # bins of width 1
    density = np.full(10, 0.1)  # uniform on [-5, 5]
    assert _tail_probability(edges, density, 3.0) == pytest.approx(0.4)
    assert _tail_probability(edges, density, 2.5) == pytest.approx(0.5)
    stats = ReferenceStatistics(np.arange(3), np.ones(3), 1.0, edges, density, 2)
    assert pdf_tail_l1(density, stats, (2.0, 5.0)) == pytest.approx(0.0)
    assert pdf_tail_l1(density * math.e, stats, (2.0, 5.0)) == pytest.approx(1.0)
    empty_tails = np.where(np.abs(0.5 * (edges[1:] + edges[:-1])) > 2, 0.0, 0.1)
    assert pdf_tail_l1(empty_tails, stats, (2.0, 5.0)) == pytest.approx(math.log(1e3))


def test_baselines_only_write_every_file_with_sensible_metrics(tmp_path):
    result = evaluate(None, _cfg(), tmp_path, None, tmp_path / "evaluation")
    out = tmp_path / "evaluation"
    for name in FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert math.isnan(result["objective"]) and result["out_dir"] == str(out)
    episodes = read_episodes(out)
    assert len(episodes) == 3 * 2 and set(episodes["policy"]) == {"no closure", "Smagorinsky", "Leith"}
    assert episodes["is_baseline"].all() and set(episodes["seed"]) == {1000000, 1000001}
    assert set(METRICS) <= set(episodes.columns)
    assert (episodes["steps_survived"] == 200).all() and (episodes["blowup"] == 0).all()
    for key in ("spectrum_error", "spectrum_l2", "pdf_tail_l1", "mean_energy", "mean_enstrophy"):
        assert np.isfinite(episodes[key]).all() and (episodes[key] >= 0).all(), key
    # an eddy viscosity removes enstrophy: both closures end below the unclosed LES
    z = episodes.groupby("policy")["mean_enstrophy"].mean()
    assert z["Smagorinsky"] < z["no closure"] and z["Leith"] < z["no closure"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["held_out_snapshots"] == [7, 8]  # 12 synthetic snapshots: the last 5 are held out
    assert summary["policies"]["Leith"]["episodes"] == 2
    arrays = load_arrays(out)
    assert arrays["mean_spectra"].shape == (3, arrays["k"].size) and arrays["final_fields"].shape == (3, 16, 16)
    assert "Smagorinsky" in result["table"] and "+-" in result["table"]


def test_a_policy_playing_the_static_leith_coefficient_reproduces_the_leith_baseline(tmp_path):
    model = ConstantCoefficient(STATIC_COEFFICIENTS["leith"])
    result = evaluate(model, _cfg(baselines=("leith",)), tmp_path, "constant", tmp_path / "ev")
    episodes = read_episodes(tmp_path / "ev").set_index(["policy", "seed"])
    mine, leith = episodes.loc["constant"], episodes.loc["Leith"]
    for key in ("spectrum_error", "mean_enstrophy", "mean_energy", "spectrum_l2"):
        np.testing.assert_allclose(mine[key].to_numpy(), leith[key].to_numpy(), rtol=1e-6, err_msg=key)
    assert result["objective"] == pytest.approx(float(mine["spectrum_error"].mean()))
    assert not episodes.loc["constant", "is_baseline"].any()
    comparison = result["comparison"]
    assert comparison["policy"] == "constant" and comparison["stable"] is True


def test_a_blown_up_closure_is_recorded_not_raised(tmp_path):
    # strong negative eddy viscosity (anti-diffusion) blows the LES up within a few windows
    cfg = _cfg(baselines=("smagorinsky",), backscatter=True, coefficient_range=[-50.0, 0.125])
    result = evaluate(ConstantCoefficient(-50.0), cfg, tmp_path, "unstable", tmp_path / "ev")
    episodes = read_episodes(tmp_path / "ev").set_index("policy")
    bad = episodes.loc["unstable"]
    assert (bad["blowup"] == 1).all() and (bad["steps_survived"] < 200).all()
    assert (episodes.loc["Smagorinsky", "blowup"] == 0).all()
    assert result["comparison"]["stable"] is False and result["comparison"]["target_met"] is False
    assert "2/2" in result["table"]
    for name in FILES:
        assert (tmp_path / "ev" / name).is_file(), name


def _shipped_reference_available() -> bool:
    try:
        from simrl.physics.turbulence.reference import load_reference

        load_reference("fhit_paper", n_les=16)
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _shipped_reference_available(), reason="shipped turbulence reference (fhit_paper) not available")
@pytest.mark.parametrize("agent", ["ppo", "conv_closure"])
def test_train_agent_script_end_to_end(tmp_path, agent):
    args = [
        f"agent={agent}", "env=turbulence", "total_timesteps=256", "n_envs=2", "progress_bar=false", "device=cpu",
        "env.kwargs.n_les=16", "env.kwargs.episode_steps=40", "env.evaluation_kwargs.episode_steps=80",
        "env.evaluation_kwargs.transient_steps=20", "env.evaluation_kwargs.record_every=20",
        "evaluation.n_seeds=2", "checkpoint_every=128", "+env.evaluation_kwargs.tuning_factors=[0.5,2.0]",
        f"env.agent_kwargs.{agent}.n_steps=4", f"env.agent_kwargs.{agent}.batch_size=8",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_agent.py"), f"hydra.run.dir={tmp_path}", *args],
                            capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "final_model.zip").exists()
    for name in FILES:
        assert (tmp_path / "evaluation" / name).is_file(), name
    episodes = read_episodes(tmp_path)
    assert set(episodes["policy"]) == {agent, *BASELINE_LABELS.values()} and len(episodes) == (len(BASELINE_LABELS) + 1) * 2
    summary = json.loads((tmp_path / "evaluation" / "summary.json").read_text())
    assert set(summary["tuning"]) == {"smagorinsky", "leith"} and summary["run"]["env"] == "simrl/Turbulence2D-v1"
    assert summary["cost"]["dns_grid"] == 1024 and 0 < summary["cost"]["ratio"][agent] < 1
    assert "dynamic Leith" in result.stdout


def test_dashboard_page_shows_spectra_pdfs_fields_and_the_table(tmp_path, monkeypatch):
    import yaml
    from streamlit.testing.v1 import AppTest

    import simrl.dashboard.turbulence_page  # noqa: F401  (registers the page; env_pages imports it in the app)

    run = tmp_path / "outputs" / "turbulence" / "tiny" / "run0"
    cfg = _cfg(baselines=("none", "leith"))
    evaluate(ConstantCoefficient(STATIC_COEFFICIENTS["leith"]), cfg, run, "tiny", run / "evaluation")
    plain = json.loads(json.dumps({**cfg, "env": {**cfg["env"], "kwargs": {k: v for k, v in cfg["env"]["kwargs"].items()
                                                                          if k != "reference"}}}))  # fmt: skip
    plain.update(total_timesteps=1, n_envs=1)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(plain))
    (run / "run_info.json").write_text(json.dumps({"status": "complete"}))
    (run / "final_model.zip").write_bytes(b"not used by the page")
    monkeypatch.setenv("SIMRL_RUNS", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "scripts" / "dashboard.py"), default_timeout=120)
    at.run()
    at.sidebar.radio(key="page").set_value("Turbulence").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 3  # spectra, PDFs, fields
    table = at.dataframe[0].value
    assert set(table["policy"]) == {"tiny", "no closure", "Leith"}
    assert {"spectrum_error", "pdf_tail_l1", "mean_enstrophy"} <= set(table.columns)
    assert {m.label: m.value for m in at.metric}["held-out fields"] == "2"


def test_a_model_trained_on_held_out_fields_is_refused(tmp_path):
    """The held-out evaluation refuses a training pool that includes its fields (None = every snapshot)."""
    model = ConstantCoefficient(STATIC_COEFFICIENTS["leith"])
    for pool in (None, list(range(12))):
        with pytest.raises(ValueError, match="held-out"):
            evaluate(model, _cfg(baselines=("leith",), snapshot_indices=pool), tmp_path, "leaky", tmp_path / "ev")


def test_tuned_static_baselines_search_the_training_fields_and_pair_with_the_policy(tmp_path, monkeypatch):
    cfg = _cfg(baselines=("leith", "tuned_leith", "tuned_smagorinsky"), steps=100)
    cfg["env"]["evaluation_kwargs"]["tuning_factors"] = [0.25, 1.0, 4.0]
    run = tmp_path / "run"
    run.mkdir()
    first = evaluate(None, cfg, run, None, run / "ev0")
    summary = json.loads((run / "ev0" / "summary.json").read_text())
    tuning = summary["tuning"]["leith"]
    # the search ran on the training pool only (the synthetic reference holds out 7.. of 12)
    assert tuning["training_indices"] == list(range(7))
    assert not set(tuning["training_indices"]) & set(summary["held_out_snapshots"])
    grid = {round(g["coefficient"] / STATIC_COEFFICIENTS["leith"], 6): g["score"] for g in tuning["grid"]}
    # three grid points, extended past the edge where the best lies, then refined by 2^(+-1/2)
    assert len(grid) >= 5 and {0.25, 1.0, 4.0} <= set(grid)
    best = min(grid, key=grid.get)
    # an interior minimum, or the grid was extended as far as allowed (here: this viscous synthetic LES needs
    # no closure, so the best coefficient runs towards 0)
    assert min(grid) < best < max(grid) or len(grid) == 3 + MAX_TUNING_EXTENSIONS + 2
    assert tuning["score"] == min(grid.values()) and np.isfinite(tuning["score"])
    assert tuning["coefficient"] == pytest.approx(tuning["factor"] * STATIC_COEFFICIENTS["leith"])
    assert (run / "closure_tuning.json").is_file() and (tmp_path / "closure_tuning_cache.json").is_file()
    # a policy that plays the tuned coefficient everywhere IS the tuned baseline: paired differences 0
    model = ConstantCoefficient(tuning["coefficient"])
    cfg["env"]["kwargs"]["coefficient_range"] = [0.0, 10 * tuning["coefficient"]]
    result = evaluate(model, cfg, run, "constant", run / "ev1")
    episodes = read_episodes(run / "ev1").set_index(["policy", "seed"])
    np.testing.assert_allclose(episodes.loc["constant", "spectrum_error"].to_numpy(),
                               episodes.loc["tuned Leith", "spectrum_error"].to_numpy(), rtol=1e-6)  # fmt: skip
    paired = json.loads((run / "ev1" / "summary.json").read_text())["paired"]
    spec = paired["spectrum_error"]
    # the reference is the best classical closure on the held-out fields; the tuned one is at most
    # as bad as the literature Leith on the training fields, and the policy ties its own twin
    assert spec["reference"] in {"Leith", "tuned Leith", "tuned Smagorinsky"}
    assert spec[spec["reference"]] == {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 2}
    if spec["reference"] == "tuned Leith":
        assert abs(spec["constant"]["mean"]) < 1e-6
    assert result["comparison"]["beats_best_classical_spectrum_error"] is False  # a tie is not a win
    assert "Paired per-field difference" in result["table"] and "tuned Leith" in result["table"]
    assert first["summary"]["tuned Leith"]["episodes"] == 2
    # the cached search is reused (same key) and not rerun; a sibling run finds it in the shared cache
    assert json.loads((run / "closure_tuning.json").read_text())["leith"]["result"] == tuning
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    import simrl.evaluation.turbulence as evaluation_module

    def no_search(*args, **kwargs):
        raise AssertionError("the search ran again")

    monkeypatch.setattr(evaluation_module, "tune_static_coefficient", no_search)
    again = evaluate(None, cfg, sibling, None, sibling / "ev")
    assert json.loads((sibling / "ev" / "summary.json").read_text())["tuning"]["leith"] == tuning
    assert again["summary"]["tuned Leith"]["episodes"] == 2


def test_paired_differences_pick_the_best_stable_classical_closure():
    from simrl.evaluation.turbulence import paired_differences

    rows = lambda values: [{"spectrum_error": v} for v in values]  # noqa: E731
    by_policy = {"rl": rows([1.0, 2.0, 3.0, 4.0]), "a": rows([2.0, 3.0, 4.0, 5.0]), "b": rows([0.5, 0.5, 0.5, 0.5])}
    out = paired_differences(by_policy, ["a", "b"], metrics=("spectrum_error",), blowup_fraction={"b": 0.25})
    entry = out["spectrum_error"]
    assert entry["reference"] == "a"  # b is lower but blew up once: not eligible
    assert entry["rl"]["mean"] == pytest.approx(-1.0) and entry["rl"]["low"] == entry["rl"]["high"] == pytest.approx(-1.0)
    by_policy["rl"] = rows([1.0, 3.5, 2.0, 4.5])
    entry = paired_differences(by_policy, ["a"], metrics=("spectrum_error",))["spectrum_error"]
    d = entry["rl"]
    assert d["mean"] == pytest.approx(-0.75) and d["low"] < d["mean"] < d["high"] and d["n"] == 4
