"""Tests of the initial-condition generators."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simrl.physics.nbody.forces import total_energy
from simrl.physics.nbody.initial_conditions import (
    FIGURE8_PERIOD,
    PRESETS,
    figure8_initial_conditions,
    paper_initial_conditions,
    pythagorean_initial_conditions,
    random_initial_conditions,
    sample_initial_conditions,
)
from simrl.physics.nbody.units import PAPER_UNITS


def _assert_com_frame(pos, vel, mass):
    np.testing.assert_allclose(mass @ pos, 0.0, atol=1e-12)
    np.testing.assert_allclose(mass @ vel, 0.0, atol=1e-12)


def _assert_shapes(pos, vel, mass, n=3):
    assert pos.shape == (n, 3) and vel.shape == (n, 3) and mass.shape == (n,)
    assert pos.dtype == vel.dtype == mass.dtype == np.float64


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_same_seed_same_ics_and_com_frame(preset):
    a = sample_initial_conditions(preset, np.random.default_rng(123))
    b = sample_initial_conditions(preset, np.random.default_rng(123))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    _assert_shapes(*a)
    _assert_com_frame(*a)


@pytest.mark.parametrize("preset", ["paper", "random"])
def test_different_seeds_differ(preset):
    a = sample_initial_conditions(preset, np.random.default_rng(1))
    b = sample_initial_conditions(preset, np.random.default_rng(2))
    assert not np.array_equal(a[0], b[0])


def test_global_numpy_random_state_untouched():
    np.random.seed(12345)
    before = np.random.get_state()
    for preset in PRESETS:
        sample_initial_conditions(preset, np.random.default_rng(0))
    random_initial_conditions(np.random.default_rng(0), n_bodies=5, planar=False)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_paper_ranges_units_and_draw_order():
    speed = PAPER_UNITS.kms_to_nbody(10.0)
    assert speed == pytest.approx(0.194, abs=1e-3)  # 10 km/s in units of (3 MSun, 1 au)
    for seed in range(50):
        pos, vel, mass = paper_initial_conditions(np.random.default_rng(seed))
        np.testing.assert_allclose(mass, 1.0 / 3.0)
        _assert_com_frame(pos, vel, mass)
        # Relative to body 0 (at the origin before the COM shift) the drawn offsets are in au.
        rel = pos - pos[0]
        assert 5.0 <= rel[1, 0] <= 20.0 and 0.0 <= rel[1, 1] <= 10.0
        assert -10.0 <= rel[2, 0] <= 0.0 and 5.0 <= rel[2, 1] <= 20.0
        assert np.all(pos[:, 2] == 0.0) and np.all(vel[:, 2] == 0.0)
        # Velocities before the COM shift: (0, v), (-v, 0), (0, 0) with v = 10 km/s.
        rel_v = vel - vel[2]
        np.testing.assert_allclose(rel_v[0], [0.0, speed, 0.0], atol=1e-15)
        np.testing.assert_allclose(rel_v[1], [-speed, 0.0, 0.0], atol=1e-15)
        np.testing.assert_allclose(rel_v[1, 0] * PAPER_UNITS.velocity_kms, -10.0, rtol=1e-12)
    # Draw order x1, y1, x2, y2 from the generator.
    draws = np.random.default_rng(818).uniform(size=4)
    pos, _, _ = paper_initial_conditions(np.random.default_rng(818))
    rel = pos - pos[0]
    expected = [5 + 15 * draws[0], 10 * draws[1], -10 + 10 * draws[2], 5 + 15 * draws[3]]
    np.testing.assert_allclose([rel[1, 0], rel[1, 1], rel[2, 0], rel[2, 1]], expected, rtol=1e-13)


def test_paper_systems_are_bound():
    for seed in range(20):
        pos, vel, mass = paper_initial_conditions(np.random.default_rng(seed))
        assert total_energy(pos, vel, mass) < 0.0


def test_pythagorean():
    pos, vel, mass = pythagorean_initial_conditions()
    _assert_shapes(pos, vel, mass)
    np.testing.assert_array_equal(mass, [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(pos[:, :2], [[1.0, 3.0], [-2.0, -1.0], [1.0, -1.0]])
    assert np.all(vel == 0.0)
    assert total_energy(pos, vel, mass) == pytest.approx(-769.0 / 60.0, rel=1e-14)


def test_figure8():
    pos, vel, mass = figure8_initial_conditions()
    _assert_shapes(pos, vel, mass)
    _assert_com_frame(pos, vel, mass)
    np.testing.assert_allclose(pos[0, :2], [0.97000436, -0.24308753])
    np.testing.assert_allclose(pos[1], -pos[0])
    np.testing.assert_allclose(vel[2, :2], [-0.93240737, -0.86473146])
    np.testing.assert_allclose(vel[0], -vel[2] / 2)
    assert FIGURE8_PERIOD == pytest.approx(6.32591398)
    # Zero angular momentum choreography with E ~ -1.287 (Chenciner & Montgomery 2000).
    assert total_energy(pos, vel, mass) == pytest.approx(-1.2871, abs=1e-3)


@pytest.mark.parametrize("planar", [True, False])
@pytest.mark.parametrize("q", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("n_bodies", [2, 3, 6])
def test_random_virial_ratio_and_scaling(planar, q, n_bodies):
    pos, vel, mass = random_initial_conditions(np.random.default_rng(42), n_bodies, (0.5, 2.0), q, planar)
    _assert_shapes(pos, vel, mass, n_bodies)
    _assert_com_frame(pos, vel, mass)
    assert mass.sum() == pytest.approx(1.0, rel=1e-14)
    assert mass.max() / mass.min() <= 4.0 + 1e-12
    kinetic = 0.5 * np.sum(mass * np.sum(vel**2, axis=1))
    energy = total_energy(pos, vel, mass)
    potential = energy - kinetic
    assert potential == pytest.approx(-0.5, rel=1e-12)
    assert kinetic / abs(potential) == pytest.approx(q, abs=1e-12)
    assert energy == pytest.approx(-(1.0 - q) / 2.0, rel=1e-12)  # bound for q < 1
    if planar:
        assert np.all(pos[:, 2] == 0.0) and np.all(vel[:, 2] == 0.0)
    else:
        assert np.any(pos[:, 2] != 0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_bodies": 1}, "n_bodies"),
        ({"n_bodies": 2.5}, "n_bodies"),
        ({"mass_range": (0.0, 1.0)}, "mass_range"),
        ({"mass_range": (2.0, 1.0)}, "mass_range"),
        ({"mass_range": 1.0}, "mass_range"),
        ({"virial_ratio": -0.1}, "virial_ratio"),
        ({"virial_ratio": math.nan}, "virial_ratio"),
        ({"planar": "yes"}, "planar"),
    ],
)
def test_random_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_initial_conditions(np.random.default_rng(0), **kwargs)


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="Generator"):
        paper_initial_conditions(np.random.RandomState(0))
    with pytest.raises(TypeError, match="Generator"):
        random_initial_conditions(0)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; accepted: .*figure8.*paper.*pythagorean.*random"):
        sample_initial_conditions("nope", np.random.default_rng(0))


def test_sample_forwards_kwargs():
    pos, vel, mass = sample_initial_conditions("random", np.random.default_rng(5), n_bodies=4, virial_ratio=0.2)
    assert pos.shape == (4, 3)
