"""Toy metabolic pathway core: conservation laws, stoichiometry, feed/dilution bookkeeping,
determinism, batch independence, snapshots, bad input, and (slow) the published steady state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simrl.physics.ecology import STATUS_OK, STATUS_POPULATION_CAP
from simrl.physics.ecology.metabolic import (
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

IDX = {name: k for k, name in enumerate(SPECIES)}
SMALL = MetabolicParams(scale=0.02)  # side 14, ~1,500 molecules, 4 enzymes of each kind

# Forms of each metabolite (free or bound; ORP holds P and R, ORT holds T and R).
FORMS = {
    "S": ("S", "AS"),
    "P": ("P", "AP", "EP", "OP", "ORP"),
    "Q": ("Q", "EQ", "IQ"),
    "R": ("R", "AR", "IR", "OR", "ORP", "ORT"),
    "T": ("T", "OT", "ORT"),
}


def forms(counts: np.ndarray, met: str) -> np.ndarray:
    return sum(counts[..., IDX[s]] for s in FORMS[met])


def enzyme_totals(counts: np.ndarray) -> np.ndarray:
    return np.stack([sum(counts[..., IDX[s]] for s in ENZYME_FORMS[e]) for e in ENZYME_FORMS], axis=-1)


def test_species_table_and_carbon_vector():
    assert SPECIES[:5] == METABOLITES == ("S", "P", "Q", "R", "T")
    assert len(SPECIES) == 21 and len(set(SPECIES)) == 21
    carbon = sum(np.isin(np.array(SPECIES), FORMS[m]).astype(int) for m in METABOLITES)
    np.testing.assert_array_equal(carbon, CARBON)


def test_scaling_keeps_concentrations():
    p = MetabolicParams(scale=0.1)
    assert p.side == 32 and p.effective_scale == pytest.approx(0.1024)
    c = p.initial_counts()
    assert c[IDX["S"]] == round(80000 * 0.1024) and c[IDX["A"]] == 20 and c[IDX["R"]] == 1
    full = MetabolicParams().initial_counts()
    assert full[:5].tolist() == [80000, 20000, 20000, 10, 10]
    assert all(full[IDX[e]] == 200 for e in "AEIO")
    # molecules per patch are those of the full model
    assert c[IDX["S"]] / p.n_patches == pytest.approx(full[IDX["S"]] / 1e4, rel=1e-3)


def test_enzymes_conserved_and_batch_mode_conserves_carbon():
    model = MetabolicModel(SMALL.replace(mode="batch"), seed=3)
    traj = model.run(3000, every=1)
    init = SMALL.initial_counts()
    assert np.all(enzyme_totals(traj) == enzyme_totals(init))
    assert np.all(traj @ CARBON == init @ CARBON)
    # things happened: complexes formed, catalysis produced R and T
    assert traj[:, 5:].max() > 0 and model.reactions.min() > 0
    assert model.fed == 0 and model.diluted.sum() == 0


def test_catalysis_stoichiometry_and_flux_balance():
    """Each metabolite's forms change only by catalysis, feed and dilution (exactly)."""
    p = SMALL.replace(feed=40.0)
    model = MetabolicModel(p, seed=11)
    c0 = model.counts()
    for _ in range(4):
        c = model.step(500)
        r = dict(zip(REACTIONS, model.reactions))
        dil = dict(zip(METABOLITES, model.diluted))
        assert forms(c, "S") - forms(c0, "S") == model.fed - dil["S"] - r["S->P"]
        assert forms(c, "P") - forms(c0, "P") == r["S->P"] - r["P->Q"] - r["P->T"] - dil["P"]
        assert forms(c, "Q") - forms(c0, "Q") == r["P->Q"] - r["Q->R"] - dil["Q"]
        assert forms(c, "R") - forms(c0, "R") == r["Q->R"] - dil["R"]
        assert forms(c, "T") - forms(c0, "T") == r["P->T"] - dil["T"]
        assert np.all(enzyme_totals(c) == enzyme_totals(c0))
    assert model.reactions.min() > 0 and model.diluted.sum() > 0


def test_substrate_pool_balance():
    """The yield's inventory: S, P, Q in any form change only by feed, product formation, dilution."""
    pool = sum(np.isin(np.array(SPECIES), FORMS[m]).astype(int) for m in "SPQ")
    np.testing.assert_array_equal(pool, SUBSTRATE_POOL)
    model = MetabolicModel(SMALL.replace(feed=40.0), seed=4)
    u0 = model.counts() @ SUBSTRATE_POOL
    for feed in (40.0, 0.0, 120.0):
        c = model.step(700, feed=feed)
        r = dict(zip(REACTIONS, model.reactions))
        lost = r["Q->R"] + r["P->T"] + model.diluted[:3].sum()
        assert u0 + model.fed - c @ SUBSTRATE_POOL == lost
    assert r["P->T"] > 0 and r["Q->R"] > 0 and model.diluted[:3].min() > 0


def test_feed_carry_over_is_exact():
    p = SMALL.replace(feed=0.7, dilution=0.0)
    model = MetabolicModel(p, seed=1)
    n = 1234
    model.step(n)
    amount, fed = 0.0, 0
    for _ in range(n):  # the script's NonInt arithmetic
        amount += 0.7 * p.effective_scale
        k = math.floor(amount)
        fed += k
        amount -= k
    assert model.fed == fed
    assert model.snapshot().feed_carry == pytest.approx(amount)
    # a per-call feed overrides params.feed for that call only
    before = model.fed
    model.step(100, feed=0.0)
    assert model.fed == before


def test_dilution_matches_its_expectation():
    """No enzymes: every free metabolite survives a step with probability 1 - D, except that a
    molecule fed in step t is first diluted in step t + 1 (the script's fresh flag)."""
    d, n, feed_per_step = 0.01, 150, 25
    p = MetabolicParams(scale=0.25, dilution=d, feed=feed_per_step / 0.25, initial_a=0, initial_e=0,
                        initial_i=0, initial_o=0)
    assert p.effective_feed == pytest.approx(feed_per_step)
    n0 = p.initial_counts()[:5]
    batch = MetabolicBatch(p, seeds=list(range(8)))
    c = batch.step(n)
    q = 1.0 - d
    expected = n0 * q**n
    expected_s_fed = feed_per_step * sum(q ** (n - t) for t in range(1, n + 1))
    expected[0] += expected_s_fed
    var = n0 * q**n * (1 - q**n)
    var[0] += sum(feed_per_step * q ** (n - t) * (1 - q ** (n - t)) for t in range(1, n + 1))
    mean = c[:, :5].mean(axis=0)
    se = np.sqrt(var / batch.n_models)
    assert np.all(np.abs(mean - expected) < 4 * se + 1e-9), (mean, expected, se)
    # bookkeeping: what left is exactly what was diluted
    np.testing.assert_array_equal(batch.diluted.sum(axis=1) + c[:, :5].sum(axis=1), n0.sum() + batch.fed)
    assert np.all(batch.fed == feed_per_step * n)


def test_determinism_over_a_long_run():
    a = MetabolicModel(SMALL, seed=123)
    b = MetabolicModel(SMALL, seed=123)
    ta = a.run(5000, every=50, feed=20.0)
    tb = b.run(5000, every=50, feed=20.0)
    np.testing.assert_array_equal(ta, tb)
    sa, sb = a.snapshot(), b.snapshot()
    np.testing.assert_array_equal(sa.molecules, sb.molecules)
    np.testing.assert_array_equal(sa.enzymes, sb.enzymes)
    np.testing.assert_array_equal(sa.rng_state, sb.rng_state)
    c = MetabolicModel(SMALL, seed=124)
    assert not np.array_equal(c.run(5000, every=50, feed=20.0), ta)


@pytest.mark.parametrize("parallel", [False, True])
def test_batch_models_equal_single_models(parallel):
    seeds = [5, 6, 7]
    feeds = np.array([0.0, 30.0, 80.0])
    plist = [SMALL, SMALL.replace(dilution=0.002), SMALL.replace(binding_as=10.0)]
    batch = MetabolicBatch(plist, seeds, parallel=parallel)
    got = batch.run(800, feed=feeds, every=100)
    for b, (p, s, f) in enumerate(zip(plist, seeds, feeds)):
        single = MetabolicModel(p, seed=s)
        np.testing.assert_array_equal(single.run(800, feed=float(f), every=100), got[b])
        np.testing.assert_array_equal(single.snapshot().molecules, batch.snapshot(b).molecules)


def test_snapshot_roundtrip_and_branching(tmp_path):
    model = MetabolicModel(SMALL, seed=9)
    model.step(300, feed=33.3)
    state = model.snapshot()
    path = tmp_path / "state.npz"
    state.save(path)
    loaded = MetabolicState.load(path)
    np.testing.assert_array_equal(loaded.counts, model.counts())
    ref = model.run(400, every=10)
    cont = MetabolicModel.from_snapshot(loaded)
    np.testing.assert_array_equal(cont.run(400, every=10), ref)
    assert cont.tick == 700
    # branching: new streams from one warm state diverge, but both conserve the enzymes
    branches = MetabolicBatch.from_snapshots([loaded, loaded], seeds=[1, 2])
    c = branches.step(400)
    assert not np.array_equal(c[0], c[1])
    assert np.all(enzyme_totals(c) == enzyme_totals(state.counts))
    bad = loaded.copy()
    bad.molecules[0, 0] = 1e9
    with pytest.raises(ValueError, match="positions"):
        MetabolicBatch.from_snapshots([bad])


def test_buffers_grow_under_a_large_feed_without_changing_results():
    p = MetabolicParams(scale=0.01)
    a = MetabolicModel(p, seed=4)
    ca = a.step(300, feed=2e4)  # 200 S per step: several buffer reallocations
    b = MetabolicModel(p, seed=4)
    for _ in range(3):
        cb = b.step(100, feed=2e4)
    np.testing.assert_array_equal(ca, cb)
    assert a.status == STATUS_OK and ca[0] > 30000


def test_molecule_cap_stops_the_model():
    p = MetabolicParams(scale=0.01, max_molecules=2000)
    model = MetabolicModel(p, seed=0)
    model.step(200, feed=1e4)
    assert model.status == STATUS_POPULATION_CAP
    assert model.tick < 200 and model.counts()[:5].sum() <= 2000


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="fed-batch"), "mode must be one of"),
    (dict(scale=0.0), r"scale must be a number in \(0, 1\]"),
    (dict(scale=1.5), r"scale must be a number in \(0, 1\]"),
    (dict(feed=-1.0), "feed must be"),
    (dict(dilution=1.5), "dilution must be"),
    (dict(binding_as=120.0), "binding_as must be a percentage"),
    (dict(release_orp=50.0, cat_orp=60.0), "complex ORP"),
    (dict(initial_s=-5), "initial_s must be an integer"),
    (dict(world=10.5), "world must be an integer-valued"),
])
def test_bad_parameters_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetabolicParams(**kwargs)


def test_bad_step_input_raises_clear_errors():
    with pytest.raises(ValueError, match="unknown parameter"):
        SMALL.replace(speed=2)
    batch = MetabolicBatch(SMALL, seeds=[1, 2])
    with pytest.raises(ValueError, match="shape"):
        batch.step(1, feed=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="feed must lie"):
        batch.step(1, feed=-2.0)
    with pytest.raises(ValueError, match="n must be an integer"):
        batch.step(-1)
    with pytest.raises(ValueError, match="mode='batch'"):
        MetabolicModel(SMALL.replace(mode="batch"), seed=0).step(1, feed=1.0)
    with pytest.raises(ValueError, match="seeds must be a sequence"):
        MetabolicBatch(SMALL, seeds=3)


@pytest.mark.slow
def test_continuous_steady_state_matches_published_means():
    """Feed 1.0, D = 0.0005 (the script's values): mean over steps 30k-50k of 4 runs at scale
    0.1, rescaled by 1 / effective_scale, against the published steady state (all rates are the
    script's, so nothing was calibrated). Measured: S +0.5 %, P -2.7 %, Q -1.9 %, R -4.7 %,
    T -4 %; R and T are ~10 and ~30 molecules at this scale, hence the 10 % tolerance."""
    p = MetabolicParams(scale=0.1)
    batch = MetabolicBatch(p, seeds=[1, 2, 3, 4])
    traj = batch.run(50_000, every=500)
    mean = traj[:, 60:, :5].mean(axis=(0, 1)) / p.effective_scale
    rel = mean / np.array(PUBLISHED_CONTINUOUS_STEADY_STATE) - 1.0
    assert np.all(np.abs(rel) < 0.10), (mean, rel)


def test_docstring_examples_run():
    import doctest

    from simrl.physics.ecology import metabolic

    result = doctest.testmod(metabolic, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_restore_one_model_of_a_batch():
    warm = MetabolicModel(SMALL, seed=21)
    warm.step(200)
    state = warm.snapshot()
    batch = MetabolicBatch(SMALL, seeds=[1, 2, 3])
    batch.step(50)
    other = batch.snapshots()
    batch.restore(1, state)
    np.testing.assert_array_equal(batch.counts()[1], state.counts)
    assert batch.tick.tolist() == [50, 200, 50]
    got = batch.run(100, every=10)
    ref = MetabolicModel.from_snapshot(state).run(100, every=10)
    np.testing.assert_array_equal(got[1], ref)
    for b in (0, 2):  # the other models continue undisturbed
        np.testing.assert_array_equal(got[b], MetabolicModel.from_snapshot(other[b]).run(100, every=10))
    with pytest.raises(ValueError, match="side"):
        batch.restore(0, MetabolicModel(MetabolicParams(scale=0.01), seed=0).snapshot())
    with pytest.raises(ValueError, match="b must be an integer"):
        batch.restore(3, state)
