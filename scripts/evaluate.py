"""Evaluate a saved training run against the baselines on its held-out seeds (Hydra app).

    python scripts/evaluate.py run_dir=outputs/threebody/ppo/2026-01-01_12-00-00
    python scripts/evaluate.py run_dir=<run> evaluation.n_seeds=200      # more held-out seeds
    python scripts/evaluate.py run_dir=<run> model=eval_callback/best_model.zip
    python scripts/evaluate.py run_dir=<run> model=null                  # the baselines only

Reads ``<run_dir>/.hydra/config.yaml``, loads the model with the class of the run's agent
config and evaluates it exactly as ``scripts/train_agent.py`` does after training (same
function, deterministic policy, same seeds), so the default call re-creates the run's
``evaluation/`` tables; every file is replaced atomically. See configs/evaluate.yaml.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    from simrl.agents.training import RunDirError, evaluate_saved_run

    if OmegaConf.is_missing(cfg, "run_dir"):
        usage = "python scripts/evaluate.py run_dir=outputs/<env>/<agent>/<date_time>"
        print(f"error: name the run folder: {usage}", file=sys.stderr)
        sys.exit(2)
    try:
        result = evaluate_saved_run(
            cfg.run_dir,
            model=cfg.model,
            device=cfg.device,
            n_seeds=cfg.evaluation.n_seeds,
            first_seed=cfg.evaluation.first_seed,
            out_dir=cfg.out_dir,
            policy_name=cfg.policy_name,
        )
    except RunDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    comparison = result.get("comparison") or {}
    return float(comparison.get("policy_median_error", float("nan")))


if __name__ == "__main__":
    main()
