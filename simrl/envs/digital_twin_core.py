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
* :func:`save_npz_atomic` / :func:`load_checked_npz` -- snapshot sets on disk: written
  atomically with a JSON manifest holding a SHA-256 checksum; a missing or corrupt file raises
  an error that names the command regenerating it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from simrl.atomic_io import atomic_write_bytes, sha256_file
from simrl.envs.vector_common import apply_autoreset, check_autoreset_mode, masked_info, reset_mask, vector_seeds

RENDER_MODES = ("rgb_array",)

#: Where the shipped snapshot sets live.
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ecology"


# --------------------------------------------------------------------------------------
# Small validated helpers
# --------------------------------------------------------------------------------------


def check_choice(name: str, value: Any, accepted: Sequence[str]) -> str:
    """``value`` if it is one of ``accepted``, else a ValueError naming them."""
    if value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; accepted: {list(accepted)}")
    return value


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """An integer in ``[low, high]`` (bools rejected), else a ValueError naming the range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``), else a ValueError."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    v = float(value) if ok else float("nan")
    if not (ok and np.isfinite(v) and (v > low if low_open else v >= low) and v <= high):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{low}, {high}], got {value!r}")
    return v


def check_triple(name: str, value: Any, low: float = 0.0) -> tuple[float, float, float]:
    """Three finite numbers >= ``low`` (e.g. weights), else a ValueError."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers >= {low}, got {value!r}") from None
    if arr.shape != (3,) or not np.all(np.isfinite(arr)) or np.any(arr < low):
        raise ValueError(f"{name} must be three finite numbers >= {low}, got {value!r}")
    return tuple(float(v) for v in arr)  # type: ignore[return-value]


def episode_seed(rng: np.random.Generator) -> np.random.SeedSequence:
    """The seed of one episode's model stream, drawn from the environment's generator.

    128 bits of entropy, so distinct episodes (even from the same stored start state) get
    independent streams unless the environment's seed is the same.
    """
    return np.random.SeedSequence([int(v) for v in rng.integers(0, 2**63 - 1, size=2, dtype=np.int64)])


def as_action_array(actions: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``actions`` as a float64 array of exactly ``shape`` with finite values, else a ValueError."""
    try:
        a = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"actions must be numbers in [0, 1] of shape {shape}, got {actions!r}") from None
    if a.shape != shape:
        raise ValueError(f"actions must have shape {shape}, got {a.shape}")
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


def load_checked_npz(path: str | Path, regenerate: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load an ``.npz`` written by :func:`save_npz_atomic` after checking its manifest's checksum.

    ``regenerate`` is the shell command that rebuilds the file; every error names it.
    """
    path = Path(path)
    manifest_path = path.with_suffix(".json")
    hint = f"; regenerate it with: {regenerate}"
    if not path.is_file() or not manifest_path.is_file():
        raise FileNotFoundError(f"snapshot set {path} or its manifest {manifest_path.name} is missing{hint}")
    try:
        manifest = json.loads(manifest_path.read_text())
        expected = manifest["sha256"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"snapshot manifest {manifest_path} is unreadable ({exc}){hint}") from None
    if sha256_file(path) != expected:
        raise ValueError(f"snapshot set {path} does not match its manifest's SHA-256 (corrupt or replaced){hint}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"snapshot set {path} is unreadable ({exc}){hint}") from None
    return arrays, manifest


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


def snapshot_cache_key(path: str | Path | None, default: Path) -> tuple[str, int, int]:
    """``(resolved path, mtime_ns, size)`` of a snapshot file (``default`` when ``path`` is None):
    the key of a loader's cache, so a regenerated file is read again."""
    path = Path(path) if path is not None else default
    try:
        st = path.stat()
        return (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(path), 0, 0)  # load_checked_npz raises the error naming the regeneration command


def read_snapshot_set(set_cls: Any, path: str, default: Path, regenerate: str, generator: str,
                      unpack: Callable[[dict[str, np.ndarray]], list[Any]]) -> Any:
    """Load, checksum-verify and validate the snapshot set at ``path`` as a ``set_cls``.

    ``unpack`` turns the stored arrays into model states; errors name ``regenerate`` for the
    default file and ``generator(path, ...)`` (a Python call) for any other.
    """
    arrays, manifest = load_checked_npz(path, regenerate if Path(path) == default.resolve() else
                                        f"{generator}({path!r}, ...)")
    states = unpack(arrays)
    for s in states:
        s.validate()
    splits = {name: tuple(int(i) for i in manifest["splits"][name]) for name in ("train", "eval")}
    splits["all"] = tuple(range(len(states)))
    return set_cls(tuple(states), arrays["history"].astype(np.int64), splits, manifest, source=str(path))


def params_from_snapshots(params: Any, base: Any) -> Any:
    """An environment's model parameters: the snapshot set's ``base`` when ``params`` is None,
    ``base`` with the changes of a dict, or a parameter object of ``base``'s class as given."""
    if params is None:
        return base
    if isinstance(params, dict):
        return base.replace(**params)
    if not isinstance(params, type(base)):
        raise ValueError(f"params must be a {type(base).__name__}, a dict of its fields or None, got {params!r}")
    return params


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

    def __init__(self, settings: Any, num_envs: int) -> None:
        self.settings = settings
        self.num_envs = int(num_envs)

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
    if render_mode is not None and render_mode not in RENDER_MODES:
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
        self.settings = self.settings_cls(**kwargs)
        self.render_mode = _check_render_mode(render_mode)
        self.action_space, self.observation_space = self.make_spaces(self.settings)
        self._core = self.core_cls(self.settings, 1)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._core.reset_rows([0], [self.np_random], options or {})
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
    resets only the rows where ``m`` is True.
    """

    metadata = {"render_modes": list(RENDER_MODES), "autoreset_mode": AutoresetMode.SAME_STEP}
    settings_cls: type = object
    core_cls: type = DigitalTwinCore
    single_env_cls: type = DigitalTwinEnv

    def __init__(self, num_envs: int = 1, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.autoreset_mode = autoreset_mode
        self.settings = self.settings_cls(**kwargs)
        self.num_envs = int(num_envs)
        self.render_mode = _check_render_mode(render_mode)
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
        seeds = vector_seeds(self, seed)
        options = dict(options or {})
        mask = reset_mask(options, self.num_envs)
        options.pop("reset_mask", None)  # the core sees only its own options
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
        result = core.step(np.asarray(actions), ~self._done)
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
