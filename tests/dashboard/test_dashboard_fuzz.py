"""Property tests of the dashboard's data layer: damage a valid run folder in generated ways.

Each example copies a real run folder (``dashboard_runs.single``, trained once per session) twice
under one root, ``damaged`` and ``intact``, damages ``damaged``'s files -- wrong JSON/YAML types,
NaN/inf, wrong array shapes and dtypes, wrong Parquet column types, truncated, empty, garbage or
deleted files -- and checks that

* the runs table loader (:func:`runs.load_runs`) and every per-run loader a page calls never raise,
  and what they return is well typed (the overview converts to Arrow, as ``st.dataframe`` does);
* a run that is not ``complete`` says why (a non-empty ``problem``); damage to what the
  dashboard reads is always reported, naming the damaged file;
* the intact sibling loads exactly as the undamaged folder does.

Profiles: ``simrl-fuzz`` (the default, 25 examples per test, a few seconds) and ``simrl-fuzz-deep``
(``SIMRL_FUZZ_EXAMPLES`` examples, e.g. ``SIMRL_FUZZ_EXAMPLES=2000 pytest tests/dashboard/test_dashboard_fuzz.py``).
No example database is written into the repository; a failure prints its ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simrl.dashboard import runs
from simrl.dashboard.rollout import held_out_seeds, policy_choices

settings.register_profile("simrl-fuzz", max_examples=25, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
settings.register_profile("simrl-fuzz-deep", parent=settings.get_profile("simrl-fuzz"),
                          max_examples=int(os.environ.get("SIMRL_FUZZ_EXAMPLES") or 1000))  # fmt: skip
#: The profile of this module's tests (not loaded globally: other modules keep theirs).
FUZZ = settings.get_profile("simrl-fuzz-deep" if os.environ.get("SIMRL_FUZZ_EXAMPLES") else "simrl-fuzz")

CONFIG, RUN_INFO, SUMMARY = ".hydra/config.yaml", "run_info.json", "evaluation/summary.json"
NPZ, PARQUET, MODEL = "eval_callback/evaluations.npz", "evaluation/episodes.parquet", "final_model.zip"
FILES = [CONFIG, RUN_INFO, SUMMARY, NPZ, PARQUET, MODEL]
#: What the problem message names for each file.
NAMES = {CONFIG: "config", RUN_INFO: "run_info.json", SUMMARY: "summary.json", NPZ: "evaluations.npz",
         PARQUET: "episodes.parquet", MODEL: "final_model.zip"}  # fmt: skip

#: Overview columns whose value comes from the files (not where the folder is).
VALUE_COLUMNS = [c for c in runs.RUN_COLUMNS if c not in ("run", "path", "modified")]
#: The overview columns the Runs page shows with st.dataframe.
SHOWN = ["run", "status", "problem", "env_name", "agent", "seed", "total_timesteps", "train_seconds", "final_score",
         "median_cost", "median_error", "beats_nearest", "dominated", "sweep", "notes", "modified"]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The template run and its intact baseline
# ---------------------------------------------------------------------------------------------


class Template(dict):
    """The template's facts (a dict); printed short in a failing example."""

    def __repr__(self) -> str:
        return f"Template({self['folder']})"


@pytest.fixture(scope="module")
def template(dashboard_runs, tmp_path_factory) -> Template:
    """The files of a real run the dashboard reads (plus .hydra/), its overview row and its loaders' results."""
    base = tmp_path_factory.mktemp("fuzz")
    folder = base / "template"
    for rel in [*FILES, ".hydra"]:
        source = dashboard_runs.single / rel
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    frame = runs.load_runs(base)
    assert len(frame) == 1 and frame["status"].iloc[0] == "complete", frame["problem"].iloc[0]
    return Template({
        "base": base,
        "folder": folder,
        "row": frame.iloc[0][VALUE_COLUMNS].to_dict(),
        "curve": runs.run_curve(folder),
        "episodes": len(runs.load_episodes(folder)),
        "seeds": held_out_seeds(folder),
        "choices": policy_choices(folder),
    })


def _same(a: Any, b: Any) -> bool:
    if _missing(a) and _missing(b):
        return True
    return not _missing(a) and not _missing(b) and a == b


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (str, list, dict)) and bool(pd.isna(value)))


# ---------------------------------------------------------------------------------------------
# Damage: strategies (plain data, so a failing example prints readably) and how it is applied
# ---------------------------------------------------------------------------------------------

#: Values that break naive conversions (int(nan), int(inf), Int64 of 2**64, float of 2**1100, bool as a number...).
SPECIAL = [math.nan, math.inf, -math.inf, -1, 2**64, 2**1100, 0.5, True, "", "12", [], {}, [1, 2], {"a": 1}]

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=8) | st.sampled_from(SPECIAL))  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=6)  # fmt: skip
garbage = st.binary(max_size=40).map(lambda b: b"\xff\x00" + b)  # never valid UTF-8, JSON, YAML, zip or Parquet
file_damage = st.one_of(
    st.just(("delete",)),
    st.just(("empty",)),
    st.tuples(st.just("truncate"), st.floats(0.05, 0.9)),
    st.tuples(st.just("garbage"), garbage),
)
tree_damage = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**6), values),  # the n-th key or item of the document (mod their count)
    st.tuples(st.just("delete_key"), st.integers(0, 10**6)),
    st.tuples(st.just("document"), values),
)
ARRAY_DTYPES = [np.int64, np.uint8, np.float32, np.float64, np.bool_, np.complex128, np.dtype("<U3"), np.dtype("M8[s]")]
arrays = hnp.arrays(dtype=st.sampled_from(ARRAY_DTYPES), shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
npz_damage = st.one_of(
    st.tuples(st.just("array"), st.sampled_from(["timesteps", "results", "ep_lengths", "extra"]), arrays),
    st.tuples(st.just("drop_array"), st.sampled_from(["timesteps", "results", "ep_lengths"])),
)
CASTS = ["string", "float", "int", "bool", "null"]
parquet_damage = st.one_of(
    st.tuples(st.just("cast"), st.integers(0, 100), st.sampled_from(CASTS)),  # the n-th column (mod their count)
    st.tuples(st.just("drop_column"), st.integers(0, 100)),
    st.tuples(st.just("rows"), st.integers(0, 3)),  # keep the first n rows
)
ANY_DAMAGE = {
    CONFIG: file_damage | tree_damage,
    RUN_INFO: file_damage | tree_damage,
    SUMMARY: file_damage | tree_damage,
    NPZ: file_damage | npz_damage,
    PARQUET: file_damage | parquet_damage,
    MODEL: file_damage,
}
damages = st.lists(st.one_of(*[st.tuples(st.just(f), ANY_DAMAGE[f]) for f in FILES]), min_size=1, max_size=3)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key / item path of a parsed JSON/YAML document, depth first."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _set_path(tree: Any, path: tuple, value: Any) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _delete_path(tree: Any, path: tuple) -> None:
    for key in path[:-1]:
        tree = tree[key]
    del tree[path[-1]]


def _cast(column: pd.Series, to: str) -> pd.Series:
    if to == "string":
        return column.astype(str)
    if to == "null":
        return pd.Series([None] * len(column), index=column.index, dtype=object)
    if to == "bool":
        return column.astype(bool)
    numbers = pd.to_numeric(column, errors="coerce").astype(float)
    return numbers if to == "float" else pd.Series(np.nan_to_num(numbers, posinf=0, neginf=0).astype(np.int64), index=column.index)


def apply_damage(run: Path, file: str, damage: tuple) -> None:
    path, kind = run / file, damage[0]
    if kind == "delete":
        path.unlink(missing_ok=True)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncate":
        if path.exists():
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * damage[1])])
    elif kind == "garbage":
        path.write_bytes(damage[1])
    elif kind in ("set", "delete_key", "document"):
        _damage_tree(path, damage)
    elif kind in ("array", "drop_array"):
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays_ = {k: data[k] for k in data.files}
        except Exception:  # noqa: BLE001 -- already damaged beyond reading: leave it
            return
        if kind == "array":
            arrays_[damage[1]] = damage[2]
        else:
            arrays_.pop(damage[1], None)
        with open(path, "wb") as f:
            np.savez(f, **arrays_)
    elif kind in ("cast", "drop_column", "rows"):
        try:
            frame = pd.read_parquet(path)
        except Exception:  # noqa: BLE001 -- already damaged beyond reading: leave it
            return
        if kind == "rows":
            frame = frame.iloc[: damage[1]]
        elif len(frame.columns):
            column = frame.columns[damage[1] % len(frame.columns)]
            frame = frame.drop(columns=[column]) if kind == "drop_column" else frame.assign(**{column: _cast(frame[column], damage[2])})
        frame.to_parquet(path, index=False)
    else:
        raise AssertionError(f"unknown damage {damage!r}")


def _damage_tree(path: Path, damage: tuple) -> None:
    is_yaml = path.suffix == ".yaml"
    try:
        text = path.read_text(encoding="utf-8")
        tree = yaml.safe_load(text) if is_yaml else json.loads(text)
    except Exception:  # noqa: BLE001 -- already damaged beyond reading: leave it
        return
    kind = damage[0]
    if kind == "document":
        tree = damage[1]
    else:
        paths = _paths(tree)
        if not paths:
            return
        chosen = paths[damage[1] % len(paths)]
        if kind == "set":
            _set_path(tree, chosen, damage[2])
        else:
            _delete_path(tree, chosen)
    path.write_text(yaml.safe_dump(tree, sort_keys=False) if is_yaml else json.dumps(tree), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Targeted damage: always to something the dashboard reads, so it must always be reported
# ---------------------------------------------------------------------------------------------


def _is_int_in(value: Any, low: int, high: int) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return False
    return low <= int(value) <= high


#: Per file: the keys the dashboard reads and what their values must be (a null counts as missing).
_STR = lambda v: isinstance(v, str)  # noqa: E731
_MAP = lambda v: isinstance(v, dict)  # noqa: E731
_COUNT = lambda v: _is_int_in(v, 0, 2**63 - 1)  # noqa: E731
#: A float (NaN and inf too: a median over blown-up episodes), or an int a float can hold.
_NUMBER = lambda v: isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**1024)  # noqa: E731
_SECONDS = lambda v: _NUMBER(v) and math.isfinite(v) and v >= 0  # noqa: E731
READ_KEYS = {
    CONFIG: {("env",): _MAP, ("env", "id"): _STR, ("env", "name"): _STR, ("env", "kwargs"): _MAP,
             ("env", "evaluation_kwargs"): _MAP, ("env", "cost_key"): _STR, ("env", "error_key"): _STR,
             ("env", "cost_label"): _STR, ("env", "error_label"): _STR, ("agent",): _MAP, ("agent", "name"): _STR,
             ("agent", "class_path"): _STR, ("seed",): _COUNT, ("total_timesteps",): _COUNT, ("n_envs",): _COUNT,
             ("evaluation",): _MAP, ("evaluation", "enabled"): lambda v: isinstance(v, bool),
             ("evaluation", "n_seeds"): lambda v: _is_int_in(v, 0, 100_000), ("evaluation", "first_seed"): _COUNT},
    RUN_INFO: {("status",): _STR, ("env",): _STR, ("env_name",): _STR, ("agent",): _STR, ("seed",): _COUNT,
               ("total_timesteps",): _COUNT, ("num_timesteps",): _COUNT, ("finished_at",): _STR,
               ("train_seconds",): _SECONDS},
    SUMMARY: {("summaries",): lambda v: isinstance(v, list), ("summaries", 0): _MAP, ("summaries", 3): _MAP,
              ("summaries", 0, "policy"): _STR, ("summaries", 0, "median_cost"): _NUMBER, ("summaries", 0, "median_error"): _NUMBER,
              ("comparison",): _MAP, ("comparison", "policy"): _STR,
              ("comparison", "beats_nearest"): lambda v: isinstance(v, bool), ("comparison", "dominated"): lambda v: isinstance(v, bool),
              ("seeds",): lambda v: isinstance(v, list) and all(_COUNT(s) for s in v)},
}  # fmt: skip


def _wrong_value(file: str) -> st.SearchStrategy:
    """("set_key", key, value): a value of one read key that is not what the key must hold (never null)."""
    def wrong(ok):
        special = [v for v in SPECIAL if not ok(v)]
        # a generated value that happens to be right becomes a special wrong one (no filtering, nothing rejected)
        generated = st.tuples(values, st.sampled_from(special)).map(lambda p: p[0] if p[0] is not None and not ok(p[0]) else p[1])
        return st.one_of(st.sampled_from(special), generated)

    return st.one_of(*[st.tuples(st.just("set_key"), st.just(key), wrong(ok)) for key, ok in READ_KEYS[file].items()])


def _bad_npz() -> st.SearchStrategy:
    """An evaluations.npz that contradicts the EvalCallback layout (what must be reported)."""
    numeric = st.sampled_from([np.int64, np.float64, np.float32])
    not_numeric = st.sampled_from([np.bool_, np.complex128, np.dtype("<U3"), np.dtype("M8[s]")])
    return st.one_of(
        st.tuples(st.just("array"), st.just("timesteps"), hnp.arrays(numeric, hnp.array_shapes(min_dims=0, max_dims=0))),
        st.tuples(st.just("array"), st.just("timesteps"), hnp.arrays(numeric, hnp.array_shapes(min_dims=2, max_dims=3))),
        st.tuples(st.just("array"), st.just("timesteps"), hnp.arrays(not_numeric, st.integers(1, 4))),
        st.tuples(st.just("array"), st.just("timesteps"), st.just(np.zeros(0, np.int64))),
        st.tuples(st.just("array"), st.just("timesteps"), st.sampled_from([np.array([128.0, np.nan]), np.array([128, -1]),
                                                                           np.array([256, 128]), np.array([1, 0], np.uint8),
                                                                           np.array([0.0, np.inf])])),
        st.tuples(st.just("array"), st.sampled_from(["results", "ep_lengths"]),
                  hnp.arrays(numeric, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)).filter(
                      lambda a: a.ndim == 0 or a.shape[0] != 2 or a.size == 0)),
        st.tuples(st.just("array"), st.sampled_from(["results", "ep_lengths"]), hnp.arrays(not_numeric, st.just((2, 1)))),
        st.tuples(st.just("drop_array"), st.sampled_from(["timesteps", "results"])),
    )  # fmt: skip


#: Parquet columns the dashboard reads and the casts that contradict their type.
BAD_CASTS = {"policy": ["float", "int", "bool", "null"], "seed": ["string", "float", "bool", "null"],
             "is_baseline": ["string", "float", "int", "null"], "episode": ["string", "float", "null"],
             "training_seed": ["string", "float", "null"]}  # fmt: skip

TARGETED = {
    CONFIG: st.one_of(_wrong_value(CONFIG), st.tuples(st.just("document"), values.filter(lambda v: not isinstance(v, dict))),
                      st.just(("empty",)), st.tuples(st.just("garbage"), garbage)),
    RUN_INFO: st.one_of(_wrong_value(RUN_INFO), st.tuples(st.just("document"), values.filter(lambda v: not isinstance(v, dict))),
                        st.just(("empty",)), st.tuples(st.just("truncate"), st.floats(0.05, 0.9)),
                        st.tuples(st.just("garbage"), garbage)),
    SUMMARY: st.one_of(_wrong_value(SUMMARY), st.tuples(st.just("document"), values.filter(lambda v: not isinstance(v, dict))),
                       file_damage),
    NPZ: st.one_of(_bad_npz(), st.just(("empty",)), st.tuples(st.just("truncate"), st.floats(0.05, 0.9)),
                   st.tuples(st.just("garbage"), garbage)),
    PARQUET: st.one_of(st.sampled_from([("cast_named", c, to) for c, casts in BAD_CASTS.items() for to in casts]),
                       st.sampled_from([("drop_named", "policy"), ("drop_named", "seed"), ("rows", 0)]), file_damage),
    MODEL: st.just(("delete",)),
}  # fmt: skip


def apply_targeted(run: Path, file: str, damage: tuple) -> None:
    path, kind = run / file, damage[0]
    if kind == "set_key":
        text = path.read_text(encoding="utf-8")
        tree = yaml.safe_load(text) if file == CONFIG else json.loads(text)
        _set_path(tree, damage[1], damage[2])
        path.write_text(yaml.safe_dump(tree, sort_keys=False) if file == CONFIG else json.dumps(tree), encoding="utf-8")
    elif kind == "cast_named":
        frame = pd.read_parquet(path)
        frame.assign(**{damage[1]: _cast(frame[damage[1]], damage[2])}).to_parquet(path, index=False)
    elif kind == "drop_named":
        pd.read_parquet(path).drop(columns=[damage[1]]).to_parquet(path, index=False)
    else:
        apply_damage(run, file, damage)




# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def _fresh_pair(template: dict[str, Any]) -> tuple[Path, Path, Path]:
    root = Path(tempfile.mkdtemp(dir=template["base"], prefix="example"))
    damaged, intact = root / "damaged", root / "intact"
    shutil.copytree(template["folder"], damaged)
    shutil.copytree(template["folder"], intact)
    return root, damaged, intact


def _row(frame: pd.DataFrame, path: Path) -> pd.Series | None:
    match = frame[frame["path"] == str(path.resolve())]
    assert len(match) <= 1
    return match.iloc[0] if len(match) else None


def check_data_layer(template: dict[str, Any], root: Path, damaged: Path, intact: Path, pages: bool = True) -> pd.Series | None:
    """What the overview and the pages read, for both runs; returns the damaged run's row (None: not a run).

    ``pages=False``: the overview and the damaged run's own loaders only (the pages' aggregates of
    both runs are left out, for speed).
    """
    frame = runs.load_runs(root)
    assert list(frame.columns) == runs.RUN_COLUMNS
    pa.Table.from_pandas(frame[SHOWN], preserve_index=False)  # what st.dataframe does with the overview
    assert set(frame["status"]) <= {"complete", "incomplete", "broken"}
    for _, row in frame.iterrows():
        assert (row["problem"] == "") == (row["status"] == "complete"), (row["status"], row["problem"])
        # the loaders' last-resort nets (a bug, not a bad file) never fire: every damage has its own message
        assert "unexpected error" not in row["problem"], row["problem"]
        for col in ("env_id", "env_name", "agent", "finished_at"):
            assert _missing(row[col]) or isinstance(row[col], str), (col, row[col])
        for col in ("beats_nearest", "dominated"):
            assert _missing(row[col]) or isinstance(row[col], (bool, np.bool_)), (col, row[col])
        json.loads(row["variant"])

    # the intact sibling is exactly the undamaged folder
    good = _row(frame, intact)
    assert good is not None
    for col in VALUE_COLUMNS:
        assert _same(good[col], template["row"][col]), (col, good[col], template["row"][col])

    if pages:  # what the pages call on the table with both runs
        from simrl.dashboard.env_pages import env_keys

        pd.testing.assert_frame_equal(runs.run_curve(intact), template["curve"])
        assert len(runs.load_episodes(intact)) == template["episodes"]
        assert held_out_seeds(intact) == template["seeds"] and policy_choices(intact) == template["choices"]
        curves = runs.learning_curves(frame, interval="minmax")
        assert not curves.empty
        runs.learning_curves(frame, group_by=("run",), n_boot=20)
        episodes = runs.load_episodes_for(frame)
        metrics = ["total_force_evaluations", "energy_error"]
        comparison = runs.baseline_comparison(episodes, metrics=metrics, statistics=("median",), n_boot=10)
        runs.comparison_table(comparison, "median", metrics)
        runs.front_points(comparison, "simrl/ThreeBody-v0", *metrics)
        runs.variant_labels(frame["variant"])
        for env_id in frame["env_id"].dropna().unique():
            env_keys(frame[frame["env_id"] == env_id], env_id)

    # the damaged run's own loaders (the Rollout and environment pages call them per run)
    curve = runs.run_curve(damaged)
    assert list(curve.columns) == ["timestep", "mean_return", "mean_length"]
    assert curve["timestep"].is_monotonic_increasing
    table = runs.load_episodes(damaged)
    assert table.empty or {"policy", "seed", "is_baseline"} <= set(table.columns)
    seeds = held_out_seeds(damaged)
    assert seeds and all(isinstance(s, int) for s in seeds)
    assert all(isinstance(c, str) for c in policy_choices(damaged))
    run = runs.load_run(damaged)
    assert (run.status == "complete") == (not run.problems)
    return _row(frame, damaged)


@FUZZ
@given(damage=damages)
def test_any_damage_never_raises_and_leaves_the_other_runs_alone(template, damage):
    root, damaged, intact = _fresh_pair(template)
    try:
        for file, d in damage:
            apply_damage(damaged, file, d)
        note(f"damaged files: {sorted(str(p.relative_to(damaged)) for p in damaged.rglob('*') if p.is_file())}")
        row = check_data_layer(template, root, damaged, intact)
        if (damaged / CONFIG).is_file():
            assert row is not None, "a folder with .hydra/config.yaml is always listed"
            note(f"damaged row: {row['status']}: {row['problem']}")
            event(f"damaged run {row['status']}")
        else:
            assert row is None
            event("damaged folder is no run (no .hydra/config.yaml)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("file", FILES)
@FUZZ
@given(data=st.data())
def test_damage_to_what_the_dashboard_reads_is_reported_naming_the_file(template, file, data):
    d = data.draw(TARGETED[file], label="damage")
    root, damaged, intact = _fresh_pair(template)
    try:
        apply_targeted(damaged, file, d)
        row = check_data_layer(template, root, damaged, intact, pages=False)
        assert row is not None
        note(f"damaged row: {row['status']}: {row['problem']}")
        event(f"{file}: {d[0]} -> {row['status']}")
        assert row["status"] != "complete" and row["problem"]
        assert NAMES[file] in row["problem"], (NAMES[file], row["problem"])
        if file in (CONFIG, RUN_INFO, SUMMARY, NPZ, PARQUET) and d[0] != "delete":
            assert row["status"] == "broken"
    finally:
        shutil.rmtree(root, ignore_errors=True)
