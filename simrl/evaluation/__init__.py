"""Evaluate trained policies against baselines on held-out seeds and report the results.

* :mod:`~simrl.evaluation.policies` -- policies as batch functions, per-environment baselines.
* :mod:`~simrl.evaluation.rollout` -- one episode per seed, all seeds in one vector env.
* :mod:`~simrl.evaluation.report` -- medians, dominance, tables, atomic CSV/JSON/PNG output.
"""

from simrl.evaluation.policies import ConstantActionPolicy, ModelPolicy, baseline_policies, fixed_parameter_policy
from simrl.evaluation.report import format_table, nearest_cost_comparison, summarise, write_results
from simrl.evaluation.rollout import EpisodeRecord, evaluate_on_seeds

__all__ = [
    "ConstantActionPolicy",
    "EpisodeRecord",
    "ModelPolicy",
    "baseline_policies",
    "evaluate_on_seeds",
    "fixed_parameter_policy",
    "format_table",
    "nearest_cost_comparison",
    "summarise",
    "write_results",
]
