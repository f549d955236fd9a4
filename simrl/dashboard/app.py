"""The simrl Streamlit dashboard: runs overview, learning curves, baselines, env pages, rollouts.

Start it with either of::

    streamlit run scripts/dashboard.py -- --runs outputs/ multirun/
    simrl-dashboard --runs outputs/            # simrl.dashboard.cli

Run roots come from ``--runs`` (after Streamlit's ``--``), else the ``SIMRL_RUNS`` environment
variable (paths separated by ``os.pathsep``), else ``outputs`` and ``multirun`` in the working
directory; the sidebar can change them. Pages: a sidebar radio (``?page=<name>`` in the URL
opens one directly); environment pages come from :data:`simrl.dashboard.env_pages.ENV_PAGES`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import streamlit as st

from simrl.dashboard import plots
from simrl.dashboard import rollout as rollout_mod
from simrl.dashboard import runs as runs_mod
from simrl.dashboard.components import (
    PageContext,
    cached_comparison,
    episodes_stamp,
    fmt_value,
    guard,
    run_selector,
    show_problem_runs,
)
from simrl.dashboard.env_pages import ENV_PAGES, env_keys, variant_picker

DEFAULT_ROOTS = ["outputs", "multirun"]


def parse_roots(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> list[str]:
    """``--runs A B`` from ``argv``, else ``$SIMRL_RUNS`` (``os.pathsep``-separated), else :data:`DEFAULT_ROOTS`."""
    parser = argparse.ArgumentParser(prog="simrl-dashboard", allow_abbrev=False, add_help=False)
    parser.add_argument("--runs", nargs="+", default=None)
    args, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.runs:
        return [str(r) for r in args.runs]
    env = (os.environ if environ is None else environ).get("SIMRL_RUNS", "")
    if env.strip():
        return [p for p in env.split(os.pathsep) if p.strip()]
    return list(DEFAULT_ROOTS)


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def _status_style(row: pd.Series) -> list[str]:
    color = {"broken": "background-color: rgba(214,39,40,0.15)", "incomplete": "background-color: rgba(255,190,0,0.18)"}
    return [color.get(row.get("status"), "")] * len(row)


def page_runs(ctx: PageContext) -> None:
    st.header("Runs overview")
    st.caption(f"{len(ctx.all_runs)} run folder(s) under {', '.join(ctx.roots)}; {len(ctx.runs)} kept by the filters.")
    frame = ctx.runs
    text = st.text_input("path contains", key="runs_text", placeholder="e.g. multirun or ppo")
    if text:
        frame = frame[frame["run"].str.contains(text, case=False, regex=False)]
    counts = frame["status"].value_counts()
    cols = st.columns(4)
    cols[0].metric("runs", len(frame))
    for col, status in zip(cols[1:], (runs_mod.STATUS_COMPLETE, runs_mod.STATUS_INCOMPLETE, runs_mod.STATUS_BROKEN)):
        col.metric(status, int(counts.get(status, 0)))
    if frame.empty:
        st.info(f"No run folders (folders with .hydra/config.yaml) under {', '.join(ctx.roots)}. "
                "Train one with `python scripts/train_agent.py` or point the sidebar at another folder.")  # fmt: skip
        return
    shown = ["run", "status", "problem", "env_name", "agent", "seed", "total_timesteps", "train_seconds", "final_score",
             "median_cost", "median_error", "beats_nearest", "dominated", "sweep", "notes", "modified"]  # fmt: skip
    st.dataframe(
        frame[shown].style.apply(_status_style, axis=1),
        hide_index=True,
        column_config={
            "run": st.column_config.TextColumn("run", width="medium"),
            "problem": st.column_config.TextColumn("problem", width="medium"),
            "total_timesteps": st.column_config.NumberColumn("steps", format="%d"),
            "train_seconds": st.column_config.NumberColumn("train s", format="%.1f"),
            "final_score": st.column_config.NumberColumn("final eval return", format="%.4g",
                                                         help="Mean return of the last EvalCallback evaluation"),
            "median_cost": st.column_config.NumberColumn("median cost", format="%.4g",
                                                         help="Trained policy, held-out evaluation"),
            "median_error": st.column_config.NumberColumn("median error", format="%.3e",
                                                          help="Trained policy, held-out evaluation"),
            "modified": st.column_config.DatetimeColumn("last write", format="YYYY-MM-DD HH:mm"),
        },  # fmt: skip
        key="runs_table",
    )
    show_problem_runs(frame, left_out=False)

    st.subheader("Run details")
    row = run_selector(frame, key="runs_detail")
    if row is None:
        return
    with guard("the run details"):
        run = runs_mod.load_run(row["path"])
        if run.problems:
            st.warning(f"**{run.status}**: " + "; ".join(run.problems))
        if run.notes:
            st.caption("Notes: " + "; ".join(run.notes))
        tabs = st.tabs(["evaluation summary", "config", "run_info", "front.png"])
        with tabs[0]:
            summaries = run.summaries
            if summaries:
                sci = st.column_config.NumberColumn(format="%.3e")
                st.dataframe(pd.DataFrame(summaries), hide_index=True,
                             column_config={"median_error": sci, "q90_error": sci, "median_wall_time": sci,
                                            "median_cost": st.column_config.NumberColumn(format="%.4g")})  # fmt: skip
                comparison = run.comparison
                if comparison:
                    st.json(comparison, expanded=False)
            else:
                st.info("No evaluation/summary.json.")
        with tabs[1]:
            import yaml

            st.code(yaml.safe_dump(run.config, sort_keys=False) if run.config else "(no readable config)", language="yaml")
        with tabs[2]:
            st.json(run.run_info or {"run_info.json": "missing"}, expanded=True)
        with tabs[3]:
            png = run.path / "evaluation" / "front.png"
            if png.is_file():
                st.image(str(png), caption=str(png))
            else:
                st.info("No evaluation/front.png.")


def page_learning_curves(ctx: PageContext) -> None:
    st.header("Learning curves")
    st.caption("EvalCallback evaluations during training (eval_callback/evaluations.npz), mean across training seeds.")
    usable = ctx.usable()
    c1, c2, c3 = st.columns(3)
    grouping = c1.selectbox("one curve per", ["environment and agent", "run"], key="lc_group")
    interval = c2.selectbox("interval", list(runs_mod.INTERVALS), format_func=runs_mod.INTERVALS.get, key="lc_interval")
    value = c3.selectbox("quantity", ["mean_return", "mean_length"], key="lc_value",
                         format_func=lambda v: v.replace("_", " "))  # fmt: skip
    group_by = ("env_id", "agent") if grouping.startswith("environment") else ("run",)
    with guard("the learning curves"):
        curves = runs_mod.learning_curves(usable, group_by=group_by, interval=interval, value=value)
        if curves.empty:
            st.info("No run with eval_callback/evaluations.npz among the filtered runs.")
        else:
            fig = plots.learning_curve_figure(curves, group_by=group_by, y_label=value.replace("_", " "),
                                              interval_label=runs_mod.INTERVALS[interval])  # fmt: skip
            st.plotly_chart(fig, key="lc_chart")
            last = curves.sort_values("timestep").groupby(list(group_by), dropna=False).tail(1)
            st.dataframe(last, hide_index=True)
        missing = usable[usable["notes"].str.contains("evaluations.npz", regex=False)]
        if len(missing):
            st.caption(f"{len(missing)} run(s) without a learning curve: " + ", ".join(missing["run"].head(10)))
    show_problem_runs(ctx.runs)


def page_baselines(ctx: PageContext) -> None:
    st.header("Baselines: every policy x metric")
    st.caption("Held-out evaluation episodes pooled per environment: trained policies over their training runs, "
               "each baseline counted once. Point estimates over all episodes, with 95% bootstrap CIs.")  # fmt: skip
    usable = ctx.usable()
    evaluated = usable[[bool(episodes_stamp([p])) for p in usable["path"]]] if len(usable) else usable
    if evaluated.empty:
        st.info("No evaluated runs (evaluation/episodes.parquet) among the filtered runs.")
        show_problem_runs(ctx.runs)
        return
    envs = sorted(evaluated["env_id"].dropna().unique())
    c1, c2, c3 = st.columns(3)
    env_id = c1.selectbox("environment", envs, key="bl_env")
    statistic = c2.selectbox("statistic", list(runs_mod.STATISTICS), key="bl_stat",
                             format_func=lambda s: s.upper() if s == "iqm" else s)  # fmt: skip
    method = c3.selectbox("95% CI", list(runs_mod.CI_METHODS), key="bl_ci", format_func=runs_mod.CI_METHODS.get)
    frame = variant_picker(evaluated[evaluated["env_id"] == env_id], key="bl_variant")
    keys = env_keys(frame, env_id)
    with guard("the baseline comparison"):
        sample = runs_mod.load_episodes(frame["path"].iloc[0])
        available = runs_mod.metric_columns(sample)
        default = [k for k in (keys["cost_key"], keys["error_key"], "return", "total_wall_time") if k in available]
        metrics = st.multiselect("metrics", available, default=default, key="bl_metrics")
        paths = tuple(frame["path"])
        comparison = cached_comparison(paths, episodes_stamp(paths), tuple(metrics), method)
        table = runs_mod.comparison_table(comparison, statistic, metrics)
        if table.empty:
            st.info("Nothing to aggregate for these metrics.")
        else:
            table = table.drop(columns=["env", "variant"])
            st.dataframe(table, hide_index=True, key="bl_table",
                         column_config={c: st.column_config.NumberColumn(format="%.4g") for c in table.columns
                                        if c not in ("policy", "is_baseline", "n_runs", "n_episodes")})  # fmt: skip
            st.download_button("download (CSV)", comparison.to_csv(index=False).encode(), "comparison.csv", "text/csv")
        if keys["cost_key"] and keys["error_key"]:
            if {keys["cost_key"], keys["error_key"]} <= set(metrics):
                points = runs_mod.front_points(comparison, env_id, keys["cost_key"], keys["error_key"], statistic)
                st.plotly_chart(plots.front_figure(points, keys["cost_label"] or keys["cost_key"],
                                                   keys["error_label"] or keys["error_key"], statistic),
                                key="bl_front")  # fmt: skip
            else:
                st.caption(f"Select {keys['cost_key']} and {keys['error_key']} to draw the accuracy-cost front.")
    show_problem_runs(ctx.runs)


def page_rollout(ctx: PageContext) -> None:
    st.header("Rollout")
    st.caption("Play one episode of a run's saved policy (or a baseline) with render_mode='rgb_array' "
               "on the run's evaluation arguments, then step through the frames.")  # fmt: skip
    usable = ctx.usable()
    usable = usable[usable["env_id"].notna()] if len(usable) else usable
    row = run_selector(usable, key="ro_run")
    if row is None:
        st.info("No run to play (every filtered run is broken or has no environment id).")
        show_problem_runs(ctx.runs)
        return
    with guard("the rollout"):
        choices = rollout_mod.policy_choices(row["path"])
        if not choices:
            st.info("This run has neither a saved model nor baselines to play.")
            return
        seeds = rollout_mod.held_out_seeds(row["path"])
        c1, c2, c3 = st.columns(3)
        policy = c1.selectbox("policy", choices, key="ro_policy")
        seed = int(c2.number_input("seed", value=int(seeds[0]), step=1, key="ro_seed",
                                   help=f"held-out evaluation seeds: {seeds[0]} .. {seeds[-1]}"))  # fmt: skip
        max_frames = c3.slider("frames", 5, 200, 60, key="ro_frames")
        request = (row["path"], policy, seed, max_frames)
        if st.button("Play episode", type="primary", key="ro_play"):
            with st.spinner("playing..."):
                st.session_state["ro_result"] = (request, rollout_mod.play_episode(row["path"], seed, policy, max_frames))
        stored = st.session_state.get("ro_result")
        if stored is None:
            st.info("Choose a run, a policy and a seed, then press **Play episode**.")
            return
        played_request, episode = stored
        if played_request != request:
            st.caption("Showing the previously played episode; press **Play episode** for the current choice.")
        st.write(f"**{episode.policy}** on `{episode.env_id}`, seed {episode.seed}: {episode.length} steps, "
                 f"return {episode.total_return:.4g}, {'terminated' if episode.terminated else 'truncated'}")  # fmt: skip
        if not episode.frames:
            st.info("No frames were rendered.")
            return
        step = st.select_slider("step", options=episode.frame_steps, value=episode.frame_steps[-1], key="ro_step")
        frame = episode.frames[episode.frame_steps.index(step)]
        left, right = st.columns([3, 2])
        left.image(frame, caption=f"step {step} of {episode.length}", width="content")
        values = episode.step_values(step)
        with right:
            if not values:
                st.metric("step", 0, help="the reset state")
            for k in episode.key_quantities:
                if k in values:
                    st.metric(k.replace("_", " "), fmt_value(k, values[k]))
            if values:
                st.metric("reward", f"{values.get('reward', float('nan')):.4g}")
        log_keys = [k for k in episode.key_quantities if k in ("energy_error", "parameter", "total_force_evaluations")]
        st.plotly_chart(plots.quantities_figure(episode.steps, episode.key_quantities or ["reward"], step, log_keys),
                        key="ro_quantities")  # fmt: skip
        with st.expander("environment arguments"):
            st.code(json.dumps(episode.env_kwargs, indent=2, default=str), language="json")


def pages() -> dict[str, Callable[[PageContext], None]]:
    """Page title -> render function, in sidebar order (environment pages from the registry)."""
    out: dict[str, Callable[[PageContext], None]] = {
        "Runs": page_runs,
        "Learning curves": page_learning_curves,
        "Baselines": page_baselines,
    }
    for entry in ENV_PAGES.values():
        out[entry.title] = entry.render
    out["Rollout"] = page_rollout
    return out


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


def _filters(frame: pd.DataFrame) -> pd.DataFrame:
    st.sidebar.subheader("Filters")
    out = frame
    for col, label in (("env_id", "environment"), ("agent", "agent"), ("status", "status")):
        options = sorted(str(v) for v in frame[col].dropna().unique())
        chosen = st.sidebar.multiselect(label, options, key=f"filter_{col}", placeholder="all")
        if chosen:
            out = out[out[col].astype(str).isin(chosen)]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    st.set_page_config(page_title="simrl dashboard", layout="wide")
    all_pages = pages()
    titles = list(all_pages)
    wanted = st.query_params.get("page")
    if "page" not in st.session_state:
        st.session_state["page"] = wanted if wanted in titles else titles[0]
    st.sidebar.title("simrl dashboard")
    page = st.sidebar.radio("page", titles, key="page", label_visibility="collapsed")
    if st.query_params.get("page") != page:
        st.query_params["page"] = page

    default_roots = parse_roots(argv)
    st.sidebar.divider()
    roots_text = st.sidebar.text_input("run folders", value=os.pathsep.join(default_roots), key="roots",
                                       help=f"folders searched for runs, separated by '{os.pathsep}'")  # fmt: skip
    roots = [r.strip() for r in roots_text.split(os.pathsep) if r.strip()] or default_roots
    if st.sidebar.button("Reload", help="Re-read every file (changed files are re-read anyway)"):
        runs_mod.clear_cache()
        st.cache_data.clear()
    all_runs = runs_mod.runs_frame([])
    with guard("reading the run folders"):  # load_runs never raises for a bad folder; this is a last resort
        all_runs = runs_mod.load_runs(roots)
    filtered = _filters(all_runs)
    missing = [r for r in roots if not Path(r).is_dir()]
    if missing:
        st.sidebar.caption("not found: " + ", ".join(missing))
    ctx = PageContext(roots=roots, all_runs=all_runs, runs=filtered)
    with guard(f"page {page!r}"):
        all_pages[page](ctx)


if __name__ == "__main__":
    main()
