"""Run policies for one episode on each held-out seed, all seeds batched in one vector env."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode

from simrl.evaluation.policies import Policy


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluated episode: the policy, the seed, its return and the final info values."""

    policy: str
    seed: int
    episode_return: float
    length: int
    terminated: bool
    truncated: bool
    final_info: dict[str, float]

    def as_row(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "seed": self.seed,
            "return": self.episode_return,
            "length": self.length,
            "terminated": self.terminated,
            "truncated": self.truncated,
            **self.final_info,
        }


def evaluate_on_seeds(
    env_id: str,
    policy: Policy,
    seeds: Sequence[int],
    env_kwargs: dict[str, Any] | None = None,
    info_keys: Sequence[str] | None = None,
) -> list[EpisodeRecord]:
    """Play ``policy`` for exactly one episode from each seed and return one record per seed.

    All seeds run together in the environment's native vector implementation with
    ``AutoresetMode.DISABLED``: finished sub-environments freeze until every episode has ended,
    so no compute is spent on episodes that are thrown away.
    """
    import simrl  # noqa: F401  (registers the environments)

    kwargs = {**(env_kwargs or {}), **policy.env_overrides}
    envs = gymnasium.make_vec(
        env_id,
        num_envs=len(seeds),
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.DISABLED,
        **kwargs,
    )
    try:
        obs, _ = envs.reset(seed=[int(s) for s in seeds])
        n = len(seeds)
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        final_terminated = np.zeros(n, dtype=bool)
        final_truncated = np.zeros(n, dtype=bool)
        final_info: list[dict[str, float]] = [{} for _ in range(n)]
        start = time.perf_counter()
        while not done.all():
            obs, rewards, terminated, truncated, infos = envs.step(policy(obs))
            running = ~done
            returns += np.where(running, rewards, 0.0)
            lengths += running
            newly_done = running & (terminated | truncated)
            for i in np.flatnonzero(newly_done):
                final_terminated[i], final_truncated[i] = bool(terminated[i]), bool(truncated[i])
                keys = info_keys or [k for k in infos if not k.startswith("_")]
                final_info[i] = {k: _scalar(infos[k][i]) for k in keys if k in infos}
            done |= newly_done
        elapsed = time.perf_counter() - start
    finally:
        envs.close()
    for record in final_info:
        record["evaluation_wall_time_share"] = elapsed / n
    return [
        EpisodeRecord(policy.name, int(seeds[i]), float(returns[i]), int(lengths[i]),
                      bool(final_terminated[i]), bool(final_truncated[i]), final_info[i])
        for i in range(n)
    ]  # fmt: skip


def _scalar(value: Any) -> float:
    value = np.asarray(value)
    return float(value) if value.ndim == 0 else float(value.reshape(-1)[0])
