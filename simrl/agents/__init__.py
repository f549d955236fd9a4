"""Agents that train on simrl environments: SB3 glue and simrl's own torch agents.

* :mod:`~simrl.agents.sb3_vec_env` -- native batched vector envs as SB3 ``VecEnv``.
* :mod:`~simrl.agents.factory` -- build an agent from a config (class path, kwargs, device).
* :mod:`~simrl.agents.paper_dqn` -- the three-body paper's DQN, its training flaws fixed.
"""
