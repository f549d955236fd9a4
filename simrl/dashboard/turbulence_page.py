"""Dashboard pages of ``simrl/Turbulence2D-v0`` and ``-v1``: the a-posteriori evaluation of one run.

Reads what :func:`simrl.evaluation.turbulence.evaluate` wrote into the run's evaluation folder:
``spectra.npz`` (time-mean spectra, PDFs, final fields, energy/enstrophy series of every policy and
the DNS targets) and ``summary.json`` (mean and 95% interval of every metric per policy). Shows the
spectra against the DNS (log-log), the vorticity PDFs against the filtered DNS (log scale), the
final fields side by side and the metrics table. Registered by importing this module (``env_pages``
does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from simrl.dashboard.components import PageContext, guard, run_selector
from simrl.dashboard.env_pages import register_env_page

ENV_ID = "simrl/Turbulence2D-v0"
ENV_ID_V1 = "simrl/Turbulence2D-v1"
_COLORS = ["#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def evaluation_folders(run_path: str | Path) -> list[Path]:
    """The run's evaluation folders holding ``spectra.npz`` (``evaluation`` first, then ``evaluation_*``)."""
    run = Path(run_path)
    found = [p for p in [run / "evaluation", *sorted(run.glob("evaluation_*"))] if (p / "spectra.npz").is_file()]
    return found


@st.cache_data(show_spinner=False, max_entries=32)
def _load(folder: str, mtime_ns: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    del mtime_ns  # cache key only
    from simrl.evaluation.turbulence import load_arrays

    arrays = load_arrays(folder)
    summary_path = Path(folder) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return arrays, summary


def metrics_frame(summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per policy: mean and 95% half-interval of each metric, blow-up fraction."""
    from simrl.evaluation.turbulence import METRICS

    rows = []
    for policy, entry in (summary.get("policies") or {}).items():
        row: dict[str, Any] = {"policy": policy, "episodes": entry.get("episodes"), "blow-ups": entry.get("blowup_fraction")}
        for key in METRICS:
            if key in entry and key != "blowup":
                row[key] = entry[key]["mean"]
                row[f"{key} ±95%"] = entry[key]["ci95"]
        rows.append(row)
    return pd.DataFrame(rows)


def spectra_figure(arrays: Mapping[str, np.ndarray]) -> go.Figure:
    """Time-mean enstrophy spectra of every policy and the filtered DNS, log-log."""
    k = arrays["k"]
    sel = (k >= 1) & (k <= int(arrays["k_cut"]))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=k[sel], y=arrays["dns_spectrum"][sel], name="DNS (filtered)", line=dict(color="black", width=4)))
    for i, policy in enumerate(arrays["policies"]):
        y = np.asarray(arrays["mean_spectra"][i], dtype=float)[sel]
        fig.add_trace(go.Scatter(x=k[sel], y=np.where(y > 0, y, np.nan), name=str(policy),
                                 line=dict(color=_COLORS[i % len(_COLORS)], width=3 if i == 0 else 1.5)))  # fmt: skip
    fig.update_xaxes(type="log", title="wavenumber k")
    fig.update_yaxes(type="log", title="enstrophy spectrum Z(k)")
    fig.update_layout(title="Time-mean enstrophy spectra of the long LES runs", height=450)
    return fig


def pdf_figure(arrays: Mapping[str, np.ndarray]) -> go.Figure:
    """PDFs of omega / sigma_DNS, log y-axis, with the filtered DNS."""
    edges = arrays["pdf_edges"]
    x = 0.5 * (edges[1:] + edges[:-1])
    fig = go.Figure()
    ref = arrays["fdns_pdf"]
    fig.add_trace(go.Scatter(x=x, y=np.where(ref > 0, ref, np.nan), name="filtered DNS", line=dict(color="black", width=4)))
    for i, policy in enumerate(arrays["policies"]):
        p = np.asarray(arrays["pdfs"][i], dtype=float)
        fig.add_trace(go.Scatter(x=x, y=np.where(p > 0, p, np.nan), name=str(policy),
                                 line=dict(color=_COLORS[i % len(_COLORS)], width=3 if i == 0 else 1.5)))  # fmt: skip
    fig.update_xaxes(title="ω / σ_ω,DNS")
    fig.update_yaxes(type="log", title="PDF")
    fig.update_layout(title="Vorticity PDFs (all held-out fields and snapshots pooled)", height=450)
    return fig


def fields_figure(arrays: Mapping[str, np.ndarray]) -> go.Figure:
    """The initial field and every policy's final vorticity on the first held-out field, side by side."""
    policies = [str(p) for p in arrays["policies"]]
    panels = [("initial (filtered DNS)", arrays["initial_field"])] + list(zip(policies, arrays["final_fields"]))
    cols = min(len(panels), 4)
    rows = int(np.ceil(len(panels) / cols))
    titles = [t if j == 0 else f"{t}{' (blew up)' if arrays['final_blowup'][j - 1] else ''}" for j, (t, _) in enumerate(panels)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08)
    vmax = 3.0 * float(arrays["sigma_omega"])
    for j, (_, f) in enumerate(panels):
        fig.add_trace(go.Heatmap(z=np.asarray(f).T, zmin=-vmax, zmax=vmax, colorscale="RdBu_r", showscale=j == 0,
                                 colorbar=dict(title="ω")), row=j // cols + 1, col=j % cols + 1)  # fmt: skip
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, scaleanchor="x")
    fig.update_layout(height=300 * rows + 60, title="Final vorticity of the first held-out field")
    return fig


def paired_frame(summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per policy and paired metric: mean difference to the best classical closure and its 95 % interval."""
    rows = []
    for metric, entry in (summary.get("paired") or {}).items():
        if not isinstance(entry, Mapping):
            continue
        for policy, d in entry.items():
            if policy != "reference" and isinstance(d, Mapping):
                rows.append({"metric": metric, "policy": policy, "- best classical": entry.get("reference"),
                             "difference": d.get("mean"), "low": d.get("low"), "high": d.get("high")})  # fmt: skip
    return pd.DataFrame(rows)


@register_env_page(ENV_ID, "Turbulence")
def turbulence_page(ctx: PageContext) -> None:
    _page(ctx, ENV_ID, "Turbulence", "Turbulence (-v0, viscous CPU reference)")


@register_env_page(ENV_ID_V1, "Turbulence Re 20k")
def turbulence_v1_page(ctx: PageContext) -> None:
    _page(ctx, ENV_ID_V1, "Turbulence Re 20k", "Turbulence at the paper's Reynolds number (-v1)")


def _page(ctx: PageContext, env_id: str, title: str, header: str) -> None:
    st.header(f"{header}: a-posteriori LES closures against the DNS")
    st.caption(
        "Long LES runs from held-out filtered-DNS fields for the trained closure and the classical ones "
        "(no closure, static and dynamic Smagorinsky and Leith): enstrophy spectra, vorticity PDFs and fields."
    )
    usable = ctx.usable_runs_of_env(env_id, title)
    if usable is None:
        return
    evaluated = usable[[bool(evaluation_folders(p)) for p in usable["path"]]]
    if evaluated.empty:
        st.info("None of these runs has a turbulence evaluation (spectra.npz) yet.")
        return
    row = run_selector(evaluated, key=f"turbulence_run_{env_id}")
    if row is None:
        return
    folders = evaluation_folders(row["path"])
    folder = st.selectbox("evaluation", folders, format_func=lambda p: p.name, key=f"turbulence_eval_{env_id}")
    try:
        arrays, summary = _load(str(folder), (Path(folder) / "spectra.npz").stat().st_mtime_ns)
        if not isinstance(summary, dict):
            raise ValueError(f"summary.json holds a {type(summary).__name__}, expected an object")
    except Exception as exc:  # noqa: BLE001 - a damaged evaluation folder is reported, the page stays up
        st.warning(f"Cannot read the evaluation in {folder}: {type(exc).__name__}: {exc}")
        return

    with guard("the metrics table"):
        table = metrics_frame(summary)
        comparison = summary.get("comparison") or {}
        cols = st.columns(3)
        cols[0].metric("held-out fields", len(summary.get("seeds", [])))
        steps = (summary.get("settings") or {}).get("episode_steps")
        cols[1].metric("solver steps per run", f"{steps:,}" if steps else "?")
        if comparison:
            cols[2].metric("target met", "yes" if comparison.get("target_met") else "no",
                           help="stable, and better than the best classical closure on spectrum error and PDF-tail "
                                "error with paired 95 % intervals below zero")  # fmt: skip
        st.dataframe(table, hide_index=True)
    with guard("the paired differences"):
        paired = paired_frame(summary)
        if not paired.empty:
            st.subheader("Paired per-field difference to the best classical closure (negative = better)")
            st.dataframe(paired, hide_index=True)
    with guard("the spectra"):
        st.plotly_chart(spectra_figure(arrays), key=f"turbulence_spectra_{env_id}")
    with guard("the PDFs"):
        st.plotly_chart(pdf_figure(arrays), key=f"turbulence_pdfs_{env_id}")
    with guard("the fields"):
        st.plotly_chart(fields_figure(arrays), key=f"turbulence_fields_{env_id}")
