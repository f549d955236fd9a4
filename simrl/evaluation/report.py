"""Summaries of evaluated policies on an accuracy-cost plane, and their atomic output files.

Each environment family names two final-info quantities, both "lower is better": a
``cost`` (for ThreeBody: total force evaluations) and an ``error`` (final |dE/E0|).
A policy is *dominated* when another has a median cost and a median error no larger,
with at least one strictly smaller.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

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


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``: never half-written."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results(
    out_dir: str | os.PathLike,
    records: Sequence[EpisodeRecord],
    summaries: Sequence[PolicySummary],
    extra: dict[str, Any] | None = None,
    cost_label: str = "cost",
    error_label: str = "error",
) -> dict[str, Path]:
    """Write ``episodes.csv``, ``summary.csv``, ``summary.json`` and ``front.png`` into ``out_dir``."""
    out = Path(out_dir)
    rows = [r.as_row() for r in records]
    fieldnames: list[str] = []
    for row in rows:
        fieldnames += [k for k in row if k not in fieldnames]
    paths = {name: out / name for name in ("episodes.csv", "summary.csv", "summary.json", "front.png")}
    atomic_write_text(paths["episodes.csv"], _csv(rows, fieldnames))
    summary_rows = [{**asdict(s), "dominated_by": ";".join(s.dominated_by)} for s in summaries]
    atomic_write_text(paths["summary.csv"], _csv(summary_rows, list(summary_rows[0]) if summary_rows else []))
    payload = {"summaries": [asdict(s) for s in summaries], **(extra or {})}
    atomic_write_text(paths["summary.json"], json.dumps(payload, indent=2, default=_json_default))
    atomic_write_bytes(paths["front.png"], plot_front(summaries, cost_label, error_label))
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


def _csv(rows: Sequence[dict[str, Any]], fieldnames: list[str]) -> str:
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
