"""The dashboard's data layer: find training runs on disk and read them into DataFrames.

Pure Python (pandas, numpy, pyarrow, PyYAML); no Streamlit import, so everything here is
unit-testable and usable from a notebook::

    from simrl.dashboard import runs
    table = runs.load_runs("outputs")                  # one row per run folder
    curves = runs.learning_curves(table)               # EvalCallback curves across seeds
    episodes = runs.load_episodes_for(table)           # the held-out evaluation episodes
    comparison = runs.baseline_comparison(episodes)    # policy x metric, IQM/mean/median + CIs

A *run folder* is any folder holding ``.hydra/config.yaml`` (what ``scripts/train_agent.py``
writes, single runs under ``outputs/`` and multirun jobs under ``multirun/<stamp>/<job>/``).
Nothing here raises on a bad folder: a run killed mid-way, a config from an older version,
an unreadable file all become a row with ``status`` ``"incomplete"`` or ``"broken"`` and a
human-readable ``problem``.

Every file read is cached by (path, modification time, size), so reloading an unchanged tree
costs one ``stat`` per file.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------------------------
# Environment facts the data layer needs for configs written by older simrl versions.
# --------------------------------------------------------------------------------------------

#: ``env.name`` -> ``env.id`` for configs that lack ``env.id``.
ENV_IDS_BY_NAME: dict[str, str] = {"threebody": "simrl/ThreeBody-v0"}

#: Per environment id: the accuracy-cost keys and labels (``env.cost_key`` etc. in the config).
ENV_DEFAULTS: dict[str, dict[str, str]] = {
    "simrl/ThreeBody-v0": {
        "cost_key": "total_force_evaluations",
        "error_key": "energy_error",
        "cost_label": "force evaluations",
        "error_label": "|dE/E0|",
    },
}

STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_BROKEN = "complete", "incomplete", "broken"

#: Columns of :func:`load_runs`' DataFrame, in display order.
RUN_COLUMNS = [
    "run", "status", "problem", "env_id", "env_name", "agent", "seed", "total_timesteps",
    "num_timesteps", "train_seconds", "final_score", "median_cost", "median_error",
    "beats_nearest", "dominated", "sweep", "variant", "notes", "finished_at", "modified", "path",
]  # fmt: skip

#: Folders never searched for runs (besides hidden ones): big, and never runs themselves.
_SKIP_DIRS = {"tensorboard", "checkpoints", "eval_callback", "evaluation", "__pycache__", "node_modules", "site-packages"}


# --------------------------------------------------------------------------------------------
# Cached file reads
# --------------------------------------------------------------------------------------------

_cache: dict[tuple[str, str], tuple[tuple[int, int], Any]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached file read (the next load is a cold one)."""
    with _cache_lock:
        _cache.clear()


def cache_size() -> int:
    """Number of cached file reads."""
    return len(_cache)


def _stat(path: Path) -> os.stat_result | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st if not os.path.isdir(path) else None


def _cached(path: Path, reader: Callable[[Path], Any], st: os.stat_result | None = None) -> Any:
    """``reader(path)``, cached by (path, reader) and validated by (mtime_ns, size).

    Exceptions are cached too (re-raised), so a broken file is not re-read on every rerun.
    """
    st = st if st is not None else path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    key = (str(path), reader.__name__)
    hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        value = hit[1]
    else:
        try:
            value = reader(path)
        except Exception as exc:  # noqa: BLE001 -- cached and re-raised to the caller
            value = _Failed(exc)
        with _cache_lock:
            _cache[key] = (stamp, value)
    if isinstance(value, _Failed):
        raise value.exc
    return value


@dataclass(frozen=True)
class _Failed:
    exc: Exception


def _read_yaml(path: Path) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: np.asarray(data[k]) for k in data.files}


def _read_parquet_meta(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    return {"num_rows": meta.num_rows, "columns": list(meta.schema.names)}


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def _short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------


def find_run_dirs(roots: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Every folder under ``roots`` (or a root itself) that holds ``.hydra/config.yaml``, sorted.

    Run folders do not nest: the search does not descend into a run folder. Hidden folders,
    virtual environments and a run's own output folders (``tensorboard``, ``checkpoints``...)
    are skipped. A root that does not exist yields nothing.
    """
    found: set[Path] = set()
    for root in _as_roots(roots):
        root = Path(root)
        if not root.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(root, followlinks=False):
            here = Path(dirpath)
            if ".hydra" in dirnames and (here / ".hydra" / "config.yaml").is_file():
                found.add(here.resolve())
                dirnames[:] = []
                continue
            dirnames[:] = sorted(
                d for d in dirnames
                if not d.startswith(".") and d not in _SKIP_DIRS and not (here / d / "pyvenv.cfg").exists()
            )  # fmt: skip
    return sorted(found)


def _as_roots(roots: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(roots, (str, os.PathLike)):
        return [Path(roots)]
    return [Path(r) for r in roots]


def _sweep_root(path: Path, stop: Path | None) -> Path | None:
    """The nearest ancestor holding ``multirun.yaml`` (a Hydra sweep), or None."""
    for parent in path.parents:
        if (parent / "multirun.yaml").is_file():
            return parent
        if stop is not None and parent == stop:
            break
    return None


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the dashboard knows about one run folder (the parsed files, not the big tables)."""

    path: Path
    root: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    run_info: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    evaluations: dict[str, np.ndarray] | None = None
    status: str = STATUS_COMPLETE
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    episodes_file: Path | None = None
    modified: float = math.nan

    # ---- config accessors (with defaults for older configs) -----------------------------
    @property
    def env_cfg(self) -> dict[str, Any]:
        env = self.config.get("env")
        return env if isinstance(env, dict) else {}

    @property
    def agent_cfg(self) -> dict[str, Any]:
        agent = self.config.get("agent")
        return agent if isinstance(agent, dict) else {}

    @property
    def env_id(self) -> str | None:
        env, info = self.env_cfg, self.run_info or {}
        if env.get("id"):
            return str(env["id"])
        if info.get("env_id") or info.get("env"):
            return str(info.get("env_id") or info.get("env"))
        name = env.get("name") or info.get("env_name")
        return ENV_IDS_BY_NAME.get(str(name)) if name else None

    @property
    def env_name(self) -> str | None:
        name = self.env_cfg.get("name") or (self.run_info or {}).get("env_name")
        return str(name) if name else None

    @property
    def agent(self) -> str | None:
        name = self.agent_cfg.get("name") or (self.run_info or {}).get("agent")
        if not name and self.agent_cfg.get("class_path"):
            name = str(self.agent_cfg["class_path"]).rsplit(".", 1)[-1].lower()
        return str(name) if name else None

    @property
    def seed(self) -> int | None:
        seed = self.config.get("seed", (self.run_info or {}).get("seed"))
        return int(seed) if isinstance(seed, (int, float)) and not isinstance(seed, bool) else None

    def env_key(self, key: str) -> str | None:
        """``env.cost_key`` / ``error_key`` / ``cost_label`` / ``error_label``, defaulted per env id."""
        value = self.env_cfg.get(key)
        if value:
            return str(value)
        return ENV_DEFAULTS.get(self.env_id or "", {}).get(key)

    @property
    def train_kwargs(self) -> dict[str, Any]:
        return dict(self.env_cfg.get("kwargs") or {})

    @property
    def evaluation_kwargs(self) -> dict[str, Any]:
        """The environment arguments of the held-out evaluation (training kwargs + evaluation overrides)."""
        return {**self.train_kwargs, **dict(self.env_cfg.get("evaluation_kwargs") or {})}

    @property
    def policy_name(self) -> str | None:
        """The trained policy's name in the evaluation tables (the agent's name)."""
        comparison = (self.summary or {}).get("comparison") or {}
        return comparison.get("policy") or self.agent

    @property
    def model_file(self) -> Path:
        return self.path / "final_model.zip"

    @property
    def label(self) -> str:
        """A short display name: the path relative to the root it was found under."""
        if self.root is not None:
            try:
                rel = self.path.relative_to(self.root)
                return str(rel) if str(rel) != "." else self.path.name
            except ValueError:
                pass
        return str(self.path)

    def trained_summary(self) -> dict[str, Any] | None:
        """The trained policy's entry of ``summary.json``."""
        for s in (self.summary or {}).get("summaries") or []:
            if isinstance(s, dict) and s.get("policy") == self.policy_name:
                return s
        return None

    def final_score(self) -> float:
        """Mean return of the last EvalCallback evaluation (NaN without one)."""
        ev = self.evaluations or {}
        results = ev.get("results")
        if results is None or np.size(results) == 0:
            return math.nan
        return float(np.mean(np.asarray(results, dtype=float)[-1]))


def load_run(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Run:
    """Read one run folder; never raises for a bad folder (see :class:`Run` ``status``/``problems``)."""
    run = Run(path=Path(path), root=Path(root) if root is not None else None)
    try:
        _fill_run(run)
    except Exception as exc:  # noqa: BLE001 -- a dashboard row, never a crash
        run.problems.append(f"unexpected error while reading the folder: {_short_error(exc)}")
        run.status = STATUS_BROKEN
    return run


def _fill_run(run: Run) -> None:
    p = run.path
    broken: list[str] = []
    incomplete: list[str] = []
    latest = 0.0

    def stat(rel: str) -> os.stat_result | None:
        nonlocal latest
        st = _stat(p / rel)
        if st is not None:
            latest = max(latest, st.st_mtime)
        return st

    # -- config ----------------------------------------------------------------------------
    st = stat(".hydra/config.yaml")
    if st is None:
        broken.append("no .hydra/config.yaml")
    else:
        try:
            cfg = _cached(p / ".hydra/config.yaml", _read_yaml, st)
            if isinstance(cfg, dict):
                run.config = cfg
            else:
                broken.append(".hydra/config.yaml is not a mapping")
        except Exception as exc:  # noqa: BLE001
            broken.append(f".hydra/config.yaml unreadable ({_short_error(exc)})")

    # -- run_info.json ---------------------------------------------------------------------
    st = stat("run_info.json")
    if st is None:
        run.notes.append("no run_info.json (run written before simrl recorded it)")
    else:
        try:
            info = _cached(p / "run_info.json", _read_json, st)
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
            run.run_info = info
            status = info.get("status")
            error = f": {info['error']}" if info.get("error") else ""
            if status == "failed":
                broken.append(f"training failed{error}")
            elif status == "interrupted":
                incomplete.append(f"training was interrupted{error}")
            elif status != "complete":
                age = _age(time.time() - latest) if latest else "unknown"
                incomplete.append(
                    f"run_info.json status is {status!r}: still training, or killed mid-way "
                    f"(last file written {age} ago)"
                )
        except Exception as exc:  # noqa: BLE001
            broken.append(f"run_info.json unreadable ({_short_error(exc)})")

    # -- config keys (older configs) ---------------------------------------------------------
    if run.config:
        if not run.env_cfg:
            broken.append("config has no 'env' section (written by an older simrl?)")
        elif not run.env_cfg.get("id"):
            if run.env_id:
                run.notes.append(f"config lacks env.id; assumed {run.env_id} from env.name")
            else:
                broken.append("config lacks env.id and env.name (written by an older simrl?)")
        if not run.agent:
            broken.append("config lacks agent.name (written by an older simrl?)")
        missing = [k for k in ("seed", "total_timesteps", "n_envs") if k not in run.config]
        if missing:
            run.notes.append(f"config lacks {', '.join(missing)} (older simrl)")
        defaulted = [k for k in ("cost_key", "error_key") if run.env_cfg and not run.env_cfg.get(k)]
        if defaulted and run.env_id:
            if run.env_id in ENV_DEFAULTS:
                run.notes.append(f"config lacks env.{'/'.join(defaulted)}; using the {run.env_id} defaults")
            else:
                run.notes.append(f"config lacks env.{'/'.join(defaulted)}; no accuracy-cost plane")

    # -- model -----------------------------------------------------------------------------
    if stat("final_model.zip") is None:
        incomplete.append("no final_model.zip (training did not finish)")

    # -- EvalCallback ----------------------------------------------------------------------
    st = stat("eval_callback/evaluations.npz")
    if st is not None:
        try:
            ev = _cached(p / "eval_callback/evaluations.npz", _read_npz, st)
            if "timesteps" not in ev or "results" not in ev:
                raise ValueError(f"keys {sorted(ev)} lack 'timesteps'/'results'")
            run.evaluations = ev
        except Exception as exc:  # noqa: BLE001
            broken.append(f"eval_callback/evaluations.npz unreadable ({_short_error(exc)})")
    elif run.agent_cfg.get("sb3_callbacks", True) and run.config:
        run.notes.append("no eval_callback/evaluations.npz (no learning curve)")

    # -- evaluation ------------------------------------------------------------------------
    evaluation_enabled = bool((run.config.get("evaluation") or {}).get("enabled", True))
    st_parquet = stat("evaluation/episodes.parquet")
    st_csv = stat("evaluation/episodes.csv")
    if st_parquet is not None:
        try:
            meta = _cached(p / "evaluation/episodes.parquet", _read_parquet_meta, st_parquet)
            missing_cols = [c for c in ("policy", "seed") if c not in meta["columns"]]
            if missing_cols:
                raise ValueError(f"no column {missing_cols}")
            run.episodes_file = p / "evaluation/episodes.parquet"
        except Exception as exc:  # noqa: BLE001
            broken.append(f"evaluation/episodes.parquet unreadable ({_short_error(exc)})")
    elif st_csv is not None:
        run.episodes_file = p / "evaluation/episodes.csv"
        run.notes.append("older layout: evaluation/episodes.csv, no episodes.parquet")
    elif evaluation_enabled:
        incomplete.append("no evaluation/episodes.parquet (the held-out evaluation has not finished, or was interrupted)")

    st = stat("evaluation/summary.json")
    if st is not None:
        try:
            summary = _cached(p / "evaluation/summary.json", _read_json, st)
            if not isinstance(summary, dict) or not isinstance(summary.get("summaries", []), list):
                raise ValueError("no 'summaries' list")
            run.summary = summary
        except Exception as exc:  # noqa: BLE001
            broken.append(f"evaluation/summary.json unreadable ({_short_error(exc)})")
    elif evaluation_enabled and st_parquet is not None:
        incomplete.append("no evaluation/summary.json")

    run.modified = latest if latest else math.nan
    run.problems = broken + incomplete
    run.status = STATUS_BROKEN if broken else STATUS_INCOMPLETE if incomplete else STATUS_COMPLETE


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


# --------------------------------------------------------------------------------------------
# The runs table
# --------------------------------------------------------------------------------------------


def scan_runs(roots: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Run]:
    """:func:`load_run` for every run folder under ``roots`` (once, under the first root that holds it)."""
    runs, seen = [], set()
    for root in _as_roots(roots):
        root_resolved = root.resolve() if root.exists() else root
        for path in find_run_dirs(root):
            if path not in seen:
                seen.add(path)
                runs.append(load_run(path, root_resolved))
    return runs


def load_runs(roots: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """The runs overview: one row per run folder under ``roots`` (columns :data:`RUN_COLUMNS`)."""
    return runs_frame(scan_runs(roots))


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per :class:`Run`; ``variant`` tells evaluation settings of one environment apart."""
    rows = []
    for run in runs:
        info = run.run_info or {}
        trained = run.trained_summary() or {}
        comparison = (run.summary or {}).get("comparison") or {}
        sweep = _sweep_root(run.path, run.root)
        rows.append(
            {
                "run": run.label,
                "status": run.status,
                "problem": "; ".join(run.problems),
                "env_id": run.env_id,
                "env_name": run.env_name,
                "agent": run.agent,
                "seed": run.seed,
                "total_timesteps": _num(run.config.get("total_timesteps", info.get("total_timesteps"))),
                "num_timesteps": _num(info.get("num_timesteps")),
                "train_seconds": _num(info.get("train_seconds")),
                "final_score": run.final_score(),
                "median_cost": _num(trained.get("median_cost")),
                "median_error": _num(trained.get("median_error")),
                "beats_nearest": comparison.get("beats_nearest"),
                "dominated": comparison.get("dominated"),
                "sweep": _relative(sweep, run.root) if sweep else "",
                "variant": _kwargs_key(run.evaluation_kwargs),
                "notes": "; ".join(run.notes),
                "finished_at": info.get("finished_at"),
                "modified": pd.Timestamp(datetime.fromtimestamp(run.modified)) if math.isfinite(run.modified) else pd.NaT,
                "path": str(run.path),
            }
        )
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    frame["seed"] = frame["seed"].astype("Int64")
    for col in ("total_timesteps", "num_timesteps", "train_seconds", "final_score", "median_cost", "median_error"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def _relative(path: Path, root: Path | None) -> str:
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root))
    return str(path)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _kwargs_key(kwargs: Mapping[str, Any]) -> str:
    return json.dumps(kwargs, sort_keys=True, default=str)


def variant_labels(variants: Iterable[str]) -> dict[str, str]:
    """Short names for evaluation-kwargs variants: only the keys that differ among them."""
    variants = list(dict.fromkeys(variants))
    parsed = {v: json.loads(v) if v else {} for v in variants}
    keys = sorted({k for d in parsed.values() for k in d})
    differing = [k for k in keys if len({json.dumps(d.get(k), sort_keys=True) for d in parsed.values()}) > 1]
    if not differing:
        return {v: "all runs" for v in variants}
    return {v: ", ".join(f"{k}={parsed[v].get(k)}" for k in differing) for v in variants}


# --------------------------------------------------------------------------------------------
# Learning curves (EvalCallback) across training seeds
# --------------------------------------------------------------------------------------------

INTERVALS = {
    "bootstrap95": "95% bootstrap CI of the mean across seeds",
    "std": "mean ± 1 standard deviation across seeds",
    "minmax": "min to max across seeds",
}


def run_curve(path: str | os.PathLike) -> pd.DataFrame:
    """One run's EvalCallback curve: ``timestep``, ``mean_return`` (over its episodes), ``mean_length``."""
    run = load_run(path)
    ev = run.evaluations
    if ev is None:
        return pd.DataFrame(columns=["timestep", "mean_return", "mean_length"])
    results = np.asarray(ev["results"], dtype=float).reshape(len(ev["timesteps"]), -1)
    lengths = np.asarray(ev.get("ep_lengths", np.full_like(results, np.nan)), dtype=float).reshape(results.shape[0], -1)
    return pd.DataFrame(
        {"timestep": np.asarray(ev["timesteps"], dtype=np.int64), "mean_return": results.mean(axis=1),
         "mean_length": lengths.mean(axis=1)}
    )  # fmt: skip


def learning_curves(
    runs: pd.DataFrame,
    group_by: Sequence[str] = ("env_id", "agent"),
    interval: str = "bootstrap95",
    value: str = "mean_return",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean and interval across training seeds at each timestep, per group (default env x agent).

    Each run's curve is put on the union of its group's timesteps by linear interpolation
    inside its own range (never extrapolated), so runs with different ``n_envs`` line up.
    Returns columns ``*group_by, timestep, mean, low, high, n_seeds``; ``interval`` is one of
    :data:`INTERVALS`. Runs without an EvalCallback file are left out.
    """
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; accepted: {list(INTERVALS)}")
    group_by = list(group_by)
    out_cols = [*group_by, "timestep", "mean", "low", "high", "n_seeds"]
    frames = []
    if runs.empty:
        return pd.DataFrame(columns=out_cols)
    rng = np.random.default_rng(seed)
    for key, group in runs.groupby(group_by, dropna=False, sort=True):
        curves = [c for c in (run_curve(p) for p in group["path"]) if not c.empty]
        if not curves:
            continue
        grid = np.unique(np.concatenate([c["timestep"].to_numpy() for c in curves]))
        matrix = np.full((len(curves), len(grid)), np.nan)
        for i, c in enumerate(curves):
            t, y = c["timestep"].to_numpy(dtype=float), c[value].to_numpy(dtype=float)
            inside = (grid >= t.min()) & (grid <= t.max())
            matrix[i, inside] = np.interp(grid[inside], t, y)
        n = np.sum(np.isfinite(matrix), axis=0)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(matrix, axis=0)
                if interval == "std":
                    sd = np.nan_to_num(np.nanstd(matrix, axis=0, ddof=1 if matrix.shape[0] > 1 else 0))
                    low, high = mean - sd, mean + sd
                elif interval == "minmax":
                    low, high = np.nanmin(matrix, axis=0), np.nanmax(matrix, axis=0)
                else:
                    low, high = _bootstrap_mean_ci(matrix, rng, n_boot)
        key = key if isinstance(key, tuple) else (key,)
        frame = pd.DataFrame({"timestep": grid, "mean": mean, "low": low, "high": high, "n_seeds": n})
        for col, k in zip(group_by, key):
            frame.insert(group_by.index(col), col, k)
        frames.append(frame[n > 0])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=out_cols)


def _bootstrap_mean_ci(matrix: np.ndarray, rng: np.random.Generator, n_boot: int, confidence: float = 0.95):
    """Percentile bootstrap CI of the column means of ``matrix`` (rows = seeds, NaN = no data)."""
    low = np.full(matrix.shape[1], np.nan)
    high = np.full(matrix.shape[1], np.nan)
    for j in range(matrix.shape[1]):
        col = matrix[:, j][np.isfinite(matrix[:, j])]
        if col.size == 0:
            continue
        if col.size == 1:
            low[j] = high[j] = col[0]
            continue
        means = col[rng.integers(0, col.size, size=(n_boot, col.size))].mean(axis=1)
        low[j], high[j] = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return low, high


# --------------------------------------------------------------------------------------------
# Evaluation episodes and the baseline comparison
# --------------------------------------------------------------------------------------------

EPISODE_ID_COLUMNS = ["run", "env", "env_name", "agent", "training_seed", "policy", "is_baseline", "seed", "episode"]


def load_episodes(path: str | os.PathLike, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One run's held-out evaluation episodes (``evaluation/episodes.parquet``, or the older CSV).

    Columns of the Parquet contract (``run, env, env_name, agent, training_seed, policy,
    is_baseline, seed, episode, return, length, terminated, truncated`` + metrics), filled in
    from the config for the older CSV layout, plus ``run_path`` and ``variant``. An empty
    frame for a run without a readable table.
    """
    run = load_run(path, root)
    if run.episodes_file is None:
        return pd.DataFrame(columns=[*EPISODE_ID_COLUMNS, "run_path", "variant"])
    reader = _read_parquet if run.episodes_file.suffix == ".parquet" else _read_csv
    try:
        frame = _cached(run.episodes_file, reader).copy()
    except Exception:  # noqa: BLE001 -- listed as broken by load_run
        return pd.DataFrame(columns=[*EPISODE_ID_COLUMNS, "run_path", "variant"])
    trained = run.policy_name
    defaults = {
        "run": run.label,
        "env": run.env_id,
        "env_name": run.env_name,
        "agent": run.agent,
        "training_seed": run.seed,
    }
    for col, value in defaults.items():
        if col not in frame.columns:
            frame[col] = value
    if "is_baseline" not in frame.columns:
        frame["is_baseline"] = frame["policy"] != trained
    if "episode" not in frame.columns:
        frame["episode"] = frame.groupby("policy").cumcount()
    frame["is_baseline"] = frame["is_baseline"].astype(bool)
    frame["run_path"] = str(run.path)
    frame["variant"] = _kwargs_key(run.evaluation_kwargs)
    return frame


def load_episodes_for(runs: pd.DataFrame) -> pd.DataFrame:
    """The episodes of every run in ``runs`` that is not broken, concatenated."""
    usable = runs[runs["status"] != STATUS_BROKEN] if "status" in runs else runs
    frames = [f for f in (load_episodes(p) for p in usable["path"]) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=[*EPISODE_ID_COLUMNS, "run_path", "variant"])
    return pd.concat(frames, ignore_index=True, sort=False)


#: Episode columns that are identifiers or flags, never metrics.
_NON_METRICS = set(EPISODE_ID_COLUMNS) | {"run_path", "variant", "terminated", "truncated", "blowup",
                                         "integrator_status", "step_index"}  # fmt: skip

STATISTICS = ("iqm", "mean", "median")


def metric_columns(episodes: pd.DataFrame) -> list[str]:
    """The numeric per-episode quantities of ``episodes`` (return, length, final-info metrics)."""
    return [c for c in episodes.columns if c not in _NON_METRICS and pd.api.types.is_numeric_dtype(episodes[c])
            and not pd.api.types.is_bool_dtype(episodes[c])]  # fmt: skip


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean (mean of the middle 50 %), as in rliable and ``simrl.evaluation.aggregate.iqm``.

    ``scipy.stats.trim_mean(x, 0.25)``: the definition ``simrl.evaluation.aggregate`` documents
    (equal to its ``iqm``), here vectorised along ``axis`` for the bootstrap replicates.
    """
    from scipy.stats import trim_mean

    return trim_mean(values, 0.25, axis=axis)


_STAT_FUNCS: dict[str, Callable[..., Any]] = {
    "iqm": iqm,
    "mean": lambda x, axis=-1: np.mean(x, axis=axis),
    "median": lambda x, axis=-1: np.median(x, axis=axis),
}

#: The identifying columns of :func:`baseline_comparison`'s rows (before metric and statistic).
COMPARISON_KEYS = ["env", "variant", "policy", "is_baseline", "n_runs", "n_episodes"]

#: How :func:`baseline_comparison` bootstraps its confidence intervals.
CI_METHODS = {
    "runs+episodes": "two-level bootstrap: training runs, then each run's held-out episodes",
    "stratified": "stratified bootstrap of training runs within each held-out seed (rliable; simrl.evaluation.aggregate)",
}


def dedupe_baselines(episodes: pd.DataFrame) -> pd.DataFrame:
    """Keep one copy of each baseline's episodes per held-out seed (env, variant, policy, seed).

    Every run evaluates the same deterministic baselines on its held-out seeds; stacking them
    would count each episode once per run. For each (env, variant, policy, seed) the rows of
    the first run (in ``run_path`` order) that played it are kept.
    """
    if episodes.empty or not episodes["is_baseline"].any():
        return episodes
    base = episodes[episodes["is_baseline"]]
    trained = episodes[~episodes["is_baseline"]]
    keys = ["env", "variant", "policy", "seed"]
    first = base.groupby(keys, dropna=False, sort=False)["run_path"].transform("min")
    base = base[base["run_path"] == first]
    return pd.concat([trained, base], ignore_index=True, sort=False)


def baseline_comparison(
    episodes: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    statistics: Sequence[str] = STATISTICS,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    method: str = "runs+episodes",
) -> pd.DataFrame:
    """Policy x metric aggregates per environment (and evaluation variant), with bootstrap CIs.

    Returns a long table: ``env, variant, policy, is_baseline, n_runs, n_episodes, metric,
    statistic, estimate, low, high``. Trained policies are grouped by their name (the agent),
    pooling its training runs; baselines are deduplicated (:func:`dedupe_baselines`) and count
    as one run. The point estimate is over all of a policy's episodes. ``method``
    (:data:`CI_METHODS`):

    * ``"runs+episodes"`` (default): percentile bootstrap resampling the training runs with
      replacement, then each chosen run's episodes -- the CI covers both the training seed
      and the held-out initial conditions, so deterministic baselines get one too;
    * ``"stratified"``: rliable's stratified bootstrap through
      :func:`simrl.evaluation.aggregate.interval_estimates` on the (runs x held-out seeds)
      matrix -- training-seed uncertainty only (zero width for one run or a baseline).
    """
    columns = [*COMPARISON_KEYS, "metric", "statistic", "estimate", "low", "high"]
    if episodes.empty:
        return pd.DataFrame(columns=columns)
    bad = [s for s in statistics if s not in _STAT_FUNCS]
    if bad:
        raise ValueError(f"unknown statistics {bad}; accepted: {list(_STAT_FUNCS)}")
    if method not in CI_METHODS:
        raise ValueError(f"unknown CI method {method!r}; accepted: {list(CI_METHODS)}")
    data = dedupe_baselines(episodes)
    metrics = list(metrics) if metrics is not None else metric_columns(data)
    rows = []
    for (env, variant, policy), group in data.groupby(["env", "variant", "policy"], sort=False, dropna=False):
        is_baseline = bool(group["is_baseline"].iloc[0])
        if is_baseline:
            group = group.assign(run_path="baseline")
        for metric in metrics:
            if metric not in group:
                continue
            values = pd.to_numeric(group[metric], errors="coerce")
            finite = group[np.isfinite(values.to_numpy(dtype=float))]
            if finite.empty:
                continue
            rng = np.random.default_rng([seed, zlib.crc32(f"{env}|{variant}|{policy}|{metric}".encode())])
            if method == "stratified":
                estimates = _stratified(finite, metric, statistics, confidence, n_boot, rng)
            else:
                estimates = _two_level(finite, metric, statistics, confidence, n_boot, rng)
            base = {"env": env, "variant": variant, "policy": policy, "is_baseline": is_baseline,
                    "n_runs": int(finite["run_path"].nunique()), "n_episodes": int(len(finite)), "metric": metric}  # fmt: skip
            for stat, (estimate, low, high) in estimates.items():
                rows.append({**base, "statistic": stat, "estimate": estimate, "low": low, "high": high})
    return pd.DataFrame(rows, columns=columns)


def _two_level(group: pd.DataFrame, metric: str, statistics: Sequence[str], confidence: float, n_boot: int,
               rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    samples = [g[metric].to_numpy(dtype=float) for _, g in group.groupby("run_path", sort=True)]
    pooled = np.concatenate(samples)
    boots = _hierarchical_bootstrap(samples, rng, n_boot)
    out = {}
    for stat in statistics:
        f = _STAT_FUNCS[stat]
        low, high = np.quantile(f(boots, axis=1), [(1 - confidence) / 2, (1 + confidence) / 2])
        out[stat] = (float(f(pooled)), float(low), float(high))
    return out


def _stratified(group: pd.DataFrame, metric: str, statistics: Sequence[str], confidence: float, n_boot: int,
                rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    from simrl.evaluation.aggregate import interval_estimates

    matrix = group.pivot_table(index="run_path", columns="seed", values=metric, aggfunc="mean")
    matrix = matrix.dropna(axis=1)  # held-out seeds that some runs did not play
    if matrix.empty:
        return {}
    estimates = interval_estimates(matrix.to_numpy(dtype=float), reps=n_boot, confidence=confidence, rng=rng,
                                   metrics=tuple(statistics))  # fmt: skip
    return {stat: (float(e.point), float(e.low), float(e.high)) for stat, e in estimates.items()}


def _hierarchical_bootstrap(samples: list[np.ndarray], rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """``n_boot`` resamples (rows): runs with replacement, then each run's values with replacement.

    Every chosen run contributes as many draws as the longest run, so runs weigh equally.
    """
    n_runs = len(samples)
    width = max(s.size for s in samples)
    padded = np.zeros((n_runs, width))
    sizes = np.array([s.size for s in samples])
    for i, s in enumerate(samples):
        padded[i, : s.size] = s
    runs = rng.integers(0, n_runs, size=(n_boot, n_runs)) if n_runs > 1 else np.zeros((n_boot, 1), dtype=np.int64)
    picks = np.floor(rng.random((n_boot, n_runs, width)) * sizes[runs][:, :, None]).astype(np.int64)
    return padded[runs[:, :, None], picks].reshape(n_boot, n_runs * width)


def comparison_table(comparison: pd.DataFrame, statistic: str, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """A wide table of one statistic: a row per (env, policy), ``<metric>``, ``<metric> low``, ``<metric> high``."""
    sub = comparison[comparison["statistic"] == statistic]
    if metrics is not None:
        sub = sub[sub["metric"].isin(metrics)]
    if sub.empty:
        return pd.DataFrame()
    wide = sub.pivot_table(index=COMPARISON_KEYS, columns="metric", values=["estimate", "low", "high"], aggfunc="first", sort=False)
    out = pd.DataFrame(index=wide.index)
    order = list(dict.fromkeys(sub["metric"]))
    for m in order:
        out[m] = wide[("estimate", m)]
        out[f"{m} low"] = wide[("low", m)]
        out[f"{m} high"] = wide[("high", m)]
    return out.reset_index()


def front_points(
    comparison: pd.DataFrame, env: str, cost_key: str, error_key: str, statistic: str = "median", variant: str | None = None
) -> pd.DataFrame:
    """One row per policy of ``env``: cost and error estimates with their CIs (for the accuracy-cost front)."""
    sub = comparison[(comparison["env"] == env) & (comparison["statistic"] == statistic)]
    if variant is not None:
        sub = sub[sub["variant"] == variant]
    cols = ["policy", "is_baseline", "n_runs", "n_episodes", "cost", "cost_low", "cost_high", "error", "error_low", "error_high"]
    rows = []
    for (policy, is_baseline), g in sub.groupby(["policy", "is_baseline"], sort=False):
        by_metric = {m: r for m, r in zip(g["metric"], g.itertuples())}
        if cost_key not in by_metric or error_key not in by_metric:
            continue
        c, e = by_metric[cost_key], by_metric[error_key]
        rows.append({"policy": policy, "is_baseline": bool(is_baseline), "n_runs": c.n_runs, "n_episodes": c.n_episodes,
                     "cost": c.estimate, "cost_low": c.low, "cost_high": c.high,
                     "error": e.estimate, "error_low": e.low, "error_high": e.high})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
