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
human-readable ``problem``. Each file is validated where it is read (``check_config``,
``check_run_info``, ``check_summary``, ``check_evaluations``, ``check_episode_columns``): a
value of the wrong type -- a list where an object belongs, a NaN seed, learning-curve arrays of
different lengths -- is a problem naming the file, the key and what was expected, and the
:class:`Run` accessors return None / {} for it, so no later step sees it.

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


def _read_config(path: Path) -> tuple[Any, dict[str, Any]]:
    """``.hydra/config.yaml`` as written (Hydra saves it unresolved) and its interpolations resolved.

    The second item maps the dotted keys of :data:`_RESOLVED_KEYS` whose value is an
    interpolation (``total_timesteps: ${env.total_timesteps}``) to their resolved value.
    """
    cfg = _read_yaml(path)
    return cfg, _resolve_interpolations(cfg) if isinstance(cfg, dict) else {}


def _read_parquet_meta(path: Path) -> dict[str, Any]:
    """Row count, column names and each column's kind (:func:`_arrow_kind`) from the Parquet footer."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    schema = meta.schema.to_arrow_schema()
    return {"num_rows": meta.num_rows, "columns": list(schema.names),
            "kinds": {f.name: _arrow_kind(f.type) for f in schema}}  # fmt: skip


def _arrow_kind(arrow_type: Any) -> str:
    """``"string"``, ``"integer"``, ``"float"``, ``"bool"`` or the type's name, for an Arrow type."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):  # a pandas categorical
        arrow_type = arrow_type.value_type
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    return str(arrow_type)


def _pandas_kind(series: pd.Series) -> str:
    """The :func:`_arrow_kind` of a pandas column (object columns count as strings)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "string"
    return str(dtype)


def _read_zip_ok(path: Path) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


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
            if ".hydra" in dirnames and _is_file(here / ".hydra" / "config.yaml"):
                found.add(here.resolve())
                dirnames[:] = []
                continue
            dirnames[:] = sorted(
                d for d in dirnames
                if not d.startswith(".") and d not in _SKIP_DIRS and not _exists(here / d / "pyvenv.cfg")
            )  # fmt: skip
    return sorted(found)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where it cannot be told (permissions, a name too long...)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _as_roots(roots: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(roots, (str, os.PathLike)):
        return [Path(roots)]
    return [Path(r) for r in roots]


def _sweep_root(path: Path, stop: Path | None) -> Path | None:
    """The nearest ancestor holding ``multirun.yaml`` (a Hydra sweep), or None."""
    for parent in path.parents:
        if _is_file(parent / "multirun.yaml"):
            return parent
        if stop is not None and parent == stop:
            break
    return None


# --------------------------------------------------------------------------------------------
# Validation at the boundary
#
# Each file's parsed content is checked against what the dashboard reads from it. A mismatch
# becomes one specific problem, "<file>: <key> is <value> (expected <what>)", which makes the
# run "broken"; the Run's accessors (typed getters below) return None / {} for such a value,
# so nothing downstream ever sees a wrong type.
# --------------------------------------------------------------------------------------------

CONFIG_FILE, RUN_INFO_FILE, EVALUATIONS_FILE = ".hydra/config.yaml", "run_info.json", "eval_callback/evaluations.npz"
EPISODES_FILE, EPISODES_CSV, SUMMARY_FILE = "evaluation/episodes.parquet", "evaluation/episodes.csv", "evaluation/summary.json"
MODEL_FILE = "final_model.zip"

_INT64_MAX = 2**63 - 1
#: The largest held-out seed count the dashboard accepts (``evaluation.n_seeds``).
MAX_HELD_OUT_SEEDS = 100_000
#: Config keys whose Hydra interpolations (``${env.total_timesteps}``) are resolved.
_RESOLVED_KEYS = ("seed", "total_timesteps", "n_envs", "evaluation.enabled", "evaluation.n_seeds", "evaluation.first_seed")

#: Columns of the episodes table the dashboard relies on, with their kind (see
#: ``simrl.evaluation.report.EPISODE_COLUMNS``, the writer's contract); required ones first.
_EPISODE_KINDS = {"policy": "string", "seed": "integer", "is_baseline": "bool", "episode": "integer",
                  "training_seed": "integer", "run": "string", "env": "string", "env_name": "string",
                  "agent": "string"}  # fmt: skip
_REQUIRED_EPISODE_COLUMNS = ("policy", "seed")


def _describe(value: Any) -> str:
    """A wrong value as a problem message shows it: a short repr for scalars, the kind of a container."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong(file: str, key: str, value: Any, expected: str) -> str:
    return f"{file}: {key} is {_describe(value)} (expected {expected})"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_float(value: Any) -> bool:
    """A number that is a float, or an int a float can hold (not 2**1100: float() overflows)."""
    return _is_number(value) and (not isinstance(value, int) or abs(value) < 2**1024)


def _as_int(value: Any, low: int = 0, high: int = _INT64_MAX) -> int | None:
    """``value`` as an int in [low, high] when it is one (an integral, finite float counts), else None."""
    if not _is_number(value):
        return None
    if isinstance(value, (float, np.floating)) and not (math.isfinite(value) and float(value).is_integer()):
        return None
    number = int(value)
    return number if low <= number <= high else None


def _as_str(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _as_bool(value: Any) -> bool | None:
    return bool(value) if isinstance(value, (bool, np.bool_)) else None


def _as_mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _is_str_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _lookup(data: Any, dotted: str) -> tuple[bool, Any]:
    """(found, value) of a dotted key; not found when a part is missing or not a mapping."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return False, None
        data = data[part]
    return True, data


def _resolve_interpolations(cfg: dict[str, Any]) -> dict[str, Any]:
    """Resolve the interpolated values among :data:`_RESOLVED_KEYS` with OmegaConf (only those keys)."""
    wanted = [k for k in _RESOLVED_KEYS if _is_interpolation(_lookup(cfg, k)[1])]
    if not wanted:
        return {}
    try:
        from omegaconf import Container, OmegaConf

        conf = OmegaConf.create(cfg)
    except Exception:  # noqa: BLE001 -- OmegaConf refuses this config; its interpolations stay unresolved
        return {}
    out = {}
    for key in wanted:
        try:
            value = OmegaConf.select(conf, key, throw_on_resolution_failure=True)
            out[key] = OmegaConf.to_container(value, resolve=True) if isinstance(value, Container) else value
        except Exception:  # noqa: BLE001 -- an interpolation that does not resolve outside Hydra: noted
            pass
    return out


def _int_check(low: int, high: int) -> tuple[Callable[[Any], bool], str]:
    bound = "2**63)" if high == _INT64_MAX else f"{high}]"
    return (lambda v: _as_int(v, low, high) is not None), f"an integer in [{low}, {bound}"


_STRING = (lambda v: isinstance(v, str)), "a string"
_MAPPING = (lambda v: isinstance(v, Mapping)), "a mapping"
_KWARGS = _is_str_mapping, "a mapping of argument names"
_BOOL = (lambda v: isinstance(v, bool)), "true or false"
_NUMBER = _is_float, "a number"
_SECONDS = (lambda v: _is_float(v) and math.isfinite(v) and v >= 0), "a non-negative, finite number of seconds"
_COUNT = _int_check(0, _INT64_MAX)

#: Per config key the dashboard reads: (check, what is expected). A null counts as missing.
_CONFIG_SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    "env": _MAPPING, "env.id": _STRING, "env.name": _STRING, "env.kwargs": _KWARGS, "env.evaluation_kwargs": _KWARGS,
    "env.cost_key": _STRING, "env.error_key": _STRING, "env.cost_label": _STRING, "env.error_label": _STRING,
    "agent": _MAPPING, "agent.name": _STRING, "agent.class_path": _STRING,
    "seed": _COUNT, "total_timesteps": _COUNT, "n_envs": _COUNT,
    "evaluation": _MAPPING, "evaluation.enabled": _BOOL, "evaluation.n_seeds": _int_check(0, MAX_HELD_OUT_SEEDS),
    "evaluation.first_seed": _COUNT,
}  # fmt: skip

#: The same for ``run_info.json`` (``error`` is shown as it is, whatever it holds).
_RUN_INFO_SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    "status": _STRING, "env": _STRING, "env_id": _STRING, "env_name": _STRING, "agent": _STRING, "seed": _COUNT,
    "total_timesteps": _COUNT, "num_timesteps": _COUNT, "train_seconds": _SECONDS, "finished_at": _STRING,
}  # fmt: skip


def _check_schema(file: str, data: Mapping[str, Any], schema: Mapping[str, tuple[Callable[[Any], bool], str]],
                  resolved: Mapping[str, Any] | None = None) -> tuple[list[str], list[str]]:  # fmt: skip
    """(problems, notes) of ``data`` against ``schema``; a key under a wrong-typed section is not checked again."""
    problems: list[str] = []
    notes: list[str] = []
    resolved = resolved or {}
    for key, (ok, expected) in schema.items():
        found, value = _lookup(data, key)
        if not found or value is None:
            continue
        value = resolved.get(key, value)
        if _is_interpolation(value):
            notes.append(f"{file}: {key} is the interpolation {_describe(value)}, which does not resolve here")
        elif not ok(value):
            problems.append(_wrong(file, key, value, expected))
    return problems, notes


def check_config(cfg: Mapping[str, Any], resolved: Mapping[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of a parsed ``.hydra/config.yaml``: wrong types of the keys the dashboard reads."""
    return _check_schema(CONFIG_FILE, cfg, _CONFIG_SCHEMA, resolved)


def check_run_info(info: Mapping[str, Any]) -> list[str]:
    """Problems of a parsed ``run_info.json`` (an object): wrong types of the keys the dashboard reads."""
    return _check_schema(RUN_INFO_FILE, info, _RUN_INFO_SCHEMA)[0]


def check_summary(summary: Mapping[str, Any]) -> list[str]:
    """Problems of a parsed ``evaluation/summary.json`` (an object).

    ``summaries`` (the ThreeBody-style evaluation; other families write other keys) must be a
    list of objects with a string ``policy`` and numeric ``median_cost`` / ``median_error``;
    ``comparison`` an object with a string ``policy`` and boolean ``beats_nearest`` /
    ``dominated``; ``seeds`` a list of non-negative integers.
    """
    f = SUMMARY_FILE
    problems: list[str] = []
    summaries = summary.get("summaries")
    if summaries is not None and not isinstance(summaries, list):
        problems.append(_wrong(f, "summaries", summaries, "a list of per-policy objects"))
    for i, entry in enumerate(summaries if isinstance(summaries, list) else []):
        if not isinstance(entry, Mapping):
            problems.append(_wrong(f, f"summaries[{i}]", entry, "an object"))
            continue
        if entry.get("policy") is not None and not isinstance(entry["policy"], str):
            problems.append(_wrong(f, f"summaries[{i}].policy", entry["policy"], "a policy name"))
        for key in ("median_cost", "median_error"):
            if entry.get(key) is not None and not _is_float(entry[key]):
                problems.append(_wrong(f, f"summaries[{i}].{key}", entry[key], "a number"))
    comparison = summary.get("comparison")
    if comparison is not None and not isinstance(comparison, Mapping):
        problems.append(_wrong(f, "comparison", comparison, "an object"))
    elif comparison is not None:
        if comparison.get("policy") is not None and not isinstance(comparison["policy"], str):
            problems.append(_wrong(f, "comparison.policy", comparison["policy"], "a policy name"))
        for key in ("beats_nearest", "dominated"):
            if comparison.get(key) is not None and not isinstance(comparison[key], bool):
                problems.append(_wrong(f, f"comparison.{key}", comparison[key], "true or false"))
    seeds = summary.get("seeds")
    if seeds is not None and not (isinstance(seeds, list) and all(_as_int(s) is not None for s in seeds)):
        problems.append(_wrong(f, "seeds", seeds, "a list of non-negative integers"))
    return problems


def check_evaluations(ev: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """(the arrays normalised, None) or (None, the problem) for a read ``evaluations.npz``.

    ``timesteps``: 1-D, numbers, finite, non-negative, non-decreasing, at least one evaluation;
    ``results`` (and ``ep_lengths`` when present): numbers with one row per timestep and at least
    one episode per row. Normalised: ``timesteps`` int64, ``results``/``ep_lengths`` float 2-D.
    """
    f = EVALUATIONS_FILE
    missing = [k for k in ("timesteps", "results") if k not in ev]
    if missing:
        return None, f"{f}: no {' or '.join(repr(k) for k in missing)} array (has {sorted(ev)})"
    t = ev["timesteps"]
    if t.ndim != 1 or t.dtype.kind not in "iuf":
        return None, f"{f}: 'timesteps' is {_describe(t)} (expected a 1-D array of step counts)"
    if t.size == 0:
        return None, f"{f}: 'timesteps' is empty (no evaluation recorded)"
    steps = t.astype(np.float64)  # not the file's dtype: np.diff of unsigned integers wraps around
    if not np.all(np.isfinite(steps)) or np.any(steps < 0) or np.any(steps > 2**53):
        return None, f"{f}: 'timesteps' has values outside [0, 2**53] (or NaN): {t[:5].tolist()}"
    if np.any(np.diff(steps) < 0):
        return None, f"{f}: 'timesteps' is not in increasing order: {t[:5].tolist()}"
    out = {"timesteps": t.astype(np.int64)}
    for key in ("results", "ep_lengths"):
        if key not in ev:
            continue
        a = ev[key]
        if a.dtype.kind not in "iuf" or a.ndim == 0 or a.shape[0] != t.size or a.size == 0:
            return None, (f"{f}: {key!r} is {_describe(a)} (expected numbers, one row per timestep: "
                          f"shape ({t.size}, n_episodes))")  # fmt: skip
        out[key] = a.reshape(t.size, -1).astype(float)
    return out, None


def check_episode_columns(file: str, columns: Sequence[str], kinds: Mapping[str, str], num_rows: int) -> str | None:
    """The problem of an episodes table (columns, their kinds, row count), or None."""
    missing = [c for c in _REQUIRED_EPISODE_COLUMNS if c not in columns]
    if missing:
        return f"{file}: no column {missing} (has {list(columns)[:12]})"
    wrong = [f"{c!r} is {kinds[c]} (expected {kind})" for c, kind in _EPISODE_KINDS.items() if c in kinds and kinds[c] != kind]
    if wrong:
        return f"{file}: column {', column '.join(wrong)}"
    if num_rows == 0:
        return f"{file}: no rows (no evaluation episode recorded)"
    return None


def _episode_frame_problem(file: str, frame: pd.DataFrame) -> str | None:
    return check_episode_columns(file, list(frame.columns), {c: _pandas_kind(frame[c]) for c in frame.columns}, len(frame))


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the dashboard knows about one run folder (the parsed files, not the big tables).

    ``config``, ``run_info`` and ``summary`` are the files as parsed; read them through the
    accessors, which return None / {} for a value of the wrong type (reported in ``problems``).
    ``evaluations`` holds the validated, normalised arrays (:func:`check_evaluations`).
    """

    path: Path
    root: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)
    run_info: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    evaluations: dict[str, np.ndarray] | None = None
    status: str = STATUS_COMPLETE
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    episodes_file: Path | None = None
    model_ok: bool = False
    modified: float = math.nan

    # ---- config accessors (with defaults for older configs) -----------------------------
    def config_value(self, dotted: str) -> Any:
        """A config value by dotted key, its interpolation resolved (:data:`_RESOLVED_KEYS`); None if missing."""
        if dotted in self.resolved:
            return self.resolved[dotted]
        return _lookup(self.config, dotted)[1]

    @property
    def env_cfg(self) -> dict[str, Any]:
        return _as_mapping(self.config.get("env"))

    @property
    def agent_cfg(self) -> dict[str, Any]:
        return _as_mapping(self.config.get("agent"))

    @property
    def info(self) -> dict[str, Any]:
        return self.run_info or {}

    @property
    def env_id(self) -> str | None:
        env, info = self.env_cfg, self.info
        found = _as_str(env.get("id")) or _as_str(info.get("env_id")) or _as_str(info.get("env"))
        if found:
            return found
        name = _as_str(env.get("name")) or _as_str(info.get("env_name"))
        return ENV_IDS_BY_NAME.get(name) if name else None

    @property
    def env_name(self) -> str | None:
        return _as_str(self.env_cfg.get("name")) or _as_str(self.info.get("env_name"))

    @property
    def agent(self) -> str | None:
        name = _as_str(self.agent_cfg.get("name")) or _as_str(self.info.get("agent"))
        class_path = _as_str(self.agent_cfg.get("class_path"))
        if not name and class_path:
            name = class_path.rsplit(".", 1)[-1].lower()
        return name

    @property
    def seed(self) -> int | None:
        """The training seed: the config's, else (missing or of the wrong type) run_info.json's."""
        found = _as_int(self.config_value("seed"))
        return found if found is not None else _as_int(self.info.get("seed"))

    @property
    def total_timesteps(self) -> int | None:
        found = _as_int(self.config_value("total_timesteps"))
        return found if found is not None else _as_int(self.info.get("total_timesteps"))

    def env_key(self, key: str) -> str | None:
        """``env.cost_key`` / ``error_key`` / ``cost_label`` / ``error_label``, defaulted per env id."""
        value = _as_str(self.env_cfg.get(key))
        if value:
            return value
        return ENV_DEFAULTS.get(self.env_id or "", {}).get(key)

    @property
    def train_kwargs(self) -> dict[str, Any]:
        kwargs = self.env_cfg.get("kwargs")
        return dict(kwargs) if _is_str_mapping(kwargs) else {}

    @property
    def evaluation_kwargs(self) -> dict[str, Any]:
        """The environment arguments of the held-out evaluation (training kwargs + evaluation overrides)."""
        overrides = self.env_cfg.get("evaluation_kwargs")
        return {**self.train_kwargs, **(dict(overrides) if _is_str_mapping(overrides) else {})}

    @property
    def evaluation_enabled(self) -> bool:
        enabled = self.config_value("evaluation.enabled")
        return enabled if isinstance(enabled, bool) else True

    @property
    def evaluation_seeds(self) -> list[int]:
        """The held-out evaluation seeds: ``summary.json`` ``seeds``, else ``evaluation.first_seed``/``n_seeds``."""
        seeds = (self.summary or {}).get("seeds")
        if isinstance(seeds, list) and seeds and all(_as_int(s) is not None for s in seeds):
            return [int(s) for s in seeds]
        first = _as_int(self.config_value("evaluation.first_seed"))
        n = _as_int(self.config_value("evaluation.n_seeds"), 1, MAX_HELD_OUT_SEEDS)
        first = 1_000_000 if first is None else first
        return list(range(first, first + (10 if n is None else n)))

    # ---- summary accessors ----------------------------------------------------------------
    @property
    def summaries(self) -> list[dict[str, Any]]:
        """The per-policy entries of ``summary.json`` that are objects."""
        entries = (self.summary or {}).get("summaries")
        return [dict(s) for s in entries if isinstance(s, Mapping)] if isinstance(entries, list) else []

    @property
    def comparison(self) -> dict[str, Any]:
        """``summary.json`` ``comparison`` (trained policy against its nearest baseline), or {}."""
        return _as_mapping((self.summary or {}).get("comparison"))

    @property
    def policy_name(self) -> str | None:
        """The trained policy's name in the evaluation tables (the agent's name)."""
        return _as_str(self.comparison.get("policy")) or self.agent

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

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
        for s in self.summaries:
            if s.get("policy") == self.policy_name:
                return s
        return None

    def final_score(self) -> float:
        """Mean return of the last EvalCallback evaluation (NaN without one)."""
        if self.evaluations is None:
            return math.nan
        return float(np.mean(self.evaluations["results"][-1]))


def load_run(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Run:
    """Read one run folder; never raises for a bad folder (see :class:`Run` ``status``/``problems``)."""
    run = Run(path=Path(path), root=Path(root) if root is not None else None)
    try:
        _fill_run(run)
    except Exception as exc:  # noqa: BLE001 -- last resort: a dashboard row, never a crash
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
    config_read = False
    st = stat(CONFIG_FILE)
    if st is None:
        broken.append(f"no {CONFIG_FILE}")
    else:
        try:
            cfg, resolved = _cached(p / CONFIG_FILE, _read_config, st)
        except Exception as exc:  # noqa: BLE001 -- the YAML parser's errors, reported with the file
            broken.append(f"{CONFIG_FILE} unreadable ({_short_error(exc)})")
        else:
            if isinstance(cfg, dict):
                run.config, run.resolved, config_read = cfg, dict(resolved), True
                problems, notes = check_config(cfg, resolved)
                broken += problems
                run.notes += notes
            else:
                broken.append(f"{CONFIG_FILE} is {_describe(cfg)}, not a mapping")

    # -- run_info.json ---------------------------------------------------------------------
    st = stat(RUN_INFO_FILE)
    if st is None:
        run.notes.append(f"no {RUN_INFO_FILE} (run written before simrl recorded it)")
    else:
        try:
            info = _cached(p / RUN_INFO_FILE, _read_json, st)
        except Exception as exc:  # noqa: BLE001 -- the JSON parser's errors, reported with the file
            broken.append(f"{RUN_INFO_FILE} unreadable ({_short_error(exc)})")
        else:
            if not isinstance(info, dict):
                broken.append(f"{RUN_INFO_FILE} unreadable (is {_describe(info)}, not a JSON object)")
            else:
                run.run_info = info
                problems = check_run_info(info)
                broken += problems
                status = info.get("status")
                error = f": {info['error']}" if info.get("error") else ""
                if status == "failed":
                    broken.append(f"training failed{error}")
                elif status == "interrupted":
                    incomplete.append(f"training was interrupted{error}")
                elif status != "complete" and (status is None or isinstance(status, str)):
                    age = _age(time.time() - latest) if latest else "unknown"
                    incomplete.append(
                        f"{RUN_INFO_FILE} status is {status!r}: still training, or killed mid-way "
                        f"(last file written {age} ago)"
                    )

    # -- config keys (older configs) ---------------------------------------------------------
    if config_read:
        cfg = run.config
        env_raw = cfg.get("env")
        if env_raw is None:
            broken.append("config has no 'env' section (written by an older simrl?)")
        elif isinstance(env_raw, Mapping) and env_raw.get("id") in (None, ""):
            if run.env_id:
                run.notes.append(f"config lacks env.id; assumed {run.env_id} from env.name")
            else:
                broken.append("config lacks env.id and env.name (written by an older simrl?)")
        agent_raw = cfg.get("agent")
        if not run.agent and (agent_raw is None or isinstance(agent_raw, Mapping)):
            broken.append("config lacks agent.name (written by an older simrl?)")
        missing = [k for k in ("seed", "total_timesteps", "n_envs") if cfg.get(k) is None]
        if missing:
            run.notes.append(f"config lacks {', '.join(missing)} (older simrl)")
        defaulted = [k for k in ("cost_key", "error_key") if run.env_cfg and run.env_cfg.get(k) in (None, "")]
        if defaulted and run.env_id:
            if run.env_id in ENV_DEFAULTS:
                run.notes.append(f"config lacks env.{'/'.join(defaulted)}; using the {run.env_id} defaults")
            else:
                run.notes.append(f"config lacks env.{'/'.join(defaulted)}; no accuracy-cost plane")

    # -- model -----------------------------------------------------------------------------
    st = stat(MODEL_FILE)
    if st is None:
        incomplete.append(f"no {MODEL_FILE} (training did not finish)")
    else:
        try:
            run.model_ok = bool(_cached(p / MODEL_FILE, _read_zip_ok, st))
        except OSError as exc:
            run.notes.append(f"{MODEL_FILE} unreadable ({_short_error(exc)}); the trained policy cannot be played")
        else:
            if not run.model_ok:
                run.notes.append(f"{MODEL_FILE} is not a zip archive (truncated?); the trained policy cannot be played")

    # -- EvalCallback ----------------------------------------------------------------------
    st = stat(EVALUATIONS_FILE)
    if st is not None:
        try:
            ev = _cached(p / EVALUATIONS_FILE, _read_npz, st)
        except Exception as exc:  # noqa: BLE001 -- numpy's and zipfile's errors, reported with the file
            broken.append(f"{EVALUATIONS_FILE} unreadable ({_short_error(exc)})")
        else:
            run.evaluations, problem = check_evaluations(ev)
            if problem:
                broken.append(problem)
    elif run.agent_cfg.get("sb3_callbacks", True) and run.config:
        run.notes.append(f"no {EVALUATIONS_FILE} (no learning curve)")

    # -- evaluation ------------------------------------------------------------------------
    st_parquet = stat(EPISODES_FILE)
    st_csv = stat(EPISODES_CSV)
    if st_parquet is not None:
        try:
            meta = _cached(p / EPISODES_FILE, _read_parquet_meta, st_parquet)
        except Exception as exc:  # noqa: BLE001 -- pyarrow's errors, reported with the file
            broken.append(f"{EPISODES_FILE} unreadable ({_short_error(exc)})")
        else:
            problem = check_episode_columns(EPISODES_FILE, meta["columns"], meta["kinds"], meta["num_rows"])
            if problem:
                broken.append(problem)
            else:
                run.episodes_file = p / EPISODES_FILE
    elif st_csv is not None:
        run.notes.append(f"older layout: {EPISODES_CSV}, no episodes.parquet")
        try:
            frame = _cached(p / EPISODES_CSV, _read_csv, st_csv)
        except Exception as exc:  # noqa: BLE001 -- pandas' CSV errors, reported with the file
            broken.append(f"{EPISODES_CSV} unreadable ({_short_error(exc)})")
        else:
            problem = _episode_frame_problem(EPISODES_CSV, frame)
            if problem:
                broken.append(problem)
            else:
                run.episodes_file = p / EPISODES_CSV
    elif run.evaluation_enabled:
        incomplete.append(f"no {EPISODES_FILE} (the held-out evaluation has not finished, or was interrupted)")

    st = stat(SUMMARY_FILE)
    if st is not None:
        try:
            summary = _cached(p / SUMMARY_FILE, _read_json, st)
        except Exception as exc:  # noqa: BLE001 -- the JSON parser's errors, reported with the file
            broken.append(f"{SUMMARY_FILE} unreadable ({_short_error(exc)})")
        else:
            if isinstance(summary, dict):
                run.summary = summary
                broken += check_summary(summary)
            else:
                broken.append(f"{SUMMARY_FILE} is {_describe(summary)}, not a JSON object")
    elif run.evaluation_enabled and st_parquet is not None:
        incomplete.append(f"no {SUMMARY_FILE}")

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
    """One row per :class:`Run`; ``variant`` tells evaluation settings of one environment apart.

    A run whose row cannot be built (a bug, never a bad file: those are problems already) gets
    a ``broken`` row saying so; the other rows are unaffected.
    """
    rows = []
    for run in runs:
        try:
            rows.append(_run_row(run))
        except Exception as exc:  # noqa: BLE001 -- last resort: one broken row, never a crash
            rows.append({"run": run.label, "status": STATUS_BROKEN, "path": str(run.path),
                         "problem": "; ".join([*run.problems, f"unexpected error building the row: {_short_error(exc)}"]),
                         "notes": "; ".join(run.notes), "variant": _kwargs_key({}), "sweep": "",
                         "modified": pd.NaT})  # fmt: skip
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    frame["seed"] = frame["seed"].astype("Int64")
    for col in ("total_timesteps", "num_timesteps", "train_seconds", "final_score", "median_cost", "median_error"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def _run_row(run: Run) -> dict[str, Any]:
    info = run.info
    trained = run.trained_summary() or {}
    comparison = run.comparison
    sweep = _sweep_root(run.path, run.root)
    return {
        "run": run.label,
        "status": run.status,
        "problem": "; ".join(run.problems),
        "env_id": run.env_id,
        "env_name": run.env_name,
        "agent": run.agent,
        "seed": run.seed,
        "total_timesteps": _num(run.total_timesteps),
        "num_timesteps": _num(_as_int(info.get("num_timesteps"))),
        "train_seconds": _num(info.get("train_seconds")),
        "final_score": run.final_score(),
        "median_cost": _num(trained.get("median_cost")),
        "median_error": _num(trained.get("median_error")),
        "beats_nearest": _as_bool(comparison.get("beats_nearest")),
        "dominated": _as_bool(comparison.get("dominated")),
        "sweep": _relative(sweep, run.root) if sweep else "",
        "variant": _kwargs_key(run.evaluation_kwargs),
        "notes": "; ".join(run.notes),
        "finished_at": _as_str(info.get("finished_at")),
        "modified": pd.Timestamp(datetime.fromtimestamp(run.modified)) if math.isfinite(run.modified) else pd.NaT,
        "path": str(run.path),
    }


def _relative(path: Path, root: Path | None) -> str:
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root))
    return str(path)


def _num(value: Any) -> float:
    """A number as a float (NaN for anything else: None, a string, a bool, a list, an int too big)."""
    if not _is_number(value):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` with every mapping key a string (json.dumps(sort_keys=True) needs comparable keys)."""
    if depth > 20:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return value


def _kwargs_key(kwargs: Mapping[str, Any]) -> str:
    return json.dumps(_jsonable(kwargs), sort_keys=True, default=str)


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
    ev = run.evaluations  # validated by check_evaluations: 1-D timesteps, one results row per timestep
    if ev is None:
        return pd.DataFrame(columns=["timestep", "mean_return", "mean_length"])
    results = ev["results"]
    lengths = ev.get("ep_lengths", np.full_like(results, np.nan))
    return pd.DataFrame(
        {"timestep": ev["timesteps"], "mean_return": results.mean(axis=1), "mean_length": lengths.mean(axis=1)}
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
    except Exception:  # noqa: BLE001 -- the parser's errors; listed as broken by load_run
        return pd.DataFrame(columns=[*EPISODE_ID_COLUMNS, "run_path", "variant"])
    if _episode_frame_problem(run.episodes_file.name, frame):  # the data disagrees with the footer load_run read
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
