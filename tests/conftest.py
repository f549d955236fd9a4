"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_predator_prey_snapshots(tmp_path_factory) -> str:
    """Path of a small sheep-wolves-grass snapshot set (63 x 63 world at big-world densities, 8
    states after 300 ticks), made once per test session; tests read it and never change it."""
    from simrl.envs.predator_prey import generate_snapshot_set
    from simrl.physics.ecology import PredatorPreyParams

    path = tmp_path_factory.mktemp("predator_prey") / "small.npz"
    small = PredatorPreyParams(width=63, height=63, initial_sheep=152, initial_wolves=76)
    generate_snapshot_set(path, small, count=8, ticks=300, seed=5)
    return str(path)
