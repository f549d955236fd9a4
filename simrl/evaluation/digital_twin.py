"""Evaluation of a controller on a digital-twin agent-based model against its classical baselines.

The evaluator of ``simrl/PredatorPrey-v0`` and ``simrl/MetabolicPathway-v0``, named in ``configs/env/<name>.yaml`` as
``evaluator: simrl.evaluation.digital_twin:evaluate`` and called by
:func:`simrl.agents.training.evaluate_trained_model` after training (and by
``scripts/evaluate.py``). On the agent-based model (ABM) itself, every method plays one episode
from each held-out seed (``evaluation.first_seed ..``, ``evaluation.n_seeds`` of them), all seeds
of one method in ONE batched vector env with ``AutoresetMode.DISABLED``:

* the trained policy (``model.predict(obs, deterministic=True)``), when a model is given;
* ``no control`` -- no intervention: for the predator-prey model the zero action (no removal);
  for the pathway the feed of the stored steady states (1.0, the published operating point;
  a zero feed would be starvation, not the uncontrolled system);
* ``best constant`` -- the constant action with the lowest mean objective in a grid search
  on the ABM (the companion paper's brute force, Fonseca et al. PLOS Comput Biol 2024,
  ``Con_optim_stepX.nlogo``): every grid action plays one episode from each of
  ``baseline_grid_seeds`` TRAINING seeds (``seed ..``, the training snapshot split: the
  training env kwargs), never from the held-out ones. The search is cached in
  ``<run_dir>/constant_grid.json`` (keyed by env id, kwargs, grid and seeds; recomputed when
  any differs), so a re-evaluation does not repeat it;
* ``best two-phase`` -- for families whose objective rewards a time-varying action
  (:attr:`Family.progress_index`; the metabolic pathway): a grid action until a fraction of
  the episode (``baseline_stop_grid``), then the zero action; searched the same way on the
  same training seeds, cached in ``<run_dir>/schedule_grid.json``. It tells whether a learned
  policy does more than the obvious open-loop schedule.

Written (through :func:`simrl.evaluation.report.write_evaluation`, atomically, the episodes
table last): ``episodes.parquet`` (one row per method and seed; final-info columns
``objective`` (the env's episode objective, lower is better), ``final_<x>`` and ``mean_<x>``
of every recorded population, ``effort`` (mean per-step effort), ``extinct``), ``summary.json``
(per-method mean objective with a 95 % bootstrap interval, the grid search), ``summary.csv``,
``trajectories.png`` (mean and 10-90 % band of every population against the target, and the
actions) and ``trajectories.npz`` (the same data plus one end-of-episode frame per method, for
the dashboard page :mod:`simrl.dashboard.digital_twin_page`).

Env config keys read here (besides ``id``, ``kwargs``, ``evaluation_kwargs``):
``baseline_grid`` (one list of action values per action dimension; their product is searched),
``baseline_grid_seeds`` (training seeds per grid point) and ``baseline_stop_grid`` (stop
fractions of the two-phase search); defaults per family in :data:`FAMILIES`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from simrl.evaluation.aggregate import interval_estimates
from simrl.evaluation.report import csv_text as report_csv  # one CSV writer for every evaluation
from simrl.evaluation.report import atomic_write_text, write_evaluation
from simrl.evaluation.rollout import EpisodeRecord

log = logging.getLogger(__name__)

NO_CONTROL = "no control"
BEST_CONSTANT = "best constant"
BEST_SCHEDULE = "best two-phase"


@dataclass(frozen=True)
class Family:
    """What the evaluator needs to know about one digital-twin environment."""

    state_keys: tuple[str, ...]  # info keys of the populations recorded every step
    action_labels: tuple[str, ...]  # what each action component controls
    default_grid: tuple[tuple[float, ...], ...]  # constant-action grid per action component
    no_control: Callable[[Any], tuple[str, tuple[float, ...]]]  # settings -> (label, action) of "no intervention"
    target: Callable[[Any], dict[str, float] | None]  # settings -> target populations by key
    state_labels: tuple[str, ...] = ()
    extra_keys: tuple[str, ...] = ()  # final-info keys copied into the episode records
    # Two-phase open-loop baseline (families whose objective rewards a time-varying action):
    # the observation index of the elapsed episode fraction, and the fractions at which the
    # schedule switches from a grid action to the zero action; None / () for no such baseline.
    progress_index: int | None = None
    default_stop_grid: tuple[float, ...] = ()


def _predator_prey_target(settings: Any) -> dict[str, float]:
    return dict(zip(("grass", "sheep", "wolves"), map(float, settings.target)))


def _metabolic_no_control(settings: Any) -> tuple[str, tuple[float, ...]]:
    # The pathway without a controller keeps the feed it had: the stored steady states' feed
    # (the published operating point, 1.0). A zero feed is not "no intervention" but starvation.
    feed = float(settings.snapshot_set.params.feed)
    action = (feed - settings.feed_min) / (settings.feed_max - settings.feed_min)
    return f"{NO_CONTROL} (feed {feed:g})", (float(np.clip(action, 0.0, 1.0)),)


#: Evaluator specifications by environment id.
FAMILIES: dict[str, Family] = {
    "simrl/PredatorPrey-v0": Family(
        state_keys=("grass", "sheep", "wolves"),
        state_labels=("green patches", "sheep", "wolves"),
        action_labels=("sheep removal (action)", "wolf removal (action)"),
        # Actions of Box(0, 1)^2, i.e. fractions of max_removal; with the default 5 % this spans
        # 0-3 % sheep and 0-1.5 % wolves per tick, around the companion paper's 0.29-0.59 % sweep
        # and beyond (3 % sheep or 1.5 % wolves already drive the wolves extinct).
        default_grid=((0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.6), (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)),
        no_control=lambda settings: (NO_CONTROL, (0.0, 0.0)),
        target=_predator_prey_target,
    ),
    "simrl/MetabolicPathway-v0": Family(
        state_keys=("S", "P", "Q", "R", "T"),
        action_labels=("substrate feed (action)",),
        # Actions of Box(0, 1): with the default feed range 0.5-4.5 molecules per step, feeds
        # 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3.5, 4.5 (dense around the constant optimum, ~1.5).
        default_grid=((0.0, 0.0625, 0.125, 0.1875, 0.25, 0.3125, 0.375, 0.5, 0.75, 1.0),),
        no_control=_metabolic_no_control,
        target=lambda settings: None,
        extra_keys=("yield", "fed", "product"),
        # The overall yield pays for converting the pathway's stock before the end: feeding
        # a constant, then only the basal feed (action 0) for the last 10-30 % of the episode
        # (observation 12 is the elapsed fraction) is the open-loop policy an engineer tries first.
        progress_index=12,
        default_stop_grid=(0.7, 0.8, 0.9),
    ),
}


def family(env_id: str) -> Family:
    """The evaluator specification of ``env_id``, with an error naming the supported ids."""
    if env_id not in FAMILIES:
        raise ValueError(f"the digital-twin evaluator does not know {env_id!r}; accepted: {sorted(FAMILIES)}")
    return FAMILIES[env_id]


# ---------------------------------------------------------------------------------------------
# Batched episodes
# ---------------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """One episode per row of a batched env: returns, done flags, final info and per-step records."""

    seeds: list[int]
    returns: np.ndarray  # (N,)
    lengths: np.ndarray  # (N,) steps
    terminated: np.ndarray
    truncated: np.ndarray
    final_info: list[dict[str, float]]
    states: np.ndarray  # (T, N, k) recorded populations after each step, NaN after the episode ended
    actions: np.ndarray  # (T, N, m) actions played, NaN after the episode ended
    effort: np.ndarray  # (N,) mean per-step effort over the episode
    frames: list[np.ndarray] | None  # the last frame of each row (render_mode="rgb_array"), or None


def rollout(env_id: str, env_kwargs: Mapping[str, Any], seeds: Sequence[int],
            policy: Callable[[np.ndarray], np.ndarray], state_keys: Sequence[str],
            frames: bool = False) -> Rollout:
    """Play ``policy`` (observations (N, d) -> actions (N, m)) for one episode from every seed, all
    seeds in one native vector env with ``AutoresetMode.DISABLED`` (finished rows freeze)."""
    import gymnasium
    from gymnasium.vector import AutoresetMode

    import simrl  # noqa: F401  (registers the environments)

    n = len(seeds)
    envs = gymnasium.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point",
                              autoreset_mode=AutoresetMode.DISABLED,
                              render_mode="rgb_array" if frames else None, **dict(env_kwargs))  # fmt: skip
    try:
        obs, _ = envs.reset(seed=[int(s) for s in seeds])
        returns, lengths = np.zeros(n), np.zeros(n, np.int64)
        done = np.zeros(n, bool)
        term, trunc = np.zeros(n, bool), np.zeros(n, bool)
        final: list[dict[str, float]] = [{} for _ in range(n)]
        effort_sum = np.zeros(n)
        states, actions = [], []
        while not done.all():
            act = np.asarray(policy(obs), dtype=np.float32)
            obs, rewards, terminated, truncated, info = envs.step(act)
            running = ~done
            returns += np.where(running, rewards, 0.0)
            lengths += running
            effort_sum += np.where(running, np.asarray(info.get("effort", np.zeros(n)), float), 0.0)
            states.append(np.where(running[:, None], np.stack([np.asarray(info[k], float) for k in state_keys], 1), np.nan))
            actions.append(np.where(running[:, None], act.reshape(n, -1), np.nan))
            newly = running & (terminated | truncated)
            for i in np.flatnonzero(newly):
                term[i], trunc[i] = bool(terminated[i]), bool(truncated[i])
                final[i] = {k: float(np.asarray(v[i]).reshape(-1)[0]) for k, v in info.items()
                            if not k.startswith("_") and np.asarray(v).ndim >= 1 and np.asarray(v).dtype.kind in "biuf"}  # fmt: skip
            done |= newly
        last_frames = list(envs.render()) if frames else None
    finally:
        envs.close()
    return Rollout([int(s) for s in seeds], returns, lengths, term, trunc, final, np.asarray(states),
                   np.asarray(actions), effort_sum / np.maximum(lengths, 1), last_frames)


def episode_records(name: str, r: Rollout, state_keys: Sequence[str], extra_keys: Sequence[str] = ()) -> list[EpisodeRecord]:
    """One :class:`EpisodeRecord` per row of a rollout (final info as documented in the module)."""
    records = []
    for i, seed in enumerate(r.seeds):
        length = int(r.lengths[i])
        traj = r.states[:length, i]
        info = {"objective": float(r.final_info[i].get("objective", math.nan))}
        for j, key in enumerate(state_keys):
            info[f"final_{key}"] = float(traj[-1, j])
            info[f"mean_{key}"] = float(traj[:, j].mean())
        info["effort"] = float(r.effort[i])
        info["extinct"] = float(bool(r.final_info[i].get("extinct", 0.0)))
        for key in extra_keys:
            info[key] = float(r.final_info[i].get(key, math.nan))
        records.append(EpisodeRecord(name, seed, float(r.returns[i]), length, bool(r.terminated[i]),
                                     bool(r.truncated[i]), info))  # fmt: skip
    return records


# ---------------------------------------------------------------------------------------------
# The best constant action: grid search on training seeds, cached in the run folder
# ---------------------------------------------------------------------------------------------


def switching_policy(actions: np.ndarray, stops: np.ndarray | None, progress_index: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """Row i plays ``actions[i]`` -- until the elapsed fraction ``obs[:, progress_index]`` reaches
    ``stops[i]``, then the zero action -- when ``stops`` is given; else the constant ``actions``."""
    actions = np.asarray(actions, dtype=np.float32)
    if stops is None:
        return lambda obs: np.broadcast_to(actions, (len(obs), actions.shape[-1])).copy()
    stops = np.asarray(stops, dtype=np.float64)
    return lambda obs: np.where((obs[:, progress_index] < stops - 1e-9)[:, None], actions, 0.0).astype(np.float32)


def grid_search(env_id: str, env_kwargs: Mapping[str, Any], grid: Sequence[Sequence[float]],
                seeds: Sequence[int], state_keys: Sequence[str], stop_grid: Sequence[float] = (),
                progress_index: int | None = None) -> dict[str, Any]:
    """Mean objective of every constant action of the grid's product over ``seeds``; all
    ``len(grid points) x len(seeds)`` episodes in one batched env. With a ``stop_grid`` (and the
    observation's ``progress_index``), every point is an action and a stop fraction (the last
    entry of each point): the action until that fraction of the episode, then the zero action."""
    axes = [*grid, stop_grid] if stop_grid else list(grid)
    points = [tuple(float(v) for v in p) for p in product(*axes)]
    rows = [(p, s) for p in points for s in seeds]
    table = np.array([p for p, _ in rows], dtype=np.float64)
    actions, stops = (table[:, :-1], table[:, -1]) if stop_grid else (table, None)
    start = time.perf_counter()
    r = rollout(env_id, env_kwargs, [s for _, s in rows], switching_policy(actions, stops, progress_index), state_keys)
    objective = np.array([f.get("objective", math.nan) for f in r.final_info]).reshape(len(points), len(seeds))
    means = objective.mean(axis=1)
    best = int(np.nanargmin(means))
    return {
        "grid": [list(map(float, g)) for g in grid],
        "seeds": [int(s) for s in seeds],
        "points": [list(p) for p in points],
        "mean_objective": means.tolist(),
        "best_action": list(points[best]),
        "best_mean_objective": float(means[best]),
        "seconds": time.perf_counter() - start,
    }


def best_constant(cfg: Mapping[str, Any], run_dir: Path, fam: Family, schedule: bool = False) -> dict[str, Any]:
    """The grid search of ``cfg``'s env, from ``<run_dir>/constant_grid.json`` when it matches, else run and cached.

    ``schedule=True``: the two-phase search (points: action, switch fraction) over the
    env config's ``baseline_stop_grid`` (default ``fam.default_stop_grid``), cached in
    ``<run_dir>/schedule_grid.json``."""
    env_cfg = cfg["env"]
    grid = [list(map(float, g)) for g in (env_cfg.get("baseline_grid") or fam.default_grid)]
    if len(grid) != len(fam.action_labels) or any(len(g) == 0 for g in grid):
        raise ValueError(f"baseline_grid must hold one non-empty list of action values per action component "
                         f"({len(fam.action_labels)}: {list(fam.action_labels)}), got {grid}")
    n_seeds = int(env_cfg.get("baseline_grid_seeds", 4))
    if n_seeds < 1:
        raise ValueError(f"baseline_grid_seeds must be >= 1, got {n_seeds}")
    seeds = list(range(int(cfg["seed"]), int(cfg["seed"]) + n_seeds))
    kwargs = dict(env_cfg.get("kwargs") or {})
    stops: list[float] = []
    if schedule:
        stops = [float(v) for v in (env_cfg.get("baseline_stop_grid") or fam.default_stop_grid)]
        if fam.progress_index is None or not stops or not all(0.0 < v < 1.0 for v in stops):
            raise ValueError(f"a two-phase baseline needs a family with an elapsed-fraction observation and "
                             f"baseline_stop_grid values in (0, 1); got {stops} for {env_cfg['id']}")
    key = hashlib.sha256(json.dumps([env_cfg["id"], kwargs, grid, seeds, stops], sort_keys=True,
                                    default=str).encode()).hexdigest()  # fmt: skip
    path = Path(run_dir) / ("schedule_grid.json" if schedule else "constant_grid.json")
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == key:
                return cached
        except (OSError, ValueError):
            pass  # unreadable: recompute
    result = {"key": key, "env": env_cfg["id"], "kwargs": kwargs,
              **grid_search(env_cfg["id"], kwargs, grid, seeds, fam.state_keys, stops, fam.progress_index)}  # fmt: skip
    atomic_write_text(path, json.dumps(result, indent=2, default=str) + "\n")
    log.info("%s grid search: %d points x %d training seeds in %.1f s, best %s (objective %.4g)",
             "two-phase" if schedule else "constant-rate", len(result["points"]), n_seeds,
             result["seconds"], result["best_action"], result["best_mean_objective"])  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------
# The evaluator
# ---------------------------------------------------------------------------------------------


def evaluate(model: Any | None, cfg: Mapping[str, Any], run_dir: str | Path, name: str,
             out_dir: str | Path) -> dict[str, Any]:
    """Evaluate ``model`` (or only the baselines when None) on the held-out seeds; see the module docstring.

    Returns ``{"table", "out_dir", "objective", "summary", "grid"}``; ``objective`` is the trained
    policy's mean objective (NaN without a model).
    """
    env_cfg, ev = cfg["env"], cfg["evaluation"]
    env_id = env_cfg["id"]
    fam = family(env_id)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    eval_kwargs = {**dict(env_cfg.get("kwargs") or {}), **dict(env_cfg.get("evaluation_kwargs") or {})}
    seeds = list(range(int(ev["first_seed"]), int(ev["first_seed"]) + int(ev["n_seeds"])))
    if not seeds:
        raise ValueError("evaluation.n_seeds must be >= 1")
    settings = env_settings(env_id, eval_kwargs)
    grid = best_constant(cfg, run_dir, fam)
    best = np.asarray(grid["best_action"], dtype=np.float32)
    label = f"{BEST_CONSTANT} ({', '.join(f'{v:g}' for v in best)})"
    free_label, free_action = fam.no_control(settings)
    free = np.asarray(free_action, dtype=np.float32)
    baselines: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        (free_label, switching_policy(free, None, None)),
        (label, switching_policy(best, None, None)),
    ]
    schedule = None
    if fam.progress_index is not None:
        schedule = best_constant(cfg, run_dir, fam, schedule=True)
        action, stop = np.asarray(schedule["best_action"][:-1]), schedule["best_action"][-1]
        baselines.append((f"{BEST_SCHEDULE} ({', '.join(f'{v:g}' for v in action)} until {stop:g})",
                          switching_policy(action, np.array([stop]), fam.progress_index)))
    policies = list(baselines)
    if model is not None:
        if name in [b for b, _ in baselines]:
            raise ValueError(f"the trained policy's name {name!r} is also a baseline's name")
        policies.insert(0, (name, lambda obs: np.asarray(model.predict(obs, deterministic=True)[0])))

    records: list[EpisodeRecord] = []
    rollouts: dict[str, Rollout] = {}
    for policy_name, fn in policies:
        start = time.perf_counter()
        r = rollout(env_id, eval_kwargs, seeds, fn, fam.state_keys, frames=True)
        rollouts[policy_name] = r
        records += episode_records(policy_name, r, fam.state_keys, fam.extra_keys)
        log.info("evaluated %-24s on %d seeds in %.1f s", policy_name, len(seeds), time.perf_counter() - start)

    target = fam.target(settings)
    summary = summarise(records, [p for p, _ in policies], reference=label)
    table = format_table(summary)
    payload = {
        "env": env_id, "policy": name if model is not None else None, "baselines": [b for b, _ in baselines],
        "seeds": seeds, "target": target, "methods": summary,
        "grid_search": {k: v for k, v in grid.items() if k != "key"},
        "schedule_search": None if schedule is None else {k: v for k, v in schedule.items() if k != "key"},
    }  # fmt: skip
    files: dict[str, str | bytes] = {
        "summary.json": json.dumps(payload, indent=2, default=_json_default) + "\n",
        "summary.csv": report_csv(summary, list(summary[0])),
        "trajectories.png": plot_trajectories(rollouts, fam, target),
        "trajectories.npz": trajectories_npz(rollouts, fam, target, int(getattr(settings, "ticks_per_action", 1))),
    }
    from simrl.agents.training import run_identity  # late: training imports the evaluation package

    write_evaluation(out_dir, records, run_identity(cfg, run_dir), baselines=[b for b, _ in baselines], files=files)
    objective = summary[0]["objective_mean"] if model is not None else math.nan
    return {"table": table, "out_dir": str(out_dir), "objective": float(objective), "summary": summary,
            "grid": grid, "schedule": schedule}  # fmt: skip


def env_settings(env_id: str, env_kwargs: Mapping[str, Any]) -> Any:
    """The env's validated settings object (target, ticks per action: read, never guessed)."""
    import gymnasium

    import simrl  # noqa: F401

    env = gymnasium.make(env_id, **dict(env_kwargs))
    try:
        return env.unwrapped.settings
    finally:
        env.close()


def summarise(records: Sequence[EpisodeRecord], order: Sequence[str], reference: str | None = None) -> list[dict[str, Any]]:
    """Per method: mean objective with a 95 % stratified-bootstrap interval, extinctions, effort, final populations.

    With a ``reference`` method (the best constant), also the paired difference ``objective -
    reference objective`` over the seeds both played (``diff_mean``, ``diff_low``, ``diff_high``:
    mean and 95 % bootstrap interval; every method starts from the same stored state per seed,
    so the pairing removes the spread between start states)."""
    out = []
    objectives = {p: {r.seed: r.final_info["objective"] for r in records if r.policy == p} for p in order}
    for policy in order:
        recs = [r for r in records if r.policy == policy]
        obj = np.array([r.final_info["objective"] for r in recs])
        est = interval_estimates(obj, reps=2000, rng=0, metrics=("mean",))["mean"]
        row: dict[str, Any] = {
            "policy": policy,
            "episodes": len(recs),
            "objective_mean": est.point,
            "objective_low": est.low,
            "objective_high": est.high,
            "objective_std": float(obj.std(ddof=1)) if len(obj) > 1 else 0.0,
            "extinct_fraction": float(np.mean([r.final_info["extinct"] for r in recs])),
            "effort_mean": float(np.mean([r.final_info["effort"] for r in recs])),
        }
        if reference is not None:
            ref = objectives[reference]
            diff = np.array([v - ref[seed] for seed, v in objectives[policy].items() if seed in ref])
            d = interval_estimates(diff, reps=2000, rng=0, metrics=("mean",))["mean"]
            row.update(diff_mean=d.point, diff_low=d.low, diff_high=d.high)
        for key in recs[0].final_info:
            if key.startswith("final_"):
                row[f"{key}_mean"] = float(np.mean([r.final_info[key] for r in recs]))
        out.append(row)
    return out


def format_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width text table: objective mean [95 % CI], extinctions, effort, final populations."""
    finals = [k for k in summary[0] if k.startswith("final_")]
    paired = "diff_mean" in summary[0]
    header = (f"{'method':<34} {'objective':>10} {'95% CI':>21} "
              + (f"{'- best constant [95% CI]':>32} " if paired else "")
              + f"{'extinct':>8} {'effort':>8} " + " ".join(f"{k[6:-5]:>9}" for k in finals))  # fmt: skip
    lines = [header, "-" * len(header)]
    for s in summary:
        ci = f"[{s['objective_low']:.4g}, {s['objective_high']:.4g}]"
        diff = f"{s['diff_mean']:+.3g} [{s['diff_low']:+.3g}, {s['diff_high']:+.3g}]" if paired else ""
        lines.append(f"{s['policy']:<34} {s['objective_mean']:>10.4g} {ci:>21} " + (f"{diff:>32} " if paired else "")
                     + f"{s['extinct_fraction']:>8.2f} {s['effort_mean']:>8.4f} "
                     + " ".join(f"{s[k]:>9.0f}" for k in finals))  # fmt: skip
    lines.append("objective: the environment's episode objective (info['objective']), lower is better; "
                 "CI: stratified bootstrap over held-out seeds"
                 + ("; - best constant: paired difference per seed (negative = better)" if paired else ""))  # fmt: skip
    return "\n".join(lines)


def _band(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 10-90 % quantiles over rows (axis 1), ignoring ended episodes (NaN)."""
    with np.errstate(all="ignore"), _quiet():
        return np.nanmean(x, axis=1), np.nanquantile(x, 0.1, axis=1), np.nanquantile(x, 0.9, axis=1)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def trajectories_npz(rollouts: Mapping[str, Rollout], fam: Family, target: Mapping[str, float] | None,
                     ticks_per_step: int = 1) -> bytes:
    """Compressed ``.npz`` bytes for the dashboard: per method the mean and band of every recorded
    population and action per step, the target, and one end-of-episode frame (first seed)."""
    arrays: dict[str, np.ndarray] = {
        "methods": np.array(list(rollouts)),
        "state_keys": np.array(fam.state_keys),
        "action_labels": np.array(fam.action_labels),
        "target": np.array([(target or {}).get(k, np.nan) for k in fam.state_keys], float),
    }
    for i, (name, r) in enumerate(rollouts.items()):
        mean, lo, hi = _band(r.states)
        arrays[f"m{i}_states_mean"], arrays[f"m{i}_states_low"], arrays[f"m{i}_states_high"] = mean, lo, hi
        arrays[f"m{i}_actions_mean"] = _band(r.actions)[0]
        arrays[f"m{i}_objective"] = np.array([f.get("objective", np.nan) for f in r.final_info])
        if r.frames:
            arrays[f"m{i}_frame"] = np.asarray(r.frames[0], np.uint8)
    arrays["ticks"] = ticks_per_step * np.arange(1, max(len(r.states) for r in rollouts.values()) + 1)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load_trajectories(path: str | Path) -> dict[str, Any]:
    """Read ``trajectories.npz`` back: ``{"ticks", "state_keys", "action_labels", "target", "methods":
    {name: {"states_mean", "states_low", "states_high", "actions_mean", "objective", "frame"}}}``."""
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    methods = {}
    for i, name in enumerate(data["methods"].tolist()):
        methods[name] = {k[len(f"m{i}_"):]: v for k, v in data.items() if k.startswith(f"m{i}_")}
    return {"ticks": data["ticks"], "state_keys": data["state_keys"].tolist(),
            "action_labels": data["action_labels"].tolist(), "target": data["target"], "methods": methods}  # fmt: skip


def plot_trajectories(rollouts: Mapping[str, Rollout], fam: Family, target: Mapping[str, float] | None) -> bytes:
    """PNG bytes: one panel per population (mean line and 10-90 % band per method, the target
    dashed) and one per action component."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k, m = len(fam.state_keys), len(fam.action_labels)
    fig = Figure(figsize=(11, 2.6 * (k + m)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(k + m, 1, sharex=True)
    colours = ["tab:red", "tab:gray", "tab:blue", "tab:green", "tab:purple"]
    for c, (name, r) in enumerate(rollouts.items()):
        steps = np.arange(1, len(r.states) + 1)
        mean, lo, hi = _band(r.states)
        for j in range(k):
            axes[j].plot(steps, mean[:, j], color=colours[c % len(colours)], label=name, lw=1.3)
            axes[j].fill_between(steps, lo[:, j], hi[:, j], color=colours[c % len(colours)], alpha=0.2, lw=0)
        amean = _band(r.actions)[0]
        for j in range(m):
            axes[k + j].plot(steps, amean[:, j], color=colours[c % len(colours)], lw=1.3)
    labels = fam.state_labels or fam.state_keys
    for j, key in enumerate(fam.state_keys):
        if target and key in target:
            axes[j].axhline(target[key], color="black", ls="--", lw=1, label="target")
        axes[j].set_ylabel(labels[j])
    for j, lab in enumerate(fam.action_labels):
        axes[k + j].set_ylabel(lab, fontsize=8)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("decision step")
    axes[0].set_title("Held-out episodes on the agent-based model: mean and 10-90 % band")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")
