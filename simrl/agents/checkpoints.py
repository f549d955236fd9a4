"""Resumable training checkpoints: written atomically, verified by SHA-256, restored newest-valid-first.

A checkpoint is taken at a *rollout boundary* (SB3's ``on_rollout_start``: the previous rollout's
gradient updates are done and the next rollout has not begun), the one point where the model, its
optimiser, its step counters, its last observation and the environment all agree. It holds:

=========================================  ===========================================================
``<prefix>_<step>_steps.zip``               the model (``model.save``): weights, optimiser state, step
                                            counters, schedules, last observation (SB3 algorithms)
``<prefix>_<step>_steps.state.pkl``         RNG states (Python, NumPy global, torch CPU/CUDA, the action
                                            and observation spaces' generators), the callbacks' state
                                            (EvalCallback history, call counters), the training
                                            ``VecEnv`` itself when it can be pickled, VecNormalize
                                            statistics, and a custom agent's last observation
``<prefix>_<step>_steps.replay_buffer.pkl`` the replay buffer (agents that have one: SB3 DQN, PaperDQN)
``<prefix>_<step>_steps.json``              the sidecar, written last: step, file sizes and SHA-256
=========================================  ===========================================================

Every file goes to a temporary name in the same folder and is ``os.replace``-d into place; the
sidecar comes last, so a checkpoint without one is a partial write (the run was killed while
saving) and is ignored. Loading checks each file's size and checksum; a truncated or corrupt
checkpoint is reported with the reason and the previous one is used (:func:`resume_latest`).
Only the newest ``keep`` checkpoints stay resumable: older ones keep their model ``.zip`` (as
SB3's ``CheckpointCallback`` does) and lose their state, replay buffer and sidecar.

Determinism of a resumed run
----------------------------
* ``env_state="exact"`` (the training ``VecEnv`` pickled with cloudpickle: SB3 ``DummyVecEnv``,
  simrl's batched ``VecMonitor``-wrapped envs such as ThreeBody's): the environments continue
  mid-episode from their saved state and every generator continues its stream, so on the same
  device and library versions the resumed run is *bit-identical* to an uninterrupted one (tested
  for PPO, DQN and PaperDQN in-process, and for a SIGKILLed ThreeBody DQN run).
* ``env_state="reset"`` (the ``VecEnv`` holds something pickle refuses, e.g. sub-processes of a
  ``SubprocVecEnv``, open files): the model, optimiser, replay buffer, counters and all RNG streams are restored,
  but the environments are rebuilt and reset with fresh seeds derived from (training seed, step)
  and drawn in [2**31, 2**32), so they never collide with the configured training, EvalCallback or
  held-out seed ranges. The episodes in flight at the checkpoint are dropped; the run reaches
  the same final step count but is not bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import pickle
import random
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from simrl.atomic_io import atomic_write_bytes, sha256_file

log = logging.getLogger(__name__)

FORMAT = "simrl-checkpoint"
VERSION = 1
#: Sub-folder of a run folder holding its checkpoints.
CHECKPOINT_DIR = "checkpoints"
#: The config the run started with (``resume`` refuses a different one).
RUN_CONFIG_FILE = "run_config.json"
#: Top-level config keys a resumed command may change (they do not affect the training itself).
RESUME_MAY_DIFFER = ("resume", "progress_bar", "device", "evaluation", "checkpoint_every", "checkpoint_keep")

_STEM = re.compile(r"^(?P<prefix>.+)_(?P<step>\d+)_steps$")
# EvalCallback attributes that make its schedule and its history (evaluations.npz, best model) continue.
_EVAL_CALLBACK_STATE = (
    "best_mean_reward", "last_mean_reward", "evaluations_results", "evaluations_timesteps",
    "evaluations_length", "evaluations_successes", "_is_success_buffer",
)  # fmt: skip
# Attributes of a custom (non-SB3) agent that its own save() may not hold: its last observation
# and its env-call counter (SB3 algorithms keep theirs in the model .zip).
_AGENT_EXTRAS = ("_last_obs", "_last_episode_starts", "_n_env_calls")


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and the reason."""


class ResumeRefused(CheckpointError):
    """A resume refused before anything in the run folder changed (a different config, nothing to
    resume, no such run); the message names what differs or what is missing."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its sidecar, step and files (role -> path)."""

    sidecar: Path
    step: int
    files: dict[str, Path]
    env_state: str
    meta: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def _atomic(path: Path, write: Callable[[Path], None], suffix: str) -> None:
    """``write(tmp)`` to a temporary path next to ``path`` (ending in ``suffix``: SB3 appends one
    to a path without it), fsync it, then ``os.replace`` it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def checkpoint_stem(prefix: str, step: int) -> str:
    """``<prefix>_<step>_steps``: the name SB3's ``CheckpointCallback`` gives its model files."""
    return f"{prefix}_{int(step)}_steps"


def write_run_config(run_dir: str | os.PathLike, cfg: Mapping[str, Any]) -> Path:
    """Save the run's resolved config as ``checkpoints/run_config.json`` (atomically)."""
    path = Path(run_dir) / CHECKPOINT_DIR / RUN_CONFIG_FILE
    _write_bytes(path, (json.dumps(dict(cfg), indent=2, sort_keys=True, default=str) + "\n").encode())
    return path


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The config ``run_dir`` started with (``checkpoints/run_config.json``), or None when it has none."""
    path = Path(run_dir) / CHECKPOINT_DIR / RUN_CONFIG_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def config_differences(saved: Any, now: Any, may_differ: Iterable[str] = ()) -> list[str]:
    """``"key: saved -> now"`` for every dotted key that differs between two configs, except those
    under a top-level key of ``may_differ``. Both are compared through JSON, so that tuples/lists
    and int/float spellings agree as they were saved."""
    saved, now = (json.loads(json.dumps(c, sort_keys=True, default=str)) for c in (saved, now))
    allowed = set(may_differ)
    keys = [k for k in _diff_keys(saved, now) if k.split(".")[0] not in allowed]
    return [f"{k}: {_get(saved, k)!r} -> {_get(now, k)!r}" for k in keys]


def check_run_config(run_dir: str | os.PathLike, cfg: Mapping[str, Any]) -> None:
    """Refuse to resume ``run_dir`` with a config that differs from the one it started with.

    Only the keys of :data:`RESUME_MAY_DIFFER` may change. Raises :class:`ResumeRefused` (a
    :class:`CheckpointError`) naming every differing key; reads, never writes.
    """
    path = Path(run_dir) / CHECKPOINT_DIR / RUN_CONFIG_FILE
    saved = read_run_config(run_dir)
    if saved is None:
        raise ResumeRefused(f"cannot resume {run_dir}: no {path} (the run was not started by simrl's training)")
    diffs = config_differences(saved, dict(cfg), RESUME_MAY_DIFFER)
    if diffs:
        raise ResumeRefused(
            f"cannot resume {run_dir} with a different config ({'; '.join(diffs[:10])}); repeat the original "
            f"command (only {', '.join(RESUME_MAY_DIFFER)} may change), or start a new run"
        )


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(key)
            else:
                out += _diff_keys(a[k], b[k], key)
        return out
    return [] if a == b else [prefix]


def _get(d: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return "<absent>"
        d = d[part]
    return d


# ---------------------------------------------------------------------------------------------
# RNG and callback state
# ---------------------------------------------------------------------------------------------
def _space_rng_state(space: Any) -> dict[str, Any] | None:
    rng = getattr(space, "_np_random", None)  # gymnasium spaces create theirs lazily
    return None if rng is None else rng.bit_generator.state


def _set_space_rng_state(space: Any, state: dict[str, Any] | None) -> None:
    if space is not None and state is not None:
        space.np_random.bit_generator.state = state


def capture_rng_state(model: Any) -> dict[str, Any]:
    """Every random stream a training step may draw from (SB3 uses the global ones)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {
        "python": random.getstate(),
        "numpy_global": np.random.get_state(),
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": cuda,
        "action_space": _space_rng_state(getattr(model, "action_space", None)),
        "observation_space": _space_rng_state(getattr(model, "observation_space", None)),
    }


def restore_rng_state(model: Any, state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only when CUDA is present)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy_global"])
    torch.set_rng_state(state["torch_cpu"])
    if state.get("torch_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    _set_space_rng_state(getattr(model, "action_space", None), state.get("action_space"))
    _set_space_rng_state(getattr(model, "observation_space", None), state.get("observation_space"))


def _callback_state(callbacks: Sequence[BaseCallback]) -> list[dict[str, Any]]:
    out = []
    for cb in callbacks:
        state: dict[str, Any] = {"class": type(cb).__name__, "n_calls": int(cb.n_calls)}
        if isinstance(cb, EvalCallback):
            state.update({k: getattr(cb, k) for k in _EVAL_CALLBACK_STATE if hasattr(cb, k)})
        out.append(state)
    return out


def restore_callback_state(callbacks: Sequence[BaseCallback], states: Sequence[Mapping[str, Any]]) -> None:
    """Give ``callbacks`` (the same kinds, in the same order as when saved) their saved state."""
    if [type(cb).__name__ for cb in callbacks] != [s["class"] for s in states]:
        raise CheckpointError(
            f"callbacks {[type(cb).__name__ for cb in callbacks]} differ from the checkpoint's {[s['class'] for s in states]}"
        )
    for cb, state in zip(callbacks, states):
        for key, value in state.items():
            if key != "class":
                setattr(cb, key, value)


# ---------------------------------------------------------------------------------------------
# Save
# ---------------------------------------------------------------------------------------------
def _is_sb3(model: Any) -> bool:
    from stable_baselines3.common.base_class import BaseAlgorithm

    return isinstance(model, BaseAlgorithm)


def _rebuild_vec_env_wrapper(cls: type, state: dict[str, Any]) -> Any:
    """Unpickle an SB3 ``VecEnvWrapper`` (see :func:`_env_snapshot`)."""
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    obj.class_attributes = dict(inspect.getmembers(cls))
    return obj


def _env_snapshot(env: Any) -> tuple[bytes | None, str | None]:
    """The pickled training ``VecEnv``, or None and the reason it cannot be pickled.

    SB3's ``VecEnvWrapper`` (e.g. ``VecMonitor``) keeps ``inspect.getmembers`` of its class, which
    pickle refuses, and its ``__getattr__`` recurses forever on an instance whose ``__dict__`` is
    not yet restored; wrappers are therefore pickled as (class, state without that table) and
    rebuilt by :func:`_rebuild_vec_env_wrapper`. Everything else is cloudpickle's.
    """
    if env is None:
        return None, "the model has no env"
    import io

    import cloudpickle
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class _Pickler(cloudpickle.CloudPickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, VecEnvWrapper):
                state = {k: v for k, v in obj.__dict__.items() if k != "class_attributes"}
                return _rebuild_vec_env_wrapper, (type(obj), state)
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(env)
    except Exception as exc:  # noqa: BLE001 -- any pickling failure means "reset" mode
        return None, f"{type(exc).__name__}: {exc}"
    return buffer.getvalue(), None


def save_checkpoint(
    model: Any,
    folder: str | os.PathLike,
    prefix: str,
    callbacks: Sequence[BaseCallback] = (),
    keep: int = 2,
) -> Checkpoint:
    """Write a complete checkpoint of ``model`` at its ``num_timesteps`` (see the module docstring).

    Call it at a rollout boundary (:class:`CheckpointCallback` does). ``callbacks``' state
    (e.g. the EvalCallback's history) is saved with it. Returns the verified checkpoint.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (checkpoints kept resumable), got {keep}")
    folder = Path(folder)
    step = int(model.num_timesteps)
    stem = checkpoint_stem(prefix, step)
    paths = {"model": folder / f"{stem}.zip", "state": folder / f"{stem}.state.pkl"}

    _atomic(paths["model"], lambda tmp: model.save(str(tmp)), ".zip")
    if getattr(model, "replay_buffer", None) is not None and hasattr(model, "save_replay_buffer"):
        paths["replay_buffer"] = folder / f"{stem}.replay_buffer.pkl"
        _atomic(paths["replay_buffer"], lambda tmp: model.save_replay_buffer(str(tmp)), ".pkl")

    env = model.get_env() if hasattr(model, "get_env") else None
    env_bytes, env_problem = _env_snapshot(env)
    vec_normalize = model.get_vec_normalize_env() if hasattr(model, "get_vec_normalize_env") else None
    state = {
        "step": step,
        "rng": capture_rng_state(model),
        "callbacks": _callback_state(callbacks),
        "env": env_bytes,
        "vec_normalize": None
        if vec_normalize is None
        else {"obs_rms": vec_normalize.obs_rms, "ret_rms": vec_normalize.ret_rms, "returns": vec_normalize.returns},
        "agent_extras": {}
        if _is_sb3(model)
        else {k: getattr(model, k) for k in _AGENT_EXTRAS if hasattr(model, k)},
    }
    _write_bytes(paths["state"], pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "prefix": prefix,
        "agent_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "env_state": "exact" if env_bytes is not None else "reset",
        "env_state_reason": env_problem,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {
            role: {"name": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for role, p in paths.items()
        },
    }
    sidecar = folder / f"{stem}.json"
    _write_bytes(sidecar, (json.dumps(meta, indent=2) + "\n").encode())  # last: the commit mark
    _prune(folder, keep)
    log.info("checkpoint at step %d written to %s (environment state: %s)", step, sidecar, meta["env_state"])
    return Checkpoint(sidecar, step, paths, meta["env_state"], meta)


def _prune(folder: Path, keep: int) -> None:
    """Older checkpoints keep only their model ``.zip``; the sidecar goes first, so a crash here
    never leaves a sidecar that names a missing file."""
    for sidecar in find_sidecars(folder)[keep:]:
        try:
            files = json.loads(sidecar.read_text()).get("files", {})
        except (OSError, ValueError):
            files = {}
        sidecar.unlink(missing_ok=True)
        for role, entry in files.items():
            if role != "model":
                (folder / entry["name"]).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Find and verify
# ---------------------------------------------------------------------------------------------
def _step_of(path: Path) -> int | None:
    name = path.name
    for suffix in (".json", ".zip"):
        if name.endswith(suffix):
            match = _STEM.match(name[: -len(suffix)])
            return int(match["step"]) if match else None
    return None


def find_sidecars(folder: str | os.PathLike) -> list[Path]:
    """Checkpoint sidecars in ``folder``, newest (highest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(s, p) for p in folder.glob("*_steps.json") if not p.name.startswith(".") and (s := _step_of(p)) is not None]
    return [p for _, p in sorted(found, key=lambda sp: sp[0], reverse=True)]


def read_checkpoint(sidecar: str | os.PathLike) -> Checkpoint:
    """Read and verify a checkpoint from its sidecar: every file present, of its size and checksum."""
    sidecar = Path(sidecar)
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint sidecar {sidecar} is unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "files" not in meta:
        raise CheckpointError(f"{sidecar} is not a {FORMAT} sidecar")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{sidecar} has checkpoint version {meta.get('version')}, this simrl reads {VERSION}")
    files = {}
    for role, entry in meta["files"].items():
        path = sidecar.parent / entry["name"]
        if not path.is_file():
            raise CheckpointError(f"checkpoint at step {meta['step']}: {role} file {path} is missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise CheckpointError(
                f"checkpoint at step {meta['step']}: {path} has {size} bytes, the sidecar says {entry['bytes']} (truncated or partly written)"
            )
        if sha256_file(path) != entry["sha256"]:
            raise CheckpointError(
                f"checkpoint at step {meta['step']}: {path} fails its SHA-256 check (corrupted or modified after saving)"
            )
        files[role] = path
    if "model" not in files or "state" not in files:
        raise CheckpointError(f"{sidecar} lists no model or no state file")
    return Checkpoint(sidecar, int(meta["step"]), files, str(meta.get("env_state", "reset")), meta)


def partial_checkpoints(folder: str | os.PathLike) -> list[int]:
    """Steps of model files newer than the newest sidecar: checkpoints whose writing was cut short."""
    folder = Path(folder)
    sidecars = find_sidecars(folder)
    newest = _step_of(sidecars[0]) if sidecars else -1
    steps = (_step_of(p) for p in folder.glob("*_steps.zip")) if folder.is_dir() else ()
    return sorted(s for s in steps if s is not None and s > newest)


# ---------------------------------------------------------------------------------------------
# Restore
# ---------------------------------------------------------------------------------------------
def reset_seed(seed: int | None, step: int) -> int:
    """Seed for environments rebuilt at ``step`` (``env_state="reset"``): derived from
    (training seed, step), in [2**31, 2**32 - 2**16) -- above the configured training,
    EvalCallback and held-out ranges, and (with up to 2**16 copies) still a valid 32-bit seed."""
    entropy = [int(seed or 0), int(step)]
    draw = int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])
    return 2**31 + draw % (2**31 - 2**16)


def restore(
    checkpoint: Checkpoint,
    agent_class: type,
    make_env: Callable[[int], Any],
    seed: int | None,
    device: str = "auto",
    callbacks: Sequence[BaseCallback] = (),
) -> tuple[Any, Any]:
    """Load a verified checkpoint: returns ``(model, env)`` ready for ``learn(..., reset_num_timesteps=False)``.

    ``make_env(seed)`` builds a fresh training ``VecEnv`` (used when the checkpoint holds none, or it
    cannot be unpickled). ``callbacks`` get their saved state. Any failure raises :class:`CheckpointError`.
    """
    try:
        state = pickle.loads(checkpoint.files["state"].read_bytes())
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot read {checkpoint.files['state']}: {exc}") from exc
    env, exact = None, False
    if state.get("env") is not None:
        try:
            env, exact = pickle.loads(state["env"]), True
        except Exception as exc:  # noqa: BLE001 -- e.g. a library upgrade: fall back to fresh environments
            log.warning("cannot unpickle the checkpoint's environments (%s); rebuilding them", exc)
    if env is None:
        env = make_env(reset_seed(seed, checkpoint.step))
    try:
        if _is_sb3_class(agent_class):
            model = agent_class.load(str(checkpoint.files["model"]), env=None, device=device)
            # No reset when the environments continue mid-episode: the model's _last_obs is theirs.
            model.set_env(env, force_reset=not exact)
        else:
            model = agent_class.load(str(checkpoint.files["model"]), device=device)
            model.set_env(env)
            if exact:
                for key, value in state.get("agent_extras", {}).items():
                    setattr(model, key, value)
        if "replay_buffer" in checkpoint.files:
            model.load_replay_buffer(str(checkpoint.files["replay_buffer"]))
        if state.get("vec_normalize") is not None and not exact:
            vn = model.get_vec_normalize_env()
            if vn is not None:
                vn.obs_rms, vn.ret_rms = state["vec_normalize"]["obs_rms"], state["vec_normalize"]["ret_rms"]
        restore_callback_state(callbacks, state["callbacks"])
        # Last: loading (SB3's _setup_model) reseeds the global generators with the run's seed.
        restore_rng_state(model, state["rng"])
    except CheckpointError:
        env.close()
        raise
    except Exception as exc:  # noqa: BLE001 -- a checkpoint that passes its checksums but does not load
        env.close()
        raise CheckpointError(f"cannot load checkpoint {checkpoint.sidecar}: {type(exc).__name__}: {exc}") from exc
    if int(model.num_timesteps) != checkpoint.step:
        raise CheckpointError(f"{checkpoint.sidecar}: the model says step {model.num_timesteps}, the sidecar {checkpoint.step}")
    return model, env


def _is_sb3_class(cls: Any) -> bool:
    from stable_baselines3.common.base_class import BaseAlgorithm

    return isinstance(cls, type) and issubclass(cls, BaseAlgorithm)


@dataclass
class Resumed:
    """What :func:`resume_latest` found: the model and env, the checkpoint used, and the problems met."""

    model: Any
    env: Any
    checkpoint: Checkpoint
    problems: list[str]


def resume_latest(
    folder: str | os.PathLike,
    agent_class: type,
    make_env: Callable[[int], Any],
    seed: int | None,
    device: str = "auto",
    callbacks: Sequence[BaseCallback] = (),
) -> Resumed | None:
    """Restore the newest checkpoint in ``folder`` that verifies and loads; None when there is none.

    Each skipped checkpoint (partial, truncated, corrupt, unloadable) is logged as a warning with
    its reason and listed in ``Resumed.problems``. Raises :class:`CheckpointError` when checkpoints
    exist but none is usable.
    """
    problems = [
        f"checkpoint at step {s} is partial (its model file has no sidecar: the run stopped while saving it); ignored"
        for s in partial_checkpoints(folder)
    ]
    for message in problems:
        log.warning(message)
    sidecars = find_sidecars(folder)
    for sidecar in sidecars:
        try:
            checkpoint = read_checkpoint(sidecar)
            model, env = restore(checkpoint, agent_class, make_env, seed, device, callbacks)
        except CheckpointError as exc:
            message = f"{exc}; trying the previous checkpoint"
            log.warning(message)
            problems.append(message)
            continue
        return Resumed(model, env, checkpoint, problems)
    if sidecars or problems:
        raise CheckpointError(f"no usable checkpoint in {folder}: " + " | ".join(problems))
    return None


# ---------------------------------------------------------------------------------------------
# The callback
# ---------------------------------------------------------------------------------------------
class CheckpointCallback(BaseCallback):
    """Save a resumable checkpoint at the first rollout boundary (or the end of training) at or after
    every multiple of ``every`` steps.

    Works with SB3 algorithms and with custom agents that call ``on_rollout_start`` at a
    consistent point (PaperDQN does, at the top of each environment step). ``state_callbacks``
    are the other callbacks whose state is saved and restored with the model (e.g. EvalCallback).

    :param folder: the checkpoint folder (``<run_dir>/checkpoints``).
    :param every: environment steps (summed over the vectorised envs) between checkpoints.
    :param prefix: file name prefix (the agent's name).
    :param keep: how many newest checkpoints stay resumable (>= 2 keeps one to fall back to).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        every: int,
        prefix: str,
        keep: int = 2,
        state_callbacks: Iterable[BaseCallback] = (),
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if every < 1:
            raise ValueError(f"checkpoint interval must be >= 1 environment step, got {every}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.folder = Path(folder)
        self.every = int(every)
        self.prefix = prefix
        self.keep = int(keep)
        self.state_callbacks = list(state_callbacks)
        self.next_step = self.every
        self.last: Checkpoint | None = None
        self._target: int | None = None

    def _init_callback(self) -> None:
        # A resumed run saves its next checkpoint at the next multiple of `every`, not at once.
        self.next_step = (int(self.model.num_timesteps) // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        self._maybe_save()

    def _on_training_start(self) -> None:
        # learn() passes its locals: the absolute step target of this call.
        self._target = self.locals.get("total_timesteps")

    def _on_training_end(self) -> None:
        # A learn() that reached its target ends at a boundary too (after the last update), so a
        # run shorter than one rollout past a multiple of `every` still gets its checkpoint. Not
        # after an exception (a custom agent may call this from a `finally`): the state may be torn.
        if self._target is not None and int(self.model.num_timesteps) >= int(self._target):
            self._maybe_save()

    def _maybe_save(self) -> None:
        step = int(self.model.num_timesteps)
        if step >= self.next_step:
            self.last = save_checkpoint(self.model, self.folder, self.prefix, self.state_callbacks, self.keep)
            self.next_step = (step // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True
