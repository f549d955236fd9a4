"""Train an agent on a simrl environment and evaluate it against the baselines (Hydra app).

    python scripts/train_agent.py                                 # env=threebody agent=ppo
    python scripts/train_agent.py env=threebody agent=dqn seed=1 total_timesteps=50000
    python scripts/train_agent.py env.kwargs.cost_weight=2.0 device=cuda
    python scripts/train_agent.py +experiment=paper               # the paper-scale run
    python scripts/train_agent.py hydra.run.dir=<run folder> <its overrides> resume=true   # continue a killed run

Sweeps (multirun; joblib on the local cores by default, see configs/hydra/):

    python scripts/train_agent.py -m env=threebody agent=ppo,dqn seed=0,1,2
    python scripts/train_agent.py -m hydra/launcher=ray agent=ppo,dqn seed=0,1,2
    python scripts/train_agent.py -m hydra/launcher=slurm hydra.launcher.partition=<p> seed=0,1,2 resume=auto
    python scripts/train_agent.py -m hydra/sweeper=optuna_ppo agent=ppo hydra.sweeper.n_trials=50

Results go to the Hydra run folder (printed at the end): see simrl.agents.training. In a sweep a
failing job is recorded (run_info.json status "failed" with its error) and the others go on; the
sweep ends with a table of every job (<sweep dir>/sweep_summary.csv) and exits with status 1 when
any job failed. A single run that fails exits non-zero with the error.

resume=true/auto compares the command's config with the run's recorded one, for a killed and a
complete run alike, and refuses a different one (or a folder with nothing to resume) without
changing the run folder: its .hydra/ files are put back as they were, and a folder that held no
run is removed again. A complete run resumed with its own config is left as it is ("already
complete"); a refused job of a sweep is listed at the sweep's end and makes it exit with status 1.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

# configs/hydra/launcher/ray.yaml replaces the Ray plugin's config of the same name on purpose (its
# defaults cannot join an existing cluster); Hydra 1.3 then validates it against the plugin's schema,
# which it accepts, and warns that this matching is deprecated. Nothing to act on: silence it.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/ray' is validated against ConfigStore schema")


def _job_log_files(run_dir: Path) -> list[Path]:
    """The log files Hydra's job logging opened in the run folder (``train_agent.log``)."""
    files = {Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)}
    return sorted(f for f in files if f.parent == run_dir)


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> float:
    from simrl.agents.training import RESUME_REFUSALS_FILE, JobFiles, run_training_job

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # Hydra wrote the job's config (hydra.output_subdir, .hydra/) and opened its log before this
    # function ran: a command that trains nothing (a refused resume, a run already complete)
    # puts them back as they were, or removes them from a folder that holds no run.
    logs = _job_log_files(run_dir)
    job_files = JobFiles(
        config_dir=run_dir / hydra_cfg.output_subdir if hydra_cfg.output_subdir is not None else None,
        log_file=logs[0] if len(logs) == 1 else None,
    )
    # Returned for sweepers (e.g. Optuna): the trained policy's evaluation objective, lower is better.
    return run_training_job(
        OmegaConf.to_container(cfg, resolve=True),
        run_dir,
        catch_errors=multirun,
        job_files=job_files,
        refusals_file=Path(hydra_cfg.sweep.dir) / RESUME_REFUSALS_FILE if multirun else None,
    )


if __name__ == "__main__":
    main()
