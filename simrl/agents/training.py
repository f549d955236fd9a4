"""Train an agent on a simrl environment, then evaluate it against the environment's baselines.

``scripts/train_agent.py`` is a thin Hydra front-end to :func:`train_and_evaluate`, and
``scripts/evaluate.py`` one to :func:`evaluate_saved_run`; both evaluate through
:func:`evaluate_trained_model`, so a re-evaluation writes exactly the tables of the training
run. The functions take plain mappings, so they are equally usable from a notebook or a test.

Run folder layout::

    <run_dir>/
      .hydra/config.yaml      the composed config (what evaluate_saved_run reads back)
      run_info.json           status "training" while training; "complete" (or "failed") after
      tensorboard/            SB3 / agent scalars (tensorboard --logdir <run_dir>)
      checkpoints/            resumable checkpoints (simrl.agents.checkpoints) and run_config.json
      eval_callback/          EvalCallback's evaluations.npz and best_model.zip
      final_model.zip         the trained model (written atomically)
      evaluation/             episodes.parquet, summary.csv, summary.json, front.png

Resume: ``resume=true`` continues the run in the Hydra output folder (``hydra.run.dir=<run>``)
from its newest valid checkpoint; ``resume=auto`` does so when there is one and starts afresh
otherwise (sweeps relaunched with ``hydra.sweep.dir=<sweep>``, SLURM requeues). See
:func:`resume_point` and :mod:`simrl.agents.checkpoints`.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from hydra.experimental.callback import Callback

import simrl
from simrl.agents import checkpoints as ckpt
from simrl.agents.factory import build_agent, load_class, resolve_device
from simrl.agents.sb3_vec_env import make_sb3_vec_env
from simrl.evaluation import (
    ModelPolicy,
    baseline_policies,
    evaluate_on_seeds,
    format_table,
    nearest_cost_comparison,
    summarise,
    write_results,
)
from simrl.evaluation.report import RunIdentity, atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def _check_seeds(cfg: Mapping[str, Any]) -> None:
    """Training, EvalCallback and held-out evaluation seed ranges must not overlap."""
    ecb, ev = cfg["eval_callback"], cfg["evaluation"]
    ranges = {
        "training (seed .. seed + n_envs)": set(range(cfg["seed"], cfg["seed"] + cfg["n_envs"])),
        "EvalCallback (eval_callback.seed ..)": set(range(ecb["seed"], ecb["seed"] + ecb["n_envs"])),
        "held-out evaluation (evaluation.first_seed ..)": set(range(ev["first_seed"], ev["first_seed"] + ev["n_seeds"])),
    }
    names = list(ranges)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            if ranges[names[a]] & ranges[names[b]]:
                raise ValueError(
                    f"seed ranges overlap: {names[a]} and {names[b]} (seed={cfg['seed']}, "
                    f"eval_callback.seed={ecb['seed']}, evaluation.first_seed={ev['first_seed']})"
                )


def train_and_evaluate(cfg: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Train ``cfg["agent"]`` on ``cfg["env"]`` and evaluate it; returns the evaluation summary.

    ``cfg`` has the structure of ``configs/config.yaml`` (a resolved plain dict).
    ``<run_dir>/run_info.json`` says ``"status": "training"`` from the start and ``"complete"``
    once ``final_model.zip`` is saved (``"failed"`` / ``"interrupted"`` on an exception, also
    when the evaluation fails), so a run killed outright still says ``"training"``. With
    ``cfg["resume"]`` the run continues from its last checkpoint (see :func:`resume_point`);
    a run that is already complete is only evaluated again.
    """
    run_dir = Path(run_dir)
    env_cfg, agent_cfg = cfg["env"], cfg["agent"]
    info: dict[str, Any] = {
        "status": "training",
        "run_dir": str(run_dir.resolve()),
        "env": env_cfg["id"],
        "env_name": env_cfg["name"],
        "agent": agent_cfg["name"],
        "agent_class": agent_cfg["class_path"],
        "seed": int(cfg["seed"]),
        "total_timesteps": int(cfg["total_timesteps"]),
        "n_envs": int(cfg["n_envs"]),
        "device": str(cfg["device"]),
        "simrl_version": simrl.__version__,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": _now(),
    }
    previous = read_run_info(run_dir) if cfg.get("resume") else None
    if previous is not None:  # keep the run's own start and resume count
        info["started_at"] = previous.get("started_at", info["started_at"])
        info["resumes"] = int(previous.get("resumes", 0))
    if previous is not None and previous.get("status") == "complete" and (run_dir / "final_model.zip").is_file():
        # A relaunched sweep (resume=auto) or a requeued job: nothing left to train.
        log.info("%s is already complete: evaluating its final_model.zip again", run_dir)
        info = previous
        model = load_trained_model(cfg, run_dir, device=cfg["device"])
        train_seconds = previous.get("train_seconds")
    else:
        write_run_info(run_dir, info)
        try:
            _check_seeds(cfg)
            info["device"] = device = resolve_device(cfg["device"])
            env_kwargs = dict(env_cfg.get("kwargs") or {})
            log.info("training %s on %s with %d envs on %s", agent_cfg["name"], env_cfg["id"], cfg["n_envs"], device)
            model, train_seconds = _train(cfg, run_dir, device, env_kwargs, info)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            write_run_info(run_dir, {**info, "status": status, "error": _error_text(exc), "finished_at": _now()})
            raise
        info = {
            **info,
            "status": "complete",
            "train_seconds": train_seconds,
            "num_timesteps": int(getattr(model, "num_timesteps", 0)),
            "model": "final_model.zip",
            "finished_at": _now(),
        }
        write_run_info(run_dir, info)

    result: dict[str, Any] = {"train_seconds": train_seconds, "run_dir": str(run_dir)}
    if cfg["evaluation"]["enabled"]:
        try:
            result.update(evaluate_trained_model(model, cfg, run_dir))
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            write_run_info(run_dir, {**info, "status": status, "error": f"evaluation: {_error_text(exc)}"})
            raise
        # The trained policy's evaluation score (lower is better), what sweepers minimise.
        result["objective"] = float(result.get("objective", math.nan))
        write_run_info(run_dir, {**info, "objective": result["objective"]})
    return result


def resume_point(run_dir: str | Path, resume: Any) -> Path | None:
    """The checkpoint folder a run resumes from, or None when it starts afresh.

    ``resume``: ``false``/None -- start afresh; ``true`` -- continue ``<run_dir>`` from its newest
    valid checkpoint, and refuse when it has none (a mistyped ``hydra.run.dir`` must not silently
    start a new run); ``"auto"`` -- continue when there is a checkpoint, else start afresh.
    """
    if resume in (None, False, "false", "False"):
        return None
    if resume not in (True, "true", "True", "auto"):
        raise ValueError(f"resume must be false, true or auto, got {resume!r}")
    folder = Path(run_dir) / ckpt.CHECKPOINT_DIR
    if ckpt.find_sidecars(folder):
        return folder
    partial = ckpt.partial_checkpoints(folder)
    if partial and resume == "auto":
        # Killed while writing its first checkpoint: nothing is usable, so a requeued job starts
        # afresh instead of failing on every requeue.
        log.warning("resume=auto: %s holds only partial checkpoint files (%s), starting afresh", folder, partial)
        return None
    if partial:
        return folder  # resume=true: resume_latest names what is wrong with each file
    if resume == "auto":
        log.info("resume=auto: %s holds no checkpoint, starting afresh", folder)
        return None
    raise ckpt.CheckpointError(
        f"resume=true but {folder} holds no checkpoint: repeat the run's command with "
        f"hydra.run.dir=<its folder> (the one holding .hydra/ and checkpoints/), or use resume=auto "
        f"to start afresh when there is nothing to resume"
    )


def _train(
    cfg: Mapping[str, Any], run_dir: Path, device: str, env_kwargs: dict[str, Any], info: dict[str, Any]
) -> tuple[Any, float]:
    """Build (or restore) the agent, learn, save ``final_model.zip`` atomically; returns the model and the seconds taken.

    Resumable checkpoints (:class:`simrl.agents.checkpoints.CheckpointCallback`) are written every
    ``checkpoint_every`` steps for agents that take SB3 callbacks; ``info`` (the run_info dict)
    gains ``resumed_from`` when the run continues from one.
    """
    from stable_baselines3.common.callbacks import EvalCallback

    env_cfg, agent_cfg = cfg["env"], cfg["agent"]
    folder = run_dir / ckpt.CHECKPOINT_DIR
    resume_from = resume_point(run_dir, cfg.get("resume", False))

    def make_env(seed: int):
        return make_sb3_vec_env(env_cfg["id"], cfg["n_envs"], seed=seed, **env_kwargs)

    eval_env = eval_callback = None
    if agent_cfg.get("sb3_callbacks", True) and cfg["eval_callback"].get("enabled", True):
        ecb = cfg["eval_callback"]
        eval_env = make_sb3_vec_env(env_cfg["id"], ecb["n_envs"], seed=ecb["seed"], fixed_reset_seeds=True, **env_kwargs)
        eval_callback = EvalCallback(
            eval_env,
            n_eval_episodes=ecb["n_episodes"],
            eval_freq=max(ecb["every"] // cfg["n_envs"], 1),
            log_path=str(run_dir / "eval_callback"),
            best_model_save_path=str(run_dir / "eval_callback"),
            deterministic=True,
            verbose=0,
        )
    state_callbacks = [eval_callback] if eval_callback is not None else []
    resumed = None
    train_env = None
    try:
        if resume_from is not None:
            ckpt.check_run_config(run_dir, cfg)
            cls = load_class(agent_cfg["class_path"])
            resumed = ckpt.resume_latest(folder, cls, make_env, cfg["seed"], device, state_callbacks)
        if resumed is None:
            ckpt.write_run_config(run_dir, cfg)
            train_env = make_env(cfg["seed"])
            model = build_agent(
                agent_cfg["class_path"],
                train_env,
                policy=agent_cfg.get("policy"),
                kwargs=agent_kwargs(cfg),
                seed=cfg["seed"],
                device=device,
                tensorboard_log=str(run_dir / "tensorboard"),
            )
        else:
            model, train_env = resumed.model, resumed.env
            info["resumed_from"] = {
                "step": resumed.checkpoint.step,
                "checkpoint": resumed.checkpoint.sidecar.name,
                "env_state": resumed.checkpoint.env_state,
                "skipped": resumed.problems,
                "at": _now(),
            }
            info["resumes"] = int(info.get("resumes", 0)) + 1
            write_run_info(run_dir, info)
            log.info("resuming %s from its checkpoint at step %d (environments: %s)",
                     run_dir, resumed.checkpoint.step, resumed.checkpoint.env_state)  # fmt: skip
        callbacks = []
        if agent_cfg.get("sb3_callbacks", True):
            callbacks = [
                ckpt.CheckpointCallback(
                    folder,
                    every=cfg["checkpoint_every"],
                    prefix=agent_cfg["name"],
                    keep=int(cfg.get("checkpoint_keep", 2)),
                    state_callbacks=state_callbacks,
                ),
                *state_callbacks,
            ]
        learn_kwargs: dict[str, Any] = {
            "total_timesteps": max(int(cfg["total_timesteps"]) - int(model.num_timesteps), 0),
            "callback": callbacks or None,
            "progress_bar": cfg["progress_bar"],
        }
        if resumed is not None:
            learn_kwargs["reset_num_timesteps"] = False  # continue the step counter, schedules and logs
        start = time.perf_counter()
        model.learn(**learn_kwargs)
        train_seconds = time.perf_counter() - start
        _save_atomically(model, run_dir / "final_model.zip")
    finally:
        if train_env is not None:
            train_env.close()
        if eval_env is not None:
            eval_env.close()
    return model, train_seconds


def agent_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The agent's keyword arguments: ``agent.kwargs`` updated by ``env.agent_kwargs[<agent name>]``.

    An environment config tunes an algorithm for itself (e.g. PPO's rollout length for a
    costly LES step) without a separate agent config per environment; nested dicts merge.
    """
    base = dict(cfg["agent"].get("kwargs") or {})
    override = dict((cfg["env"].get("agent_kwargs") or {}).get(cfg["agent"]["name"]) or {})
    return _merge(base, override)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(dict(out[key]), value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def _save_atomically(model: Any, path: Path) -> None:
    """``model.save`` to a temporary ``.zip`` in the same folder, then ``os.replace``: never half-written."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.zip")
    try:
        model.save(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_run_info(run_dir: str | Path, info: Mapping[str, Any]) -> None:
    """Write ``<run_dir>/run_info.json`` atomically."""
    atomic_write_text(Path(run_dir) / "run_info.json", json.dumps(dict(info), indent=2) + "\n")


def read_run_info(run_dir: str | Path) -> dict[str, Any] | None:
    """``<run_dir>/run_info.json`` as a dict, or None when the run has none."""
    path = Path(run_dir) / "run_info.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_identity(cfg: Mapping[str, Any], run_dir: str | Path) -> RunIdentity:
    """The run columns of the episodes table: absolute run folder, env id and name, agent, training seed."""
    return RunIdentity(
        run=str(Path(run_dir).resolve()),
        env=cfg["env"]["id"],
        env_name=cfg["env"]["name"],
        agent=cfg["agent"]["name"],
        training_seed=int(cfg["seed"]),
    )


def evaluate_trained_model(
    model: Any | None,
    cfg: Mapping[str, Any],
    run_dir: str | Path,
    name: str | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` and every baseline of the environment on the held-out seeds; write and print the tables.

    The one evaluation of both ``scripts/train_agent.py`` (right after training) and
    ``scripts/evaluate.py`` (a saved run). ``model`` is played greedily under ``name``
    (default: the agent's config name); ``model=None`` evaluates the baselines only. Files go
    to ``out_dir`` (default ``<run_dir>/evaluation``): see :func:`simrl.evaluation.write_results`.
    Deterministic: the same model and config give the same tables, except wall-time columns.
    """
    env_cfg = cfg["env"]
    ev = cfg["evaluation"]
    name = name or cfg["agent"]["name"]
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "evaluation"
    if env_cfg.get("evaluator"):
        # An environment-specific protocol (e.g. long a-posteriori LES runs): see configs/env/*.yaml.
        module_name, _, attr = str(env_cfg["evaluator"]).partition(":")
        evaluator = getattr(importlib.import_module(module_name), attr)
        result = dict(evaluator(model, cfg, Path(run_dir), name, out_dir))
        missing = {"table", "out_dir", "objective"} - set(result)
        if missing:
            raise ValueError(f"evaluator {env_cfg['evaluator']} returned no {sorted(missing)}")
        print(result["table"])
        print(f"\nresults written to {result['out_dir']}")
        return result
    env_kwargs = {**dict(env_cfg.get("kwargs") or {}), **dict(env_cfg.get("evaluation_kwargs") or {})}
    seeds = list(range(ev["first_seed"], ev["first_seed"] + ev["n_seeds"]))
    baselines = baseline_policies(env_cfg["id"], env_kwargs)
    baseline_names = [b.name for b in baselines]
    if model is not None and name in baseline_names:
        raise ValueError(f"the trained policy's name {name!r} is also a baseline's name")
    policies = ([ModelPolicy(name=name, model=model)] if model is not None else []) + baselines
    if not policies:
        raise ValueError(f"nothing to evaluate: no model, and {env_cfg['id']} has no baselines")
    records = []
    for policy in policies:
        start = time.perf_counter()
        records += evaluate_on_seeds(env_cfg["id"], policy, seeds, env_kwargs)
        log.info("evaluated %-14s on %d seeds in %.1f s", policy.name, len(seeds), time.perf_counter() - start)
    summaries = summarise(records, env_cfg["cost_key"], env_cfg["error_key"])
    comparison = nearest_cost_comparison(summaries, name, baseline_names) if model is not None and baselines else {}
    write_results(out_dir, records, summaries, run_identity(cfg, run_dir), baselines=baseline_names,
                  extra={"comparison": comparison, "seeds": seeds},
                  cost_label=env_cfg["cost_label"], error_label=env_cfg["error_label"])  # fmt: skip
    table = format_table(summaries, f"median {env_cfg['cost_label']}", f"median {env_cfg['error_label']}")
    print(table)
    if comparison:
        print(
            f"\n{name}: median cost {comparison['policy_median_cost']:.4g}, median error "
            f"{comparison['policy_median_error']:.3e}; nearest-cost baseline {comparison['nearest_baseline']}: "
            f"{comparison['baseline_median_cost']:.4g}, {comparison['baseline_median_error']:.3e}; "
            f"beats it: {comparison['beats_nearest']}; dominated: {comparison['dominated']}"
        )
    print(f"\nresults written to {out_dir}")
    objective = comparison.get("policy_median_error", math.nan) if comparison else math.nan
    return {"summaries": summaries, "comparison": comparison, "table": table, "out_dir": str(out_dir), "objective": objective}


class RunDirError(Exception):
    """A run folder lacks what an evaluation needs (its config or its model); the message names the path."""


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved config of a run made by ``scripts/train_agent.py`` (``<run_dir>/.hydra/config.yaml``)."""
    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    path = run_dir / ".hydra" / "config.yaml"
    if not run_dir.is_dir():
        raise RunDirError(f"run folder {run_dir} does not exist (looked for {run_dir.resolve()})")
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a training run: no config at {path} (scripts/train_agent.py writes it)")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def load_trained_model(
    cfg: Mapping[str, Any], run_dir: str | Path, model: str | Path = "final_model.zip", device: str = "auto"
) -> Any:
    """Load ``model`` (relative to ``run_dir``, or absolute) with the class of the run's agent config."""
    run_dir = Path(run_dir)
    path = run_dir / model
    if not path.is_file():
        hint = ""
        info = read_run_info(run_dir)
        if info is not None and info.get("status") != "complete":
            hint += f"; run_info.json says status {info.get('status')!r}: the run ended before saving its model"
        others = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*.zip") if not p.name.startswith("."))
        if others:
            hint += f"; models in the run folder: {', '.join(others)} (choose one with model=...)"
        raise RunDirError(f"no model at {path}{hint}")
    cls = load_class(cfg["agent"]["class_path"])
    try:
        return cls.load(str(path), device=resolve_device(device))
    except Exception as exc:  # a truncated or foreign file
        raise RunDirError(f"cannot load {path} as {cfg['agent']['class_path']}: {exc}") from exc


def evaluate_saved_run(
    run_dir: str | Path,
    model: str | Path | None = "final_model.zip",
    device: str = "auto",
    n_seeds: int | None = None,
    first_seed: int | None = None,
    out_dir: str | Path | None = None,
    policy_name: str | None = None,
) -> dict[str, Any]:
    """Re-evaluate a finished run with its own config (what ``scripts/evaluate.py`` does).

    ``model`` is a file relative to ``run_dir`` (or absolute), or None for the baselines only.
    By default the final model's tables go to ``<run_dir>/evaluation`` under the agent's name,
    i.e. the training run's own tables are re-created; another model file (e.g.
    ``eval_callback/best_model.zip``) goes to ``<run_dir>/evaluation_<stem>`` as
    ``"<agent> (<stem>)"``, and the baselines alone to ``<run_dir>/evaluation_baselines``.
    ``n_seeds`` / ``first_seed`` override the run's held-out seeds.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if n_seeds is not None:
        cfg["evaluation"]["n_seeds"] = int(n_seeds)
    if first_seed is not None:
        cfg["evaluation"]["first_seed"] = int(first_seed)
    _check_seeds(cfg)
    agent = cfg["agent"]["name"]
    if model is None:
        loaded, default_out, default_name = None, run_dir / "evaluation_baselines", None
    else:
        loaded = load_trained_model(cfg, run_dir, model, device)
        is_final = (run_dir / model).resolve() == (run_dir / "final_model.zip").resolve()
        stem = Path(model).stem
        default_out = run_dir / ("evaluation" if is_final else f"evaluation_{stem}")
        default_name = agent if is_final else f"{agent} ({stem})"
    return evaluate_trained_model(loaded, cfg, run_dir, name=policy_name or default_name,
                                  out_dir=out_dir if out_dir is not None else default_out)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Sweeps (Hydra multirun): one task per job that records its failure and lets the others go on,
# and one table of every job of a sweep folder.
# ---------------------------------------------------------------------------------------------
def run_training_job(cfg: Mapping[str, Any], run_dir: str | Path, catch_errors: bool) -> float:
    """What ``scripts/train_agent.py`` runs for one job: train, evaluate, return the objective.

    With ``catch_errors`` (a multirun job) an exception is logged with its traceback, recorded in
    ``run_info.json`` (``"status": "failed"`` and ``"error"``) and turned into a NaN objective, so
    that Hydra's launchers (which stop a sweep at the first exception) run the other jobs and
    Optuna records a failed trial. A ``KeyboardInterrupt`` still stops everything. Without it (a
    single run) the exception propagates and the process exits non-zero.
    """
    try:
        result = train_and_evaluate(cfg, run_dir)
    except Exception as exc:
        if not catch_errors:
            raise
        log.exception("job in %s failed", run_dir)
        info = read_run_info(run_dir) or {"run_dir": str(Path(run_dir).resolve())}
        if info.get("status") != "failed":  # failed before train_and_evaluate could record it
            write_run_info(run_dir, {**info, "status": "failed", "error": _error_text(exc), "finished_at": _now()})
        return float("nan")
    return float(result.get("objective", float("nan")))


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


#: Columns of :func:`sweep_table` before the swept overrides and the evaluation columns.
SWEEP_COLUMNS = ["job", "status", "objective", "error", "num_timesteps", "train_seconds", "overrides", "run_dir"]


def find_sweep_jobs(sweep_dir: str | Path) -> list[Path]:
    """Job folders (those holding ``.hydra/config.yaml``) under a sweep folder, in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep_dir} does not exist")
    jobs = []
    for dirpath, dirnames, _ in os.walk(sweep_dir):
        here = Path(dirpath)
        if (here / ".hydra" / "config.yaml").is_file() and here != sweep_dir:
            jobs.append(here)
            dirnames[:] = []  # run folders do not nest
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(jobs, key=lambda p: (_job_num(p), str(p)))


def _job_num(job: Path) -> int:
    head = job.name.split("_", 1)[0]
    return int(head) if head.isdigit() else 1 << 30


def _read_overrides(job: Path) -> list[str]:
    import yaml

    path = job / ".hydra" / "overrides.yaml"
    try:
        return [str(o) for o in (yaml.safe_load(path.read_text()) or [])]
    except (OSError, ValueError, yaml.YAMLError):
        return []


def _evaluation_columns(job: Path, cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Episodes, mean and IQM return of the trained policy, and the medians of the env's cost/error keys."""
    from simrl.evaluation import iqm, read_episodes

    try:
        df = read_episodes(job)
    except (FileNotFoundError, OSError, ValueError):
        return {}
    df = df[~df["is_baseline"]] if "is_baseline" in df else df
    out: dict[str, Any] = {"eval_episodes": int(len(df))}
    if len(df):
        out["eval_mean_return"] = float(df["return"].mean())
        out["eval_iqm_return"] = float(iqm(df["return"].to_numpy(dtype=float)))
        env = (cfg or {}).get("env") or {}
        for key in (env.get("cost_key"), env.get("error_key")):
            if key and key in df:
                out[f"eval_median_{key}"] = float(df[key].median())
    return out


def sweep_table(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job of a sweep folder (``multirun/<stamp>``), in job order.

    Columns: :data:`SWEEP_COLUMNS` (``status`` is ``run_info.json``'s: ``complete``, ``failed``,
    ``interrupted``; ``training`` when the job was killed or is still running; ``not started``
    without one), then one column per override that differs between jobs (the swept
    parameters), then the trained policy's evaluation (``eval_*``) where ``episodes.parquet`` exists.
    """
    import pandas as pd

    rows, overrides = [], []
    for job in find_sweep_jobs(sweep_dir):
        info = read_run_info(job) or {}
        try:
            cfg = load_run_config(job)
        except Exception:  # noqa: BLE001 -- a broken config is shown, not fatal
            cfg = None
        ov = _read_overrides(job)
        overrides.append(dict(o.split("=", 1) for o in ov if "=" in o))
        rows.append({
            "job": str(job.relative_to(sweep_dir)),
            "status": info.get("status", "not started"),
            "objective": float(info.get("objective", float("nan"))),
            "error": info.get("error", ""),
            "num_timesteps": info.get("num_timesteps"),
            "train_seconds": info.get("train_seconds"),
            "overrides": " ".join(ov),
            "run_dir": str(job.resolve()),
            **_evaluation_columns(job, cfg),
        })  # fmt: skip
    keys = sorted({k for o in overrides for k in o})
    swept = [k for k in keys if len({o.get(k) for o in overrides}) > 1]
    for row, ov in zip(rows, overrides):
        row.update({k: ov.get(k, "") for k in swept})
    eval_cols = sorted({k for r in rows for k in r if k.startswith("eval_")})
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS + swept + eval_cols)


def format_sweep_table(table: pd.DataFrame, max_error: int = 100) -> str:
    """The printed form of :func:`sweep_table`: a fixed-width table, then one line per failed job."""
    shown = [c for c in table.columns if c not in ("error", "overrides", "run_dir")]
    lines = [table[shown].to_string(index=False, float_format=lambda x: f"{x:.4g}") if len(table) else "(no jobs)"]
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    lines.append("\n" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f" of {len(table)} jobs")
    failed = table[table["status"] == "failed"] if len(table) else table
    if len(failed):
        lines.append("failed jobs:")
        for _, row in failed.iterrows():
            error = str(row["error"]).splitlines()[0] if row["error"] else "(no error recorded)"
            lines.append(f"  {row['job']}: {error[:max_error]}")
    return "\n".join(lines)


def write_sweep_summary(sweep_dir: str | Path, csv_path: str | Path | None = None) -> pd.DataFrame:
    """Write the sweep table as CSV (default ``<sweep_dir>/sweep_summary.csv``, atomically); returns it."""
    table = sweep_table(sweep_dir)
    path = Path(csv_path) if csv_path is not None else Path(sweep_dir) / "sweep_summary.csv"
    atomic_write_text(path, table.to_csv(index=False))
    return table


class SweepSummary(Callback):
    """Hydra callback (``hydra.callbacks.sweep_summary`` in ``configs/config.yaml``): after a
    multirun, print the sweep table with its failed jobs and write ``sweep_summary.csv``.

    With ``exit_on_failure`` (the default) the command then exits with status 1 when any job
    failed -- after every job has run -- so scripts and CI notice; 0 when all completed.
    """

    def __init__(self, exit_on_failure: bool = True) -> None:
        self.exit_on_failure = exit_on_failure

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        table = write_sweep_summary(sweep_dir)
        print(f"\nsweep {sweep_dir}:\n{format_sweep_table(table)}\nsummary written to {sweep_dir / 'sweep_summary.csv'}")
        n_failed = int((table["status"] == "failed").sum())
        if n_failed and self.exit_on_failure:
            log.error("%d of %d jobs failed (see above); exiting with status 1", n_failed, len(table))
            raise SystemExit(1)
