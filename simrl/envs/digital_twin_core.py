"""Shared machinery of the digital-twin environments (``simrl/PredatorPrey-v0``, ``simrl/MetabolicPathway-v0``).

Both environments follow the house pattern of :mod:`simrl.envs.threebody`: ONE batched core
(:class:`DigitalTwinCore`, here a subclass per model) advances B agent-based models with one
Numba call per environment step; the single environment is a batch of one and the vector
environment a batch of ``num_envs``, so both faces run exactly the same model, observation,
reward and bookkeeping code. This module holds what the two environments share:

* :class:`DigitalTwinEnv` / :class:`DigitalTwinVectorEnv` -- the Gymnasium faces (seeding,
  action checks, ``SAME_STEP`` and ``DISABLED`` autoreset, ``reset_mask``), written once;
* :func:`rebuild_batch` -- restart some rows of a batched model from stored states while the
  other rows continue exactly (the physics classes build batches from snapshots);
* :func:`episode_seed` -- the per-episode model stream drawn from the environment's generator;
* :func:`scale_unit_actions` -- validate and map ``Box(0, 1)`` actions to physical ranges;
* :class:`Arg` -- the valid domain of one constructor argument; each environment states its
  arguments' domains once, in a table (``ARGUMENTS`` of its module, :data:`FACE_ARGUMENTS` here),
  which its settings validate against, its docstring lists and the property tests draw from;
* :func:`save_npz_atomic` / :func:`load_checked_npz` / :func:`read_snapshot_set` -- snapshot sets
  on disk: written atomically with a JSON manifest holding a SHA-256 checksum of the data; the
  manifest itself is validated on reading (model kind, required keys, count, parameters, splits
  in range and disjoint). A missing file raises FileNotFoundError, anything else wrong
  :class:`SnapshotDataError`; both name the file, what is wrong and the command regenerating it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from simrl.atomic_io import atomic_write_bytes, sha256_file
from simrl.envs.vector_common import (
    apply_autoreset,
    check_autoreset_mode,
    masked_info,
    reset_mask,
    reset_options,
    vector_seeds,
)

RENDER_MODES = ("rgb_array",)

#: Most sub-environments of one vector environment. The models of a batch run on the CPU cores
#: (one Numba call per step, ``parallel=True`` spreads them over the cores), so a few hundred
#: already keep a workstation busy; beyond the bound a typo (``num_envs=10**7``) would spend
#: minutes allocating before failing. Below it the estimated memory is checked too
#: (:func:`check_batch_memory`).
MAX_NUM_ENVS = 4096

#: Where the shipped snapshot sets live.
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ecology"


# --------------------------------------------------------------------------------------
# Small validated helpers
# --------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    """A bound as people write it: 0 and 1 rather than 0.0 and 1.0, 1e+06 for a power of ten, exact otherwise."""
    v = float(v)
    short = f"{v:g}"
    if float(short) == v and ("e" in short or not v.is_integer()):
        return short
    return str(int(v)) if v.is_integer() else repr(v)


def _is_real(v: Any) -> bool:
    """A real number (Python or NumPy), not a bool, a string or a complex number."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def check_choice(name: str, value: Any, accepted: Sequence[str]) -> str:
    """``value`` if it is one of ``accepted``, else a ValueError naming them."""
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; accepted: {list(accepted)}")
    return value


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """An integer in ``[low, high]`` (bools rejected), else a ValueError naming the range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``), else a ValueError."""
    ok = _is_real(value)
    v = float(value) if ok else float("nan")
    if not (ok and np.isfinite(v) and (v > low if low_open else v >= low) and v <= high):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{_fmt(low)}, {_fmt(high)}], got {value!r}")
    return v


def check_reals(name: str, value: Any, size: int, low: float, high: float, *, low_open: bool = False,
                accepted: str = "") -> tuple[float, ...]:
    """``size`` finite real numbers in ``[low, high]`` (a sequence such as a tuple or list, or a 1-D
    array; no strings, bools or complex numbers) as a tuple of floats, else a ValueError."""
    if isinstance(value, np.ndarray):
        ok = value.shape == (size,) and value.dtype.kind in "iuf"
    else:
        ok = (isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))
              and len(value) == size and all(_is_real(v) for v in value))
    vals = tuple(float(v) for v in value) if ok else ()
    if not ok or not all(math.isfinite(v) and (v > low if low_open else v >= low) and v <= high for v in vals):
        words = {1: "one", 2: "two", 3: "three"}
        bracket = "(" if low_open else "["
        text = accepted or f"{words.get(size, size)} finite numbers in {bracket}{_fmt(low)}, {_fmt(high)}]"
        raise ValueError(f"{name} must be {text}, got {value!r}")
    return vals


def check_triple(name: str, value: Any, low: float = 0.0) -> tuple[float, float, float]:
    """Three finite numbers >= ``low`` (e.g. weights), else a ValueError."""
    return check_reals(name, value, 3, low, math.inf, accepted=f"three finite numbers >= {_fmt(low)}")  # type: ignore[return-value]


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (Python or NumPy), else a ValueError (``"no"`` is not False)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_path(name: str, value: Any) -> str | None:
    """None or a file path (``str`` or ``os.PathLike``) as a string, else a ValueError."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be None or the path of a snapshot set (.npz), got {value!r}")
    return os.fspath(value)


@dataclasses.dataclass(frozen=True)
class Arg:
    """The valid domain of one constructor argument, stated once.

    The settings of an environment validate every argument with :meth:`check`, its docstring
    lists :meth:`describe`, and ``tests/envs/test_digital_twin_fuzz.py`` draws values inside
    and outside the domain from the same fields. ``kind``: ``"int"``, ``"real"``, ``"reals"``
    (``size`` numbers), ``"choice"`` (one of ``choices``), ``"bool"``, ``"path"`` (None or a
    path), ``"params"`` (None, a dict of changes or a parameter object: checked by the model's
    own parameter class against the snapshot set), ``"autoreset"``. ``low``/``high`` bound every
    number (``low_open``: ``low`` excluded). ``optional``: None is accepted (the default is then
    derived from the other arguments, as documented). ``accepted``: the wording of the domain
    in error messages when the bounds alone do not say it. ``relation``: a condition involving
    other arguments, checked by the settings after every argument's own domain (the error then
    names both).
    """

    kind: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    size: int = 1
    choices: tuple = ()
    optional: bool = False
    accepted: str = ""
    relation: str = ""

    def check(self, name: str, value: Any) -> Any:
        """``value`` normalised (ints, floats, tuples of floats), or a ValueError naming ``name``."""
        if value is None and self.optional:
            return None
        kind = self.kind
        if kind == "int":
            return check_int(name, value, int(self.low), None if math.isinf(self.high) else int(self.high))
        if kind == "real":
            return check_real(name, value, self.low, self.high, low_open=self.low_open)
        if kind == "reals":
            return check_reals(name, value, self.size, self.low, self.high, low_open=self.low_open,
                               accepted=self.accepted)
        if kind == "choice":
            return check_choice(name, value, self.choices)
        if kind == "bool":
            return check_bool(name, value)
        if kind == "path":
            return check_path(name, value)
        if kind == "autoreset":
            return check_autoreset_mode(value)
        if kind == "params":
            return value
        raise AssertionError(f"unknown Arg kind {kind!r}")

    def describe(self) -> str:
        """The domain in words (the docstrings' "Accepted values" tables)."""
        bracket = "(" if self.low_open else "["
        span = f"{bracket}{_fmt(self.low)}, {_fmt(self.high)}]"
        words = {
            "reals": f"{self.size} finite numbers in {span}",
            "real": f"a finite number in {span}",
            "bool": "True or False",
            "path": "the path of a snapshot set (.npz)",
            "params": "a parameter object, a dict of its fields, or None (the snapshot set's)",
            "autoreset": "AutoresetMode.SAME_STEP ('SameStep') or AutoresetMode.DISABLED ('Disabled')",
            "choice": "one of " + ", ".join(repr(c) for c in self.choices),
        }
        if self.kind == "int":
            words["int"] = (f"an integer in [{int(self.low)}, {int(self.high)}]" if math.isfinite(self.high)
                            else f"an integer >= {int(self.low)}")
        text = self.accepted or words[self.kind]
        if self.optional:
            text = f"None or {text}"
        return f"{text}; {self.relation}" if self.relation else text


#: The arguments of the two faces (the settings' arguments are each environment's ``ARGUMENTS``).
FACE_ARGUMENTS: dict[str, Arg] = {
    "render_mode": Arg("choice", choices=RENDER_MODES, optional=True),
    "num_envs": Arg("int", 1, MAX_NUM_ENVS, relation="vector environment only; the estimated memory of the "
                    "batch must fit in the machine's (see check_batch_memory)"),
    "autoreset_mode": Arg("autoreset", relation="vector environment only"),
}


def check_arguments(obj: Any, arguments: dict[str, Arg]) -> None:
    """Check and normalise ``obj``'s attributes named in ``arguments`` in place (table order)."""
    for name, arg in arguments.items():
        setattr(obj, name, arg.check(name, getattr(obj, name)))


def describe_arguments(arguments: dict[str, Arg], indent: str = "    ") -> str:
    """An "Accepted values" section (markdown table) for an environment's docstring."""
    lines = ["## Accepted values",
             "Checked at construction: a value outside its domain raises ``ValueError`` naming the argument "
             "(generated from the module's ``ARGUMENTS`` table).", "",
             "| argument | accepted |", "|---|---|"]
    lines += [f"| {name} | {arg.describe()} |" for name, arg in arguments.items()]
    return "\n".join(indent + line if line else "" for line in lines) + "\n\n"


def insert_argument_docs(cls: type, arguments: dict[str, Arg]) -> None:
    """Insert :func:`describe_arguments` before the ``## Example`` of ``cls``'s docstring."""
    doc = cls.__doc__ or ""
    mark = "    ## Example"
    section = describe_arguments(arguments)
    cls.__doc__ = doc.replace(mark, section + mark, 1) if mark in doc else doc + "\n" + section


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def check_batch_memory(core_cls: Any, settings: Any, num_envs: int) -> None:
    """Refuse a batch whose estimated memory (``core_cls.bytes_per_model(settings)`` per model)
    exceeds the machine's physical memory: it would swap or be killed instead of failing clearly."""
    per_model = int(core_cls.bytes_per_model(settings))
    budget = machine_memory_bytes()
    if budget is None or per_model <= 0 or per_model * num_envs <= budget:
        return
    most = budget // per_model
    raise ValueError(
        f"num_envs={num_envs} models would need about {per_model * num_envs / 2**30:.1f} GiB "
        f"({per_model / 2**20:.2f} MiB each, estimated from the stored states, the action length and the "
        f"largest feed), more than this machine's {budget / 2**30:.1f} GiB of memory; accepted here: "
        f"num_envs <= {max(most, 0)} with these settings")


def episode_seed(rng: np.random.Generator) -> np.random.SeedSequence:
    """The seed of one episode's model stream, drawn from the environment's generator.

    128 bits of entropy, so distinct episodes (even from the same stored start state) get
    independent streams unless the environment's seed is the same.
    """
    return np.random.SeedSequence([int(v) for v in rng.integers(0, 2**63 - 1, size=2, dtype=np.int64)])


def as_action_array(actions: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``actions`` as a float64 array of exactly ``shape`` with finite values, else a ValueError.

    Accepted: arrays or nested sequences of real numbers (integer or float dtypes). Refused
    rather than converted: None, strings (``"0.5"`` is not a number), complex numbers (the
    imaginary part would be dropped), booleans (a flag passed for an action, as the turbulence
    environments refuse them), other objects, NaN and inf.
    """
    accepted = f"real numbers in [0, 1] of shape {shape}"
    if actions is None:
        raise ValueError(f"actions must be {accepted}, got None")
    try:
        raw = np.asarray(actions)
    except (TypeError, ValueError):  # ragged nesting
        raise ValueError(f"actions must be {accepted}, got {actions!r}") from None
    kind = raw.dtype.kind
    if kind == "c":
        raise ValueError(f"actions must be {accepted}: complex actions are refused (their imaginary part would "
                         f"be dropped), got {actions!r}")
    if kind == "O":
        bad = [v for v in raw.reshape(-1) if not _is_real(v)]
        if bad:
            raise ValueError(f"actions must be {accepted}, got {actions!r} (holds {type(bad[0]).__name__} {bad[0]!r})")
        raw = raw.astype(np.float64)
    elif kind not in "iuf":  # booleans, strings, bytes, dates, records
        raise ValueError(f"actions must be {accepted}, got {raw.dtype} values {actions!r}")
    if raw.shape != shape:
        raise ValueError(f"actions must have shape {shape}, got {raw.shape}")
    a = np.asarray(raw, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"actions must be finite numbers in [0, 1], got {actions!r}")
    return a


def scale_unit_actions(actions: Any, num_envs: int, dim: int, high: np.ndarray, low: Any = 0.0) -> np.ndarray:
    """Map actions in ``Box(0, 1, (dim,))`` to ``[low, high]`` per component; shape ``(num_envs, dim)``.

    Out-of-range values are clipped to [0, 1] (a policy's Gaussian sample may leave the box);
    a wrong shape or a NaN/inf raises ValueError.
    """
    a = as_action_array(actions, (num_envs, dim))
    low = np.asarray(low, dtype=np.float64)
    return low + np.clip(a, 0.0, 1.0) * (np.asarray(high, dtype=np.float64) - low)


# --------------------------------------------------------------------------------------
# Snapshot files: atomic, checksummed
# --------------------------------------------------------------------------------------


def save_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    """Write ``arrays`` to a compressed ``.npz`` and ``manifest`` (plus the file's SHA-256) beside it.

    Both files are written to temporaries and moved into place with ``os.replace``; the
    manifest ``<stem>.json`` goes last, so a reader never sees a manifest whose data file is
    incomplete. Returns the manifest path.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"snapshot files end in .npz, got {path}")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    manifest = {**manifest, "file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest_path = path.with_suffix(".json")
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest_path


class SnapshotDataError(ValueError):
    """A snapshot set is corrupt, edited, stale or of another model; the message names the file,
    what is wrong and the command that regenerates it (as the turbulence reference data's
    :class:`~simrl.physics.turbulence.reference.ReferenceDataError`). A ValueError, as the earlier
    errors of these files were; a missing file raises FileNotFoundError, with the same kind of message."""


#: Keys every snapshot manifest holds (:func:`save_npz_atomic` adds ``file``, ``bytes``, ``sha256``).
MANIFEST_KEYS = ("kind", "count", "params", "splits", "sha256")


def _snapshot_error(path: Any, what: str, regenerate: str) -> SnapshotDataError:
    return SnapshotDataError(f"snapshot set {path}: {what}; regenerate it with: {regenerate}")


def load_checked_npz(path: str | Path, regenerate: str, kind: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load an ``.npz`` written by :func:`save_npz_atomic` after checking its manifest's checksum.

    ``regenerate`` is the shell command that rebuilds the file; every error names it. With
    ``kind``, the manifest must be a JSON object holding every key of :data:`MANIFEST_KEYS` and
    that ``"kind"`` (a snapshot set of another model is refused before its arrays are read).
    """
    path = Path(path)
    manifest_path = path.with_suffix(".json")
    hint = f"; regenerate it with: {regenerate}"
    if not path.is_file() or not manifest_path.is_file():
        raise FileNotFoundError(f"snapshot set {path} or its manifest {manifest_path.name} is missing{hint}")
    try:
        manifest = json.loads(manifest_path.read_text())
        expected = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotDataError(f"snapshot manifest {manifest_path} is unreadable ({type(exc).__name__}: {exc}){hint}") from None
    if not isinstance(manifest, dict) or not isinstance(expected, str):
        raise SnapshotDataError(f"snapshot manifest {manifest_path} is not a JSON object with a \"sha256\" string{hint}")
    if kind is not None:
        missing = [key for key in MANIFEST_KEYS if key not in manifest]
        if missing:
            raise SnapshotDataError(f"snapshot manifest {manifest_path} lacks the key(s) {missing} (required: "
                                    f"{list(MANIFEST_KEYS)}; renamed or deleted){hint}")
        if manifest["kind"] != kind:
            raise SnapshotDataError(f"snapshot manifest {manifest_path} is of kind {manifest['kind']!r}, expected "
                                    f"{kind!r} (a snapshot set of another model: pass one of kind {kind!r}){hint}")
    if sha256_file(path) != expected:
        raise SnapshotDataError(f"snapshot set {path} does not match its manifest's SHA-256 (corrupt or replaced){hint}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise SnapshotDataError(f"snapshot set {path} is unreadable ({exc}){hint}") from None
    return arrays, manifest


def check_manifest_splits(splits: Any, count: int) -> dict[str, tuple[int, ...]]:
    """The ``"train"``/``"eval"`` splits of a manifest of ``count`` states, or a ValueError saying
    what is wrong: exactly those two keys, each a non-empty list of distinct integer indices in
    ``[0, count - 1]``, and no index in both (the held-out split must stay held out)."""
    if not isinstance(splits, dict) or set(splits) != {"train", "eval"}:
        got = sorted(map(str, splits)) if isinstance(splits, dict) else repr(splits)
        raise ValueError(f'"splits" must map exactly "train" and "eval" to lists of state indices, got {got}')
    out: dict[str, tuple[int, ...]] = {}
    for name in ("train", "eval"):
        idx = splits[name]
        if not isinstance(idx, list) or not idx or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in idx):
            raise ValueError(f'split "{name}" must be a non-empty list of integer state indices, got {idx!r}')
        bad = sorted({i for i in idx if not 0 <= i < count})
        if bad:
            raise ValueError(f'split "{name}" holds indices {bad} outside [0, {count - 1}] (the set has {count} states)')
        if len(set(idx)) != len(idx):
            raise ValueError(f'split "{name}" repeats indices {sorted({i for i in idx if idx.count(i) > 1})}')
        out[name] = tuple(idx)
    both = sorted(set(out["train"]) & set(out["eval"]))
    if both:
        raise ValueError(f'the held-out "eval" split overlaps "train" at indices {both}')
    return out


# --------------------------------------------------------------------------------------
# Batched models: restart some rows, continue the others exactly
# --------------------------------------------------------------------------------------


def rebuild_batch(batch_cls: Any, batch: Any, restarts: dict[int, Any], n_rows: int, **kwargs: Any) -> Any:
    """A new ``batch_cls`` of ``n_rows`` models: row i restarts from ``restarts[i]`` (a full state
    with its fresh random stream already in it), every other row continues ``batch``'s row i exactly
    (its snapshot carries its random stream). ``batch_cls.from_snapshots(states, None, **kwargs)``
    builds it; results of the physics cores do not depend on the buffers' capacities.
    """
    states = [restarts[i] if i in restarts else batch.snapshot(i) for i in range(n_rows)]
    return batch_cls.from_snapshots(states, None, **kwargs)


def with_stream(state: Any, seed: np.random.SeedSequence, seed_state: Callable[[np.random.SeedSequence], np.ndarray]) -> Any:
    """A copy of a model state whose random stream is replaced by the one ``seed`` starts."""
    return dataclasses.replace(state, rng_state=np.asarray(seed_state(seed), dtype=np.uint64))


# --------------------------------------------------------------------------------------
# Snapshot sets of the two models, and restarting rows from them
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SnapshotSet:
    """K stored model states, their count histories and their splits (subclassed per model)."""

    states: tuple[Any, ...]
    history: np.ndarray  # (K, T, n_counts) counts after each of the T steps that led to the states
    splits: dict[str, tuple[int, ...]]
    manifest: dict[str, Any]
    source: str | None = None  # the checksummed file it was read from

    @property
    def params(self) -> Any:
        return self.states[0].params

    def __reduce_ex__(self, protocol: int) -> Any:
        # Pickled by reference to its file (path + SHA-256), not by value: every SB3 checkpoint
        # pickles the VecEnv, and the predator-prey set alone is 17 MB of arrays.
        if self.source is None:
            return super().__reduce_ex__(protocol)
        return (_reload_snapshot_set, (type(self).__module__, self.source, self.manifest.get("sha256")))


def _reload_snapshot_set(module: str, source: str, sha256: str | None) -> SnapshotSet:
    """The snapshot set a pickle refers to, re-read by its environment module's ``load_snapshot_set``."""
    loaded = importlib.import_module(module).load_snapshot_set(source)
    if loaded.manifest.get("sha256") != sha256:
        raise ValueError(f"the snapshot file {source} changed since this environment was saved (SHA-256 "
                         f"{loaded.manifest.get('sha256')}, saved with {sha256}); restore that file to load it")
    return loaded


def snapshot_splits(count: int, eval_count: int | None) -> dict[str, list[int]]:
    """The ``"train"``/``"eval"`` splits of ``count`` stored states: the last ``eval_count``
    (default a quarter, at least 1; at most ``count - 1``) are held out for evaluation."""
    eval_count = max(1, count // 4) if eval_count is None else check_int("eval_count", eval_count, 1, count - 1)
    return {"train": list(range(count - eval_count)), "eval": list(range(count - eval_count, count))}


def snapshot_cache_key(path: str | Path | None, default: Path) -> tuple[Any, ...]:
    """``(resolved path, (mtime_ns, size) of the .npz, (mtime_ns, size) of its manifest)`` of a
    snapshot file (``default`` when ``path`` is None): the key of a loader's cache, so a
    regenerated file or an edited manifest is read (and checked) again."""
    path = Path(path) if path is not None else default

    def stamp(p: Path) -> tuple[int, int]:
        try:
            st = p.stat()
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            return (0, 0)  # load_checked_npz raises the error naming the regeneration command

    try:
        resolved = str(path.resolve())
    except OSError:
        resolved = str(path)
    return (resolved, stamp(path), stamp(path.with_suffix(".json")))


def read_snapshot_set(set_cls: Any, path: str, default: Path, regenerate: str, generator: str,
                      unpack: Callable[[dict[str, np.ndarray]], list[Any]], kind: str) -> Any:
    """Load, checksum-verify and validate the snapshot set at ``path`` as a ``set_cls``.

    ``unpack`` turns the stored arrays into model states (raising KeyError, TypeError or
    ValueError on arrays that do not form them). The manifest must be of ``kind`` and agree
    with the arrays: its ``count`` is the number of states, its ``params`` are the stored
    ones, its splits are valid (:func:`check_manifest_splits`). Every error is a
    :class:`SnapshotDataError` (FileNotFoundError for a missing file) naming the file, what is
    wrong and ``regenerate`` for the default file, ``generator(path, ...)`` (a Python call) for
    any other.
    """
    command = regenerate if Path(path) == default.resolve() else f"{generator}({path!r}, ...)"
    arrays, manifest = load_checked_npz(path, command, kind)
    try:
        states = unpack(arrays)
        if not states:
            raise ValueError("it holds no states")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _snapshot_error(path, f"its arrays do not form {kind} states ({type(exc).__name__}: {exc})",
                              command) from None
    for k, s in enumerate(states):
        try:
            s.validate()
        except ValueError as exc:
            raise _snapshot_error(path, f"stored state {k} is invalid ({exc})", command) from None
    count = manifest["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count != len(states):
        raise _snapshot_error(path, f'the manifest\'s "count" is {count!r} but the .npz holds {len(states)} states',
                              command)
    history = arrays.get("history")
    if history is None or history.ndim != 3 or history.shape[0] != len(states) or history.shape[1] < 1:
        shape = None if history is None else history.shape
        raise _snapshot_error(path, f"its count history has shape {shape}, expected ({len(states)}, T, n)", command)
    stored, listed = dataclasses.asdict(states[0].params), manifest["params"]
    if listed != stored:
        changed = (sorted(k for k in set(stored) | set(listed) if listed.get(k) != stored.get(k))
                   if isinstance(listed, dict) else "not a JSON object")
        raise _snapshot_error(path, f'the manifest\'s "params" differ from the parameters stored in the .npz '
                              f"(field(s) {changed})", command)
    try:
        splits: dict[str, tuple[int, ...]] = check_manifest_splits(manifest["splits"], len(states))
    except ValueError as exc:
        raise _snapshot_error(path, f"its manifest is invalid: {exc}", command) from None
    splits["all"] = tuple(range(len(states)))
    return set_cls(tuple(states), history.astype(np.int64), splits, manifest, source=str(path))


def params_from_snapshots(params: Any, base: Any) -> Any:
    """An environment's model parameters: the snapshot set's ``base`` when ``params`` is None,
    ``base`` with the changes of a dict, or a parameter object of ``base``'s class as given.
    Errors name ``params`` and the field."""
    if params is None:
        return base
    if isinstance(params, dict):
        try:
            return base.replace(**params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params: {exc}") from None
    if not isinstance(params, type(base)):
        raise ValueError(f"params must be a {type(base).__name__}, a dict of its fields or None, got {params!r}")
    return params


def check_params_fit(params: Any, snapshot_set: Any, hint: str) -> None:
    """Refuse model parameters under which a stored start state is invalid (e.g. more animals than
    ``max_population``): every reset from it would fail. ``hint`` says what to do instead."""
    if params == snapshot_set.params:
        return
    for k, state in enumerate(snapshot_set.states):
        try:
            dataclasses.replace(state, params=params).validate()
        except ValueError as exc:
            changed = sorted(f.name for f in dataclasses.fields(params)
                             if getattr(params, f.name) != getattr(snapshot_set.params, f.name))
            raise ValueError(f"params (changed: {changed}) do not fit the snapshot set {snapshot_set.source}: its "
                             f"stored start state {k} is invalid under them ({exc}), so resets would fail; {hint}") from None


def pick_snapshot(settings: Any, rng: np.random.Generator, chosen: Any,
                  seed_state: Callable[[np.random.SeedSequence], np.ndarray]) -> tuple[int, Any]:
    """The start state of one episode: ``(index in the set, state with a fresh stream)``.

    The index is drawn from ``settings.split_indices`` with ``rng`` unless ``chosen`` (the
    ``options["snapshot"]`` of reset) names it; both draws always happen, so the stream does
    not depend on options. The state carries ``settings.params``.
    """
    split = settings.split_indices
    k = int(rng.integers(len(split)))
    seed = episode_seed(rng)
    if chosen is not None:
        k = check_int("options['snapshot']", chosen, 0, len(split) - 1)
    index = split[k]
    state = with_stream(settings.snapshot_set.states[index], seed, seed_state)
    if state.params != settings.params:
        state = dataclasses.replace(state, params=settings.params)
    return index, state


def install_restarts(batch_cls: Any, batch: Any, restarts: dict[int, Any], n_rows: int, **kwargs: Any) -> Any:
    """The batch after restarting ``restarts``' rows: built from them on the first reset (rows
    not reset yet get placeholder copies), otherwise :func:`rebuild_batch`."""
    if batch is None:
        first = next(iter(restarts.values()))
        states = [restarts.get(i, first) for i in range(n_rows)]  # unreset rows: placeholders
        return batch_cls.from_snapshots(states, None, **kwargs)
    return rebuild_batch(batch_cls, batch, restarts, n_rows, **kwargs)


# --------------------------------------------------------------------------------------
# The batched core interface and the two Gymnasium faces
# --------------------------------------------------------------------------------------


class DigitalTwinCore:
    """B agent-based models with their episode bookkeeping (subclassed per model).

    Subclasses implement :meth:`reset_rows`, :meth:`step`, :meth:`observations`,
    :meth:`batch_info`, :meth:`render_row` and :meth:`freeze_rows`. ``step`` returns per-row
    arrays ``reward``, ``terminated``, ``truncated`` and an ``info`` dict of arrays; rows that
    are not ``active`` (finished, DISABLED autoreset) must be left unchanged.
    """

    #: Keys of ``reset(options=...)`` (the vector environment also takes ``reset_mask``).
    RESET_OPTIONS: tuple[str, ...] = ("snapshot",)

    def __init__(self, settings: Any, num_envs: int) -> None:
        self.settings = settings
        self.num_envs = int(num_envs)

    @staticmethod
    def bytes_per_model(settings: Any) -> int:
        """Estimated memory of one model and its bookkeeping (:func:`check_batch_memory`); 0: unknown."""
        return 0

    def check_reset_options(self, options: dict[str, Any]) -> None:
        """Validate the options of a reset before anything is reseeded or restarted."""
        chosen = options.get("snapshot")
        if chosen is not None:
            check_int("options['snapshot']", chosen, 0, len(self.settings.split_indices) - 1)

    def reset_rows(self, rows: Sequence[int], rngs: Sequence[np.random.Generator], options: dict[str, Any]) -> None:
        raise NotImplementedError

    def step(self, actions: np.ndarray, active: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def observations(self) -> np.ndarray:
        raise NotImplementedError

    def batch_info(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def info(self, i: int) -> dict[str, Any]:
        """Row ``i`` of :meth:`batch_info` as Python scalars."""
        return {key: values[i].item() for key, values in self.batch_info().items()}

    def render_row(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def freeze_rows(self, rows: Sequence[int]) -> None:
        """Stop advancing finished rows (DISABLED autoreset); default: nothing to save."""


def _check_render_mode(render_mode: str | None) -> str | None:
    if render_mode is not None and (not isinstance(render_mode, str) or render_mode not in RENDER_MODES):
        raise ValueError(f"unknown render_mode {render_mode!r}; accepted: {list(RENDER_MODES)} or None")
    return render_mode


class DigitalTwinEnv(gym.Env):
    """Single environment = a :class:`DigitalTwinCore` of one row (subclasses set the hooks)."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 10}
    settings_cls: type = object
    core_cls: type = DigitalTwinCore

    @staticmethod
    def make_spaces(settings: Any) -> tuple[spaces.Box, spaces.Box]:
        raise NotImplementedError

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self.render_mode = _check_render_mode(render_mode)
        self.settings = self.settings_cls(**kwargs)
        check_batch_memory(self.core_cls, self.settings, 1)
        self.action_space, self.observation_space = self.make_spaces(self.settings)
        self._core = self.core_cls(self.settings, 1)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode. ``options``: None or a dict with the keys of ``core_cls.RESET_OPTIONS``
        (``"snapshot"``: index of the start state in the split); anything else is refused."""
        options = reset_options(options, self.core_cls.RESET_OPTIONS)
        self._core.check_reset_options(options)
        super().reset(seed=seed)
        self._core.reset_rows([0], [self.np_random], options)
        self._needs_reset = False
        return self._core.observations()[0], self._core.info(0)

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset() or after the episode ended")
        action = as_action_array(action, self.action_space.shape)
        result = self._core.step(action[None], np.ones(1, dtype=bool))
        info = {key: values[0].item() for key, values in result["info"].items()}
        terminated, truncated = bool(result["terminated"][0]), bool(result["truncated"][0])
        self._needs_reset = terminated or truncated
        return self._core.observations()[0], float(result["reward"][0]), terminated, truncated, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' to make()")
            return None
        return self._core.render_row(0)


class DigitalTwinVectorEnv(VectorEnv):
    """``num_envs`` models advanced by one Numba call per step (subclasses set the hooks).

    Sub-environment i reset with seed s follows exactly the trajectory of the single
    environment reset with seed s; ``reset(seed=s)`` seeds sub-environment i with s + i
    (Gymnasium's convention), or pass a list of seeds. ``AutoresetMode.SAME_STEP`` (default,
    what SB3 expects): a finished sub-environment is reset inside the same ``step``; its last
    observation and info are in ``info["final_obs"]`` / ``info["final_info"]`` (masks
    ``_final_obs``, ``_final_info``), the top-level info of that row is its reset info.
    ``AutoresetMode.DISABLED``: finished sub-environments stay frozen until the next ``reset``:
    their observation, info and frame are held, their reward is 0 and their done flags repeat
    (the core may keep stepping the retired model cheaply, e.g. with every animal culled). ``reset(options={"reset_mask": m})``
    resets only the rows where ``m`` is True; ``options`` is None or a dict with the keys
    ``"reset_mask"`` and ``"snapshot"`` (any other key, or a non-dict, is refused).
    ``num_envs``: an integer in [1, :data:`MAX_NUM_ENVS`] (4,096), and the batch's estimated
    memory (``core_cls.bytes_per_model``) must fit in the machine's (:func:`check_batch_memory`).
    """

    metadata = {"render_modes": list(RENDER_MODES), "autoreset_mode": AutoresetMode.SAME_STEP}
    settings_cls: type = object
    core_cls: type = DigitalTwinCore
    single_env_cls: type = DigitalTwinEnv

    def __init__(self, num_envs: int = 1, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP, **kwargs: Any) -> None:
        num_envs = FACE_ARGUMENTS["num_envs"].check("num_envs", num_envs)
        autoreset_mode = check_autoreset_mode(autoreset_mode)
        render_mode = _check_render_mode(render_mode)
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.autoreset_mode = autoreset_mode
        self.settings = self.settings_cls(**kwargs)
        check_batch_memory(self.core_cls, self.settings, num_envs)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_action_space, self.single_observation_space = self.single_env_cls.make_spaces(self.settings)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._core = self.core_cls(self.settings, self.num_envs)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._done = np.ones(self.num_envs, dtype=bool)
        self._ever_reset = np.zeros(self.num_envs, dtype=bool)
        # DISABLED mode: the done flags a finished sub-environment keeps repeating.
        self._final_terminated = np.zeros(self.num_envs, dtype=bool)
        self._final_truncated = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        options = reset_options(options, self.core_cls.RESET_OPTIONS + ("reset_mask",))
        mask = reset_mask(options, self.num_envs)
        options.pop("reset_mask", None)  # the core sees only its own options
        self._core.check_reset_options(options)
        seeds = vector_seeds(self, seed)
        rows = [int(i) for i in np.flatnonzero(mask)]
        for i in rows:  # only the sub-environments being reset are reseeded
            if seeds[i] is not None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        self._core.reset_rows(rows, [self._rngs[i] for i in rows], options)
        self._done[mask] = False
        self._ever_reset |= mask
        self._final_terminated[mask] = False
        self._final_truncated[mask] = False
        return self._core.observations(), self._masked(self._core.batch_info())

    def step(self, actions):
        if not self._ever_reset.all():
            raise RuntimeError(f"{type(self).__name__}.step() called before sub-environments "
                               f"{np.flatnonzero(~self._ever_reset).tolist()} were reset")
        core = self._core
        result = core.step(actions, ~self._done)  # the core checks the actions (as_action_array)
        terminated, truncated = result["terminated"], result["truncated"]
        obs = core.observations()
        info = self._masked(result["info"])
        obs, terminated, truncated, newly = apply_autoreset(
            self, obs, info, terminated, truncated,
            lambda rows: core.reset_rows(rows, [self._rngs[i] for i in rows], {}), core.observations, core.batch_info,
        )  # fmt: skip
        if newly.any():  # DISABLED: finished rows stop advancing
            core.freeze_rows([int(i) for i in np.flatnonzero(newly)])
        return obs, result["reward"].astype(np.float64), terminated, truncated, info

    def _masked(self, info: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return masked_info(info, self.num_envs)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        return [self._core.render_row(i) for i in range(self.num_envs)]
