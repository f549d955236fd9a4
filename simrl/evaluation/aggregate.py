"""Aggregate scores with bootstrap confidence intervals, after Agarwal et al. (2021).

"Deep reinforcement learning at the edge of the statistical precipice" (NeurIPS 2021) asks
for robust point estimates with interval estimates rather than bare means of a few runs:

* **IQM** (interquartile mean): the mean of the middle 50 % of all scores of the
  ``(runs, tasks)`` matrix, flattened -- as in ``rliable`` (``scipy.stats.trim_mean(x, 0.25)``):
  ``int(0.25 * n)`` scores are cut from each end, so for ``n`` not divisible by 4 slightly
  less than a quarter goes (no fractional weights);
* **mean** and **median** of all scores (flattened; ``rliable``'s median is the median of
  per-task means instead, which for one task is the mean);
* **stratified bootstrap** percentile intervals: each bootstrap replicate resamples the runs
  with replacement independently within each task (each column of the matrix keeps its
  number of runs and draws only from its own scores).

NumPy only (``rliable`` itself does not install cleanly with current ``arch`` / pandas).
Deterministic for a given ``rng`` seed: every score matrix is resampled from a generator
seeded by the same base seed, so one matrix's interval does not depend on which others are
aggregated with it, and matrices of equal shape share their resampling indices (paired, as
all policies of a run are evaluated on the same seeds).

>>> import numpy as np
>>> est = aggregate_scores({"ppo": np.arange(10.0)}, reps=500, rng=0)["ppo"]["iqm"]
>>> est.point
4.5
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: The aggregate metrics, in the order of the output.
METRICS = ("iqm", "mean", "median")

#: Upper bound on the elements of one chunk of bootstrap samples (keeps memory near 32 MB).
_CHUNK_ELEMENTS = 1 << 22


class Estimate(NamedTuple):
    """A point estimate and its confidence interval ``[low, high]``."""

    point: float
    low: float
    high: float


def iqm(scores: np.ndarray | Sequence[float]) -> float:
    """Interquartile mean of all scores (flattened); equals ``scipy.stats.trim_mean(scores, 0.25, axis=None)``."""
    return float(_iqm_rows(_as_matrix(scores).reshape(1, -1))[0])


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of a 2-D array."""
    n = samples.shape[1]
    cut = int(0.25 * n)
    ordered = np.sort(samples, axis=1)
    return ordered[:, cut : n - cut].mean(axis=1)


#: Each statistic maps a (replicates, scores) array to one value per replicate.
_STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "iqm": _iqm_rows,
    "mean": lambda samples: samples.mean(axis=1),
    "median": lambda samples: np.median(samples, axis=1),
}


def point_estimates(scores: np.ndarray | Sequence[float], metrics: Iterable[str] = METRICS) -> dict[str, float]:
    """The aggregate metrics of a ``(runs, tasks)`` score matrix (or a 1-D array of runs)."""
    flat = _as_matrix(scores).reshape(1, -1)
    return {m: float(_statistic(m)(flat)[0]) for m in metrics}


def stratified_bootstrap(
    scores: np.ndarray | Sequence[float], reps: int, rng: int | np.random.Generator | None = 0
) -> np.ndarray:
    """``reps`` stratified bootstrap replicates of a ``(runs, tasks)`` matrix: shape ``(reps, runs, tasks)``.

    In each replicate, column ``j`` holds ``runs`` scores drawn with replacement from column
    ``j`` of ``scores`` only. (Materialises all replicates; :func:`interval_estimates`
    works in chunks instead.)
    """
    matrix = _as_matrix(scores)
    gen = np.random.default_rng(rng)
    return np.concatenate(list(_replicate_chunks(matrix, _check_reps(reps), gen)), axis=0)


def _replicate_chunks(matrix: np.ndarray, reps: int, gen: np.random.Generator):
    runs, tasks = matrix.shape
    chunk = max(1, _CHUNK_ELEMENTS // matrix.size)
    columns = np.arange(tasks)
    for start in range(0, reps, chunk):
        count = min(chunk, reps - start)
        rows = gen.integers(0, runs, size=(count, runs, tasks))
        yield matrix[rows, columns]


def interval_estimates(
    scores: np.ndarray | Sequence[float],
    reps: int = 2000,
    confidence: float = 0.95,
    rng: int | np.random.Generator | None = 0,
    metrics: Iterable[str] = METRICS,
) -> dict[str, Estimate]:
    """Point estimates and stratified-bootstrap percentile intervals of one score matrix.

    ``scores``: ``(runs, tasks)``, or 1-D (runs of a single task). ``rng``: a seed or a
    ``numpy.random.Generator`` (then one base seed is drawn from it).
    """
    return _interval_estimates(_as_matrix(scores), reps, confidence, _base_seed(rng), tuple(metrics))


def aggregate_scores(
    scores: Mapping[str, np.ndarray | Sequence[float]] | np.ndarray,
    reps: int = 2000,
    confidence: float = 0.95,
    rng: int | np.random.Generator | None = 0,
    metrics: Iterable[str] = METRICS,
) -> dict[str, dict[str, Estimate]]:
    """``{name: {metric: Estimate(point, low, high)}}`` for each score matrix of ``scores``.

    ``scores`` maps names (policies, agents) to ``(runs, tasks)`` matrices (1-D = one task);
    a bare array is aggregated under the name ``"scores"``. Matrices may differ in shape.
    """
    items = scores.items() if isinstance(scores, Mapping) else [("scores", scores)]
    base, metrics = _base_seed(rng), tuple(metrics)
    return {name: _interval_estimates(_as_matrix(m), reps, confidence, base, metrics) for name, m in items}


def aggregate_table(
    df: pd.DataFrame,
    value: str = "return",
    by: str | Sequence[str] = "policy",
    runs: str | None = None,
    tasks: str | None = None,
    reps: int = 2000,
    confidence: float = 0.95,
    rng: int | np.random.Generator | None = 0,
    metrics: Iterable[str] = METRICS,
) -> pd.DataFrame:
    """Aggregate column ``value`` of a tidy table (e.g. ``episodes.parquet``) per group of ``by``.

    Within each group the score matrix is built as follows:

    * ``runs=None, tasks=None``: every row is one run of a single task;
    * ``runs="seed"`` (or any column): one run per distinct value; rows sharing it are averaged
      (``runs="training_seed"``: one score per training run, the mean over its episodes);
    * ``tasks="seed"`` (needs ``runs``): a ``(runs, tasks)`` matrix, bootstrapped with the runs
      resampled within each task -- e.g. ``runs="training_seed", tasks="seed"`` resamples the
      training runs independently for every held-out seed. Every (run, task) pair must have rows.

    Examples: over evaluation seeds within each run ``by=["run", "policy"]``; over training
    seeds ``by=["env_name", "agent", "policy"], runs="training_seed"``.

    Returns one row per group (first-seen order): the ``by`` columns, ``n_runs``, ``n_tasks``,
    then ``<metric>``, ``<metric>_low``, ``<metric>_high`` for each metric.
    """
    import pandas as pd

    by_cols = [by] if isinstance(by, str) else list(by)
    if tasks is not None and runs is None:
        raise ValueError("tasks= needs runs= (the column whose values are resampled within each task)")
    missing = [c for c in [value, *by_cols, runs, tasks] if c is not None and c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the table (it has {list(df.columns)})")
    base, metrics = _base_seed(rng), tuple(metrics)
    rows = []
    for key, group in df.groupby(by_cols, sort=False, dropna=False):
        values = group[value].astype(float)
        if runs is None:
            matrix = values.to_numpy()[:, None]
        elif tasks is None:
            matrix = values.groupby(group[runs], sort=True).mean().to_numpy()[:, None]
        else:
            pivot = group.assign(_v=values).pivot_table(index=runs, columns=tasks, values="_v", aggfunc="mean")
            pivot = pivot.reindex(index=sorted(group[runs].unique()), columns=sorted(group[tasks].unique()))
            if pivot.isna().to_numpy().any():
                raise ValueError(f"group {key}: some ({runs}, {tasks}) pairs have no rows; the matrix must be complete")
            matrix = pivot.to_numpy()
        try:
            estimates = _interval_estimates(_as_matrix(matrix), reps, confidence, base, metrics)
        except ValueError as exc:
            raise ValueError(f"group {key}: {exc}") from exc
        row = dict(zip(by_cols, key if isinstance(key, tuple) else (key,)))
        row.update(n_runs=matrix.shape[0], n_tasks=matrix.shape[1])
        for metric, est in estimates.items():
            row.update({metric: est.point, f"{metric}_low": est.low, f"{metric}_high": est.high})
        rows.append(row)
    columns = [*by_cols, "n_runs", "n_tasks"] + [f"{m}{s}" for m in metrics for s in ("", "_low", "_high")]
    out = pd.DataFrame(rows, columns=columns)
    out.attrs.update(value=value, runs=runs, tasks=tasks, reps=reps, confidence=confidence)
    return out


def _interval_estimates(
    matrix: np.ndarray, reps: int, confidence: float, base_seed: int, metrics: tuple[str, ...]
) -> dict[str, Estimate]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    statistics = {m: _statistic(m) for m in metrics}
    flat = matrix.reshape(1, -1)
    points = {m: float(f(flat)[0]) for m, f in statistics.items()}
    replicates: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    gen = np.random.default_rng(base_seed)
    for chunk in _replicate_chunks(matrix, _check_reps(reps), gen):
        samples = chunk.reshape(chunk.shape[0], -1)
        for m, f in statistics.items():
            replicates[m].append(f(samples))
    tail = (1.0 - confidence) / 2.0
    out = {}
    for m in metrics:
        low, high = np.quantile(np.concatenate(replicates[m]), [tail, 1.0 - tail])
        out[m] = Estimate(points[m], float(low), float(high))
    return out


def _statistic(metric: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        return _STATISTICS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known: {list(_STATISTICS)}") from None


def _as_matrix(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"scores must be a (runs, tasks) matrix or a 1-D array of runs, got shape {matrix.shape}")
    if matrix.size == 0:
        raise ValueError(f"no scores to aggregate (shape {matrix.shape})")
    if not np.isfinite(matrix).all():
        raise ValueError(f"scores must be finite; {int((~np.isfinite(matrix)).sum())} of {matrix.size} are not")
    return matrix


def _check_reps(reps: int) -> int:
    if int(reps) != reps or reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    return int(reps)


def _base_seed(rng: int | np.random.Generator | None) -> int:
    return int(np.random.default_rng(rng).integers(2**63))
