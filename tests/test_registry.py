"""The environment catalogue: every id resolves, registers once, and builds through its registry."""

from __future__ import annotations

import importlib
import warnings

import gymnasium
import pettingzoo
import pytest

import simrl
from simrl.registry import ENVIRONMENTS, environment_entry


def _resolve(entry_point: str):
    module_name, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@pytest.mark.parametrize("entry", ENVIRONMENTS, ids=lambda e: e.id)
def test_every_entry_point_resolves(entry):
    for point in (entry.entry_point, entry.vector_entry_point, entry.aec_entry_point, entry.sb3_vec_env_entry_point):
        if point is not None:
            assert callable(_resolve(point)), point


@pytest.mark.parametrize("entry", ENVIRONMENTS, ids=lambda e: e.id)
def test_every_id_is_in_its_registry(entry):
    if entry.kind == "single-agent":
        assert entry.id in gymnasium.registry
        assert entry.id not in pettingzoo.parallel_registry
    else:
        assert entry.id in pettingzoo.parallel_registry
        assert (entry.id in pettingzoo.aec_registry) == (entry.aec_entry_point is not None)
        assert entry.id not in gymnasium.registry


def test_registration_is_idempotent_and_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simrl.register_environments()
        simrl.register_environments()


def test_kinds_partition_the_catalogue():
    single, multi = simrl.list_environments("single-agent"), simrl.list_environments("multi-agent")
    assert "simrl/Turbulence2D-v0" in multi and "simrl/ThreeBody-v0" in single
    assert sorted(single + multi) == sorted(simrl.list_environments())


def test_unknown_id_names_the_known_ones():
    with pytest.raises(ValueError, match="simrl/ThreeBody-v0"):
        environment_entry("simrl/Nope-v0")


def test_multi_agent_env_without_sb3_factory_is_refused(monkeypatch):
    from dataclasses import replace

    from simrl import registry
    from simrl.agents.sb3_vec_env import make_sb3_vec_env

    entry = replace(environment_entry("simrl/Turbulence2D-v0"), sb3_vec_env_entry_point=None)
    monkeypatch.setattr(registry, "ENVIRONMENTS", (entry,))
    with pytest.raises(ValueError, match="multi-agent"):
        make_sb3_vec_env("simrl/Turbulence2D-v0", 1)
