"""One dashboard page per environment id: a small registry, ThreeBody first.

A new environment family adds its page with::

    @register_env_page("simrl/Turbulence-v0", "Turbulence")
    def turbulence_page(ctx: PageContext) -> None:
        ...

and the app lists it in the sidebar (the page receives every filtered run; ``ctx.runs_of_env``
keeps those of its environment).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st

from simrl.dashboard import plots
from simrl.dashboard import rollout as rollout_mod
from simrl.dashboard import runs as runs_mod
from simrl.dashboard.components import (
    PageContext,
    cached_comparison,
    cached_orbit,
    episodes_stamp,
    fmt_value,
    guard,
    load_episodes,
    run_selector,
)


@dataclass(frozen=True)
class EnvPage:
    env_id: str
    title: str
    render: Callable[[PageContext], None]


#: env id -> its page.
ENV_PAGES: dict[str, EnvPage] = {}


def register_env_page(env_id: str, title: str) -> Callable[[Callable[[PageContext], None]], Callable[[PageContext], None]]:
    """Decorator: make ``func(ctx)`` the dashboard page of ``env_id`` (titled ``title`` in the sidebar)."""

    def decorate(func: Callable[[PageContext], None]) -> Callable[[PageContext], None]:
        ENV_PAGES[env_id] = EnvPage(env_id, title, func)
        return func

    return decorate


def env_keys(frame: pd.DataFrame, env_id: str) -> dict[str, str | None]:
    """cost/error keys and labels of ``env_id`` from the first of its runs (defaults for older configs)."""
    keys: dict[str, str | None] = dict(runs_mod.ENV_DEFAULTS.get(env_id, {}))
    for path in frame["path"]:
        run = runs_mod.load_run(path)
        found = {k: run.env_key(k) for k in ("cost_key", "error_key", "cost_label", "error_label")}
        if found["cost_key"] and found["error_key"]:
            return {**keys, **{k: v for k, v in found.items() if v}}
    return {k: keys.get(k) for k in ("cost_key", "error_key", "cost_label", "error_label")}


def variant_picker(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """When runs of one environment were evaluated with different kwargs, pick one set."""
    variants = list(frame["variant"].value_counts(sort=True).index)  # the most common settings first
    if len(variants) <= 1:
        return frame
    labels = runs_mod.variant_labels(variants)
    chosen = st.selectbox("evaluation settings", variants, format_func=labels.get, key=key,
                          help="Runs whose evaluation used different environment arguments are not pooled.")  # fmt: skip
    return frame[frame["variant"] == chosen]


@register_env_page("simrl/ThreeBody-v0", "ThreeBody")
def threebody_page(ctx: PageContext) -> None:
    env_id = "simrl/ThreeBody-v0"
    st.header("ThreeBody: energy error against force evaluations")
    st.caption(
        "Each trained policy and each fixed step parameter played one held-out episode per seed; "
        "lower left is better. Error bars: 95% bootstrap CIs over training seeds and episodes."
    )
    usable = ctx.usable_runs_of_env(env_id, "ThreeBody")
    if usable is None:
        return
    keys = env_keys(usable, env_id)
    cost_key, error_key = keys["cost_key"] or "total_force_evaluations", keys["error_key"] or "energy_error"
    cost_label, error_label = keys["cost_label"] or cost_key, keys["error_label"] or error_key

    with guard("the accuracy-cost front"):
        usable = variant_picker(usable, key="threebody_variant")
        evaluated = usable[[bool(episodes_stamp([p])) for p in usable["path"]]]
        if evaluated.empty:
            st.info("None of these runs has evaluation episodes yet.")
        else:
            c1, c2 = st.columns([1, 3])
            statistic = c1.selectbox("statistic", list(runs_mod.STATISTICS), index=2, key="threebody_stat",
                                     format_func=lambda s: s.upper() if s == "iqm" else s)  # fmt: skip
            show_episodes = c1.toggle("every episode", value=False, key="threebody_episodes")
            paths = tuple(evaluated["path"])
            comparison = cached_comparison(paths, episodes_stamp(paths), (cost_key, error_key, "return"))
            points = runs_mod.front_points(comparison, env_id, cost_key, error_key, statistic)
            c1.metric("policies", len(points))
            c1.metric("runs pooled", len(paths))
            if show_episodes:
                episodes = runs_mod.dedupe_baselines(load_episodes(evaluated))
                fig = plots.episodes_scatter_figure(episodes, cost_key, error_key, cost_label, error_label)
            else:
                fig = plots.front_figure(points, cost_label, error_label, statistic,
                                         title=f"Final {error_label} against {cost_label}, one point per policy")  # fmt: skip
            c2.plotly_chart(fig, key="threebody_front")
            stat = statistic.upper() if statistic == "iqm" else statistic
            st.dataframe(points, hide_index=True, column_config={
                "is_baseline": st.column_config.CheckboxColumn("baseline"),
                "cost": st.column_config.NumberColumn(f"{stat} {cost_label}", format="%.4g"),
                "cost_low": st.column_config.NumberColumn("cost CI low", format="%.4g"),
                "cost_high": st.column_config.NumberColumn("cost CI high", format="%.4g"),
                "error": st.column_config.NumberColumn(f"{stat} {error_label}", format="%.3e"),
                "error_low": st.column_config.NumberColumn("error CI low", format="%.3e"),
                "error_high": st.column_config.NumberColumn("error CI high", format="%.3e"),
            })  # fmt: skip

    st.subheader("Orbits of one held-out episode")
    with guard("the orbit rollout"):
        row = run_selector(usable, key="threebody_orbit_run", need_model=False)
        if row is None:
            return
        choices = rollout_mod.policy_choices(row["path"])
        if not choices:
            st.info("This run has neither a saved model nor baselines to play.")
            return
        c1, c2 = st.columns(2)
        policy = c1.selectbox("policy", choices, key="threebody_orbit_policy")
        seeds = rollout_mod.held_out_seeds(row["path"])
        seed = c2.selectbox("held-out seed", seeds, key="threebody_orbit_seed")
        model = Path(row["path"]) / "final_model.zip"
        mtime = model.stat().st_mtime if model.exists() else 0.0
        episode = cached_orbit(row["path"], mtime, policy, int(seed))
        last = episode.steps.iloc[-1].to_dict() if len(episode.steps) else {}
        left, right = st.columns([3, 1])
        if episode.positions is not None:
            left.plotly_chart(plots.orbit_figure(episode.positions, title=f"{policy}, seed {seed}: {episode.length} steps"),
                              key="threebody_orbit")  # fmt: skip
        right.metric("final |dE/E0|", fmt_value("energy_error", last.get("energy_error", float("nan"))))
        right.metric("force evaluations", fmt_value("total_force_evaluations", last.get("total_force_evaluations", 0)))
        right.metric("simulated years", fmt_value("sim_time", last.get("sim_time", 0)))
        right.metric("return", f"{episode.total_return:.4g}")
        right.caption("terminated (|dE/E0| > limit)" if episode.terminated else "truncated (episode end)")


# The other families' pages register themselves on import; imported last because they use
# register_env_page (defined above). The sidebar lists pages in this order.
import simrl.dashboard.turbulence_page  # noqa: E402,F401
import simrl.dashboard.digital_twin_page  # noqa: E402,F401
