"""Aggregate metrics (IQM, mean, median) with stratified-bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from simrl.evaluation.aggregate import (
    METRICS,
    aggregate_scores,
    aggregate_table,
    interval_estimates,
    iqm,
    point_estimates,
    stratified_bootstrap,
)


def test_iqm_equals_scipy_trim_mean_on_many_random_arrays():
    rng = np.random.default_rng(0)
    shapes = [(n,) for n in range(1, 41)] + [(r, t) for r in (1, 2, 3, 5, 10) for t in (1, 2, 3, 7)]
    for shape in shapes:
        for draw in (rng.normal, rng.standard_cauchy, lambda size: rng.integers(0, 4, size=size).astype(float)):
            x = draw(size=shape)
            assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None), rel=1e-12, abs=1e-12), shape
    assert iqm([1.0, 2.0, 3.0, 4.0, 100.0]) == pytest.approx(3.0)  # int(1.25) = 1 cut from each end


def test_mean_and_median_are_over_all_scores():
    x = np.random.default_rng(1).normal(size=(9, 4))
    est = point_estimates(x)
    assert est["mean"] == pytest.approx(x.mean()) and est["median"] == pytest.approx(np.median(x))
    assert set(est) == set(METRICS)


@pytest.mark.parametrize("shape", [(1,), (7,), (5, 3)])
def test_interval_collapses_when_all_scores_are_equal(shape):
    estimates = interval_estimates(np.full(shape, 0.1), reps=300)
    for est in estimates.values():
        assert est.low == est.point == est.high


def test_interval_contains_the_point_estimate():
    rng = np.random.default_rng(2)
    for data in (rng.normal(size=50), rng.exponential(size=(20, 3)), rng.lognormal(size=(40, 1))):
        for metric, est in interval_estimates(data, reps=1000, rng=3).items():
            assert est.low <= est.point <= est.high, metric
            assert est.low < est.high, metric


def test_mean_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    hits = 0
    for rep in range(200):
        sample = rng.normal(3.0, 2.0, size=30)
        est = interval_estimates(sample, reps=500, rng=rep, metrics=("mean",))["mean"]
        hits += est.low <= 3.0 <= est.high
    assert 0.90 <= hits / 200 <= 0.99, hits


def test_stratified_bootstrap_resamples_runs_within_each_task():
    runs, tasks, reps = 6, 3, 200
    scores = np.arange(runs)[:, None] + 100.0 * np.arange(tasks)[None, :]  # task j holds 100j .. 100j+5
    samples = stratified_bootstrap(scores, reps, rng=0)
    assert samples.shape == (reps, runs, tasks)  # every task keeps its number of runs
    for j in range(tasks):
        assert set(np.unique(samples[:, :, j])) <= set(scores[:, j])  # drawn from its own column only
    # with replacement: some replicate repeats a run, and every run is drawn somewhere
    assert any(len(np.unique(samples[r, :, 0])) < runs for r in range(reps))
    assert set(np.unique(samples[:, :, 0])) == set(scores[:, 0])


def test_same_seed_gives_the_same_interval_and_another_seed_another():
    x = np.random.default_rng(5).normal(size=(25, 2))
    a = interval_estimates(x, reps=400, rng=7)
    assert a == interval_estimates(x, reps=400, rng=7)
    # a Generator works too: one base seed is drawn from it, so equal states give equal intervals
    assert interval_estimates(x, reps=400, rng=np.random.default_rng(9)) == interval_estimates(
        x, reps=400, rng=np.random.default_rng(9)
    )
    assert a["iqm"] != interval_estimates(x, reps=400, rng=8)["iqm"]


def test_aggregate_scores_is_independent_of_the_other_entries():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(10, 2)), rng.normal(size=15)
    both = aggregate_scores({"a": a, "b": b}, reps=300, rng=1)
    assert both["a"] == aggregate_scores({"a": a}, reps=300, rng=1)["a"]
    assert both["b"] == aggregate_scores({"b": b, "a": a}, reps=300, rng=1)["b"]
    assert aggregate_scores(b, reps=300, rng=1)["scores"] == both["b"]
    assert set(both["a"]) == set(METRICS) and len(both["a"]["iqm"]) == 3


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        interval_estimates([1.0, np.nan])
    with pytest.raises(ValueError, match="no scores"):
        interval_estimates([])
    with pytest.raises(ValueError, match="confidence"):
        interval_estimates([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="unknown metric"):
        interval_estimates([1.0, 2.0], metrics=("iqr",))


def _tidy(n_train=3, n_eval=5):
    rng = np.random.default_rng(8)
    rows = []
    for t in range(n_train):
        for policy in ("ppo", "fixed 0.01"):
            for i, seed in enumerate(range(1000, 1000 + n_eval)):
                rows.append(dict(policy=policy, training_seed=t, seed=seed, episode=i, blowup=0.0,
                                 **{"return": rng.normal(-5.0 if policy == "ppo" else -6.0)}))  # fmt: skip
    return pd.DataFrame(rows)


def test_aggregate_table_over_evaluation_seeds_matches_aggregate_scores():
    df = _tidy()
    table = aggregate_table(df, "return", by=["training_seed", "policy"], runs="seed", reps=300, rng=2)
    assert list(table.columns[:4]) == ["training_seed", "policy", "n_runs", "n_tasks"]
    assert list(table.columns[4:]) == [f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")]
    assert len(table) == 6 and (table["n_runs"] == 5).all() and (table["n_tasks"] == 1).all()
    row = table.iloc[1]
    scores = df[(df.training_seed == row.training_seed) & (df.policy == row.policy)].sort_values("seed")["return"]
    expected = aggregate_scores({"x": scores.to_numpy()}, reps=300, rng=2)["x"]
    assert (row.iqm, row.iqm_low, row.iqm_high) == tuple(expected["iqm"])


def test_aggregate_table_over_training_seeds_stratified_by_evaluation_seed():
    df = _tidy()
    table = aggregate_table(df, "return", by="policy", runs="training_seed", tasks="seed", reps=300)
    assert list(table["policy"]) == ["ppo", "fixed 0.01"]
    assert (table["n_runs"] == 3).all() and (table["n_tasks"] == 5).all()
    ppo = df[df.policy == "ppo"]
    assert table.iloc[0]["mean"] == pytest.approx(ppo["return"].mean())
    per_run = aggregate_table(df, "return", by="policy", runs="training_seed", reps=300)
    assert (per_run["n_runs"] == 3).all() and (per_run["n_tasks"] == 1).all()
    assert per_run.iloc[0]["mean"] == pytest.approx(ppo.groupby("training_seed")["return"].mean().mean())
    with pytest.raises(ValueError, match="needs runs"):
        aggregate_table(df, "return", tasks="seed")
    with pytest.raises(ValueError, match="complete"):
        aggregate_table(df.iloc[1:], "return", by="policy", runs="training_seed", tasks="seed", reps=10)
    with pytest.raises(KeyError, match="nope"):
        aggregate_table(df, "nope")
