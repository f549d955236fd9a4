"""Train an agent on a simrl environment, then evaluate it against the environment's baselines.

``scripts/train_agent.py`` is a thin Hydra front-end to :func:`train_and_evaluate`; the
function takes a plain mapping, so it is equally usable from a notebook or a test.

Run folder layout::

    <run_dir>/
      tensorboard/            SB3 / agent scalars (tensorboard --logdir <run_dir>)
      checkpoints/            periodic model checkpoints
      eval_callback/          EvalCallback's evaluations.npz and best_model.zip
      final_model.zip         the trained model
      evaluation/             episodes.csv, summary.csv, summary.json, front.png
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

from simrl.agents.factory import build_agent, resolve_device
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

log = logging.getLogger(__name__)


def _check_seeds(cfg: Mapping[str, Any]) -> None:
    train = set(range(cfg["seed"], cfg["seed"] + cfg["n_envs"]))
    ecb = cfg["eval_callback"]
    callback = set(range(ecb["seed"], ecb["seed"] + ecb["n_envs"]))
    ev = cfg["evaluation"]
    held_out = set(range(ev["first_seed"], ev["first_seed"] + ev["n_seeds"]))
    if held_out & (train | callback):
        raise ValueError(
            "evaluation seeds overlap the training or EvalCallback seeds: "
            f"evaluation.first_seed={ev['first_seed']}, seed={cfg['seed']}, eval_callback.seed={ecb['seed']}"
        )


def train_and_evaluate(cfg: Mapping[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Train ``cfg["agent"]`` on ``cfg["env"]`` and evaluate it; returns the evaluation summary.

    ``cfg`` has the structure of ``configs/config.yaml`` (a resolved plain dict).
    """
    from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

    run_dir = Path(run_dir)
    env_cfg, agent_cfg = cfg["env"], cfg["agent"]
    _check_seeds(cfg)
    device = resolve_device(cfg["device"])
    env_kwargs = dict(env_cfg.get("kwargs") or {})
    log.info("training %s on %s with %d envs on %s", agent_cfg["name"], env_cfg["id"], cfg["n_envs"], device)

    train_env = make_sb3_vec_env(env_cfg["id"], cfg["n_envs"], seed=cfg["seed"], **env_kwargs)
    model = build_agent(
        agent_cfg["class_path"],
        train_env,
        policy=agent_cfg.get("policy"),
        kwargs=dict(agent_cfg.get("kwargs") or {}),
        seed=cfg["seed"],
        device=device,
        tensorboard_log=str(run_dir / "tensorboard"),
    )
    callbacks = []
    eval_env = None
    if agent_cfg.get("sb3_callbacks", True):
        ecb = cfg["eval_callback"]
        eval_env = make_sb3_vec_env(env_cfg["id"], ecb["n_envs"], seed=ecb["seed"], **env_kwargs)
        callbacks = [
            CheckpointCallback(
                save_freq=max(cfg["checkpoint_every"] // cfg["n_envs"], 1),
                save_path=str(run_dir / "checkpoints"),
                name_prefix=agent_cfg["name"],
            ),
            EvalCallback(
                eval_env,
                n_eval_episodes=ecb["n_episodes"],
                eval_freq=max(ecb["every"] // cfg["n_envs"], 1),
                log_path=str(run_dir / "eval_callback"),
                best_model_save_path=str(run_dir / "eval_callback"),
                deterministic=True,
                verbose=0,
            ),
        ]
    start = time.perf_counter()
    model.learn(total_timesteps=int(cfg["total_timesteps"]), callback=callbacks or None, progress_bar=cfg["progress_bar"])
    train_seconds = time.perf_counter() - start
    model.save(str(run_dir / "final_model.zip"))
    train_env.close()
    if eval_env is not None:
        eval_env.close()

    result: dict[str, Any] = {"train_seconds": train_seconds, "run_dir": str(run_dir)}
    if cfg["evaluation"]["enabled"]:
        result.update(evaluate_trained_model(model, agent_cfg["name"], cfg, run_dir / "evaluation"))
    return result


def evaluate_trained_model(model: Any, name: str, cfg: Mapping[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Evaluate ``model`` and every baseline of the environment on the held-out seeds; write and print the table."""
    env_cfg = cfg["env"]
    ev = cfg["evaluation"]
    env_kwargs = {**dict(env_cfg.get("kwargs") or {}), **dict(env_cfg.get("evaluation_kwargs") or {})}
    seeds = list(range(ev["first_seed"], ev["first_seed"] + ev["n_seeds"]))
    baselines = baseline_policies(env_cfg["id"], env_kwargs)
    policies = [ModelPolicy(name=name, model=model), *baselines]
    records = []
    for policy in policies:
        start = time.perf_counter()
        records += evaluate_on_seeds(env_cfg["id"], policy, seeds, env_kwargs)
        log.info("evaluated %-14s on %d seeds in %.1f s", policy.name, len(seeds), time.perf_counter() - start)
    summaries = summarise(records, env_cfg["cost_key"], env_cfg["error_key"])
    comparison = nearest_cost_comparison(summaries, name, [b.name for b in baselines]) if baselines else {}
    write_results(out_dir, records, summaries, extra={"comparison": comparison, "seeds": seeds},
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
    return {"summaries": summaries, "comparison": comparison, "table": table}
