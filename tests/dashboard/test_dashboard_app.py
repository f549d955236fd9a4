"""The Streamlit app without a browser (streamlit.testing.v1.AppTest): every page renders, shows the runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from simrl.dashboard.app import pages

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "scripts" / "dashboard.py")
TIMEOUT = 120  # the first rollout imports torch and loads the model


def _app(monkeypatch, root: Path) -> AppTest:
    monkeypatch.setenv("SIMRL_RUNS", str(root))
    at = AppTest.from_file(SCRIPT, default_timeout=TIMEOUT)
    at.run()
    _no_errors(at)
    return at


def _no_errors(at: AppTest, allowed_errors: int = 0) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) <= allowed_errors, [e.value for e in at.error]


def _goto(at: AppTest, page: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(page).run()
    _no_errors(at)
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _text(at: AppTest) -> str:
    parts = [str(e.value) for kind in ("markdown", "caption", "info", "warning", "header", "subheader")
             for e in at.get(kind)]  # fmt: skip
    return "\n".join(parts)


def test_pages_are_listed_with_the_env_pages_from_the_registry():
    assert list(pages()) == ["Runs", "Learning curves", "Baselines", "ThreeBody", "Turbulence", "Turbulence Re 20k",
                            "PredatorPrey", "MetabolicPathway", "Rollout"]  # fmt: skip


def test_runs_overview_lists_every_run_and_the_broken_ones_with_their_reason(monkeypatch, dashboard_runs):
    at = _app(monkeypatch, dashboard_runs.root)
    assert at.header[0].value == "Runs overview"
    assert _metrics(at) == {"runs": "3", "complete": "2", "incomplete": "1", "broken": "0"}
    table = at.dataframe[0].value
    assert set(table["run"]) == {"outputs/threebody/ppo/seed0", "outputs/threebody/ppo/killed", "multirun/sweep/0_threebody_ppo"}
    killed = table[table["run"] == "outputs/threebody/ppo/killed"].iloc[0]
    assert killed["status"] == "incomplete" and "final_model.zip" in killed["problem"]
    # filters: status
    at.sidebar.multiselect(key="filter_status").select("incomplete").run()
    _no_errors(at)
    assert set(at.dataframe[0].value["run"]) == {"outputs/threebody/ppo/killed"}
    # the details of the killed run say why
    assert "incomplete" in "\n".join(w.value for w in at.warning)


@pytest.mark.parametrize("page", ["Learning curves", "Baselines", "ThreeBody"])
def test_each_page_renders_the_runs(monkeypatch, dashboard_runs, page):
    at = _goto(_app(monkeypatch, dashboard_runs.root), page)
    charts = at.get("plotly_chart")
    assert charts, f"no chart on {page}"
    if page == "Learning curves":
        assert "ppo" in at.dataframe[0].value["agent"].tolist()
        at.selectbox(key="lc_group").set_value("run").run()
        _no_errors(at)
        at.selectbox(key="lc_interval").set_value("minmax").run()
        _no_errors(at)
    elif page == "Baselines":
        table = at.dataframe[0].value
        assert "ppo" in set(table["policy"]) and "fixed 0.001" in set(table["policy"])
        assert {"total_force_evaluations", "energy_error"} <= set(table.columns)
        at.selectbox(key="bl_stat").set_value("iqm").run()
        _no_errors(at)
        at.selectbox(key="bl_ci").set_value("stratified").run()
        _no_errors(at)
        assert len(at.get("plotly_chart")) == 1  # the accuracy-cost front
    elif page == "ThreeBody":
        assert at.header[0].value.startswith("ThreeBody")
        assert len(charts) == 2  # the front and the orbits
        assert _metrics(at)["policies"] == "12"
        assert "final |dE/E0|" in _metrics(at)
        at.toggle(key="threebody_episodes").set_value(True).run()
        _no_errors(at)
        at.selectbox(key="threebody_orbit_policy").set_value("fixed 0.01").run()
        _no_errors(at)


def test_rollout_plays_an_episode_and_steps_through_its_frames(monkeypatch, dashboard_runs):
    at = _goto(_app(monkeypatch, dashboard_runs.root), "Rollout")
    assert not at.get("image")
    at.button(key="ro_play").click().run()
    _no_errors(at)
    assert at.get("image"), "no frame shown"
    last = _metrics(at)
    assert {"energy error", "total force evaluations", "parameter"} <= set(last)
    at.select_slider(key="ro_step").set_value(5).run()
    _no_errors(at)
    assert _metrics(at)["total force evaluations"] != last["total force evaluations"]
    assert "seed 1000000" in _text(at)


@pytest.mark.parametrize("kind", ["empty", "only_broken", "missing"])
def test_every_page_renders_without_usable_runs(monkeypatch, tmp_path, dashboard_runs, kind):
    import shutil

    root = tmp_path / "root"
    if kind != "missing":
        root.mkdir()
    if kind == "only_broken":
        shutil.copytree(dashboard_runs.killed, root / "killed")
        broken = shutil.copytree(dashboard_runs.single, root / "garbled")
        (broken / "evaluation" / "episodes.parquet").write_bytes(b"not parquet")
    at = _app(monkeypatch, root)
    for page in pages():
        _goto(at, page)
        if kind == "only_broken" and page in ("Runs",):
            assert _metrics(at)["broken"] == "1" and _metrics(at)["incomplete"] == "1"


def _malformed_copies(source: Path, root: Path) -> dict[str, str]:
    """Copies of ``source`` under ``root``, each with one malformed file (issue "Reliability"); name -> reason."""
    import json
    import shutil

    import numpy as np

    def summary(run):
        path = run / "evaluation" / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "comparison": [1, 2]}))

    def config(text):
        def edit(run):
            path = run / ".hydra" / "config.yaml"
            path.write_text("\n".join(text if line.startswith(text.split(":")[0] + ":") else line
                                       for line in path.read_text().splitlines()) + "\n")  # fmt: skip
        return edit

    def kwargs(run):
        path = run / ".hydra" / "config.yaml"
        path.write_text(path.read_text().replace("  kwargs:\n    integrator:", "  kwargs: [1, 2]\n  old_kwargs:\n    integrator:", 1))

    def npz(**arrays):
        def edit(run):
            path = run / "eval_callback" / "evaluations.npz"
            with np.load(path) as data:
                current = {k: data[k] for k in data.files}
            np.savez(path, **{**current, **arrays})
        return edit

    damages = {
        "comparison_list": (summary, "summary.json: comparison is a list"),
        "seed_nan": (config("seed: .nan"), "config.yaml: seed is nan"),
        "seed_inf": (config("seed: .inf"), "config.yaml: seed is inf"),
        "kwargs_list": (kwargs, "config.yaml: env.kwargs is a list"),
        "results_0d": (npz(results=np.array(1.0)), "'results' is an array of shape ()"),
        "results_longer": (npz(results=np.zeros((5, 1))), "'results' is an array of shape (5, 1)"),
        "no_evaluations": (npz(timesteps=np.zeros(0, np.int64), results=np.zeros((0, 1)), ep_lengths=np.zeros((0, 1))),
                           "'timesteps' is empty"),
    }  # fmt: skip
    for name, (edit, _) in damages.items():
        edit(shutil.copytree(source, root / name))
    return {name: reason for name, (_, reason) in damages.items()}


def test_malformed_run_folders_are_broken_rows_and_every_page_still_renders(monkeypatch, tmp_path, dashboard_runs):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(dashboard_runs.single, root / "good")
    reasons = _malformed_copies(dashboard_runs.single, root)
    at = _app(monkeypatch, root)  # raised AttributeError / ValueError / IndexError before the fix
    assert _metrics(at) == {"runs": str(1 + len(reasons)), "complete": "1", "incomplete": "0", "broken": str(len(reasons))}
    table = at.dataframe[0].value.set_index("run")
    assert table.loc["good", "status"] == "complete"
    for name, reason in reasons.items():
        assert table.loc[name, "status"] == "broken" and reason in table.loc[name, "problem"], (name, table.loc[name, "problem"])
    for page in pages():
        _goto(at, page)
    _goto(at, "Learning curves")
    assert at.get("plotly_chart")  # the good run's curve
    _goto(at, "Baselines")
    assert "ppo" in set(at.dataframe[0].value["policy"])


def test_the_clis_script_is_the_same_app(monkeypatch, dashboard_runs):
    """``simrl-dashboard`` runs simrl/dashboard/app.py itself (not scripts/dashboard.py)."""
    monkeypatch.setenv("SIMRL_RUNS", str(dashboard_runs.root))
    at = AppTest.from_file(str(ROOT / "simrl" / "dashboard" / "app.py"), default_timeout=TIMEOUT).run()
    _no_errors(at)
    assert at.header[0].value == "Runs overview" and _metrics(at)["runs"] == "3"


def test_cli_main_replaces_itself_with_streamlit_run(monkeypatch, tmp_path):
    from simrl.dashboard import cli

    calls = []
    monkeypatch.setattr(cli.os, "name", "posix")
    monkeypatch.setattr(cli.os, "execv", lambda path, args: calls.append((path, args)))
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: 0)
    cli.main(["--runs", str(tmp_path)])
    (path, args), = calls
    assert args[:5] == [path, "-m", "streamlit", "run", str(cli.APP)] and args[-2:] == ["--runs", str(tmp_path.resolve())]
