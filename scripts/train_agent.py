"""Train an agent on a simrl environment and evaluate it against the baselines (Hydra app).

    python scripts/train_agent.py                                 # env=threebody agent=ppo
    python scripts/train_agent.py env=threebody agent=dqn seed=1 total_timesteps=50000
    python scripts/train_agent.py env.kwargs.cost_weight=2.0 device=cuda
    python scripts/train_agent.py +experiment=paper               # the paper-scale run
    python scripts/train_agent.py -m seed=0,1,2                   # a sweep (multirun)

Results go to the Hydra run folder (printed at the end): see simrl.agents.training.
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> float:
    from simrl.agents.training import train_and_evaluate

    run_dir = HydraConfig.get().runtime.output_dir
    result = train_and_evaluate(OmegaConf.to_container(cfg, resolve=True), run_dir)
    # Returned for sweepers (e.g. Optuna): the trained policy's evaluation objective, lower is
    # better (ThreeBody: median final energy error; see each env's evaluator).
    return float(result.get("objective", float("nan")))


if __name__ == "__main__":
    main()
