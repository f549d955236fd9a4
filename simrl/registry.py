"""The catalogue of simrl environments and their registration with Gymnasium / PettingZoo.

Every environment the package provides is one :class:`EnvironmentEntry` in
:data:`ENVIRONMENTS`. ``import simrl`` calls :func:`register_environments`, which is
idempotent: running it again (or importing twice) re-registers nothing and warns nothing.

Single-agent entries go to Gymnasium's registry (``gymnasium.make`` / ``gymnasium.make_vec``);
multi-agent entries go to PettingZoo's (1.27+): ``pettingzoo.make("parallel", id)`` builds the
``ParallelEnv`` and ``pettingzoo.make("aec", id)`` its AEC form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium

Kind = Literal["single-agent", "multi-agent"]


@dataclass(frozen=True)
class EnvironmentEntry:
    """One environment id and where its implementations live."""

    id: str
    entry_point: str
    kind: Kind = "single-agent"
    #: Native batched implementation for ``gymnasium.make_vec`` (single-agent only).
    vector_entry_point: str | None = None
    #: AEC form of a multi-agent environment (``pettingzoo.make("aec", id)``).
    aec_entry_point: str | None = None
    #: ``"module:callable"`` building an SB3 ``VecEnv`` directly, called as
    #: ``f(num_envs=, seed=, fixed_reset_seeds=, **kwargs)``; for environments whose SB3 form is
    #: not a Gymnasium vector env, e.g. a multi-agent env flattened to (copies x agents) rows that
    #: share one policy. ``None``: ``gymnasium.make_vec`` + :class:`~simrl.agents.sb3_vec_env.GymnasiumVecEnvAdapter`.
    sb3_vec_env_entry_point: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


ENVIRONMENTS: tuple[EnvironmentEntry, ...] = (
    EnvironmentEntry(
        id="simrl/ThreeBody-v0",
        entry_point="simrl.envs.threebody:ThreeBodyEnv",
        vector_entry_point="simrl.envs.threebody:ThreeBodyVectorEnv",
        description="RL adaptive time-stepping for the chaotic gravitational three-body problem",
    ),
    EnvironmentEntry(
        id="simrl/Turbulence2D-v0",
        entry_point="simrl.envs.turbulence_v0:parallel_env",
        kind="multi-agent",
        aec_entry_point="simrl.envs.turbulence_v0:env",
        sb3_vec_env_entry_point="simrl.agents.turbulence_vec_env:make_turbulence_sb3_vec_env",
        description="Multi-agent eddy-viscosity closures for 2D (beta-plane) turbulence, rewarded by the DNS enstrophy spectrum",
    ),
    EnvironmentEntry(
        id="simrl/Turbulence2DGlobal-v0",
        entry_point="simrl.envs.turbulence:Turbulence2DGlobalEnv",
        vector_entry_point="simrl.envs.turbulence:Turbulence2DGlobalVectorEnv",
        description="One global eddy-viscosity coefficient for 2D turbulence LES (single-agent)",
    ),
    # -v1: the same environments on the paper's Reynolds number (Re = 20,000, 1024^2 DNS reference ``fhit_paper``);
    # -v0 keeps the viscous CPU reference ``fhit_cpu`` so that published -v0 numbers stay comparable.
    EnvironmentEntry(
        id="simrl/Turbulence2D-v1",
        entry_point="simrl.envs.turbulence_v1:parallel_env",
        kind="multi-agent",
        aec_entry_point="simrl.envs.turbulence_v1:env",
        sb3_vec_env_entry_point="simrl.agents.turbulence_vec_env:make_turbulence_sb3_vec_env",
        kwargs={"case": "fhit_paper"},
        description="Turbulence2D-v0 at the paper's Reynolds number (Re = 20,000; case fhit_paper, beta_paper by case=)",
    ),
    EnvironmentEntry(
        id="simrl/Turbulence2DGlobal-v1",
        entry_point="simrl.envs.turbulence:Turbulence2DGlobalEnv",
        vector_entry_point="simrl.envs.turbulence:Turbulence2DGlobalVectorEnv",
        kwargs={"case": "fhit_paper"},
        description="Turbulence2DGlobal-v0 at the paper's Reynolds number (Re = 20,000)",
    ),
    EnvironmentEntry(
        id="simrl/PredatorPrey-v0",
        entry_point="simrl.envs.predator_prey:PredatorPreyEnv",
        vector_entry_point="simrl.envs.predator_prey:PredatorPreyVectorEnv",
        description="Culling control of the sheep-wolves-grass agent-based model (NetLogo Wolf Sheep Predation, big world)",
    ),
    EnvironmentEntry(
        id="simrl/MetabolicPathway-v0",
        entry_point="simrl.envs.metabolic:MetabolicPathwayEnv",
        vector_entry_point="simrl.envs.metabolic:MetabolicPathwayVectorEnv",
        description="Substrate-feed control of an agent-based toy metabolic pathway",
    ),
)


def register_environments() -> None:
    """Register every environment with Gymnasium or PettingZoo (safe to call repeatedly)."""
    for entry in ENVIRONMENTS:
        if entry.kind == "single-agent":
            if entry.id not in gymnasium.registry:
                gymnasium.register(
                    id=entry.id,
                    entry_point=entry.entry_point,
                    vector_entry_point=entry.vector_entry_point,
                    kwargs=dict(entry.kwargs),
                )
        else:
            _register_pettingzoo(entry)


def _register_pettingzoo(entry: EnvironmentEntry) -> None:
    import pettingzoo

    if not hasattr(pettingzoo, "register"):  # the registry is new in PettingZoo 1.27
        raise ImportError(f"simrl needs PettingZoo >= 1.27 for {entry.id}; found {pettingzoo.__version__}")
    forms = {"parallel": entry.entry_point, "aec": entry.aec_entry_point}
    for env_type, entry_point in forms.items():
        registry = pettingzoo.parallel_registry if env_type == "parallel" else pettingzoo.aec_registry
        if entry_point is not None and entry.id not in registry:
            pettingzoo.register(env_type, entry.id, entry_point=entry_point, kwargs=dict(entry.kwargs))


def list_environments(kind: Kind | None = None) -> list[str]:
    """Ids of every environment simrl provides, optionally only ``"single-agent"`` or ``"multi-agent"``."""
    if kind not in (None, "single-agent", "multi-agent"):
        raise ValueError(f"unknown kind {kind!r}; accepted: None, 'single-agent', 'multi-agent'")
    return [e.id for e in ENVIRONMENTS if kind is None or e.kind == kind]


def environment_entry(env_id: str) -> EnvironmentEntry:
    """The catalogue entry of ``env_id``, or a ValueError listing the known ids."""
    for entry in ENVIRONMENTS:
        if entry.id == env_id:
            return entry
    raise ValueError(f"unknown environment id {env_id!r}; accepted: {list_environments()}")
