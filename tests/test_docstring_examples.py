"""The runnable examples in public docstrings stay runnable."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "simrl",
    "simrl.envs.threebody",
    "simrl.agents.sb3_vec_env",
    "simrl.agents.paper_dqn",
    "simrl.physics.turbulence",
    "simrl.physics.ecology.predator_prey",
    "simrl.envs.predator_prey",
    "simrl.envs.metabolic",
    "simrl.envs.turbulence",
    "simrl.envs.turbulence_v0",
    "simrl.agents.turbulence_vec_env",
    "simrl.physics.ecology.metabolic",
    "simrl.physics.ecology.mesa_models",
    "simrl.agents.conv_closure",
    "simrl.physics.turbulence.torch_backend",
    "simrl.agents.metamodels",
    "simrl.agents.nn_controller",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
