"""Policies as the evaluation sees them: a batch of observations in, a batch of actions out.

A policy may ask for its own variant of the environment (``env_overrides``), e.g. a
fixed step parameter that is not on the discrete grid is played through the continuous
action space of the same environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class Policy(Protocol):
    """Anything that maps a batch of observations to a batch of actions."""

    name: str
    env_overrides: dict[str, Any]

    def __call__(self, observations: np.ndarray) -> np.ndarray: ...


@dataclass
class ConstantActionPolicy:
    """Always plays ``action`` (broadcast over the batch)."""

    name: str
    action: Any
    env_overrides: dict[str, Any] = field(default_factory=dict)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        action = np.asarray(self.action)
        return np.broadcast_to(action, (observations.shape[0],) + action.shape).copy()


@dataclass
class ModelPolicy:
    """Greedy (deterministic) actions of an SB3 model or anything with SB3's ``predict``."""

    name: str
    model: Any
    deterministic: bool = True
    env_overrides: dict[str, Any] = field(default_factory=dict)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(observations, deterministic=self.deterministic)
        return np.asarray(actions)


def fixed_parameter_policy(value: float, name: str | None = None) -> ConstantActionPolicy:
    """A ``simrl/ThreeBody-v0`` baseline that always uses step parameter ``value``.

    Played through the continuous action space (log10 of the parameter), so that values
    off the discrete grid (such as the conventional eta = 0.03) are exact.
    """
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"a fixed step parameter must be positive and finite, got {value!r}")
    return ConstantActionPolicy(
        name=name or f"fixed {value:.3g}",
        action=np.array([math.log10(value)], dtype=np.float32),
        env_overrides={"action_type": "continuous"},
    )


def threebody_baselines(env_kwargs: dict[str, Any], extra_values: tuple[float, ...] = (0.03,)) -> list[ConstantActionPolicy]:
    """Every fixed parameter of the discrete grid plus ``extra_values`` (default: eta = 0.03).

    Grid values are played as their discrete action, so that a trained discrete policy and
    the baseline use bit-identical parameters (through the continuous action, log10 in float32,
    the parameter differs in the 7th digit, and in the round-off-dominated regime that alone
    changes the final energy error by tens of percent). Off-grid values use the continuous action.
    """
    from simrl.envs.threebody_core import ThreeBodySettings

    settings = ThreeBodySettings(**{**env_kwargs, "action_type": "discrete"})
    grid = [float(v) for v in settings.parameter_values]
    by_value = [
        (v, ConstantActionPolicy(name=f"fixed {v:.3g}", action=np.int64(k), env_overrides={"action_type": "discrete"}))
        for k, v in enumerate(grid)
    ]
    low, high = settings.action_range
    extras = [v for v in extra_values if low <= v <= high and not np.isclose(grid, v, rtol=1e-9).any()]
    by_value += [(v, fixed_parameter_policy(v)) for v in extras]
    return [policy for _, policy in sorted(by_value, key=lambda pair: pair[0])]


#: Baseline-policy factories per environment id (called with the environment's kwargs).
BASELINES = {
    "simrl/ThreeBody-v0": threebody_baselines,
}


def baseline_policies(env_id: str, env_kwargs: dict[str, Any]) -> list[Policy]:
    """The reference policies an environment's trained agents are compared with (may be empty)."""
    factory = BASELINES.get(env_id)
    return [] if factory is None else list(factory(env_kwargs))
