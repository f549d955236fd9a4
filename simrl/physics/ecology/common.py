"""Python-side helpers shared by the ecology models (predator-prey, metabolic pathway).

Plain Python (no Numba): the kernels never raise, so every check of user input happens in the
Python classes, which use these helpers to give the same error messages in both models --
parameter and seed validation, atomic state files, batch construction from seeds or
snapshots -- and :class:`SingleModel`, the one-model face of a batch class.
"""

from __future__ import annotations

import io
import math
import numbers
from dataclasses import asdict, fields
from typing import Any, TypeVar

import numpy as np

from simrl.atomic_io import atomic_write_bytes

P = TypeVar("P")


def is_int(v: Any) -> bool:
    """True for integers (Python or NumPy), False for bools and everything else."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_int(name: str, v: Any, lo: int, hi: int) -> int:
    """``v`` as an int if it is an integer in ``[lo, hi]``; otherwise ValueError naming ``name``."""
    if not is_int(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def check_real(name: str, v: Any, lo: float, hi: float, what: str = "a number") -> float:
    """``v`` as a float if it is a finite real (not a bool) in ``[lo, hi]``; otherwise ValueError."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be {what} in [{lo}, {hi}], got {v!r}")
    return float(v)


def _check_fields(cls: type, names: Any) -> None:
    accepted = [f.name for f in fields(cls)]
    unknown = set(names) - set(accepted)
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; accepted: {accepted}")


def replace_params(params: P, changes: dict[str, Any]) -> P:
    """A validated copy of the frozen parameter dataclass ``params`` with ``changes`` applied."""
    _check_fields(type(params), changes)
    return type(params)(**{**asdict(params), **changes})  # type: ignore[call-overload]


def as_params(params: Any, cls: type[P]) -> P:
    """``params`` as a ``cls`` instance: ``None`` gives the defaults, a dict sets some fields."""
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if isinstance(params, dict):
        _check_fields(cls, params)
        return cls(**params)
    raise ValueError(f"params must be a {cls.__name__}, a dict of its fields or None, got {type(params).__name__}")


def as_seed_sequence(seed: Any) -> np.random.SeedSequence:
    """A numpy SeedSequence from a non-negative integer, a SeedSequence (returned as is) or None."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None or (is_int(seed) and seed >= 0):
        return np.random.SeedSequence(seed)
    raise ValueError(f"seed must be a non-negative integer, a numpy SeedSequence or None, got {seed!r}")


def save_npz_atomic(path: Any, **arrays: Any) -> None:
    """Write ``arrays`` to the compressed ``.npz`` file ``path`` atomically (:mod:`simrl.atomic_io`)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------------------
# Batch construction and the one-model face
# --------------------------------------------------------------------------------------


def seed_sequence_list(seeds: Any, spawn_hint: str) -> list[np.random.SeedSequence]:
    """One SeedSequence per model from a non-empty sequence of seeds (a lone seed is refused:
    ``spawn_hint`` names the function that derives n seeds from one)."""
    if isinstance(seeds, (numbers.Integral, np.random.SeedSequence)) or seeds is None:
        raise ValueError(f"seeds must be a sequence with one seed per model ({spawn_hint}(seed, n) derives n seeds from one)")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed (one per model)")
    return [as_seed_sequence(s) for s in seeds]


def params_list(params: Any, n: int, cls: type[P]) -> list[P]:
    """``n`` parameter sets: one ``params`` (a ``cls``, a dict or None) repeated, or one per model."""
    if params is None or isinstance(params, (cls, dict)):
        return [as_params(params, cls)] * n
    plist = [as_params(p, cls) for p in params]
    if len(plist) != n:
        raise ValueError(f"got {len(plist)} parameter sets for {n} models; pass one or one per model")
    return plist


def checked_snapshots(states: Any, seeds: Any) -> tuple[list[Any], list[Any] | None]:
    """``states`` (validated, at least one) and ``seeds`` (None, or one per state) as lists."""
    states = list(states)
    if not states:
        raise ValueError("from_snapshots needs at least one state")
    for s in states:
        s.validate()
    if seeds is not None:
        seeds = list(seeds)
        if len(seeds) != len(states):
            raise ValueError(f"got {len(seeds)} seeds for {len(states)} states; pass one per state or None")
    return states, seeds


class SingleModel:
    """One model as a batch of one: subclasses set ``batch_cls`` (a batch class with
    ``from_snapshots``, ``snapshot(b)``, ``params`` and per-model ``_tick``/``_status``)."""

    batch_cls: Any = None

    def __init__(self, params: Any = None, seed: Any = None, *, _batch: Any = None):
        self._batch = _batch if _batch is not None else self.batch_cls(params, [as_seed_sequence(seed)])

    @classmethod
    def from_snapshot(cls, state: Any, seed: Any = None) -> Any:
        """A model continuing ``state`` (exactly, or with a fresh stream from ``seed``)."""
        return cls(_batch=cls.batch_cls.from_snapshots([state], None if seed is None else [seed]))

    def restore(self, state: Any) -> None:
        """Replace the whole state (parameters, tick, random stream, agents) by ``state``."""
        self._batch = self.batch_cls.from_snapshots([state])

    def snapshot(self) -> Any:
        """A deep copy of the model's full state."""
        return self._batch.snapshot(0)

    @property
    def params(self) -> Any:
        return self._batch.params[0]

    @property
    def tick(self) -> int:
        return int(self._batch._tick[0])

    @property
    def status(self) -> int:
        return int(self._batch._status[0])


class BatchBase:
    """Accessors common to the batch classes, which keep per-model ``_rng`` (B, 4), ``_tick``
    and ``_status`` (B,) arrays and implement ``snapshot(b)``."""

    @property
    def n_models(self) -> int:
        return self._rng.shape[0]  # type: ignore[attr-defined]

    @property
    def tick(self) -> np.ndarray:
        """(B,) steps (ticks) done since setup."""
        return self._tick.copy()  # type: ignore[attr-defined]

    @property
    def status(self) -> np.ndarray:
        """(B,) status of the last step call (``STATUS_OK`` = 0, or ``STATUS_POPULATION_CAP``)."""
        return self._status.copy()  # type: ignore[attr-defined]

    def snapshots(self) -> list[Any]:
        """Deep copies of every model's full state."""
        return [self.snapshot(b) for b in range(self.n_models)]  # type: ignore[attr-defined]
