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
      checkpoints/            resumable checkpoints (simrl.agents.checkpoints), run_config.json (the
                              config the run started with) and job_config/ (a copy of .hydra/ as of
                              the last time training proceeded)
      eval_callback/          EvalCallback's evaluations.npz and best_model.zip
      final_model.zip         the trained model (written atomically)
      evaluation/             episodes.parquet, summary.csv, summary.json, front.png

Resume: ``resume=true`` continues the run in the Hydra output folder (``hydra.run.dir=<run>``)
from its newest valid checkpoint; ``resume=auto`` does so when there is one and starts afresh
otherwise (sweeps relaunched with ``hydra.sweep.dir=<sweep>``, SLURM requeues). Either compares the
command's config with the run's recorded one, for a killed and a complete run alike, and refuses a
different one; a refused resume changes nothing in the run folder, and a complete run resumed with
its own config is left as it is. See :func:`check_resume`, :func:`train_and_evaluate` and
:mod:`simrl.agents.checkpoints`.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from hydra.experimental.callback import Callback

import simrl
from simrl.agents import checkpoints as ckpt
from simrl.agents.factory import build_agent, load_class, resolve_device
from simrl.agents.sb3_vec_env import make_sb3_vec_env
from simrl.atomic_io import atomic_write_bytes
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


@dataclass(frozen=True)
class JobFiles:
    """What a front-end wrote into the run folder at the job's start, before :func:`train_and_evaluate`
    ran: ``scripts/train_agent.py`` passes Hydra's ``.hydra/`` folder (``config_dir``) and its job log.

    ``config_dir`` is the run's record of its config: when training proceeds, a copy of its files
    is kept in ``checkpoints/job_config/``; when it does not (a refused resume, or a run that is
    already complete), its files are put back from that copy, so a command that trains nothing
    leaves the record as it was. When a refused resume named a folder that holds nothing else
    (a mistyped ``hydra.run.dir``), both are removed, and the folder itself when that empties it.
    """

    config_dir: Path | None = None
    log_file: Path | None = None


_NO_RESUME = (None, False, "false", "False")
_RESUME = (True, "true", "True", "auto")
#: Sub-folder of ``checkpoints/``: the job's config files (``.hydra/``) as of the last time training proceeded.
JOB_CONFIG_RECORD = "job_config"
#: Hydra's own job files (``hydra.output_subdir``), written at every job's start.
HYDRA_JOB_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


@dataclass(frozen=True)
class ResumePlan:
    """What :func:`check_resume` decided: ``action`` is ``"start"`` (a new run, or ``resume=auto``
    with nothing to resume), ``"continue"`` (from the checkpoints in ``checkpoints``) or
    ``"complete"`` (nothing left to train); ``previous`` is the run's run_info.json when resuming."""

    action: str
    checkpoints: Path | None = None
    previous: dict[str, Any] | None = None


def check_resume(cfg: Mapping[str, Any], run_dir: str | Path) -> ResumePlan:
    """Decide how ``cfg["resume"]`` treats ``run_dir``; raises :class:`~simrl.agents.checkpoints.ResumeRefused`
    and writes nothing when the resume is refused.

    * ``resume=false``: ``"start"``.
    * A run that is complete (run_info.json says so and ``final_model.zip`` exists): its recorded
      config (``checkpoints/run_config.json``) is compared with ``cfg`` exactly as for a killed run
      (:func:`simrl.agents.checkpoints.check_run_config`: only
      :data:`~simrl.agents.checkpoints.RESUME_MAY_DIFFER` may change), and its evaluation settings
      with those it was evaluated with (they may not change: ``scripts/evaluate.py`` re-evaluates a
      run with other settings); then ``"complete"``.
    * Otherwise (a killed, failed or interrupted run, or none): :func:`resume_point` finds the
      checkpoint (``resume=true`` refuses a folder without one, e.g. a mistyped one); whenever the
      folder holds a recorded config -- also for ``resume=auto`` starting afresh -- it is compared as above.
    """
    run_dir = Path(run_dir)
    resume = cfg.get("resume", False)
    if resume in _NO_RESUME:
        return ResumePlan("start")
    if resume not in _RESUME:
        raise ckpt.ResumeRefused(f"resume must be false, true or auto, got {resume!r}")
    previous = read_run_info(run_dir)
    if previous is not None and previous.get("status") == "complete" and (run_dir / "final_model.zip").is_file():
        ckpt.check_run_config(run_dir, cfg)
        recorded = previous.get("evaluation_config")
        if recorded is None:  # completed before run_info recorded it: the settings the run started with
            recorded = (ckpt.read_run_config(run_dir) or {}).get("evaluation")
        diffs = ckpt.config_differences({"evaluation": recorded}, {"evaluation": cfg.get("evaluation")})
        if diffs:
            raise ckpt.ResumeRefused(
                f"cannot resume {run_dir}: the run is complete and was evaluated with other settings "
                f"({'; '.join(diffs[:10])}); re-evaluate it with scripts/evaluate.py run_dir={run_dir} "
                f"(evaluation.n_seeds=..., evaluation.first_seed=..., out_dir=...), or start a new run"
            )
        return ResumePlan("complete", previous=previous)
    folder = resume_point(run_dir, resume)  # ResumeRefused: resume=true and no checkpoint
    if folder is not None or ckpt.read_run_config(run_dir) is not None:
        ckpt.check_run_config(run_dir, cfg)
    return ResumePlan("continue" if folder is not None else "start", checkpoints=folder, previous=previous)


def train_and_evaluate(
    cfg: Mapping[str, Any], run_dir: str | Path, job_files: JobFiles | None = None
) -> dict[str, Any]:
    """Train ``cfg["agent"]`` on ``cfg["env"]`` and evaluate it; returns the evaluation summary.

    ``cfg`` has the structure of ``configs/config.yaml`` (a resolved plain dict).
    ``<run_dir>/run_info.json`` says ``"status": "training"`` from the start and ``"complete"``
    once ``final_model.zip`` is saved (``"failed"`` / ``"interrupted"`` on an exception, also
    when the evaluation fails), so a run killed outright still says ``"training"``. With
    ``cfg["resume"]`` the run continues from its last checkpoint (see :func:`check_resume`).

    Run folder records are append-only facts: the config and run_info.json change only when
    training actually proceeds. A refused resume (:class:`~simrl.agents.checkpoints.ResumeRefused`:
    a config that differs from the recorded one, for a killed and a complete run alike; nothing to
    resume; no such run) writes nothing, and ``job_files`` (what the front-end wrote at the job's
    start) are put back or removed (see :class:`JobFiles`). Resuming a run that is already
    complete with its own config (``resume=true`` or ``auto``, e.g. a relaunched sweep) trains
    nothing and writes nothing: it logs that the run is complete and returns the recorded objective;
    only a run killed during its final evaluation (run_info.json has no objective yet) is evaluated,
    and the objective added to its run_info.json.
    """
    run_dir = Path(run_dir)
    try:
        plan = check_resume(cfg, run_dir)
    except BaseException:
        try:
            put_back_job_files(run_dir, job_files, refused=True)
        except Exception:  # noqa: BLE001 -- the refusal is the error to report
            log.exception("could not put back the job files of %s", run_dir)
        raise
    if plan.action == "complete":
        put_back_job_files(run_dir, job_files, refused=False)
        return _complete_run(cfg, run_dir, plan.previous or {})

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
    previous = plan.previous
    if previous is not None:  # keep the run's own start and resume count
        info["started_at"] = previous.get("started_at", info["started_at"])
        info["resumes"] = int(previous.get("resumes", 0))
    keep_job_files(run_dir, job_files)  # training proceeds: this command's config is the run's record
    write_run_info(run_dir, info)
    try:
        _check_seeds(cfg)
        info["device"] = device = resolve_device(cfg["device"])
        env_kwargs = dict(env_cfg.get("kwargs") or {})
        log.info("training %s on %s with %d envs on %s", agent_cfg["name"], env_cfg["id"], cfg["n_envs"], device)
        model, train_seconds = _train(cfg, run_dir, device, env_kwargs, info, plan.checkpoints)
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
        "evaluation_config": dict(cfg["evaluation"]),
        "finished_at": _now(),
    }
    write_run_info(run_dir, info)
    return _evaluate_and_record(model, cfg, run_dir, info, train_seconds)


def _complete_run(cfg: Mapping[str, Any], run_dir: Path, previous: dict[str, Any]) -> dict[str, Any]:
    """A resume of a complete run with its own config: nothing to train; evaluate only when the
    run was killed during its final evaluation (run_info.json has no objective)."""
    train_seconds = previous.get("train_seconds")
    if not cfg["evaluation"]["enabled"] or "objective" in previous:
        log.info("%s is already complete (run_info.json; objective %s): nothing to train or evaluate, "
                 "the run folder is left as it was", run_dir, previous.get("objective", "not evaluated"))  # fmt: skip
        result: dict[str, Any] = {"train_seconds": train_seconds, "run_dir": str(run_dir), "already_complete": True}
        if "objective" in previous:
            result["objective"] = float(previous["objective"])
        return result
    log.info("%s is complete but its evaluation is not recorded: evaluating its final_model.zip", run_dir)
    model = load_trained_model(cfg, run_dir, device=cfg["device"])
    info = {**previous, "evaluation_config": previous.get("evaluation_config", dict(cfg["evaluation"]))}
    return {**_evaluate_and_record(model, cfg, run_dir, info, train_seconds), "already_complete": True}


def _evaluate_and_record(
    model: Any, cfg: Mapping[str, Any], run_dir: Path, info: dict[str, Any], train_seconds: Any
) -> dict[str, Any]:
    """The final evaluation (when enabled); its objective (or its failure) goes to run_info.json."""
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


def _record_dir(run_dir: Path) -> Path:
    return run_dir / ckpt.CHECKPOINT_DIR / JOB_CONFIG_RECORD


def keep_job_files(run_dir: str | Path, job_files: JobFiles | None) -> None:
    """Training proceeds: copy the files of ``job_files.config_dir`` to ``checkpoints/job_config/``
    (atomically), the record :func:`put_back_job_files` restores."""
    if job_files is None or job_files.config_dir is None or not Path(job_files.config_dir).is_dir():
        return
    record = _record_dir(Path(run_dir))
    names = set()
    for path in sorted(Path(job_files.config_dir).iterdir()):
        if path.is_file():
            atomic_write_bytes(record / path.name, path.read_bytes())
            names.add(path.name)
    for stale in record.iterdir() if record.is_dir() else ():
        if stale.is_file() and stale.name not in names:
            stale.unlink()


def put_back_job_files(run_dir: str | Path, job_files: JobFiles | None, refused: bool) -> None:
    """Nothing trains (``refused``: a refused resume; else a run already complete): leave the run's
    record as it was before the front-end wrote ``job_files``.

    * The run has a record (``checkpoints/job_config/``): its files are put back into ``config_dir``
      byte for byte (and files Hydra added are removed).
    * The folder holds nothing but ``job_files`` (a mistyped ``hydra.run.dir``): they are removed,
      and the folder too when that empties it (parent folders the front-end created stay).
    * A run from before the record was kept: when refused, ``config.yaml`` is rewritten from
      ``checkpoints/run_config.json`` (the config the run started with) and Hydra's ``hydra.yaml``
      and ``overrides.yaml``, which now describe the refused command, are removed (a warning says
      so); otherwise (the same config) the job's files become the record.
    """
    if job_files is None or job_files.config_dir is None:
        return
    run_dir, config_dir = Path(run_dir), Path(job_files.config_dir)
    record = _record_dir(run_dir)
    if record.is_dir():
        kept = {p.name: p for p in record.iterdir() if p.is_file()}
        for name in sorted(set(kept) | set(HYDRA_JOB_FILES)):
            if name in kept:
                atomic_write_bytes(config_dir / name, kept[name].read_bytes())
            else:
                (config_dir / name).unlink(missing_ok=True)
        return
    log_file = Path(job_files.log_file) if job_files.log_file is not None else None
    ours = {config_dir.resolve(), *([log_file.resolve()] if log_file is not None else [])}
    others = [p for p in run_dir.iterdir() if p.resolve() not in ours] if run_dir.is_dir() else []
    if not others:
        if refused:  # nothing here but what this job's front-end wrote: take it away again
            _remove_job_files(run_dir, config_dir, log_file)
        return
    if not refused:
        keep_job_files(run_dir, job_files)
        return
    saved = ckpt.read_run_config(run_dir)
    if saved is None:
        log.warning("%s holds no record of its config (no %s, no checkpoints/run_config.json): %s now holds "
                    "the refused command's config", run_dir, record, config_dir)  # fmt: skip
        return
    import yaml

    atomic_write_text(config_dir / "config.yaml", yaml.safe_dump(saved, sort_keys=False))
    for name in ("hydra.yaml", "overrides.yaml"):
        (config_dir / name).unlink(missing_ok=True)
    log.warning("%s was made before simrl kept its job config (%s): %s/config.yaml is rewritten from "
                "checkpoints/run_config.json, and hydra.yaml and overrides.yaml, which Hydra overwrote with "
                "the refused command's, are removed", run_dir, record, config_dir)  # fmt: skip


def _remove_job_files(run_dir: Path, config_dir: Path, log_file: Path | None) -> None:
    for name in HYDRA_JOB_FILES:
        (config_dir / name).unlink(missing_ok=True)
    if log_file is not None and log_file.resolve().parent == run_dir.resolve():
        try:
            log_file.unlink(missing_ok=True)  # its open handler goes on writing to nowhere
        except OSError:
            pass
    for folder in (config_dir, run_dir):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass


def resume_point(run_dir: str | Path, resume: Any) -> Path | None:
    """The checkpoint folder a run resumes from, or None when it starts afresh.

    ``resume``: ``false``/None -- start afresh; ``true`` -- continue ``<run_dir>`` from its newest
    valid checkpoint, and refuse when it has none (a mistyped ``hydra.run.dir`` must not silently
    start a new run); ``"auto"`` -- continue when there is a checkpoint, else start afresh.
    """
    if resume in _NO_RESUME:
        return None
    if resume not in _RESUME:
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
    raise ckpt.ResumeRefused(
        f"resume=true but {folder} holds no checkpoint: repeat the run's command with "
        f"hydra.run.dir=<its folder> (the one holding .hydra/ and checkpoints/), or use resume=auto "
        f"to start afresh when there is nothing to resume"
    )


def _train(
    cfg: Mapping[str, Any],
    run_dir: Path,
    device: str,
    env_kwargs: dict[str, Any],
    info: dict[str, Any],
    resume_from: Path | None,
) -> tuple[Any, float]:
    """Build (or restore) the agent, learn, save ``final_model.zip`` atomically; returns the model and the seconds taken.

    Resumable checkpoints (:class:`simrl.agents.checkpoints.CheckpointCallback`) are written every
    ``checkpoint_every`` steps for agents that take SB3 callbacks; ``info`` (the run_info dict)
    gains ``resumed_from`` when the run continues from one (``resume_from``, the checkpoint folder
    :func:`check_resume` found; None to start afresh).
    """
    from stable_baselines3.common.callbacks import EvalCallback

    env_cfg, agent_cfg = cfg["env"], cfg["agent"]
    folder = run_dir / ckpt.CHECKPOINT_DIR

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
        if resume_from is not None:  # check_resume compared the config with the run's
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
#: In a sweep folder: one JSON line per job whose resume was refused (its run folder is left as it was).
RESUME_REFUSALS_FILE = "resume_refusals.jsonl"


def run_training_job(
    cfg: Mapping[str, Any],
    run_dir: str | Path,
    catch_errors: bool,
    job_files: JobFiles | None = None,
    refusals_file: str | Path | None = None,
) -> float:
    """What ``scripts/train_agent.py`` runs for one job: train, evaluate, return the objective.

    With ``catch_errors`` (a multirun job) an exception is logged with its traceback, recorded in
    ``run_info.json`` (``"status": "failed"`` and ``"error"``) and turned into a NaN objective, so
    that Hydra's launchers (which stop a sweep at the first exception) run the other jobs and
    Optuna records a failed trial. A refused resume (:class:`~simrl.agents.checkpoints.ResumeRefused`)
    is the exception to that: it leaves the run folder as it was (see :func:`train_and_evaluate`),
    so it is logged and appended to ``refusals_file`` (``<sweep dir>/resume_refusals.jsonl``, read by
    :class:`SweepSummary`) instead. A ``KeyboardInterrupt`` still stops everything. Without
    ``catch_errors`` (a single run) the exception propagates and the process exits non-zero.
    ``job_files``: see :class:`JobFiles`.
    """
    try:
        result = train_and_evaluate(cfg, run_dir, job_files)
    except ckpt.ResumeRefused as exc:
        if not catch_errors:
            raise
        log.error("job in %s: resume refused, its run folder is left as it was: %s", run_dir, exc)
        if refusals_file is not None:
            _append_json_line(refusals_file, {"run_dir": str(Path(run_dir).resolve()), "error": _error_text(exc),
                                              "at": _now(), "unix_time": time.time()})  # fmt: skip
        return float("nan")
    except Exception as exc:
        if not catch_errors:
            raise
        log.exception("job in %s failed", run_dir)
        info = read_run_info(run_dir) or {"run_dir": str(Path(run_dir).resolve())}
        if info.get("status") != "failed":  # failed before train_and_evaluate could record it
            write_run_info(run_dir, {**info, "status": "failed", "error": _error_text(exc), "finished_at": _now()})
        return float("nan")
    return float(result.get("objective", float("nan")))


def _append_json_line(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one line (one ``write`` on a file opened for appending: whole lines from parallel jobs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(dict(record)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_resume_refusals(sweep_dir: str | Path, since: float | None = None) -> list[dict[str, Any]]:
    """The refused resumes recorded in ``<sweep_dir>/resume_refusals.jsonl`` (at or after the Unix
    time ``since`` when given), oldest first; unreadable lines are skipped."""
    path = Path(sweep_dir) / RESUME_REFUSALS_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and (since is None or float(record.get("unix_time", 0.0)) >= since):
            out.append(record)
    return out


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
    multirun, print the sweep table with its failed jobs and write ``sweep_summary.csv``; then list
    the jobs of this multirun whose resume was refused (:data:`RESUME_REFUSALS_FILE`: their run
    folders are left as they were, so the table shows their own status).

    With ``exit_on_failure`` (the default) the command then exits with status 1 when any job
    failed or had its resume refused -- after every job has run -- so scripts and CI notice; 0 when
    all completed.
    """

    def __init__(self, exit_on_failure: bool = True) -> None:
        self.exit_on_failure = exit_on_failure
        self._started: float | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self._started = time.time()

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        table = write_sweep_summary(sweep_dir)
        print(f"\nsweep {sweep_dir}:\n{format_sweep_table(table)}\nsummary written to {sweep_dir / 'sweep_summary.csv'}")
        refused = read_resume_refusals(sweep_dir, since=self._started)
        if refused:
            print(f"resume refused for {len(refused)} jobs (their run folders are left as they were):")
            for record in refused:
                error = (str(record.get("error") or "").splitlines() or [""])[0]
                print(f"  {record.get('run_dir')}: {error[:300]}")
        n_failed = int((table["status"] == "failed").sum())
        if (n_failed or refused) and self.exit_on_failure:
            log.error("%d of %d jobs failed, %d resumes refused (see above); exiting with status 1",
                      n_failed, len(table), len(refused))  # fmt: skip
            raise SystemExit(1)
