"""PettingZoo-style module of ``simrl/Turbulence2D-v0``: ``parallel_env``, ``env`` (AEC) and ``raw_env``.

>>> from simrl.envs import turbulence_v0
>>> par = turbulence_v0.parallel_env(n_les=32, episode_steps=20)
>>> aec = turbulence_v0.env(n_les=32, episode_steps=20)
>>> aec.reset(seed=0)
>>> aec.agent_selection
'agent_0'
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec

from simrl.envs.turbulence import Turbulence2DParallelEnv

__all__ = ["Turbulence2DParallelEnv", "parallel_env", "env", "raw_env"]


def parallel_env(**kwargs: Any) -> Turbulence2DParallelEnv:
    """The ParallelEnv (all agents act at once); keyword arguments as :class:`Turbulence2DParallelEnv`."""
    return Turbulence2DParallelEnv(**kwargs)


def raw_env(**kwargs: Any):
    """The AEC form without wrappers: :func:`pettingzoo.utils.conversions.parallel_to_aec` of :func:`parallel_env`.

    In AEC form the agents act one after the other; the LES advances once every agent has acted."""
    return parallel_to_aec(parallel_env(**kwargs))


def env(**kwargs: Any):
    """The AEC form with PettingZoo's usual ``OrderEnforcingWrapper`` (errors on step before reset, etc.)."""
    return wrappers.OrderEnforcingWrapper(raw_env(**kwargs))
