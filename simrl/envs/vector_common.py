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

from typing import Any, Callable, Mapping

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv


def check_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """Return ``mode`` as an :class:`AutoresetMode`; only ``SAME_STEP`` and ``DISABLED`` are accepted."""
    mode = AutoresetMode(mode)
    if mode == AutoresetMode.NEXT_STEP:
        raise ValueError("autoreset_mode NEXT_STEP is not supported; accepted: SAME_STEP, DISABLED")
    return mode


def vector_seeds(env: VectorEnv, seed: int | list[int | None] | None) -> list[int | None]:
    """One seed per copy from ``reset(seed=...)``: ``None``, an int ``s`` (copies get ``s, s+1, ...``) or a list.

    When a seed is given, the vector env's own ``np_random`` is reseeded with the first copy's seed.
    """
    num_envs = env.num_envs
    if seed is None:
        seeds: list[int | None] = [None] * num_envs
    elif isinstance(seed, (int, np.integer)):
        seeds = [int(seed) + i for i in range(num_envs)]
    else:
        seeds = list(seed)
        if len(seeds) != num_envs:
            raise ValueError(f"reset(seed=list) needs {num_envs} seeds, got {len(seeds)}")
    if seed is not None:
        env._np_random, env._np_random_seed = seeding.np_random(seeds[0])
    return seeds


def reset_mask(options: Mapping[str, Any], num_envs: int) -> np.ndarray:
    """The boolean ``options["reset_mask"]`` of shape ``(num_envs,)`` (all copies when absent)."""
    mask = np.asarray(options.get("reset_mask", np.ones(num_envs, dtype=bool)), dtype=bool)
    if mask.shape != (num_envs,):
        raise ValueError(f"options['reset_mask'] must be a boolean array of shape ({num_envs},), got {mask.shape}")
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
