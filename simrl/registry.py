"""The catalogue of simrl environments and their registration with Gymnasium / PettingZoo.

Every environment the package provides is one :class:`EnvironmentEntry` in
:data:`ENVIRONMENTS`. ``import simrl`` calls :func:`register_environments`, which is
idempotent: running it again (or importing twice) re-registers nothing and warns nothing.
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
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


ENVIRONMENTS: tuple[EnvironmentEntry, ...] = (
    EnvironmentEntry(
        id="simrl/ThreeBody-v0",
        entry_point="simrl.envs.threebody:ThreeBodyEnv",
        vector_entry_point="simrl.envs.threebody:ThreeBodyVectorEnv",
        description="RL adaptive time-stepping for the chaotic gravitational three-body problem",
    ),
)


def register_environments() -> None:
    """Register every single-agent environment with Gymnasium (safe to call repeatedly)."""
    for entry in ENVIRONMENTS:
        if entry.kind != "single-agent" or entry.id in gymnasium.registry:
            continue
        gymnasium.register(
            id=entry.id,
            entry_point=entry.entry_point,
            vector_entry_point=entry.vector_entry_point,
            kwargs=dict(entry.kwargs),
        )


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
