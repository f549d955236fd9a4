"""Bookkeeping shared by the batched (``gymnasium.vector.VectorEnv``) environments.

The three-body, turbulence and digital-twin vector environments step all their copies in one
batched core and implement Gymnasium's ``SAME_STEP`` and ``DISABLED`` autoreset modes themselves.
The seed/reset-mask parsing, the info-dict masks and the autoreset bookkeeping are the same for all
of them and live here, so the three environments cannot drift apart. Semantics follow Gymnasium
1.x ``SyncVectorEnv``: in ``SAME_STEP`` mode a finished copy is reset inside ``step`` and its last
observation/info go to ``info["final_obs"]`` / ``info["final_info"]``; in ``DISABLED`` mode a
finished copy stays frozen and repeats its done flags until the caller resets it.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv


ACCEPTED_AUTORESET_MODES = ("SAME_STEP", "DISABLED")


def check_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """Return ``mode`` as an :class:`AutoresetMode`; only ``SAME_STEP`` and ``DISABLED`` are accepted."""
    try:
        mode = AutoresetMode(mode)
    except ValueError:
        raise ValueError(
            f"unknown autoreset_mode {mode!r}; accepted: AutoresetMode.SAME_STEP ('SameStep'), "
            "AutoresetMode.DISABLED ('Disabled')"
        ) from None
    if mode == AutoresetMode.NEXT_STEP:
        raise ValueError("autoreset_mode NEXT_STEP is not supported; accepted: SAME_STEP, DISABLED")
    return mode


def vector_seeds(env: VectorEnv, seed: int | list[int | None] | None) -> list[int | None]:
    """One seed per copy from ``reset(seed=...)``: ``None``, an int ``s`` (copies get ``s, s+1, ...``) or a list.

    When a seed is given, the vector env's own ``np_random`` is reseeded with the first copy's seed.
    """
    num_envs = env.num_envs
    accepted = f"None, an integer >= 0, or a list of {num_envs} integers >= 0 / None"
    if seed is None:
        seeds: list[int | None] = [None] * num_envs
    elif _is_seed(seed):
        seeds = [int(seed) + i for i in range(num_envs)]
    elif isinstance(seed, (list, tuple, np.ndarray)):
        seeds = list(seed)
        if len(seeds) != num_envs or not all(s is None or _is_seed(s) for s in seeds):
            raise ValueError(f"reset(seed=...) must be {accepted}, got {seed!r}")
        seeds = [None if s is None else int(s) for s in seeds]  # numpy integers -> Python ints (Gymnasium's rule)
    else:
        raise ValueError(f"reset(seed=...) must be {accepted}, got {seed!r}")
    if seed is not None:
        env._np_random, env._np_random_seed = seeding.np_random(seeds[0])
    return seeds


def _is_seed(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and int(value) >= 0


def reset_options(options: Any, accepted: tuple[str, ...], unknown: str = "raise") -> dict[str, Any]:
    """``reset(options=...)`` as a dict: None -> ``{}``; anything but a mapping -> TypeError naming the accepted
    keys; an unknown key -> ValueError naming them (an ignored misspelt option would silently reset the wrong
    way), or with ``unknown="warn"`` a UserWarning and the key dropped: PettingZoo's ``parallel_api_test``
    resets with an arbitrary option and requires it to be accepted."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"reset(options=...) must be None or a dict with keys from {list(accepted)}, got {options!r}")
    extra = sorted(str(k) for k in options if k not in accepted)
    if extra:
        message = f"unknown reset option(s) {extra}; accepted: {list(accepted)}"
        if unknown != "warn":
            raise ValueError(message)
        warnings.warn(message + " (ignored)", UserWarning, stacklevel=3)
    return {k: v for k, v in options.items() if k in accepted}


def reset_mask(options: Mapping[str, Any], num_envs: int) -> np.ndarray:
    """The boolean ``options["reset_mask"]`` of shape ``(num_envs,)`` (all copies when absent)."""
    raw = options.get("reset_mask", np.ones(num_envs, dtype=bool))
    mask = np.asarray(raw)
    if mask.shape != (num_envs,) or mask.dtype != np.bool_:
        raise ValueError(
            f"options['reset_mask'] must be a boolean array of shape ({num_envs},), got {mask.dtype} {mask.shape}"
        )
    return mask


def masked_info(info: Mapping[str, np.ndarray], num_envs: int) -> dict[str, np.ndarray]:
    """A copy of a batched info dict with Gymnasium's all-true ``_key`` mask next to every key."""
    out = dict(info)
    out.update({f"_{key}": np.ones(num_envs, dtype=bool) for key in list(out)})
    return out


def record_final(info: dict[str, Any], obs: np.ndarray, done: np.ndarray) -> None:
    """``SAME_STEP``: store the last observation and info of the ``done`` copies in ``info`` (in place).

    Must be called before the finished copies are reset.
    """
    final_info = {k: v.copy() for k, v in info.items() if not k.startswith("_")}
    final_info.update({f"_{k}": done.copy() for k in list(final_info)})
    info["final_obs"] = np.where(done[:, None], obs, 0.0).astype(np.float32)
    info["_final_obs"] = done.copy()
    info["final_info"] = final_info
    info["_final_info"] = done.copy()


def merge_reset_info(info: dict[str, Any], fresh: Mapping[str, np.ndarray], done: np.ndarray) -> None:
    """``SAME_STEP``: as ``SyncVectorEnv``, a reset copy's top-level info is its reset info (in place)."""
    for key in fresh:
        if not key.startswith("_"):
            info[key] = np.where(done, fresh[key], info[key])


def disabled_done_flags(
    done: np.ndarray,
    final_terminated: np.ndarray,
    final_truncated: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``DISABLED``: copies finished earlier repeat their done flags; returns ``(terminated, truncated, newly_done)``.

    ``done``, ``final_terminated`` and ``final_truncated`` are the env's per-copy state and are updated in place.
    """
    newly = (terminated | truncated) & ~done
    terminated = np.where(done, final_terminated, terminated)
    truncated = np.where(done, final_truncated, truncated)
    final_terminated |= terminated & newly
    final_truncated |= truncated & newly
    done |= newly
    return terminated, truncated, newly


def apply_autoreset(
    env: VectorEnv,
    obs: np.ndarray,
    info: dict[str, Any],
    terminated: np.ndarray,
    truncated: np.ndarray,
    reset_rows: Callable[[list[int]], None],
    observe: Callable[[], np.ndarray],
    fresh_info: Callable[[], Mapping[str, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``env.autoreset_mode`` after one batched step; returns ``(obs, terminated, truncated, newly_frozen)``.

    ``SAME_STEP``: the finished copies' last observation/info are recorded (:func:`record_final`), then
    ``reset_rows(rows)`` resets them, ``observe()`` gives the new batched observation and ``fresh_info()``
    their reset info (:func:`merge_reset_info`); ``newly_frozen`` is all false. ``DISABLED``: the flags of
    copies finished earlier are repeated from ``env._done`` / ``env._final_terminated`` /
    ``env._final_truncated`` (updated in place, :func:`disabled_done_flags`); ``newly_frozen`` marks the
    copies that finished at this step.
    """
    done = terminated | truncated
    if env.autoreset_mode == AutoresetMode.SAME_STEP:
        if done.any():
            record_final(info, obs, done)
            reset_rows([int(i) for i in np.flatnonzero(done)])
            obs = observe()
            merge_reset_info(info, fresh_info(), done)
        return obs, terminated, truncated, np.zeros_like(done)
    terminated, truncated, newly = disabled_done_flags(
        env._done, env._final_terminated, env._final_truncated, terminated, truncated
    )
    return obs, terminated, truncated, newly
