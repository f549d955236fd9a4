"""Name-based dispatch over the batched N-body integrators.

Environments and benchmarks choose an integrator by name; this module maps the
name to its kernels (serial and ``prange``-parallel variants), its step
parameter and that parameter's meaning, so that callers never branch on names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class IntegratorSpec:
    """What an integrator's step parameter means and how to run it."""

    name: str
    parameter_name: str
    description: str
    default_parameter: float
    #: True when the parameter is a time step (and must be converted between unit systems).
    parameter_is_time: bool
    #: Whether the kernel takes the extra Hermite ``criterion`` argument.
    takes_criterion: bool
    serial_kernel: str
    parallel_kernel: str
    module: str


INTEGRATORS: dict[str, IntegratorSpec] = {
    "hermite": IntegratorSpec(
        name="hermite",
        parameter_name="eta",
        description="4th-order Hermite predictor-corrector, shared step dt = eta * t_coll",
        default_parameter=0.03,
        parameter_is_time=False,
        takes_criterion=True,
        serial_kernel="integrate_hermite_serial",
        parallel_kernel="integrate_hermite_parallel",
        module="simrl.physics.nbody.hermite",
    ),
    "ias15": IntegratorSpec(
        name="ias15",
        parameter_name="epsilon",
        description="15th-order Gauss-Radau (IAS15) with the PRS23 adaptive step",
        default_parameter=1e-9,
        parameter_is_time=False,
        takes_criterion=False,
        serial_kernel="integrate_ias15_serial",
        parallel_kernel="integrate_ias15_parallel",
        module="simrl.physics.nbody.ias15",
    ),
    "leapfrog": IntegratorSpec(
        name="leapfrog",
        parameter_name="dt",
        description="kick-drift-kick leapfrog with a fixed step dt",
        default_parameter=1e-3,
        parameter_is_time=True,
        takes_criterion=False,
        serial_kernel="integrate_leapfrog_serial",
        parallel_kernel="integrate_leapfrog_parallel",
        module="simrl.physics.nbody.leapfrog",
    ),
}

HERMITE_CRITERIA = {"collision_time": 0, "aarseth": 1}


def integrator_spec(name: str) -> IntegratorSpec:
    """Return the spec of integrator ``name`` or raise a ValueError naming the accepted ones."""
    try:
        return INTEGRATORS[name]
    except KeyError:
        raise ValueError(f"unknown integrator {name!r}; accepted: {sorted(INTEGRATORS)}") from None


def hermite_criterion_code(name: str) -> int:
    """Integer code of a Hermite step criterion, or a ValueError naming the accepted ones."""
    try:
        return HERMITE_CRITERIA[name]
    except KeyError:
        raise ValueError(f"unknown Hermite step criterion {name!r}; accepted: {sorted(HERMITE_CRITERIA)}") from None


def get_kernel(name: str, parallel: bool = False, hermite_criterion: str = "collision_time") -> Callable[..., None]:
    """Return ``advance(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status)``.

    The returned callable follows the contract of :mod:`simrl.physics.nbody` for every
    integrator (the Hermite criterion is bound here).
    """
    import importlib

    spec = integrator_spec(name)
    module = importlib.import_module(spec.module)
    kernel = getattr(module, spec.parallel_kernel if parallel else spec.serial_kernel)
    if not spec.takes_criterion:
        return kernel
    code = np.int64(hermite_criterion_code(hermite_criterion))

    def advance(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status):
        kernel(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status, code)

    return advance
