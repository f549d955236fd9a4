"""PettingZoo-style module of ``simrl/Turbulence2D-v1``: ``simrl/Turbulence2D-v0`` at the paper's Reynolds number.

The same environment (:class:`~simrl.envs.turbulence.Turbulence2DParallelEnv`) whose reference is the
1024^2 DNS at Re = 20,000 (``case="fhit_paper"``; ``case="beta_paper"`` for the beta-plane case) instead of
the viscous 256^2 ``fhit_cpu``. The LES time step is the case's (:meth:`ReferenceCase.les_dt`, 3.2e-3 at
64^2). Gymnasium's versioning rule: changed dynamics or rewards get a new version, so ``-v0`` numbers
stay comparable.

>>> from simrl.envs import turbulence_v1
>>> par = turbulence_v1.parallel_env(n_les=32, episode_steps=20)
>>> par.core.settings.case
'fhit_paper'
"""

from __future__ import annotations

from typing import Any

from simrl.envs import turbulence_v0
from simrl.envs.turbulence import Turbulence2DParallelEnv

__all__ = ["Turbulence2DParallelEnv", "parallel_env", "env", "raw_env", "DEFAULTS"]

DEFAULTS: dict[str, Any] = {"case": "fhit_paper"}
"""What ``-v1`` changes from ``-v0`` (the same as the catalogue entry's kwargs)."""


def parallel_env(**kwargs: Any) -> Turbulence2DParallelEnv:
    """The ParallelEnv; keyword arguments as :class:`Turbulence2DParallelEnv` (``case`` defaults to ``fhit_paper``)."""
    return turbulence_v0.parallel_env(**{**DEFAULTS, **kwargs})


def raw_env(**kwargs: Any):
    """The AEC form without wrappers (see :func:`simrl.envs.turbulence_v0.raw_env`)."""
    return turbulence_v0.raw_env(**{**DEFAULTS, **kwargs})


def env(**kwargs: Any):
    """The AEC form with PettingZoo's ``OrderEnforcingWrapper``."""
    return turbulence_v0.env(**{**DEFAULTS, **kwargs})
