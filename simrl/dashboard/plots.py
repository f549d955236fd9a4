"""Plotly figures of the dashboard (pure functions of DataFrames / arrays; no Streamlit)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def learning_curve_figure(curves: pd.DataFrame, group_by: Sequence[str] = ("env_id", "agent"), y_label: str = "mean episode return",
                          interval_label: str = "") -> go.Figure:  # fmt: skip
    """One line (mean across seeds) and a shaded band (the interval) per group."""
    fig = go.Figure()
    group_by = list(group_by)
    for i, (key, g) in enumerate(curves.groupby(group_by, sort=True, dropna=False) if not curves.empty else []):
        key = key if isinstance(key, tuple) else (key,)
        name = " / ".join(str(k) for k in key)
        color = _PALETTE[i % len(_PALETTE)]
        g = g.sort_values("timestep")
        fig.add_trace(go.Scatter(
            x=np.concatenate([g["timestep"], g["timestep"][::-1]]), y=np.concatenate([g["high"], g["low"][::-1]]),
            fill="toself", fillcolor=_rgba(color, 0.18), line=dict(width=0), hoverinfo="skip", showlegend=False,
            legendgroup=name, name=f"{name} interval"))  # fmt: skip
        fig.add_trace(go.Scatter(
            x=g["timestep"], y=g["mean"], mode="lines+markers", name=name, legendgroup=name, line=dict(color=color),
            customdata=np.stack([g["low"], g["high"], g["n_seeds"]], axis=1),
            hovertemplate=f"<b>{name}</b><br>step %{{x}}<br>mean %{{y:.4g}}<br>interval [%{{customdata[0]:.4g}}, "
                          "%{customdata[1]:.4g}]<br>seeds %{customdata[2]}<extra></extra>"))  # fmt: skip
    title = "EvalCallback return across training seeds" + (f" ({interval_label})" if interval_label else "")
    fig.update_layout(title=title, xaxis_title="environment steps", yaxis_title=y_label, hovermode="closest",
                      margin=dict(l=10, r=10, t=50, b=10), legend_title_text=" / ".join(group_by))  # fmt: skip
    return fig


def front_figure(points: pd.DataFrame, cost_label: str, error_label: str, statistic: str, title: str = "") -> go.Figure:
    """Accuracy-cost front: one marker per policy with CI error bars, log axes, names on hover.

    Baselines are circles joined in order of cost (the fixed-parameter front); trained
    policies are stars.
    """
    fig = go.Figure()
    if points.empty:
        fig.update_layout(title=title or "no evaluated policies")
        return fig
    stat = statistic.upper() if statistic == "iqm" else statistic
    for is_baseline, g in points.groupby("is_baseline", sort=True):
        g = g.sort_values("cost")
        err_x = dict(type="data", symmetric=False, array=(g["cost_high"] - g["cost"]).clip(lower=0),
                     arrayminus=(g["cost"] - g["cost_low"]).clip(lower=0), thickness=1, width=3)  # fmt: skip
        err_y = dict(type="data", symmetric=False, array=(g["error_high"] - g["error"]).clip(lower=0),
                     arrayminus=(g["error"] - g["error_low"]).clip(lower=0), thickness=1, width=3)  # fmt: skip
        fig.add_trace(go.Scatter(
            x=g["cost"], y=g["error"], error_x=err_x, error_y=err_y, text=g["policy"],
            mode="lines+markers" if is_baseline else "markers+text",
            textposition="top center",
            name="baselines" if is_baseline else "trained policies",
            marker=dict(symbol="circle" if is_baseline else "star", size=9 if is_baseline else 18,
                        color="#1f77b4" if is_baseline else "#d62728"),
            line=dict(color="rgba(31,119,180,0.4)", dash="dot") if is_baseline else None,
            customdata=np.stack([g["cost_low"], g["cost_high"], g["error_low"], g["error_high"], g["n_runs"], g["n_episodes"]], axis=1),
            hovertemplate=(f"<b>%{{text}}</b><br>{stat} {cost_label}: %{{x:.4g}} [%{{customdata[0]:.4g}}, %{{customdata[1]:.4g}}]"
                           f"<br>{stat} {error_label}: %{{y:.3e}} [%{{customdata[2]:.2e}}, %{{customdata[3]:.2e}}]"
                           "<br>runs %{customdata[4]}, episodes %{customdata[5]}<extra></extra>")))  # fmt: skip
    fig.update_xaxes(type="log", title=f"{stat} {cost_label}")
    fig.update_yaxes(type="log", title=f"{stat} final {error_label}", exponentformat="power")
    fig.update_layout(title=title or "Accuracy-cost front (lower left is better)", hovermode="closest",
                      margin=dict(l=10, r=10, t=50, b=10))  # fmt: skip
    return fig


def episodes_scatter_figure(episodes: pd.DataFrame, cost_key: str, error_key: str, cost_label: str, error_label: str,
                            floor: float = 1e-17) -> go.Figure:  # fmt: skip
    """Every held-out episode: final error against cost, one colour per policy, log axes."""
    fig = go.Figure()
    if episodes.empty or cost_key not in episodes or error_key not in episodes:
        fig.update_layout(title="no evaluation episodes")
        return fig
    policies = list(dict.fromkeys(episodes.sort_values("is_baseline", kind="stable")["policy"]))
    for i, policy in enumerate(policies):
        g = episodes[episodes["policy"] == policy]
        trained = not bool(g["is_baseline"].iloc[0])
        hover = g["run"].astype(str) if "run" in g else pd.Series([""] * len(g))
        fig.add_trace(go.Scatter(
            x=pd.to_numeric(g[cost_key], errors="coerce"),
            y=np.maximum(pd.to_numeric(g[error_key], errors="coerce").astype(float), floor), mode="markers", name=str(policy),
            marker=dict(symbol="star" if trained else "circle", size=11 if trained else 6, opacity=0.75,
                        color=_PALETTE[i % len(_PALETTE)]),
            text=[f"{policy}<br>seed {s}<br>{r}" for s, r in zip(g["seed"], hover)],
            hovertemplate=f"%{{text}}<br>{cost_label} %{{x:.4g}}<br>{error_label} %{{y:.3e}}<extra></extra>"))  # fmt: skip
    fig.update_xaxes(type="log", title=cost_label)
    fig.update_yaxes(type="log", title=f"final {error_label}", exponentformat="power")
    fig.update_layout(title="Held-out episodes: final error against cost", margin=dict(l=10, r=10, t=50, b=10))
    return fig


def orbit_figure(positions: np.ndarray, masses: Sequence[float] | None = None, upto: int | None = None,
                 title: str = "Orbits (x-y)") -> go.Figure:  # fmt: skip
    """The bodies' x-y tracks, ``positions`` of shape (steps + 1, n_bodies, 3) in au."""
    fig = go.Figure()
    track = np.asarray(positions)[: None if upto is None else upto + 1]
    for k in range(track.shape[1]):
        color = _TAB10[k % len(_TAB10)]  # the colours of the environment's matplotlib render
        fig.add_trace(go.Scatter(x=track[:, k, 0], y=track[:, k, 1], mode="lines", name=f"body {k}",
                                 line=dict(color=color, width=1.5), legendgroup=str(k),
                                 hovertemplate=f"body {k}<br>x %{{x:.3g}} au<br>y %{{y:.3g}} au<extra></extra>"))  # fmt: skip
        size = 8 if masses is None else 6 + 6 * float(masses[k]) / float(np.max(masses))
        fig.add_trace(go.Scatter(x=track[-1:, k, 0], y=track[-1:, k, 1], mode="markers", showlegend=False,
                                 marker=dict(color=color, size=size), legendgroup=str(k), hoverinfo="skip"))  # fmt: skip
    fig.update_xaxes(title="x [au]")
    fig.update_yaxes(title="y [au]", scaleanchor="x", scaleratio=1)
    fig.update_layout(title=title, margin=dict(l=10, r=10, t=50, b=10), height=450)
    return fig


def quantities_figure(steps: pd.DataFrame, keys: Sequence[str], current: int | None = None, log_keys: Sequence[str] = ()) -> go.Figure:
    """Per-step quantities of a rollout, one stacked panel per key; a marker at ``current``."""
    from plotly.subplots import make_subplots

    keys = [k for k in keys if k in steps]
    fig = make_subplots(rows=max(len(keys), 1), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    for i, k in enumerate(keys, start=1):
        y = np.maximum(steps[k].to_numpy(dtype=float), 1e-17) if k in log_keys else steps[k]
        fig.add_trace(go.Scatter(x=steps["step"], y=y, mode="lines", name=k, showlegend=False,
                                 line=dict(color=_PALETTE[(i - 1) % len(_PALETTE)])), row=i, col=1)  # fmt: skip
        fig.update_yaxes(title_text=k, row=i, col=1, type="log" if k in log_keys else "linear", title_font=dict(size=10))
        if current is not None and current > 0:
            fig.add_vline(x=current, line=dict(color="grey", dash="dash"), row=i, col=1)
    fig.update_xaxes(title_text="step", row=max(len(keys), 1), col=1)
    fig.update_layout(height=140 * max(len(keys), 1) + 60, margin=dict(l=10, r=10, t=20, b=10))
    return fig
