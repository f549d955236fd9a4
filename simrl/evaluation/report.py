"""Summaries of evaluated policies on an accuracy-cost plane, and their atomic output files.

Each environment family names two final-info quantities, both "lower is better": a
``cost`` (for ThreeBody: total force evaluations) and an ``error`` (final |dE/E0|).
A policy is *dominated* when another has a median cost and a median error no larger,
with at least one strictly smaller.

Every evaluation writes the same files (:func:`write_results`): ``episodes.parquet``, the tidy
per-episode table (one row per policy and held-out seed; schema in :data:`EPISODE_COLUMNS`,
then one float column per final-info metric), ``summary.csv``, ``summary.json`` and
``front.png``. Each file is written atomically, and ``episodes.parquet`` last.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

from simrl.atomic_io import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from simrl.evaluation.rollout import EpisodeRecord


@dataclass(frozen=True)
class PolicySummary:
    """Median (and spread) of one policy's episodes on the held-out seeds."""

    policy: str
    episodes: int
    median_cost: float
    median_error: float
    q90_error: float
    mean_return: float
    terminated_fraction: float
    blowup_fraction: float
    median_wall_time: float
    dominated_by: tuple[str, ...] = ()


def summarise(
    records: Iterable[EpisodeRecord], cost_key: str, error_key: str, wall_time_key: str = "total_wall_time"
) -> list[PolicySummary]:
    """Per-policy medians and the dominance relation among policies, in first-seen order."""
    by_policy: dict[str, list[EpisodeRecord]] = {}
    for r in records:
        by_policy.setdefault(r.policy, []).append(r)
    partial = []
    for name, recs in by_policy.items():
        cost = np.array([r.final_info.get(cost_key, math.nan) for r in recs])
        error = np.array([r.final_info.get(error_key, math.nan) for r in recs])
        wall = np.array([r.final_info.get(wall_time_key, math.nan) for r in recs])
        partial.append(
            dict(
                policy=name,
                episodes=len(recs),
                median_cost=float(np.median(cost)),
                median_error=float(np.median(error)),
                q90_error=float(np.quantile(error, 0.9)),
                mean_return=float(np.mean([r.episode_return for r in recs])),
                terminated_fraction=float(np.mean([r.terminated for r in recs])),
                blowup_fraction=float(np.mean([bool(r.final_info.get("blowup", 0.0)) for r in recs])),
                median_wall_time=float(np.median(wall)),
            )
        )
    summaries = []
    for p in partial:
        dominators = tuple(
            q["policy"]
            for q in partial
            if q is not p
            and q["median_cost"] <= p["median_cost"]
            and q["median_error"] <= p["median_error"]
            and (q["median_cost"] < p["median_cost"] or q["median_error"] < p["median_error"])
        )
        summaries.append(PolicySummary(**p, dominated_by=dominators))
    return summaries


def nearest_cost_comparison(summaries: Sequence[PolicySummary], policy: str, baselines: Sequence[str]) -> dict[str, Any]:
    """Compare ``policy`` with the baseline of nearest median cost (in log cost).

    ``beats_nearest`` is True when the policy's median cost is no larger than that baseline's
    and its median error is strictly lower.
    """
    by_name = {s.policy: s for s in summaries}
    me = by_name[policy]
    candidates = [by_name[b] for b in baselines if b in by_name]
    if not candidates:
        raise ValueError(f"no baseline among {list(baselines)} was evaluated")
    nearest = min(candidates, key=lambda s: abs(math.log10(max(s.median_cost, 1.0)) - math.log10(max(me.median_cost, 1.0))))
    return {
        "policy": policy,
        "nearest_baseline": nearest.policy,
        "policy_median_cost": me.median_cost,
        "baseline_median_cost": nearest.median_cost,
        "policy_median_error": me.median_error,
        "baseline_median_error": nearest.median_error,
        "beats_nearest": me.median_cost <= nearest.median_cost and me.median_error < nearest.median_error,
        "dominated": bool(me.dominated_by),
        "dominated_by": list(me.dominated_by),
    }


def format_table(summaries: Sequence[PolicySummary], cost_label: str = "median cost", error_label: str = "median error") -> str:
    """A fixed-width text table of the summaries (what the training script prints)."""
    header = f"{'policy':<22} {cost_label:>16} {error_label:>14} {'q90 error':>10} {'mean return':>12} {'term.':>6} {'dominated by':<20}"
    lines = [header, "-" * len(header)]
    for s in summaries:
        lines.append(
            f"{s.policy:<22} {s.median_cost:>16.4g} {s.median_error:>14.3e} {s.q90_error:>10.2e} "
            f"{s.mean_return:>12.4g} {s.terminated_fraction:>6.2f} {', '.join(s.dominated_by[:2]) or '-':<20}"
        )
    return "\n".join(lines)


#: The identifying columns of ``episodes.parquet``, in order, with their Arrow types; every
#: final-info metric of the environment follows as a float64 column (first-seen order).
EPISODE_COLUMNS: dict[str, str] = {
    "run": "string",  # the run folder's absolute path
    "env": "string",  # environment id, e.g. simrl/ThreeBody-v0
    "env_name": "string",  # environment config name, e.g. threebody
    "agent": "string",  # agent config name, e.g. ppo
    "training_seed": "int64",  # the run's training seed
    "policy": "string",  # the trained agent's name or a baseline's, e.g. "fixed 0.001"
    "is_baseline": "bool",
    "seed": "int64",  # held-out evaluation seed
    "episode": "int64",  # 0 .. n-1 within the policy
    "return": "float64",
    "length": "int64",
    "terminated": "bool",
    "truncated": "bool",
}

#: Metric columns that measure wall-clock time (they differ between otherwise identical evaluations).
WALL_TIME_COLUMNS = ("total_wall_time", "wall_time", "evaluation_wall_time_share")


@dataclass(frozen=True)
class RunIdentity:
    """What every row of a run's ``episodes.parquet`` says about the run it came from."""

    run: str
    env: str
    env_name: str
    agent: str
    training_seed: int


def episodes_table(
    records: Sequence[EpisodeRecord], identity: RunIdentity, baselines: Collection[str] = ()
) -> pa.Table:
    """The tidy per-episode table as an Arrow table with the exact schema of ``episodes.parquet``.

    ``episode`` counts each policy's records in order (0 .. n-1); a policy is a baseline when its
    name is in ``baselines``. Metrics missing from some episode's final info are NaN.
    """
    import pyarrow as pa

    metrics: list[str] = []
    for r in records:
        metrics += [k for k in r.final_info if k not in metrics]
    clash = [k for k in metrics if k in EPISODE_COLUMNS]
    if clash:
        raise ValueError(f"final-info keys {clash} clash with the identifying columns of the episodes table")
    baselines = set(baselines)
    counters: dict[str, int] = {}
    episode_index = []
    for r in records:
        episode_index.append(counters.get(r.policy, 0))
        counters[r.policy] = episode_index[-1] + 1
    n = len(records)
    columns: dict[str, list[Any]] = {
        "run": [identity.run] * n,
        "env": [identity.env] * n,
        "env_name": [identity.env_name] * n,
        "agent": [identity.agent] * n,
        "training_seed": [int(identity.training_seed)] * n,
        "policy": [r.policy for r in records],
        "is_baseline": [r.policy in baselines for r in records],
        "seed": [int(r.seed) for r in records],
        "episode": episode_index,
        "return": [float(r.episode_return) for r in records],
        "length": [int(r.length) for r in records],
        "terminated": [bool(r.terminated) for r in records],
        "truncated": [bool(r.truncated) for r in records],
    }
    for key in metrics:
        columns[key] = [float(r.final_info.get(key, math.nan)) for r in records]
    types = {**EPISODE_COLUMNS, **{k: "float64" for k in metrics}}
    schema = pa.schema(
        [pa.field(name, pa.type_for_alias(types[name]), nullable=False) for name in columns],
        metadata={"simrl": json.dumps({"table": "episodes", "version": 1})},
    )
    return pa.Table.from_pydict(columns, schema=schema)


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` serialised as a Parquet file (in memory, for an atomic write)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def read_episodes(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``episodes.parquet`` into pandas; ``path`` is the file, an evaluation folder or a run folder."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        direct = path / "episodes.parquet"
        path = direct if direct.exists() else path / "evaluation" / "episodes.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no episodes table at {path}")
    return pd.read_parquet(path)


def write_results(
    out_dir: str | os.PathLike,
    records: Sequence[EpisodeRecord],
    summaries: Sequence[PolicySummary],
    identity: RunIdentity,
    baselines: Collection[str] = (),
    extra: dict[str, Any] | None = None,
    cost_label: str = "cost",
    error_label: str = "error",
) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.json``, ``front.png`` and ``episodes.parquet`` into ``out_dir``.

    Every file goes through a temporary file in ``out_dir`` and ``os.replace``; the episodes
    table comes last, so that its presence means the evaluation finished.
    """
    summary_rows = [{**asdict(s), "dominated_by": ";".join(s.dominated_by)} for s in summaries]
    payload = {"run": asdict(identity), "summaries": [asdict(s) for s in summaries], **(extra or {})}
    files: dict[str, str | bytes] = {
        "summary.csv": csv_text(summary_rows, list(summary_rows[0]) if summary_rows else []),
        "summary.json": json.dumps(payload, indent=2, default=_json_default),
        "front.png": plot_front(summaries, cost_label, error_label),
    }
    return write_evaluation(out_dir, records, identity, baselines, files)


def write_evaluation(
    out_dir: str | os.PathLike,
    records: Sequence[EpisodeRecord],
    identity: RunIdentity,
    baselines: Collection[str] = (),
    files: dict[str, str | bytes] | None = None,
) -> dict[str, Path]:
    """Write an evaluation folder: ``files`` (name -> text or bytes) first, ``episodes.parquet`` last.

    The one writer of every environment's evaluation (the accuracy-cost one above and the
    environment-specific evaluators). Each file goes through a temporary file in ``out_dir`` and
    ``os.replace``; an old ``episodes.parquet`` is removed before anything is written, so its
    presence always means that this evaluation finished (the dashboard relies on it).
    """
    out = Path(out_dir)
    files = dict(files or {})
    if "episodes.parquet" in files:
        raise ValueError("episodes.parquet is written from the records; do not pass it in files")
    table = episodes_table(records, identity, baselines)  # fails before anything is written
    paths = {name: out / name for name in files}
    paths["episodes.parquet"] = out / "episodes.parquet"
    paths["episodes.parquet"].unlink(missing_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            atomic_write_bytes(paths[name], content)
        else:
            atomic_write_text(paths[name], content)
    atomic_write_bytes(paths["episodes.parquet"], parquet_bytes(table))
    return paths


def plot_front(summaries: Sequence[PolicySummary], cost_label: str, error_label: str) -> bytes:
    """PNG bytes: median error against median cost, one point per policy (log-log)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    for s in summaries:
        is_fixed = s.policy.startswith("fixed")
        ax.scatter(s.median_cost, max(s.median_error, 1e-17), marker="o" if is_fixed else "*",
                   s=40 if is_fixed else 160, color="tab:blue" if is_fixed else "tab:red", zorder=3)  # fmt: skip
        ax.annotate(s.policy, (s.median_cost, max(s.median_error, 1e-17)), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"median {cost_label}")
    ax.set_ylabel(f"median final {error_label}")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Held-out evaluation: one point per policy")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def csv_text(rows: Sequence[dict[str, Any]], fieldnames: list[str]) -> str:
    """``rows`` as CSV text with the header ``fieldnames`` (the summary files of every evaluation)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")
