"""Dashboard pages of the digital-twin environments (simrl/PredatorPrey-v0, simrl/MetabolicPathway-v0).

Each page reads what :mod:`simrl.evaluation.digital_twin` wrote into a run's ``evaluation/``
folder: ``summary.json`` (objective mean and 95 % interval per method, the constant-rate grid
search) and ``trajectories.npz`` (mean and 10-90 % band of every population per step, the
actions, the target, one end-of-episode frame per method). It shows the trajectories against
the target, the objective table and the grid snapshots; a run without these files gets a note.

Registered when imported (``simrl/dashboard/env_pages.py`` imports this module).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from simrl.dashboard.components import PageContext, guard, run_selector
from simrl.dashboard.env_pages import register_env_page

_COLOURS = ["#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]


def _band_colour(hex_colour: str, alpha: float = 0.2) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


class EvaluationFilesError(ValueError):
    """A digital-twin evaluation folder whose files cannot be shown (the message says which file and why)."""


def read_evaluation(folder: str | Path) -> tuple[dict, dict]:
    """(trajectories, summary) of one evaluation folder, checked; :class:`EvaluationFilesError` otherwise.

    ``trajectories.npz``: ``ticks`` 1-D numbers, one ``state_keys`` name per ``target`` entry,
    and per method ``states_mean``/``states_low``/``states_high`` of shape (steps, state keys)
    with steps <= ticks. ``summary.json``: an object whose ``methods`` is a list of objects.
    """
    from simrl.evaluation.digital_twin import load_trajectories

    folder = Path(folder)
    try:
        traj = load_trajectories(folder / "trajectories.npz")
    except Exception as exc:  # noqa: BLE001 -- numpy's / zipfile's errors and missing arrays, with the file
        raise EvaluationFilesError(f"trajectories.npz unreadable ({type(exc).__name__}: {exc})") from exc
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError) as exc:
        raise EvaluationFilesError(f"summary.json unreadable ({type(exc).__name__}: {exc})") from exc
    _check_trajectories(traj)
    if not isinstance(summary, dict):
        raise EvaluationFilesError(f"summary.json is a {type(summary).__name__}, not a JSON object")
    methods = summary.get("methods", [])
    if not isinstance(methods, list) or not all(isinstance(m, dict) for m in methods):
        raise EvaluationFilesError("summary.json: 'methods' is not a list of objects")
    return traj, summary


def _check_trajectories(traj: dict) -> None:
    ticks, keys, target = np.asarray(traj["ticks"]), traj["state_keys"], np.asarray(traj["target"])
    if ticks.ndim != 1 or ticks.dtype.kind not in "iuf":
        raise EvaluationFilesError(f"trajectories.npz: 'ticks' has shape {ticks.shape} ({ticks.dtype}); expected 1-D numbers")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise EvaluationFilesError("trajectories.npz: 'state_keys' is not a list of names")
    if target.shape != (len(keys),) or target.dtype.kind not in "iuf":
        raise EvaluationFilesError(f"trajectories.npz: 'target' has shape {target.shape}; expected ({len(keys)},) numbers")
    for name, m in traj["methods"].items():
        for part in ("states_mean", "states_low", "states_high"):
            a = np.asarray(m.get(part))
            if a.ndim != 2 or a.shape[1] != len(keys) or a.shape[0] > ticks.size or a.dtype.kind not in "iuf":
                raise EvaluationFilesError(f"trajectories.npz: {name!r} {part} has shape {a.shape}; "
                                           f"expected (steps <= {ticks.size}, {len(keys)}) numbers")  # fmt: skip


@st.cache_data(show_spinner=False)
def _load(path: str, mtime: float) -> tuple[dict, dict]:
    """:func:`read_evaluation`, cached by the files' modification time."""
    return read_evaluation(path)


def trajectories_figure(traj: dict, title: str) -> go.Figure:
    """One panel per recorded population: per method the mean and 10-90 % band, the target dashed."""
    keys = traj["state_keys"]
    fig = make_subplots(rows=len(keys), cols=1, shared_xaxes=True, subplot_titles=keys, vertical_spacing=0.06)
    ticks = np.asarray(traj["ticks"])
    for c, (name, m) in enumerate(traj["methods"].items()):
        colour = _COLOURS[c % len(_COLOURS)]
        n = len(m["states_mean"])
        x = ticks[:n]
        for j in range(len(keys)):
            low, high = m["states_low"][:, j], m["states_high"][:, j]
            fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself",
                                     fillcolor=_band_colour(colour), line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup=name), row=j + 1, col=1)  # fmt: skip
            fig.add_trace(go.Scatter(x=x, y=m["states_mean"][:, j], name=name, legendgroup=name, showlegend=j == 0,
                                     line=dict(color=colour, width=2)), row=j + 1, col=1)  # fmt: skip
    for j, value in enumerate(np.asarray(traj["target"], float)):
        if np.isfinite(value):
            fig.add_hline(y=float(value), line_dash="dash", line_color="black", row=j + 1, col=1)
    fig.update_layout(height=260 * len(keys), title=title, margin=dict(l=40, r=20, t=60, b=40))
    fig.update_xaxes(title_text="tick", row=len(keys), col=1)
    return fig


def objective_table(summary: dict) -> pd.DataFrame:
    """The per-method rows of ``summary.json`` with the columns a reader needs first."""
    frame = pd.DataFrame(summary.get("methods", []))
    first = ["policy", "objective_mean", "objective_low", "objective_high", "diff_mean", "diff_low", "diff_high",
             "extinct_fraction", "effort_mean"]
    return frame[[c for c in first if c in frame] + [c for c in frame if c not in first]]


#: What each environment's objective is, for the page's caption.
OBJECTIVES = {
    "simrl/PredatorPrey-v0": "the mean per-tick cost (distance to the target plus effort)",
    "simrl/MetabolicPathway-v0": "minus the overall yield, T formed / (substrate in the pathway at reset + S fed)",
}


def digital_twin_page(ctx: PageContext, env_id: str, title: str) -> None:
    st.header(f"{title}: controlled agent-based model against its target")
    st.caption("Every method played one episode per held-out seed on the agent-based model itself. "
               f"Objective: {OBJECTIVES.get(env_id, 'the environment episode objective')}, lower is better; "
               "interval: 95 % bootstrap over seeds; difference: paired per seed, to the best constant. "
               "Bands: 10-90 % of the seeds.")  # fmt: skip
    usable = ctx.usable_runs_of_env(env_id, title)
    if usable is None:
        return
    row = run_selector(usable, key=f"dt_run_{env_id}")
    if row is None:
        return
    folder = Path(row["path"]) / "evaluation"
    files = [folder / "trajectories.npz", folder / "summary.json"]
    if not all(f.is_file() for f in files):
        st.info(f"{row['run']} has no digital-twin evaluation yet ({', '.join(f.name for f in files)} missing).")
        return
    try:
        traj, summary = _load(str(folder), max(f.stat().st_mtime for f in files))
    except (EvaluationFilesError, OSError) as exc:
        st.warning(f"{row['run']}: the digital-twin evaluation cannot be shown: {exc}")
        return
    with guard("the trajectories"):
        st.plotly_chart(trajectories_figure(traj, f"{row['run']}: populations on the held-out seeds"),
                        key=f"dt_traj_{env_id}")  # fmt: skip
    with guard("the objective table"):
        st.subheader("Objective per method")
        st.dataframe(objective_table(summary), hide_index=True, column_config={
            "objective_mean": st.column_config.NumberColumn("objective (mean)", format="%.4g"),
            "objective_low": st.column_config.NumberColumn("95% CI low", format="%.4g"),
            "objective_high": st.column_config.NumberColumn("95% CI high", format="%.4g"),
            "diff_mean": st.column_config.NumberColumn("- best constant", format="%+.3g"),
            "diff_low": st.column_config.NumberColumn("low", format="%+.3g"),
            "diff_high": st.column_config.NumberColumn("high", format="%+.3g"),
        })  # fmt: skip
        grid = summary.get("grid_search") or {}
        if isinstance(grid, dict) and grid:
            st.caption(f"Best constant action {grid.get('best_action')} from a grid of {len(grid.get('points', []))} "
                       f"actions on training seeds {grid.get('seeds')} (mean objective "
                       f"{grid.get('best_mean_objective', float('nan')):.4g}).")  # fmt: skip
        schedule = summary.get("schedule_search") or {}
        if isinstance(schedule, dict) and schedule:
            st.caption(f"Best two-phase schedule (action, switch fraction) {schedule.get('best_action')} from "
                       f"{len(schedule.get('points', []))} candidates on the same seeds (mean objective "
                       f"{schedule.get('best_mean_objective', float('nan')):.4g}).")  # fmt: skip
    with guard("the grid snapshots"):
        frames = [(name, m["frame"]) for name, m in traj["methods"].items() if "frame" in m]
        if frames:
            st.subheader("The world at the end of the first held-out episode")
            for col, (name, image) in zip(st.columns(len(frames)), frames):
                col.image(np.asarray(image, np.uint8), caption=name, width="stretch")


@register_env_page("simrl/PredatorPrey-v0", "PredatorPrey")
def predator_prey_page(ctx: PageContext) -> None:
    digital_twin_page(ctx, "simrl/PredatorPrey-v0", "PredatorPrey")


@register_env_page("simrl/MetabolicPathway-v0", "MetabolicPathway")
def metabolic_page(ctx: PageContext) -> None:
    digital_twin_page(ctx, "simrl/MetabolicPathway-v0", "MetabolicPathway")
