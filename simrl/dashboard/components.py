"""Streamlit building blocks shared by the dashboard's pages (the page context, cached loaders, guards)."""

from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
import streamlit as st

from simrl.dashboard import rollout as rollout_mod
from simrl.dashboard import runs as runs_mod


@dataclass
class PageContext:
    """What every page gets: the roots searched, every run found, and the runs the sidebar filters keep."""

    roots: list[str]
    all_runs: pd.DataFrame
    runs: pd.DataFrame

    def runs_of_env(self, env_id: str) -> pd.DataFrame:
        return self.runs[self.runs["env_id"] == env_id]

    def usable(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """Runs that are not broken (incomplete ones may still have an evaluation or a curve)."""
        frame = self.runs if frame is None else frame
        return frame[frame["status"] != runs_mod.STATUS_BROKEN]

    def usable_runs_of_env(self, env_id: str, title: str) -> pd.DataFrame | None:
        """The usable runs of ``env_id`` after listing its problem runs; None (with a note) when there are none.

        ``title`` names the environment in the note, e.g. ``"Turbulence"``.
        """
        frame = self.runs_of_env(env_id)
        show_problem_runs(frame)
        usable = self.usable(frame)
        if usable.empty:
            st.info(f"No usable {title} runs under {', '.join(self.roots)} (with the current filters).")
            return None
        return usable


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Show an error box (not a crash) when one section of a page fails; the rest still renders."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001
        st.error(f"{what} failed: {type(exc).__name__}: {exc}")
        with st.expander("traceback"):
            st.code("".join(traceback.format_exception(exc)), language="text")


def episodes_stamp(paths: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime, size) of each run's episodes table: the cache key of derived tables."""
    out = []
    for p in paths:
        for name in ("evaluation/episodes.parquet", "evaluation/episodes.csv"):
            f = Path(p) / name
            try:
                s = f.stat()
            except OSError:
                continue
            out.append((str(f), s.st_mtime_ns, s.st_size))
            break
    return tuple(out)


@st.cache_data(show_spinner="aggregating evaluation episodes...", max_entries=32)
def cached_comparison(paths: tuple[str, ...], stamp: tuple, metrics: tuple[str, ...], method: str = "runs+episodes",
                      n_boot: int = 1000) -> pd.DataFrame:  # fmt: skip
    """:func:`runs.baseline_comparison` of the runs at ``paths``; ``stamp`` (:func:`episodes_stamp`) keys the cache."""
    del stamp  # part of the cache key only
    episodes = runs_mod.load_episodes_for(pd.DataFrame({"path": list(paths), "status": "complete"}))
    return runs_mod.baseline_comparison(episodes, metrics=[m for m in metrics if m in episodes], n_boot=n_boot, method=method)


def load_episodes(frame: pd.DataFrame) -> pd.DataFrame:
    return runs_mod.load_episodes_for(frame)


@st.cache_resource(show_spinner="playing the episode...", max_entries=16)
def cached_orbit(path: str, model_mtime: float, policy: str, seed: int) -> rollout_mod.Rollout:
    del model_mtime
    return rollout_mod.play_episode(path, seed, policy=policy, render=False)


def show_problem_runs(frame: pd.DataFrame, left_out: bool = True) -> None:
    """An expander listing the broken / incomplete runs of ``frame`` with their reasons.

    ``left_out``: the page leaves the broken runs out (it uses :meth:`PageContext.usable`).
    """
    bad = frame[frame["status"] != runs_mod.STATUS_COMPLETE]
    if bad.empty:
        return
    counts = bad["status"].value_counts().to_dict()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    note = " (broken runs are left out here)" if left_out and runs_mod.STATUS_BROKEN in counts else ""
    with st.expander(f"{summary} run(s){note}: see why", expanded=False):
        st.dataframe(bad[["run", "status", "problem"]], hide_index=True, width="stretch")


def run_selector(frame: pd.DataFrame, key: str, label: str = "run", need_model: bool = False) -> pd.Series | None:
    """A selectbox over the runs of ``frame`` (complete ones first); the chosen row, or None."""
    options = frame.copy()
    if need_model:
        options = options[[(Path(p) / "final_model.zip").exists() for p in options["path"]]] if len(options) else options
    if options.empty:
        return None
    options = options.assign(_order=(options["status"] != runs_mod.STATUS_COMPLETE).astype(int)).sort_values(["_order", "run"])
    labels = {row.path: f"{row.run}  [{row.agent}, seed {row.seed}, {row.status}]" for row in options.itertuples()}
    chosen = st.selectbox(label, list(labels), format_func=labels.get, key=key)
    return options[options["path"] == chosen].iloc[0] if chosen is not None else None


def fmt_value(key: str, value: object) -> str:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if key in {"energy_error"} or (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6)):
        return f"{v:.3e}"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:.4g}"
