"""Tests of the NetLogo-faithful sheep-wolves-grass kernels (simrl.physics.ecology).

Rule checks isolate one rule at a time by crafting states through snapshot/restore (e.g.
huge energies so nobody starves, reproduction 0, a 1 x 1 world so that everybody shares one
patch) and compare with exact deterministic outcomes or with binomial expectations within
4 standard errors (the runs are seeded, so these checks are deterministic too).
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from numba import njit

from simrl.physics.ecology import (
    STATUS_OK,
    STATUS_POPULATION_CAP,
    PredatorPreyBatch,
    PredatorPreyModel,
    PredatorPreyParams,
    PredatorPreyState,
    spawn_seeds,
)
from simrl.physics.ecology import predator_prey
from simrl.physics.ecology.predator_prey import ENERGY, HEADING, X, Y

SMALL = PredatorPreyParams(width=60, height=60, initial_sheep=150, initial_wolves=75)
BIG_ENERGY = 1e9


def animals(n, *, width, height, energy=BIG_ENERGY, heading=0.0, seed=0):
    """(4, n) animals at uniform positions with the given energies and headings."""
    rng = np.random.default_rng(seed)
    a = np.empty((4, n))
    a[X] = rng.uniform(0, width, n)
    a[Y] = rng.uniform(0, height, n)
    a[HEADING] = heading
    a[ENERGY] = energy
    return a


def crafted(params, *, sheep=None, wolves=None, green=None, countdown=None, seed=0):
    """A model in a hand-made state (the rule isolation tool)."""
    empty = params.replace(initial_sheep=0, initial_wolves=0)
    st = PredatorPreyModel(empty, seed=seed).snapshot()
    st.params = params
    grid = (params.height, params.width)
    st.sheep = np.zeros((4, 0)) if sheep is None else np.asarray(sheep, float)
    st.wolves = np.zeros((4, 0)) if wolves is None else np.asarray(wolves, float)
    if green is not None:
        st.green = np.broadcast_to(np.asarray(green, bool), grid).copy()
    if countdown is not None:
        st.countdown = np.broadcast_to(np.asarray(countdown, np.int32), grid).copy()
    return PredatorPreyModel.from_snapshot(st)


def assert_states_equal(a: PredatorPreyState, b: PredatorPreyState):
    assert a.params == b.params and a.tick == b.tick and a.status == b.status
    for name in ("rng_state", "green", "countdown", "sheep", "wolves"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def assert_binomial(successes, trials, p, what):
    sigma = math.sqrt(p * (1 - p) / trials)
    assert abs(successes / trials - p) < 4 * sigma, (what, successes / trials, p, sigma)


# --------------------------------------------------------------------------------------
# determinism and randomness hygiene
# --------------------------------------------------------------------------------------


def test_same_seed_identical_200_tick_trajectories_and_different_seeds_differ():
    a, b, c = PredatorPreyModel(seed=11), PredatorPreyModel(seed=11), PredatorPreyModel(seed=12)
    ca, cb, cc = a.step(200), b.step(200), c.step(200)
    np.testing.assert_array_equal(ca, cb)
    assert_states_equal(a.snapshot(), b.snapshot())
    assert not np.array_equal(ca, cc)
    assert a.tick == 200 and a.status == STATUS_OK
    # SeedSequence seeds are accepted and equal to the int they wrap.
    d = PredatorPreyModel(seed=np.random.SeedSequence(11))
    np.testing.assert_array_equal(d.step(200), ca)


@njit
def _numba_global_draws(seed, n):
    if seed >= 0:
        np.random.seed(seed)
    out = np.empty(n)
    for i in range(n):
        out[i] = np.random.random()
    return out


def test_no_global_random_state_is_read_or_written():
    np.random.seed(1234)
    numpy_before = np.random.get_state()
    first = _numba_global_draws(99, 3)
    m = PredatorPreyModel(SMALL, seed=5)
    traj = m.step(50, removal=(0.01, 0.01))
    batch = PredatorPreyBatch(SMALL, seeds=[5, 6], parallel=True)
    batch.step(20, removal=(0.01, 0.01))
    after = _numba_global_draws(-1, 3)
    reference = _numba_global_draws(99, 6)
    np.testing.assert_array_equal(np.concatenate([first, after]), reference)  # Numba's stream untouched
    numpy_after = np.random.get_state()
    assert numpy_before[0] == numpy_after[0] and np.array_equal(numpy_before[1], numpy_after[1])
    assert numpy_before[2:] == numpy_after[2:]
    # Reseeding the global generators does not change a seeded model.
    np.random.seed(0)
    _numba_global_draws(0, 1)
    np.testing.assert_array_equal(PredatorPreyModel(SMALL, seed=5).step(50, removal=(0.01, 0.01)), traj)


def test_batch_equals_single_runs_serial_and_parallel():
    params = [SMALL, SMALL.replace(grass_regrowth_time=20), SMALL.replace(initial_wolves=0)]
    seeds = [3, 4, 5]
    removal = np.array([(0.0, 0.0), (0.01, 0.02), (0.05, 0.0)])
    singles = [PredatorPreyModel(p, seed=s) for p, s in zip(params, seeds)]
    expected = np.stack([m.step(150, removal=r) for m, r in zip(singles, removal)])
    for parallel in (False, True):
        batch = PredatorPreyBatch(params, seeds=seeds, parallel=parallel)
        got = batch.step(150, removal=removal)
        np.testing.assert_array_equal(got, expected)
        for b, m in enumerate(singles):
            assert_states_equal(batch.snapshot(b), m.snapshot())
    # One seed for the whole batch: spawn_seeds gives the per-model seeds.
    b1 = PredatorPreyBatch(SMALL, seeds=spawn_seeds(7, 2))
    b2 = PredatorPreyBatch(SMALL, seeds=spawn_seeds(7, 2))
    np.testing.assert_array_equal(b1.step(30), b2.step(30))
    assert not np.array_equal(b1.counts[0], b1.counts[1])


def test_chunking_and_time_varying_schedule():
    one = PredatorPreyModel(SMALL, seed=8)
    sched = np.zeros((120, 2))
    sched[60:] = (0.03, 0.01)  # control switched on at tick 60, as in the paper's setting
    whole = one.step(120, removal=sched)
    chunked = PredatorPreyModel(SMALL, seed=8)
    parts = [chunked.step(40, removal=sched[:40]), chunked.step(20, removal=(0.0, 0.0)),
             chunked.step(1, removal=(0.03, 0.01)), chunked.step(59, removal=sched[61:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # Before the switch the controlled run is the uncontrolled one.
    np.testing.assert_array_equal(whole[:60], PredatorPreyModel(SMALL, seed=8).step(60))
    assert chunked.step(0).shape == (0, 3)


def test_results_do_not_depend_on_buffer_capacity():
    grow = SMALL.replace(initial_sheep=10, initial_wolves=2, sheep_reproduce=0.2)
    single = PredatorPreyModel(grow, seed=9)
    traj = single.step(40)
    assert traj[:, 1].max() > 200  # outgrew the 64-column initial buffer several times
    assert single._batch._sheep.shape[2] >= 2 * traj[:, 1].max() > 64
    # In a batch the buffers are sized for the largest initial population instead.
    batch = PredatorPreyBatch([grow, grow.replace(initial_sheep=3000)], seeds=[9, 10])
    np.testing.assert_array_equal(batch.step(40)[0], traj)


# --------------------------------------------------------------------------------------
# bookkeeping invariants, control, extinction, caps
# --------------------------------------------------------------------------------------


def check_invariants(m: PredatorPreyModel):
    p = m.params
    s, w, g, cd = m.sheep, m.wolves, m.green, m.countdown
    for a in (s, w):
        assert np.all((a[X] >= 0) & (a[X] < p.width) & (a[Y] >= 0) & (a[Y] < p.height))
        assert np.all((a[HEADING] >= 0) & (a[HEADING] < 360))
        assert np.all(a[ENERGY] >= 0) and np.all(np.isfinite(a))
    assert cd.min() >= 0 and cd.max() <= p.grass_regrowth_time
    assert np.all(cd[g] == p.grass_regrowth_time)  # green patches hold a full countdown
    np.testing.assert_array_equal(m.counts, [g.sum(), s.shape[1], w.shape[1]])
    m.snapshot().validate()


def test_bookkeeping_invariants_along_a_run():
    m = PredatorPreyModel(SMALL.replace(width=80, height=50, initial_sheep=300, initial_wolves=100), seed=2)
    check_invariants(m)
    for k in range(6):
        c = m.step(50, removal=(0.002 * k, 0.001 * k))
        np.testing.assert_array_equal(c[-1], m.counts)
        assert np.all(c >= 0)
        check_invariants(m)


def test_initial_state_follows_netlogo_setup():
    p = PredatorPreyParams()
    m = PredatorPreyModel(p, seed=4)
    s, w, g, cd = m.sheep, m.wolves, m.green, m.countdown
    assert s.shape == (4, 2500) and w.shape == (4, 1250)
    assert_binomial(int(g.sum()), g.size, 0.5, "green fraction")
    assert np.all(cd[g] == 30) and cd[~g].min() == 0 and cd[~g].max() == 29
    for a, gain in ((s, 4), (w, 20)):
        e = a[ENERGY]
        assert np.all(e == np.round(e)) and e.min() == 0 and e.max() == 2 * gain - 1
        assert abs(e.mean() - (2 * gain - 1) / 2) < 4 * math.sqrt(((2 * gain) ** 2 - 1) / 12 / e.size)
        assert np.all(a[HEADING] == np.round(a[HEADING])) and a[HEADING].max() <= 359
        assert abs(a[X].mean() - 127.5) < 4 * 255 / math.sqrt(12 * a.shape[1])
    check_invariants(m)


def test_removal_one_kills_everybody_in_one_tick_and_zero_changes_nothing():
    m = PredatorPreyModel(SMALL, seed=6)
    c = m.step(1, removal=(1.0, 1.0))
    assert c[0, 1] == 0 and c[0, 2] == 0
    only_wolves = PredatorPreyModel(SMALL, seed=6).step(1, removal=(0.0, 1.0))
    assert only_wolves[0, 1] > 0 and only_wolves[0, 2] == 0
    uncontrolled = PredatorPreyModel(SMALL, seed=6).step(100)
    for zero in ((0.0, 0.0), np.zeros((100, 2)), [0, 0]):
        np.testing.assert_array_equal(PredatorPreyModel(SMALL, seed=6).step(100, removal=zero), uncontrolled)


def test_removal_rate_is_the_per_animal_probability():
    # Nobody eats, starves or reproduces; sheep and wolves in separate worlds (no predation).
    p = PredatorPreyParams(width=100, height=100, sheep_gain_from_food=0.0, sheep_reproduce=0.0,
                           wolf_reproduce=0.0)
    c_s = crafted(p, sheep=animals(20000, width=100, height=100)).step(1, removal=(0.1, 0.0))
    c_w = crafted(p, wolves=animals(10000, width=100, height=100)).step(1, removal=(0.0, 0.03))
    assert_binomial(20000 - int(c_s[0, 1]), 20000, 0.1, "sheep removal")
    assert_binomial(10000 - int(c_w[0, 2]), 10000, 0.03, "wolf removal")


def test_extinction_is_a_normal_outcome():
    # Sheep that cannot gain energy start with energy random(0) = 0 and starve in tick 1;
    # the wolves then starve too, and the grass regrows everywhere.
    p = SMALL.replace(sheep_gain_from_food=0.0)
    m = PredatorPreyModel(p, seed=1)
    c = m.step(80)
    assert c[0, 1] == 0 and np.all(c[:, 1] == 0)
    assert c[-1, 2] == 0 and m.status == STATUS_OK
    assert c[-1, 0] == p.n_patches
    assert np.all(m.step(5) == [p.n_patches, 0, 0])
    # Removal on an empty world is fine too.
    assert np.all(m.step(3, removal=(0.5, 1.0)) == [p.n_patches, 0, 0])


def test_population_cap_stops_the_model_with_a_status_code():
    p = SMALL.replace(initial_sheep=40, initial_wolves=0, sheep_reproduce=0.3, max_population=100)
    m = PredatorPreyModel(p, seed=3)
    c = m.step(50)
    assert m.status == STATUS_POPULATION_CAP
    done = int(np.sum(c[:, 0] >= 0))
    assert 0 < done < 50 and c[done - 1, 1] > 100 and np.all(c[done:] == -1)
    assert m.tick == done
    assert np.all(m.step(5) == -1) and m.tick == done and m.status == STATUS_POPULATION_CAP
    # The other models of a batch carry on.
    batch = PredatorPreyBatch([p, p.replace(sheep_reproduce=0.0)], seeds=[3, 4])
    c = batch.step(50)
    np.testing.assert_array_equal(batch.status, [STATUS_POPULATION_CAP, STATUS_OK])
    assert np.all(c[1] >= 0)


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"width": 0}, "width must be an integer in [1, 8192]"),
        ({"height": 2.5}, "height must be an integer in [1, 8192]"),
        ({"initial_sheep": -1}, "initial_sheep must be an integer in [0, 1000000]"),
        ({"initial_wolves": True}, "initial_wolves must be an integer"),
        ({"grass_regrowth_time": -3}, "grass_regrowth_time must be an integer in [0, "),
        ({"sheep_gain_from_food": -1.0}, "sheep_gain_from_food must be a number in [0.0, "),
        ({"wolf_gain_from_food": float("nan")}, "wolf_gain_from_food must be a number in [0.0, "),
        ({"sheep_reproduce": 4}, "sheep_reproduce must be a per-tick probability (NetLogo's 4 % is 0.04) in [0.0, 1."),
        ({"wolf_reproduce": -0.1}, "wolf_reproduce must be a per-tick probability"),
        ({"max_population": 0}, "max_population must be an integer in [1, "),
        ({"initial_sheep": 11, "max_population": 10}, "initial_sheep must be an integer in [0, 10]"),
    ],
)
def test_bad_parameters_raise_value_errors_naming_the_accepted_range(changes, fragment):
    with pytest.raises(ValueError) as err:
        PredatorPreyParams(**changes)
    assert fragment in str(err.value)


def test_bad_step_arguments_raise_value_errors():
    m = PredatorPreyModel(SMALL, seed=0)
    for removal in ((1.2, 0.0), (0.0, -0.1), (float("nan"), 0.0)):
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            m.step(3, removal=removal)
    with pytest.raises(ValueError, match="removal must have shape"):
        m.step(3, removal=(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match=r"n must be an integer in \[0, "):
        m.step(-1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        PredatorPreyModel(SMALL, seed=-5)
    with pytest.raises(ValueError, match="unknown parameter"):
        PredatorPreyModel({"wolves": 3})
    with pytest.raises(ValueError, match="same width and height"):
        PredatorPreyBatch([SMALL, SMALL.replace(width=61)], seeds=[0, 1])
    with pytest.raises(ValueError, match="shape"):
        PredatorPreyBatch(SMALL, seeds=[0, 1]).step(4, removal=np.zeros((3, 2)))
    assert m.tick == 0  # nothing ran
    bad = m.snapshot()
    bad.sheep = bad.sheep.copy()
    bad.sheep[X, 0] = SMALL.width
    with pytest.raises(ValueError, match=r"positions must lie in \[0, width\)"):
        m.restore(bad)


# --------------------------------------------------------------------------------------
# one rule at a time
# --------------------------------------------------------------------------------------


def test_sheep_reproduce_at_four_percent_per_tick():
    p = PredatorPreyParams(width=100, height=100, sheep_gain_from_food=0.0)
    m = crafted(p, sheep=animals(2000, width=100, height=100))  # no deaths, no wolves
    n = np.concatenate([[2000], m.step(25)[:, 1]])
    assert_binomial(int(n[-1] - n[0]), int(n[:-1].sum()), 0.04, "sheep births")


def test_wolves_reproduce_at_five_percent_per_tick():
    p = PredatorPreyParams(width=100, height=100)
    m = crafted(p, wolves=animals(2000, width=100, height=100))
    n = np.concatenate([[2000], m.step(25)[:, 2]])
    assert_binomial(int(n[-1] - n[0]), int(n[:-1].sum()), 0.05, "wolf births")


@pytest.mark.parametrize("species", ["sheep", "wolves"])
def test_offspring_halve_the_energy_move_one_step_and_skip_their_birth_tick(species):
    p = PredatorPreyParams(width=50, height=50, sheep_gain_from_food=0.0, wolf_gain_from_food=0.0,
                           sheep_reproduce=1.0, wolf_reproduce=1.0)
    m = crafted(p, **{species: animals(1, width=50, height=50, energy=100.0)})
    get = (lambda: m.sheep) if species == "sheep" else (lambda: m.wolves)
    m.step(1)
    a = get()
    assert a.shape[1] == 2  # the newborn did not reproduce in its birth tick
    np.testing.assert_array_equal(a[ENERGY], [49.5, 49.5])
    d = np.abs(a[[X, Y], 0] - a[[X, Y], 1])
    d = np.minimum(d, 50 - d)
    assert abs(np.hypot(*d) - 1.0) < 1e-9  # hatched at the parent's place, then fd 1
    m.step(1)
    assert get().shape[1] == 4
    np.testing.assert_array_equal(get()[ENERGY], [24.25] * 4)


def test_death_happens_exactly_when_energy_drops_below_zero():
    p = PredatorPreyParams(width=40, height=40, sheep_gain_from_food=0.0, sheep_reproduce=0.0,
                           wolf_gain_from_food=0.0, wolf_reproduce=0.0)
    # Energy k (0.999 more for the wolves) survives k ticks -- energy exactly 0 is alive --
    # and dies in tick k + 1. Separate worlds, so that no wolf eats a sheep.
    sheep = crafted(p, sheep=animals(10, width=40, height=40, energy=np.arange(10.0))).step(12)
    wolves = crafted(p, wolves=animals(10, width=40, height=40, energy=np.arange(10.0) + 0.999)).step(12)
    expected = np.maximum(10 - np.arange(1, 13), 0)
    np.testing.assert_array_equal(sheep[:, 1], expected)
    np.testing.assert_array_equal(wolves[:, 2], expected)


def test_wolves_eat_one_sheep_each_on_their_patch():
    p = PredatorPreyParams(width=1, height=1, sheep_gain_from_food=0.0, sheep_reproduce=0.0,
                           wolf_reproduce=0.0)
    m = crafted(p, sheep=animals(30, width=1, height=1), wolves=animals(7, width=1, height=1, energy=5.0),
                green=False)
    c = m.step(6)
    np.testing.assert_array_equal(c[:, 1], [23, 16, 9, 2, 0, 0])
    np.testing.assert_array_equal(c[:, 2], [7] * 6)
    e = np.sort(m.wolves[ENERGY])
    # Six steps (-6), four meals each (ticks 1-4, +80); in tick 5 two of the seven found a sheep.
    np.testing.assert_array_equal(e, [5 - 6 + 80] * 5 + [5 - 6 + 100] * 2)


def test_the_eaten_sheep_is_uniform_among_those_on_the_patch():
    # One wolf, 10 sheep on a 1 x 1 world: which one is eaten should be uniform over runs.
    p = PredatorPreyParams(width=1, height=1, sheep_gain_from_food=0.0, sheep_reproduce=0.0, wolf_reproduce=0.0)
    sheep = animals(10, width=1, height=1, energy=np.arange(10.0) + 100)
    eaten = np.zeros(10, int)
    for seed in range(400):
        m = crafted(p, sheep=sheep, wolves=animals(1, width=1, height=1), green=False, seed=seed)
        m.step(1)
        left = set(np.round(m.sheep[ENERGY] + 1).astype(int))  # each survivor lost 1 energy
        (gone,) = set(range(100, 110)) - left
        eaten[gone - 100] += 1
    chi2 = float(np.sum((eaten - 40) ** 2 / 40))
    assert chi2 < 27.9, eaten  # chi-squared, 9 dof, p = 0.001


def test_sheep_graze_green_patches_once():
    # 1 x 1 world, one patch: per tick exactly one of the five sheep eats (the first one in
    # the random order); with regrowth 0 the patch is green again at the end of the tick.
    p = PredatorPreyParams(width=1, height=1, grass_regrowth_time=0, sheep_reproduce=0.0, initial_wolves=0)
    m = crafted(p, sheep=animals(5, width=1, height=1, energy=10.0), green=True)
    c = m.step(3)
    np.testing.assert_array_equal(c[:, 0], [1, 1, 1])
    assert m.sheep[ENERGY].sum() == 50 - 3 * 5 + 3 * 4
    assert set(m.sheep[ENERGY]) <= {7.0, 11.0, 15.0, 19.0}
    # With regrowth time R an eaten patch stays brown for R + 1 regrowth steps: it is eaten
    # in ticks 1, R + 2, 2R + 3, ...
    r = 3
    m = crafted(p.replace(grass_regrowth_time=r), sheep=animals(1, width=1, height=1, energy=100.0),
                green=True, countdown=r)
    energy, grass = [100.0], []
    for _ in range(12):
        grass.append(int(m.step(1)[0, 0]))
        energy.append(float(m.sheep[ENERGY][0]))
    eats_in = 1 + np.flatnonzero(np.diff(energy) > 0)
    np.testing.assert_array_equal(eats_in, [1, 5, 9])
    np.testing.assert_array_equal(np.diff(energy)[eats_in - 1], [3.0] * 3)  # -1 + gain 4
    np.testing.assert_array_equal(grass, [0, 0, 0, 1] * 3)


def test_grass_regrows_after_its_countdown():
    r = 7
    p = PredatorPreyParams(width=40, height=10, grass_regrowth_time=r, initial_sheep=0, initial_wolves=0)
    cd = (np.arange(400) % (r + 1)).reshape(10, 40)
    m = crafted(p, green=False, countdown=cd)
    c = m.step(r + 3)
    # A brown patch with countdown c turns green at the end of tick c + 1, then stays green.
    expected = [int(np.sum(cd <= t - 1)) for t in range(1, r + 4)]
    np.testing.assert_array_equal(c[:, 0], expected)
    assert np.all(m.green) and np.all(m.countdown == r)


def test_movement_random_turn_and_unit_step_on_the_torus():
    w, h = 30, 20
    p = PredatorPreyParams(width=w, height=h, sheep_gain_from_food=0.0, sheep_reproduce=0.0)
    n = 4000
    m = crafted(p, sheep=animals(n, width=w, height=h, heading=np.random.default_rng(1).integers(0, 360, n)))
    turns = []
    for _ in range(3):
        before = m.sheep.copy()
        m.step(1)
        after = m.sheep  # no deaths, no births: column order is preserved
        turn = (after[HEADING] - before[HEADING] + 180) % 360 - 180
        np.testing.assert_array_equal(turn, np.round(turn))
        assert turn.min() >= -49 and turn.max() <= 49
        turns.append(turn)
        rad = np.deg2rad(after[HEADING])
        dx = (after[X] - before[X] - np.sin(rad) + w / 2) % w - w / 2
        dy = (after[Y] - before[Y] - np.cos(rad) + h / 2) % h - h / 2
        assert np.abs(dx).max() < 1e-9 and np.abs(dy).max() < 1e-9
    turns = np.concatenate(turns)
    var = 2 * (50**2 - 1) / 12  # difference of two independent uniform{0..49}
    assert abs(turns.mean()) < 4 * math.sqrt(var / turns.size)
    assert abs(turns.var() / var - 1) < 0.05
    assert_binomial(int(np.sum(turns == 0)), turns.size, 50 / 2500, "zero turn")


# --------------------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------------------


def test_snapshot_restore_continues_exactly_and_branches_with_new_seeds(tmp_path):
    m = PredatorPreyModel(SMALL, seed=21)
    m.step(60)
    warm = m.snapshot()
    a = m.step(40, removal=(0.02, 0.01))
    m.restore(warm)
    assert m.tick == 60 and m.seed_sequence is None
    np.testing.assert_array_equal(m.step(40, removal=(0.02, 0.01)), a)

    path = tmp_path / "warm.npz"
    warm.save(path)
    loaded = PredatorPreyState.load(path)
    assert_states_equal(loaded, warm)
    np.testing.assert_array_equal(PredatorPreyModel.from_snapshot(loaded).step(40, removal=(0.02, 0.01)), a)
    np.testing.assert_array_equal(loaded.counts, warm.counts)

    # Branching: fresh streams from seeds, identical to single models branched the same way.
    seeds = spawn_seeds(5, 3)
    batch = PredatorPreyBatch.from_snapshots([warm] * 3, seeds=seeds)
    got = batch.step(30, removal=(0.02, 0.0))
    for b in range(3):
        single = PredatorPreyModel.from_snapshot(warm, seed=seeds[b])
        np.testing.assert_array_equal(single.step(30, removal=(0.02, 0.0)), got[b])
    assert not np.array_equal(got[0], got[1]) and not np.array_equal(got[0], a[:30])
    assert np.all(batch.tick == 90)

    # The snapshot is a copy: stepping does not change it.
    before = warm.copy()
    PredatorPreyModel.from_snapshot(warm).step(5)
    assert_states_equal(before, warm)


def test_docstring_examples_run():
    result = doctest.testmod(predator_prey, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_batch_seeds_are_explicit():
    with pytest.raises(ValueError, match="one seed per model"):
        PredatorPreyBatch(SMALL, seeds=3)
    with pytest.raises(ValueError, match="at least one seed"):
        PredatorPreyBatch(SMALL, seeds=[])
    with pytest.raises(ValueError, match="2 parameter sets for 3 models"):
        PredatorPreyBatch([SMALL, SMALL], seeds=[0, 1, 2])
