"""Evaluate trained policies against baselines on held-out seeds and report the results.

* :mod:`~simrl.evaluation.policies` -- policies as batch functions, per-environment baselines.
* :mod:`~simrl.evaluation.rollout` -- one episode per seed, all seeds in one vector env.
* :mod:`~simrl.evaluation.report` -- medians, dominance, tables, atomic Parquet/CSV/JSON/PNG output.
* :mod:`~simrl.evaluation.aggregate` -- IQM / mean / median with stratified-bootstrap intervals.
"""

from simrl.evaluation.aggregate import Estimate, aggregate_scores, aggregate_table, interval_estimates, iqm
from simrl.evaluation.policies import ConstantActionPolicy, ModelPolicy, baseline_policies, fixed_parameter_policy
from simrl.evaluation.report import (
    EPISODE_COLUMNS,
    RunIdentity,
    format_table,
    nearest_cost_comparison,
    read_episodes,
    summarise,
    write_evaluation,
    write_results,
)
from simrl.evaluation.rollout import EpisodeRecord, evaluate_on_seeds

__all__ = [
    "EPISODE_COLUMNS",
    "ConstantActionPolicy",
    "EpisodeRecord",
    "Estimate",
    "ModelPolicy",
    "RunIdentity",
    "aggregate_scores",
    "aggregate_table",
    "baseline_policies",
    "evaluate_on_seeds",
    "fixed_parameter_policy",
    "format_table",
    "interval_estimates",
    "iqm",
    "nearest_cost_comparison",
    "read_episodes",
    "summarise",
    "write_evaluation",
    "write_results",
]
