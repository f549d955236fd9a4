"""Agent-based ecology models (digital-twin test beds) as batched Numba kernels.

* :mod:`simrl.physics.ecology.predator_prey` -- NetLogo's Wolf Sheep Predation
  (sheep-wolves-grass, big world), NetLogo-faithful, with per-tick removal as the control
  input; the kernel contract is in that module's docstring.
* :mod:`simrl.physics.ecology.rng` -- explicit-state xoshiro256** streams (one per model;
  no global NumPy/Numba random state is read or written).
* :mod:`simrl.physics.ecology.metabolic` -- the toy metabolic pathway of Fonseca et al. (2024).
* :mod:`simrl.physics.ecology.common` -- validation, seeding, state files and the one-model
  face shared by the model classes.

Kernels never raise; they report through status codes:
"""

#: All requested ticks were done.
STATUS_OK = 0
#: Internal: the kernel stopped between ticks because an animal buffer might overflow; the
#: Python classes grow the buffers and resume (users never see it).
STATUS_NEED_CAPACITY = 1
#: A population exceeds ``PredatorPreyParams.max_population``; the model does no more ticks.
STATUS_POPULATION_CAP = 2

from simrl.physics.ecology.predator_prey import (  # noqa: E402  (constants above are used there)
    COUNT_FIELDS,
    NETLOGO_BIGWORLD_STEADY_STATE,
    PredatorPreyBatch,
    PredatorPreyModel,
    PredatorPreyParams,
    PredatorPreyState,
    spawn_seeds,
)

__all__ = [
    "COUNT_FIELDS",
    "NETLOGO_BIGWORLD_STEADY_STATE",
    "PredatorPreyBatch",
    "PredatorPreyModel",
    "PredatorPreyParams",
    "PredatorPreyState",
    "STATUS_NEED_CAPACITY",
    "STATUS_OK",
    "STATUS_POPULATION_CAP",
    "spawn_seeds",
]

# Toy metabolic pathway (Fonseca et al. 2024) and the Mesa 3 reference models.
from simrl.physics.ecology.metabolic import (  # noqa: E402
    CARBON,
    ENZYME_FORMS,
    METABOLITES,
    PUBLISHED_CONTINUOUS_STEADY_STATE,
    REACTIONS,
    SPECIES,
    SUBSTRATE_POOL,
    MetabolicBatch,
    MetabolicModel,
    MetabolicParams,
    MetabolicState,
)

__all__ += [
    "CARBON",
    "ENZYME_FORMS",
    "METABOLITES",
    "PUBLISHED_CONTINUOUS_STEADY_STATE",
    "REACTIONS",
    "SPECIES",
    "SUBSTRATE_POOL",
    "MetabolicBatch",
    "MetabolicModel",
    "MetabolicParams",
    "MetabolicState",
]
