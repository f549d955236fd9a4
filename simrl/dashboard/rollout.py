"""Replay one episode of a run's policy (or one of its environment's baselines), frame by frame.

No Streamlit here: :func:`play_episode` returns the rendered frames (``render_mode="rgb_array"``),
a per-step table of rewards and info values, and the bodies' positions where the environment
exposes them (``env.unwrapped.state["positions"]``)::

    from simrl.dashboard.rollout import play_episode, policy_choices
    run = "outputs/threebody/ppo/2026-01-01_00-00-00"
    policy_choices(run)                       # ['trained (ppo)', 'fixed 0.0001', ..., 'fixed 0.1']
    ep = play_episode(run, seed=1_000_000)    # the trained policy, <= 60 frames
    ep.frames[-1].shape                       # (400, 400, 3)
    ep.steps[["step", "energy_error", "total_force_evaluations", "parameter"]]
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from simrl.dashboard.runs import _as_int, _as_str, load_run

TRAINED_PREFIX = "trained"

#: Per environment id: the per-step quantities shown beside each frame (info keys, in order).
KEY_QUANTITIES: dict[str, list[str]] = {
    "simrl/ThreeBody-v0": ["energy_error", "total_force_evaluations", "parameter", "sim_time", "force_evaluations"],
}

_models: dict[tuple[str, int, int], Any] = {}
_models_lock = threading.Lock()


@dataclass
class Rollout:
    """One played episode."""

    env_id: str
    policy: str
    seed: int
    env_kwargs: dict[str, Any]
    frames: list[np.ndarray]
    frame_steps: list[int]
    steps: pd.DataFrame
    positions: np.ndarray | None
    terminated: bool
    truncated: bool
    key_quantities: list[str] = field(default_factory=list)

    @property
    def total_return(self) -> float:
        return float(self.steps["reward"].sum()) if len(self.steps) else 0.0

    @property
    def length(self) -> int:
        return int(len(self.steps))

    def step_values(self, step: int) -> dict[str, Any]:
        """The info values after environment step ``step`` (0 = the reset state)."""
        if step <= 0 or self.steps.empty:
            return {}
        row = self.steps[self.steps["step"] == step]
        return row.iloc[0].to_dict() if len(row) else {}


def policy_choices(run_path: str | os.PathLike) -> list[str]:
    """What a rollout can play in this run: ``"trained (<agent>)"`` (when ``final_model.zip`` is a zip archive) and every baseline."""
    run = load_run(run_path)
    choices = []
    if run.model_ok and _as_str(run.agent_cfg.get("class_path")):  # final_model.zip exists and is a zip archive
        choices.append(f"{TRAINED_PREFIX} ({run.agent})")
    if run.env_id:
        try:
            from simrl.evaluation.policies import baseline_policies

            choices += [p.name for p in baseline_policies(run.env_id, run.evaluation_kwargs)]
        except Exception:  # noqa: BLE001 -- an env without baselines, or kwargs from another version
            pass
    return choices


def load_model(run_path: str | os.PathLike) -> Any:
    """The run's ``final_model.zip`` on the CPU (cached by path and modification time)."""
    from simrl.agents.factory import load_class

    run = load_run(run_path)
    class_path = _as_str(run.agent_cfg.get("class_path"))
    if not class_path:
        raise ValueError(f"{run.path}: config has no agent.class_path (a string); cannot load the model")
    st = run.model_file.stat()
    key = (str(run.model_file), st.st_mtime_ns, st.st_size)
    with _models_lock:
        if key not in _models:
            _models[key] = load_class(class_path).load(str(run.model_file), device="cpu")
        return _models[key]


def play_episode(
    run_path: str | os.PathLike,
    seed: int,
    policy: str | None = None,
    max_frames: int = 60,
    max_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    render: bool = True,
) -> Rollout:
    """Play one episode of ``policy`` (default: the trained model) from ``seed`` on the run's env.

    The environment is built with ``render_mode="rgb_array"`` and the run's evaluation
    arguments (``env.kwargs`` + ``env.evaluation_kwargs``; ``env_kwargs`` overrides them).
    ``max_frames`` frames are rendered, evenly spread over the episode (always the first and
    the last state); every step's reward and info go into :attr:`Rollout.steps`.
    ``render=False`` renders no frame (positions and per-step values only; much faster).
    """
    import gymnasium as gym

    import simrl  # noqa: F401  (registers the environments)

    run = load_run(run_path)
    if not run.env_id:
        raise ValueError(f"{run.path}: no environment id in the config")
    kwargs = {**run.evaluation_kwargs, **(env_kwargs or {})}
    policy = policy or (policy_choices(run_path) or [f"{TRAINED_PREFIX}"])[0]
    if policy.startswith(TRAINED_PREFIX):
        model = load_model(run_path)

        def act(obs: np.ndarray) -> Any:
            action, _ = model.predict(obs, deterministic=True)
            return action

        overrides: dict[str, Any] = {}
    else:
        from simrl.evaluation.policies import baseline_policies

        by_name = {p.name: p for p in baseline_policies(run.env_id, kwargs)}
        if policy not in by_name:
            raise ValueError(f"unknown policy {policy!r} for {run.env_id}; accepted: {policy_choices(run_path)}")
        baseline = by_name[policy]
        overrides = dict(baseline.env_overrides)

        def act(obs: np.ndarray) -> Any:
            return baseline(np.asarray(obs)[None])[0]

    kwargs = {**kwargs, **overrides}
    horizon = _as_int(max_steps, 1) or _as_int(kwargs.get("episode_steps"), 1) or 1000
    every = max(1, math.ceil(horizon / max(max_frames - 1, 1)))
    env = gym.make(run.env_id, render_mode="rgb_array" if render else None, **kwargs)
    frames: list[np.ndarray] = []
    frame_steps: list[int] = []
    rows: list[dict[str, Any]] = []
    positions: list[np.ndarray] = []
    terminated = truncated = False
    try:
        obs, _ = env.reset(seed=int(seed))
        _record_positions(env, positions)
        if render:
            frames.append(np.asarray(env.render()))
            frame_steps.append(0)
        step = 0
        while not (terminated or truncated) and step < horizon:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            step += 1
            rows.append({"step": step, "reward": float(reward), **_scalars(info)})
            _record_positions(env, positions)
            if render and (step % every == 0 or terminated or truncated or step == horizon):
                frames.append(np.asarray(env.render()))
                frame_steps.append(step)
    finally:
        env.close()
    return Rollout(
        env_id=run.env_id,
        policy=policy,
        seed=int(seed),
        env_kwargs=kwargs,
        frames=frames,
        frame_steps=frame_steps,
        steps=pd.DataFrame(rows),
        positions=np.stack(positions) if positions else None,
        terminated=bool(terminated),
        truncated=bool(truncated),
        key_quantities=[k for k in KEY_QUANTITIES.get(run.env_id, []) if rows and k in rows[-1]],
    )


def _record_positions(env: Any, out: list[np.ndarray]) -> None:
    state = getattr(env.unwrapped, "state", None)
    if isinstance(state, dict) and "positions" in state:
        out.append(np.asarray(state["positions"], dtype=float).copy())


def _scalars(info: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in info.items():
        if k.startswith("_"):
            continue
        arr = np.asarray(v)
        if arr.ndim == 0 and arr.dtype.kind in "biuf":
            out[k] = float(arr)
    return out


def held_out_seeds(run_path: str | os.PathLike) -> list[int]:
    """The run's held-out evaluation seeds (``summary.json`` ``seeds``, else from the config); never empty.

    See :attr:`simrl.dashboard.runs.Run.evaluation_seeds` (values of the wrong type are skipped).
    """
    return load_run(run_path).evaluation_seeds

