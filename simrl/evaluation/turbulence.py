"""A-posteriori evaluation of LES closures for 2-D turbulence (``simrl/Turbulence2D-v0``).

A closure is judged the way Mojgani et al. (arXiv 2312.00907) judge it: by *long* LES runs
started from held-out filtered-DNS fields, compared with the DNS statistics they never saw
(reference ``turbulence.md`` sect. 4 and 7). Every closure runs for ``episode_steps`` solver
steps (by default 10x the training episode) from the same held-out fields:

* the baselines ``none``, static ``smagorinsky`` and ``leith``, ``dynamic_smagorinsky`` and
  ``dynamic_leith`` (``simrl.physics.turbulence.closures.make_closure``), played through the
  environment's own core (:meth:`TurbulenceBatch.step_with_closure`: the same solver, the same
  per-step eddy-viscosity update, the same blow-up checks and rewards as the policy);
* the trained policy, acting every ``steps_per_action`` solver steps on the environment's own
  per-agent observations (its coefficients held over the window, ``nu_e`` recomputed every step);
  all held-out fields of one policy advance in ONE batched solver call.

Metrics per episode (one :class:`~simrl.evaluation.rollout.EpisodeRecord` per policy and
held-out field; all lower-is-better errors computed on snapshots taken every ``record_every``
steps after ``transient_steps``):

==========================  ===============================================================
``spectrum_error``          the environment's log-spectrum error (what the reward measures),
                            time-averaged over every action window after the transient
``spectrum_l2``             ``||<Z_LES> - Z_DNS||_2 / ||Z_DNS||_2`` of the time-mean shell
                            enstrophy spectrum over ``1 <= k <= k_cut``
``pdf_tail_l1``             mean ``|log p_LES - log p_FDNS|`` over the bins of
                            ``2 <= |omega| / sigma_DNS <= 5`` where both PDFs are positive
                            (the PDF of the time-aggregated LES vorticity; a bin where the
                            LES has no sample counts as a ``log`` gap of ``LOG_FLOOR_GAP``)
``tail_ratio_3sigma``       ``P_LES(|omega| > 3 sigma_DNS) / P_FDNS(|omega| > 3 sigma_DNS)``
                            (1 is perfect); ``tail_log_ratio_3sigma`` = ``|log|`` of it
``mean_energy``,            time means of the domain-mean E and Z
``mean_enstrophy``
``mean_nu_e``               time mean of the domain-mean eddy viscosity (last step of each window)
``blowup``                  1.0 when the run ended early (non-finite field, CFL above the
                            solver's limit, non-finite eddy viscosity), else 0.0
``steps_survived``          solver steps completed
``seconds_per_time_unit``   wall seconds per unit of simulated time and field (the batch's wall
                            time shared over its fields); ``summary.json["cost"]`` divides it by
                            the DNS's, timed in the same process (:func:`dns_seconds_per_time_unit`)
==========================  ===============================================================

Baselines: ``tuned_smagorinsky`` and ``tuned_leith`` are static closures whose coefficient was chosen by a
1-D search on the *training* fields (the env's ``snapshot_indices``, never the held-out ones) minimising the
mean ``spectrum_error`` of runs as long as the evaluation's (:func:`tune_static_coefficient`; the search is
in ``summary.json["tuning"]`` and cached in ``<run_dir>/closure_tuning.json``). Paired comparison: for each
of :data:`PAIRED_METRICS` the best classical closure (lowest mean among the baselines other than
``none`` that never blew up) is the reference, and every policy gets the mean per-field difference to it
with a 95 % bootstrap interval (``summary.json["paired"]``; the fields are the same for every policy, so
the pairing removes the spread between start fields).

A blow-up is a result, never an exception: the run stops at its last finite state and its
metrics use the snapshots it produced (NaN when it produced none after the transient).

Outputs (``write_evaluation``: atomic, ``episodes.parquet`` last): ``summary.json`` (per-policy
mean and 95% t-interval of every metric, the settings, the held-out fields), ``table.txt``,
``spectra.png`` (log-log time-mean spectra with the DNS), ``pdf.png`` (log-scale PDFs with the
filtered DNS), ``fields.png`` (final vorticity of the first held-out field, side by side) and
``spectra.npz`` (the arrays behind the plots, read by the dashboard page).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from simrl.physics.turbulence import diagnostics

log = logging.getLogger(__name__)

#: The baseline closures of the evaluation, in table order: names of ``make_closure``, and ``tuned_<kind>``,
#: the static closure whose coefficient a 1-D search on the *training* fields chose (:func:`tune_static_coefficient`).
BASELINES: tuple[str, ...] = (
    "none", "smagorinsky", "leith", "tuned_smagorinsky", "tuned_leith", "dynamic_smagorinsky", "dynamic_leith",
)

#: Display names of the baselines.
BASELINE_LABELS: dict[str, str] = {
    "none": "no closure",
    "smagorinsky": "Smagorinsky",
    "leith": "Leith",
    "tuned_smagorinsky": "tuned Smagorinsky",
    "tuned_leith": "tuned Leith",
    "dynamic_smagorinsky": "dynamic Smagorinsky",
    "dynamic_leith": "dynamic Leith",
}

#: Multiples of the literature coefficient (``closures.STATIC_COEFFICIENTS``: c = C_s^2 or C_L^3) that the
#: tuned static baselines search first (a factor-2 log grid: C_s over 0.35-2.8x, C_L over 0.5-2x Lilly's/Leith's
#: 0.17); the best point is then refined by factors 2^(+-1/2).
TUNING_FACTORS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

#: How often the tuning grid is extended past an edge where its best point lies.
MAX_TUNING_EXTENSIONS = 3

#: A paired difference counts as a win only below ``-PAIRED_TOLERANCE x |reference mean|``: policies that
#: play the same closure differ by round-off (float32 actions), and an interval of round-off is not a result.
PAIRED_TOLERANCE = 1e-6

#: Metrics with a paired per-field difference to the best classical closure (lower is better for each).
PAIRED_METRICS: tuple[str, ...] = ("spectrum_error", "pdf_tail_l1", "tail_log_ratio_3sigma")

#: Column headers of the paired table.
PAIRED_LABELS: dict[str, str] = {
    "spectrum_error": "spectrum error",
    "pdf_tail_l1": "PDF-tail error",
    "tail_log_ratio_3sigma": "|log P>3s ratio|",
}

#: Metric columns of the episodes table (in order) and of the summary.
METRICS: tuple[str, ...] = (
    "spectrum_error",
    "spectrum_l2",
    "pdf_tail_l1",
    "tail_ratio_3sigma",
    "tail_log_ratio_3sigma",
    "mean_energy",
    "mean_enstrophy",
    "mean_nu_e",
    "blowup",
    "steps_survived",
    "time_survived",
    "seconds_per_time_unit",
)

#: Log-density gap charged for a tail bin where the FDNS PDF is positive but the LES has no sample
#: (log(p_FDNS / floor) would be infinite; one empty bin costs as much as a factor e^LOG_FLOOR_GAP).
LOG_FLOOR_GAP = math.log(1e3)


# ---------------------------------------------------------------------------------------------
# Settings of the long runs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LongRunSettings:
    """How the long a-posteriori runs are made and measured (solver steps unless stated).

    ``episode_steps``: length of every run. ``steps_per_action``: the policy acts every this many
    steps (a baseline's eddy viscosity, like the policy's, is recomputed from the field every step). ``record_every``: snapshot
    interval of the statistics (a multiple of ``steps_per_action``). ``transient_steps``: the
    snapshots before this are discarded (the filtered-DNS start is not an LES equilibrium).
    ``tail_range``: the ``|omega|/sigma`` band of ``pdf_tail_l1``.
    ``tail_threshold``: the ``P(|omega| > t sigma)`` ratio's t.
    """

    episode_steps: int
    steps_per_action: int
    record_every: int
    transient_steps: int
    tail_range: tuple[float, float] = (2.0, 5.0)
    tail_threshold: float = 3.0

    def __post_init__(self) -> None:
        for name in ("episode_steps", "steps_per_action", "record_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.transient_steps, bool) or not isinstance(self.transient_steps, (int, np.integer)) or not (
            0 <= self.transient_steps < self.episode_steps
        ):
            raise ValueError(
                f"transient_steps must be an integer in [0, episode_steps={self.episode_steps}), got {self.transient_steps!r}"
            )
        if self.record_every % self.steps_per_action:
            raise ValueError(
                f"record_every ({self.record_every}) must be a multiple of steps_per_action ({self.steps_per_action})"
            )
        lo, hi = self.tail_range
        if not 0 <= lo < hi:
            raise ValueError(f"tail_range must be (low, high) with 0 <= low < high, got {self.tail_range!r}")


# ---------------------------------------------------------------------------------------------
# What the evaluation needs from the reference data, in one place
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceStatistics:
    """DNS statistics at the LES resolution that every run is compared with.

    ``k`` (K,): shell wavenumbers ``0 .. K-1``; ``enstrophy_spectrum`` (K,): time-mean shell
    enstrophy spectrum of the filtered DNS truncated to the LES grid (``diagnostics.enstrophy_spectrum``
    convention); ``sigma_omega``: DNS vorticity std (PDF normalisation); ``pdf_edges`` (M+1,),
    ``pdf_density`` (M,): the filtered-DNS PDF of ``omega / sigma_omega``; ``k_cut``: the LES's
    largest kept wavenumber (the spectra are compared on ``1 <= k <= k_cut``).
    """

    k: np.ndarray
    enstrophy_spectrum: np.ndarray
    sigma_omega: float
    pdf_edges: np.ndarray
    pdf_density: np.ndarray
    k_cut: int

    @property
    def tail_probability(self) -> Callable[[float], float]:
        def p(threshold: float) -> float:
            return _tail_probability(self.pdf_edges, self.pdf_density, threshold)

        return p


def _tail_probability(edges: np.ndarray, density: np.ndarray, threshold: float) -> float:
    """``P(|x| > threshold)`` from a histogram PDF (bins fully beyond the threshold, the cut bin pro rata)."""
    lo, hi = edges[:-1], edges[1:]
    width = hi - lo
    # fraction of each bin with |x| > threshold
    frac_right = np.clip((hi - np.maximum(lo, threshold)) / width, 0.0, 1.0)
    frac_left = np.clip((np.minimum(hi, -threshold) - lo) / width, 0.0, 1.0)
    return float(np.sum(density * width * (frac_right + frac_left)))


def log_spectrum_error(
    z_les: np.ndarray, log_z_dns: np.ndarray, log_z_dns_std: np.ndarray, k_slice: slice
) -> np.ndarray:
    """``mean_k ((log Z_LES(k) - <log Z_DNS(k)>) / std_t log Z_DNS(k))^2`` over ``k_slice``.

    The normalised log-spectrum error of Novati et al. (2021) that the environment's default
    reward uses (reference ``turbulence.md`` sect. 6); a non-positive LES spectrum value is
    floored at 1e-300 (the error is then large, not NaN).
    """
    z = np.maximum(np.asarray(z_les, dtype=np.float64)[..., k_slice], 1e-300)
    d = (np.log(z) - log_z_dns[k_slice]) / log_z_dns_std[k_slice]
    return np.mean(d**2, axis=-1)


# ---------------------------------------------------------------------------------------------
# The long runs
# ---------------------------------------------------------------------------------------------
#: One action window of a policy on the batched core: ``act(batch, active) -> batch.step(...)``'s result
#: dict (``reward``, ``truncated``, ``blowup``, ``status`` per copy); only ``active`` copies advance.
WindowFunction = Callable[[Any, np.ndarray], dict]


def closure_window(closure: Any) -> WindowFunction:
    """A baseline closure (``make_closure(name)``) played through the core's :meth:`step_with_closure`."""

    def act(batch: Any, active: np.ndarray) -> dict:
        return batch.step_with_closure(closure, active)

    return act


def policy_window(model: Any) -> WindowFunction:
    """A trained shared policy (SB3-style ``predict``) acting on every agent of every copy, one call per window."""
    from simrl.agents.turbulence_vec_env import policy_actions

    def act(batch: Any, active: np.ndarray) -> dict:
        coefficients = batch.coefficients_from_actions(policy_actions(model, batch.agent_observations()))
        return batch.step(coefficients, active)

    return act


@dataclass
class LongRun:
    """Everything one policy's long runs produced (B held-out fields)."""

    policy: str
    steps: np.ndarray  # (B,) solver steps survived
    time: np.ndarray  # (B,) model time survived
    blowup: np.ndarray  # (B,) bool
    status: np.ndarray  # (B,) the core's status code at the end (0 = fine)
    episode_return: np.ndarray  # (B,) sum of the environment's rewards over the run
    spectrum_error_sum: np.ndarray  # (B,) sum over action windows after the transient
    nu_e_sum: np.ndarray  # (B,) domain-mean eddy viscosity summed over the same windows
    n_windows: np.ndarray  # (B,) action windows after the transient
    spectrum_sum: np.ndarray  # (B, K) shell spectra summed over the snapshots after the transient
    energy_sum: np.ndarray  # (B,)
    enstrophy_sum: np.ndarray  # (B,)
    n_snapshots: np.ndarray  # (B,) snapshots after the transient
    pdf_counts: np.ndarray  # (B, M) histogram of omega / sigma_DNS over the snapshots
    pdf_total: np.ndarray  # (B,) samples pooled (inside and outside the window)
    tail_counts: np.ndarray  # (B,) samples with |omega| > tail_threshold sigma
    final_omega: np.ndarray  # (B, N, N) last finite vorticity
    series_time: list[float] = field(default_factory=list)  # time of every snapshot (transient included)
    series_energy: list[np.ndarray] = field(default_factory=list)  # (B,) per snapshot, NaN once blown up
    series_enstrophy: list[np.ndarray] = field(default_factory=list)
    wall_time: float = 0.0


def run_long(
    batch: Any,
    act: WindowFunction,
    snapshot_indices: Sequence[int],
    settings: LongRunSettings,
    reference: ReferenceStatistics,
    policy: str = "policy",
) -> LongRun:
    """Run ``act`` on a :class:`~simrl.envs.turbulence_core.TurbulenceBatch` from held-out snapshots.

    Copy ``i`` of ``batch`` (whose ``settings.augment`` must be False: the fields are used as stored)
    starts from filtered-DNS snapshot ``snapshot_indices[i]`` and runs for ``settings.episode_steps``
    solver steps, all copies in one solver call per step. The core's blow-up checks (non-finite
    field, CFL above the scheme's limit, enstrophy far above the DNS's) stop a copy at its last
    finite state; the others carry on. Nothing raises on a blow-up.
    """
    if batch.settings.augment:
        raise ValueError("the evaluation batch must have augment=False (held-out fields are used as stored)")
    b = batch.num_systems
    if len(snapshot_indices) != b:
        raise ValueError(f"need one snapshot index per copy ({b}), got {len(snapshot_indices)}")
    grid = batch.grid
    n = grid.n
    k_size = reference.k.size
    edges = reference.pdf_edges
    spa = batch.settings.steps_per_action
    if spa != settings.steps_per_action:
        raise ValueError(f"steps_per_action of the batch ({spa}) and of the settings ({settings.steps_per_action}) differ")
    rng = np.random.default_rng(0)  # unused with augment=False and explicit snapshots; reset_system wants one
    for i, index in enumerate(snapshot_indices):
        batch.reset_system(i, rng, snapshot_index=int(index))
    out = LongRun(
        policy=policy,
        steps=np.zeros(b, np.int64),
        time=np.zeros(b),
        blowup=np.zeros(b, bool),
        status=np.zeros(b, np.int64),
        episode_return=np.zeros(b),
        spectrum_error_sum=np.zeros(b),
        nu_e_sum=np.zeros(b),
        n_windows=np.zeros(b, np.int64),
        spectrum_sum=np.zeros((b, k_size)),
        energy_sum=np.zeros(b),
        enstrophy_sum=np.zeros(b),
        n_snapshots=np.zeros(b, np.int64),
        pdf_counts=np.zeros((b, edges.size - 1)),
        pdf_total=np.zeros(b),
        tail_counts=np.zeros(b),
        final_omega=np.zeros((b, n, n)),
    )
    alive = np.ones(b, dtype=bool)
    dt = batch.model.params.dt
    start = time.perf_counter()

    def record(step: int) -> None:
        idx = np.flatnonzero(alive)
        e = np.full(b, np.nan)
        z = np.full(b, np.nan)
        if idx.size:
            w = batch.state.omega_hat[idx]
            e[idx] = diagnostics.energy(grid, w)
            z[idx] = diagnostics.enstrophy(grid, w)
            if step >= settings.transient_steps:
                _, spec = diagnostics.enstrophy_spectrum(grid, w)
                out.spectrum_sum[idx] += spec[..., :k_size]
                out.energy_sum[idx] += e[idx]
                out.enstrophy_sum[idx] += z[idx]
                out.n_snapshots[idx] += 1
                x = grid.to_physical(w) / reference.sigma_omega
                for j, i in enumerate(idx):
                    out.pdf_counts[i] += np.histogram(x[j], bins=edges)[0]
                out.pdf_total[idx] += n * n
                out.tail_counts[idx] += np.sum(np.abs(x) > settings.tail_threshold, axis=(-2, -1))
        out.series_time.append(step * dt)
        out.series_energy.append(e)
        out.series_enstrophy.append(z)

    record(0)
    for window in range(settings.episode_steps // spa):
        if not alive.any():
            break
        before = batch.state.steps.copy()
        result = act(batch, alive.copy())
        done = batch.state.steps - before
        out.steps[alive] += done[alive]
        out.time[alive] += done[alive] * dt
        out.episode_return[alive] += np.asarray(result["reward"], dtype=np.float64)[alive]
        step = (window + 1) * spa
        blew = alive & np.asarray(result["blowup"], dtype=bool)
        ok = alive & ~blew
        if step >= settings.transient_steps:  # the same statistics window as the snapshots above
            out.spectrum_error_sum[ok] += batch.spectrum_error[ok]
            out.nu_e_sum[ok] += batch.nu_e[ok].mean(axis=(-2, -1))
            out.n_windows[ok] += 1
        out.blowup |= blew
        out.status = np.where(blew, np.asarray(result["status"]), out.status)
        alive &= ~blew
        if step % settings.record_every == 0:
            record(step)
    out.final_omega = grid.to_physical(batch.state.omega_hat)
    out.wall_time = time.perf_counter() - start
    return out


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------
def pdf_density(counts: np.ndarray, total: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``counts / (total * bin width)`` (the PDF of omega/sigma; NaN rows where ``total`` is 0)."""
    width = np.diff(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / (np.asarray(total, dtype=np.float64)[..., None] * width)


def pdf_tail_l1(density: np.ndarray, reference: ReferenceStatistics, tail_range: tuple[float, float]) -> np.ndarray:
    """Mean ``|log p - log p_FDNS|`` over the bins with ``tail_range[0] <= |centre| <= tail_range[1]``.

    Bins where the FDNS PDF is zero are skipped (no information); a bin where the LES PDF is
    zero but the FDNS one is not counts as :data:`LOG_FLOOR_GAP` (a run whose PDF has no tail at
    all must not look perfect). NaN rows (no samples) give NaN.
    """
    centres = 0.5 * (reference.pdf_edges[1:] + reference.pdf_edges[:-1])
    band = (np.abs(centres) >= tail_range[0]) & (np.abs(centres) <= tail_range[1]) & (reference.pdf_density > 0)
    if not band.any():
        raise ValueError(f"the reference PDF has no positive bin with |omega|/sigma in {tail_range}")
    p_ref = np.log(reference.pdf_density[band])
    p = np.asarray(density)[..., band]
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(p > 0, np.abs(np.log(np.where(p > 0, p, 1.0)) - p_ref), LOG_FLOOR_GAP)
    gap = np.where(np.isnan(p), np.nan, gap)
    return np.mean(gap, axis=-1)


def episode_metrics(run: LongRun, reference: ReferenceStatistics, settings: LongRunSettings) -> list[dict[str, float]]:
    """One final-info dict of :data:`METRICS` per field of ``run``."""
    snaps = run.n_snapshots.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_spec = run.spectrum_sum / snaps[:, None]
        err = run.spectrum_error_sum / run.n_windows
        ks = slice(1, reference.k_cut + 1)
        dns = reference.enstrophy_spectrum[ks]
        l2 = np.linalg.norm(mean_spec[:, ks] - dns, axis=1) / np.linalg.norm(dns)
        density = pdf_density(run.pdf_counts, run.pdf_total, reference.pdf_edges)
        tail_l1 = pdf_tail_l1(density, reference, settings.tail_range)
        p_ref = reference.tail_probability(settings.tail_threshold)
        ratio = (run.tail_counts / run.pdf_total) / p_ref
        log_ratio = np.abs(np.log(ratio))
        log_ratio = np.where(ratio == 0, LOG_FLOOR_GAP if p_ref > 0 else np.nan, log_ratio)
    rows = []
    for i in range(run.steps.size):
        none = snaps[i] == 0
        rows.append({
            "spectrum_error": float("nan") if run.n_windows[i] == 0 else float(err[i]),
            "spectrum_l2": float("nan") if none else float(l2[i]),
            "pdf_tail_l1": float("nan") if none else float(tail_l1[i]),
            "tail_ratio_3sigma": float("nan") if none else float(ratio[i]),
            "tail_log_ratio_3sigma": float("nan") if none else float(log_ratio[i]),
            "mean_energy": float("nan") if none else float(run.energy_sum[i] / snaps[i]),
            "mean_enstrophy": float("nan") if none else float(run.enstrophy_sum[i] / snaps[i]),
            "mean_nu_e": float("nan") if run.n_windows[i] == 0 else float(run.nu_e_sum[i] / run.n_windows[i]),
            "blowup": float(run.blowup[i]),
            "steps_survived": float(run.steps[i]),
            "time_survived": float(run.time[i]),
            "seconds_per_time_unit": float(run.wall_time / run.steps.size / run.time[i]) if run.time[i] > 0 else float("nan"),
        })  # fmt: skip
    return rows


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean and the half-width of its Student-t ``confidence`` interval over the finite values; and their count."""
    from scipy import stats

    x = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), 0
    if x.size == 1:
        return float(x[0]), float("nan"), 1
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half), int(x.size)


# ---------------------------------------------------------------------------------------------
# Tables and figures
# ---------------------------------------------------------------------------------------------
#: Metrics of the printed table: (key, header, format).
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("spectrum_error", "spectrum err", "{:.3g}"),
    ("spectrum_l2", "spec. L2 rel", "{:.3g}"),
    ("pdf_tail_l1", "PDF tail L1", "{:.3g}"),
    ("tail_ratio_3sigma", "P>3s ratio", "{:.3g}"),
    ("mean_enstrophy", "mean Z", "{:.4g}"),
    ("mean_energy", "mean E", "{:.4g}"),
    ("mean_nu_e", "mean nu_e", "{:.3g}"),
)


def summarise_runs(records_by_policy: Mapping[str, Sequence[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per policy: ``{metric: {"mean", "ci95", "n"}}`` plus ``"episodes"`` and ``"blowup_fraction"``."""
    out: dict[str, dict[str, Any]] = {}
    for policy, rows in records_by_policy.items():
        entry: dict[str, Any] = {"episodes": len(rows)}
        for key in METRICS:
            mean, half, n = mean_ci([r[key] for r in rows])
            entry[key] = {"mean": mean, "ci95": half, "n": n}
        entry["blowup_fraction"] = float(np.mean([r["blowup"] for r in rows])) if rows else float("nan")
        out[policy] = entry
    return out


def format_summary_table(summary: Mapping[str, Mapping[str, Any]], steps: int) -> str:
    """Fixed-width table: mean +- 95% CI of the main metrics, blow-ups, per policy."""
    def cell(entry: Mapping[str, Any], key: str, fmt: str) -> str:
        m, h = entry[key]["mean"], entry[key]["ci95"]
        if not np.isfinite(m):
            return "n/a"
        return fmt.format(m) + ("" if not np.isfinite(h) else " +- " + fmt.format(h))

    width = 22
    header = f"{'policy':<22} " + " ".join(f"{h:>{width}}" for _, h, _ in TABLE_COLUMNS) + f" {'blow-ups':>9}"
    lines = [f"A-posteriori LES runs of {steps} solver steps from held-out filtered-DNS fields "
             "(mean +- 95% t-interval over fields; lower errors are better, P>3s ratio: 1 is best)",
             header, "-" * len(header)]  # fmt: skip
    for policy, entry in summary.items():
        row = f"{policy:<22} " + " ".join(f"{cell(entry, k, f):>{width}}" for k, _, f in TABLE_COLUMNS)
        lines.append(row + f" {entry['blowup_fraction'] * entry['episodes']:>5.0f}/{entry['episodes']:<3d}")
    return "\n".join(lines)


def _figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _finish_lines(fig, ax, xlabel: str, ylabel: str, title: str) -> bytes:
    """Labels, log grid and legend of a one-panel line plot (spectra, PDFs); the figure as PNG bytes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _style(i: int, policy: str, trained: str | None) -> dict[str, Any]:
    if policy == trained:
        return {"color": "tab:red", "lw": 2.4, "zorder": 5}
    colors = ("tab:gray", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:olive")
    return {"color": colors[i % len(colors)], "lw": 1.4, "ls": "--" if "dynamic" in policy else "-"}


def plot_spectra(arrays: Mapping[str, np.ndarray], trained: str | None = None) -> bytes:
    """PNG: time-mean shell enstrophy spectra of every policy (mean over fields) and the DNS, log-log."""
    fig = _figure((7, 5))
    ax = fig.add_subplot(111)
    k = arrays["k"]
    sel = (k >= 1) & (k <= int(arrays["k_cut"]))
    ax.loglog(k[sel], arrays["dns_spectrum"][sel], color="black", lw=2.8, label="DNS (filtered)", zorder=6)
    for i, policy in enumerate(arrays["policies"]):
        spec = arrays["mean_spectra"][i]
        if np.isfinite(spec[sel]).any():
            ax.loglog(k[sel], np.where(spec[sel] > 0, spec[sel], np.nan), label=str(policy), **_style(i, str(policy), trained))
    return _finish_lines(fig, ax, "wavenumber k", "enstrophy spectrum Z(k)", "Time-mean enstrophy spectra of the long LES runs")


def plot_pdfs(arrays: Mapping[str, np.ndarray], trained: str | None = None) -> bytes:
    """PNG: PDFs of omega / sigma_DNS (all fields and snapshots pooled) on a log scale, with the filtered DNS."""
    fig = _figure((7, 5))
    ax = fig.add_subplot(111)
    x = 0.5 * (arrays["pdf_edges"][1:] + arrays["pdf_edges"][:-1])
    ref = arrays["fdns_pdf"]
    ax.semilogy(x, np.where(ref > 0, ref, np.nan), color="black", lw=2.8, label="filtered DNS", zorder=6)
    for i, policy in enumerate(arrays["policies"]):
        p = arrays["pdfs"][i]
        if np.isfinite(p).any() and (p > 0).any():
            ax.semilogy(x, np.where(p > 0, p, np.nan), label=str(policy), **_style(i, str(policy), trained))
    return _finish_lines(fig, ax, r"$\omega / \sigma_{\omega,\mathrm{DNS}}$", "PDF", "Vorticity PDFs of the long LES runs")


def plot_fields(arrays: Mapping[str, np.ndarray]) -> bytes:
    """PNG: final vorticity of the first held-out field for every policy, side by side (common colour scale)."""
    fields = arrays["final_fields"]
    policies = [str(p) for p in arrays["policies"]]
    count = len(policies) + 1
    cols = min(count, 4)
    rows = math.ceil(count / cols)
    fig = _figure((3.2 * cols, 3.0 * rows + 0.3))
    vmax = 3.0 * float(arrays["sigma_omega"])
    panels = [("initial field (filtered DNS)", arrays["initial_field"])] + list(zip(policies, fields))
    for j, (title, f) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, j + 1)
        im = ax.imshow(np.asarray(f).T, origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        steps = "" if j == 0 else f" ({int(arrays['final_steps'][j - 1])} steps{', blew up' if arrays['final_blowup'][j - 1] else ''})"
        ax.set_title(title + steps, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=fig.axes, shrink=0.8, label=r"$\omega$")
    return _png(fig)


def npz_bytes(arrays: Mapping[str, Any]) -> bytes:
    """``arrays`` as ``.npz`` bytes (strings as unicode arrays; no pickles), for an atomic write."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``spectra.npz`` of an evaluation folder (or the file itself) into a dict of arrays."""
    path = Path(path)
    if path.is_dir():
        path = path / "spectra.npz"
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# ---------------------------------------------------------------------------------------------
# Held-out fields and reference statistics of a case
# ---------------------------------------------------------------------------------------------
#: Fraction of the shipped filtered-DNS snapshots (the LAST ones, in DNS time) reserved for the
#: a-posteriori evaluation; training episodes must start from the others (20 per case at
#: N <= 64: snapshots 0-11 train, 12-19 evaluate; 10 at N >= 128: 0-5 / 6-9).
HELD_OUT_FRACTION = 0.4


def held_out_indices(n_snapshots: int, fraction: float = HELD_OUT_FRACTION) -> np.ndarray:
    """Indices of the snapshots reserved for evaluation: the last ``round(fraction M)`` (at least 1, at most
    ``M - 1``) of ``M``. The paper cases hold out half (``evaluation_kwargs.held_out_fraction: 0.5``: 16 of 32)."""
    if n_snapshots < 2:
        raise ValueError(f"need at least 2 filtered-DNS snapshots to hold some out, got {n_snapshots}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"held_out_fraction must be a number in (0, 1), got {fraction!r}")
    k = min(max(1, int(round(fraction * n_snapshots))), n_snapshots - 1)
    return np.arange(n_snapshots - k, n_snapshots)


def statistics_from_reference(les_ref: Any, dns_sigma: float, k_cut: int) -> ReferenceStatistics:
    """:class:`ReferenceStatistics` from a :class:`simrl.physics.turbulence.reference.LESReference`.

    The target spectrum is the filtered DNS's (the same square truncation as the LES, ``k <= k_cut``);
    the PDF is the filtered DNS's on the reference's bins, in units of the DNS sigma.
    """
    return ReferenceStatistics(
        k=np.arange(k_cut + 1),
        enstrophy_spectrum=np.asarray(les_ref.enstrophy_spectrum, dtype=np.float64)[: k_cut + 1],
        sigma_omega=float(dns_sigma),
        pdf_edges=np.asarray(les_ref.pdf.bin_edges, dtype=np.float64),
        pdf_density=np.asarray(les_ref.pdf.density, dtype=np.float64),
        k_cut=int(k_cut),
    )


def statistics_from_targets(targets: Any, n_sigma: float = 5.0, n_bins: int = 100) -> ReferenceStatistics:
    """:class:`ReferenceStatistics` from the snapshots of an injected ``LESTargets`` (tests, synthetic references).

    Spectrum: the mean shell spectrum of the snapshots; PDF: their pooled histogram of
    ``omega / targets.sigma_omega`` on ``n_bins`` bins over ``[-n_sigma, n_sigma]``.
    """
    from simrl.physics.turbulence import TurbulenceModel

    grid = TurbulenceModel(targets.params).grid
    k_cut = targets.params.k_cut
    _, spec = diagnostics.enstrophy_spectrum(grid, targets.snapshots)
    pdf = diagnostics.vorticity_pdf(grid.to_physical(targets.snapshots), sigma=targets.sigma_omega, n_sigma=n_sigma, n_bins=n_bins)
    return ReferenceStatistics(
        k=np.arange(k_cut + 1),
        enstrophy_spectrum=spec.mean(axis=0)[: k_cut + 1],
        sigma_omega=float(targets.sigma_omega),
        pdf_edges=pdf.bin_edges,
        pdf_density=pdf.density,
        k_cut=int(k_cut),
    )


# ---------------------------------------------------------------------------------------------
# The evaluator of the training script (simrl.agents.training contract)
# ---------------------------------------------------------------------------------------------
#: Keys of ``evaluation_kwargs`` read by this evaluator (the rest are environment arguments).
EVALUATOR_KEYS = (
    "transient_steps", "record_every", "baselines", "tail_range", "tail_threshold", "tuning_factors", "held_out_fraction",
)


def _multiple(value: int, of: int) -> int:
    return max(of, (int(value) // of) * of)


def _policy_arrays(runs: Sequence[LongRun], stats: ReferenceStatistics, n_records: int) -> dict[str, np.ndarray]:
    """The arrays behind the figures and the dashboard page (``spectra.npz``)."""
    def padded(series: list[np.ndarray], b: int) -> np.ndarray:
        out = np.full((b, n_records), np.nan)
        if series:
            arr = np.stack(series, axis=1)[:, :n_records]
            out[:, : arr.shape[1]] = arr
        return out

    mean_spectra, pdfs, fields, steps, blowup, ens, ene = [], [], [], [], [], [], []
    for run in runs:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_field = run.spectrum_sum / run.n_snapshots[:, None]
            mean_spectra.append(np.nanmean(per_field, axis=0) if np.isfinite(per_field).any() else np.full(stats.k.size, np.nan))
            total = run.pdf_total.sum()
            pdfs.append(pdf_density(run.pdf_counts.sum(axis=0), np.array(total), stats.pdf_edges) if total > 0
                        else np.full(stats.pdf_edges.size - 1, np.nan))  # fmt: skip
        fields.append(run.final_omega[0])
        steps.append(run.steps[0])
        blowup.append(run.blowup[0])
        b = run.steps.size
        ens.append(padded(run.series_enstrophy, b))
        ene.append(padded(run.series_energy, b))
    series_time = np.full(n_records, np.nan)
    longest = max(runs, key=lambda r: len(r.series_time))
    series_time[: len(longest.series_time)] = longest.series_time[:n_records]
    return {
        "policies": np.array([r.policy for r in runs]),
        "k": stats.k,
        "k_cut": np.array(stats.k_cut),
        "dns_spectrum": stats.enstrophy_spectrum,
        "mean_spectra": np.array(mean_spectra),
        "pdf_edges": stats.pdf_edges,
        "fdns_pdf": stats.pdf_density,
        "pdfs": np.array(pdfs),
        "sigma_omega": np.array(stats.sigma_omega),
        "final_fields": np.array(fields),
        "final_steps": np.array(steps),
        "final_blowup": np.array(blowup),
        "series_time": series_time,
        "series_enstrophy": np.array(ens),
        "series_energy": np.array(ene),
    }


def paired_differences(
    by_policy: Mapping[str, Sequence[Mapping[str, float]]],
    classical: Sequence[str],
    metrics: Sequence[str] = PAIRED_METRICS,
    blowup_fraction: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per metric: the best classical closure and every policy's paired per-field difference to it.

    ``by_policy``: the metric rows of each policy, one per held-out field in the same order. ``classical``:
    the labels eligible as the reference (those in ``by_policy``; one with any blow-up in ``blowup_fraction``
    is skipped). The reference is the one with the lowest mean; each policy gets ``{"mean", "low", "high",
    "n"}`` of ``metric(policy) - metric(reference)`` over the fields where both are finite (95 % bootstrap
    percentile interval, :func:`simrl.evaluation.aggregate.interval_estimates`; negative = better).
    """
    from simrl.evaluation.aggregate import interval_estimates

    blowup_fraction = blowup_fraction or {}
    out: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        means = {}
        for label in classical:
            if label in by_policy and blowup_fraction.get(label, 0.0) == 0.0:
                v = np.array([r[metric] for r in by_policy[label]], dtype=np.float64)
                if np.isfinite(v).all():
                    means[label] = float(v.mean())
        if not means:
            continue
        best = min(means, key=means.get)
        ref = np.array([r[metric] for r in by_policy[best]], dtype=np.float64)
        entry: dict[str, Any] = {"reference": best}
        for label, rows in by_policy.items():
            d = np.array([r[metric] for r in rows], dtype=np.float64) - ref
            d = d[np.isfinite(d)]
            if d.size == 0:
                entry[label] = {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
            elif d.size == 1 or np.all(d == d[0]):
                entry[label] = {"mean": float(d[0]), "low": float(d[0]), "high": float(d[0]), "n": int(d.size)}
            else:
                est = interval_estimates(d, reps=2000, rng=0, metrics=("mean",))["mean"]
                entry[label] = {"mean": est.point, "low": est.low, "high": est.high, "n": int(d.size)}
        out[metric] = entry
    return out


def target_comparison(summary: Mapping[str, Mapping[str, Any]], trained: str, paired: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's target: is ``trained`` stable on every field and better than the best classical closure on the
    spectrum error and the PDF-tail error, with the paired 95 % interval entirely below zero?"""
    me = summary[trained]
    out: dict[str, Any] = {"policy": trained, "stable": me["blowup_fraction"] == 0.0}
    met = out["stable"]
    for key in ("spectrum_error", "pdf_tail_l1"):
        entry = paired.get(key, {})
        diff = entry.get(trained, {})
        ref_mean = abs(summary.get(entry.get("reference"), {}).get(key, {}).get("mean", 0.0))
        beats = bool(np.isfinite(diff.get("high", np.nan)) and diff["high"] < -PAIRED_TOLERANCE * ref_mean)
        out[f"best_classical_{key}"] = entry.get("reference")
        out[f"beats_best_classical_{key}"] = beats
        met = met and beats
    out["target_met"] = bool(met)
    return out


def dns_seconds_per_time_unit(params: Any, steps: int = 4) -> float:
    """Wall seconds per unit of model time of the NumPy DNS solver at ``params`` (one field, this process's
    FFT library and threads), timed over ``steps`` steps after one warm-up step from a random field.
    The cost reference of the LES runs, measured in the same process so that the ratio survives a noisy machine."""
    from simrl.physics.turbulence import TurbulenceModel
    from simrl.physics.turbulence.initial_conditions import random_vorticity

    model = TurbulenceModel(params)
    state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0), batch_size=1, rms=1.0))
    model.advance(state, 1)
    start = time.perf_counter()
    model.advance(state, steps)
    seconds = (time.perf_counter() - start) / steps / params.dt
    model.close()
    return float(seconds)


def tune_static_coefficient(
    kind: str,
    settings: Any,
    reference: Any,
    stats: ReferenceStatistics,
    training_indices: Sequence[int],
    long: LongRunSettings,
    factors: Sequence[float] = TUNING_FACTORS,
) -> dict[str, Any]:
    """1-D search of the static ``kind`` ("smagorinsky" | "leith") closure's coefficient on training fields.

    Every candidate ``c = factor * STATIC_COEFFICIENTS[kind]`` runs from every field of ``training_indices``
    for ``long.episode_steps`` steps (all candidates and fields in one batch: a uniform coefficient through
    the env's own core, which is the static closure with scale ``settings.scale``); the score is the mean
    ``spectrum_error`` over the fields (the objective the evaluation reports), infinite when any run blew
    up. A best point at the edge of the grid extends it by factors of 2 (at most
    :data:`MAX_TUNING_EXTENSIONS` times); the best point is then refined once by ``2^(+-1/2)``. Returns ``{"kind", "coefficient", "factor",
    "grid": [{"coefficient", "score", "blowups"}, ...], "training_indices"}``.
    """
    import dataclasses

    from simrl.envs.turbulence_core import TurbulenceBatch
    from simrl.physics.turbulence.closures import STATIC_COEFFICIENTS

    base = STATIC_COEFFICIENTS[kind]
    fields = [int(i) for i in training_indices]
    tried: dict[float, dict[str, Any]] = {}

    def score(candidates: Sequence[float]) -> None:
        cands = [float(c) for c in candidates if float(c) not in tried]
        if not cands:
            return
        tuning = dataclasses.replace(settings, action=kind, coefficient_range=(0.0, max(cands)),
                                     normalized_actions=False, augment=False)  # fmt: skip
        batch = TurbulenceBatch(tuning, len(cands) * len(fields), reference)
        coefficient = np.repeat(np.array(cands), len(fields))

        def act(b: Any, active: np.ndarray) -> dict:
            return b.step(np.repeat(coefficient[:, None], b.n_agents, axis=1), active)

        run = run_long(batch, act, fields * len(cands), long, stats, policy=f"tuning {kind}")
        batch.model.close()
        rows = episode_metrics(run, stats, long)
        for j, c in enumerate(cands):
            part = rows[j * len(fields) : (j + 1) * len(fields)]
            blowups = int(sum(r["blowup"] for r in part))
            errors = np.array([r["spectrum_error"] for r in part])
            value = float(errors.mean()) if blowups == 0 and np.isfinite(errors).all() else float("inf")
            tried[c] = {"coefficient": c, "score": value, "blowups": blowups}

    def best() -> float:
        return min(tried.values(), key=lambda r: r["score"])["coefficient"]

    score([f * base for f in factors])
    # a minimum at the edge of the grid is not a minimum: extend by factors of 2 while it stays at the edge
    for _ in range(MAX_TUNING_EXTENSIONS):
        b, coefficients = best(), sorted(tried)
        if b == coefficients[0]:
            score([b / 2])
        elif b == coefficients[-1] and np.isfinite(tried[b]["score"]):
            score([b * 2])
        else:
            break
    b = best()
    score([b * 2**-0.5, b * 2**0.5])
    grid = sorted(tried.values(), key=lambda r: r["coefficient"])
    chosen = min(grid, key=lambda r: r["score"])
    if not np.isfinite(chosen["score"]):
        raise RuntimeError(f"every static {kind} coefficient tried blew up on the training fields: {grid}")
    return {"kind": kind, "coefficient": chosen["coefficient"], "factor": chosen["coefficient"] / base,
            "score": chosen["score"], "grid": grid, "training_indices": fields}  # fmt: skip


def evaluate(model: Any | None, cfg: Mapping[str, Any], run_dir: str | Path, name: str | None, out_dir: str | Path) -> dict[str, Any]:
    """A-posteriori evaluation of ``model`` and every baseline closure (the ``evaluator`` of ``configs/env/turbulence.yaml``).

    ``cfg``: the resolved training config; the environment is ``cfg["env"]["kwargs"]`` updated with
    ``evaluation_kwargs`` (whose ``episode_steps`` is the long-run length; ``transient_steps``,
    ``record_every``, ``baselines``, ``tail_range``, ``tail_threshold`` are this evaluator's own keys,
    see :class:`LongRunSettings`). ``kwargs["reference"]`` may inject a reference (an ``LESTargets`` or a
    ``ReferenceData``; tests) instead of the shipped one. Held-out seeds ``first_seed + i`` play the
    held-out snapshots ``held_out_indices(M)[i]`` (at most that many). ``model=None``: baselines only.
    Writes ``summary.json``, ``table.txt``, ``spectra.png``, ``pdf.png``, ``fields.png``, ``spectra.npz`` and
    ``episodes.parquet`` (last) into ``out_dir``; returns ``{"table", "out_dir", "objective", "summary",
    "comparison"}`` with ``objective`` = the trained policy's mean ``spectrum_error`` (NaN without a model).
    """
    from simrl.agents.training import run_identity
    from simrl.envs.turbulence_core import LESTargets, TurbulenceBatch, TurbulenceSettings
    from simrl.evaluation.report import write_evaluation
    from simrl.evaluation.rollout import EpisodeRecord
    from simrl.physics.turbulence.closures import make_closure

    env_cfg = cfg["env"]
    kwargs = {**dict(env_cfg.get("kwargs") or {}), **dict(env_cfg.get("evaluation_kwargs") or {})}
    own = {k: kwargs.pop(k) for k in EVALUATOR_KEYS if k in kwargs}
    reference = kwargs.pop("reference", None)
    training_pool = kwargs.pop("snapshot_indices", None)  # the evaluation uses the held-out snapshots
    kwargs["augment"] = False
    settings = TurbulenceSettings(**kwargs)
    spa = settings.steps_per_action
    steps = settings.episode_steps
    long = LongRunSettings(
        episode_steps=steps,
        steps_per_action=spa,
        record_every=_multiple(own.get("record_every", steps // 100), spa),
        transient_steps=int(own.get("transient_steps", _multiple(steps // 10, spa))),
        tail_range=tuple(own.get("tail_range", (2.0, 5.0))),  # type: ignore[arg-type]
        tail_threshold=float(own.get("tail_threshold", 3.0)),
    )
    baselines = list(own.get("baselines", BASELINES))
    for base in baselines:
        if base not in BASELINE_LABELS:
            raise ValueError(f"unknown baseline closure {base!r}; accepted: {list(BASELINES)}")

    # Reference statistics and the held-out fields.
    if reference is None:
        from simrl.physics.turbulence.reference import load_reference

        data = load_reference(settings.case, n_les=settings.n_les)
        batch = TurbulenceBatch(settings, 1, data)
        stats = statistics_from_reference(data.at(settings.n_les), data.sigma_omega, batch.k_cut)
        reference = data
    elif isinstance(reference, LESTargets):
        batch = TurbulenceBatch(settings, 1, reference)
        stats = statistics_from_targets(reference)
    else:
        batch = TurbulenceBatch(settings, 1, reference)
        stats = statistics_from_reference(reference.at(settings.n_les), reference.sigma_omega, batch.k_cut)
    ev = cfg["evaluation"]
    first = int(ev["first_seed"])
    seeds = list(range(first, first + int(ev["n_seeds"])))
    n_snap = batch.targets.snapshots.shape[0]
    held = held_out_indices(n_snap, float(own.get("held_out_fraction", HELD_OUT_FRACTION)))
    seeds = [s for s in seeds if s - first < held.size]
    if len(seeds) < int(ev["n_seeds"]):
        log.warning("evaluating %d held-out fields: the reference holds out the last %d of its %d snapshots "
                    "(%d requested seeds dropped, never recycled: the runs are deterministic)",
                    len(seeds), held.size, n_snap, int(ev["n_seeds"]) - len(seeds))  # fmt: skip
    if model is not None:
        pool = set(range(n_snap)) if training_pool is None else {int(i) for i in training_pool}
        leaked = sorted(pool & {int(i) for i in held})
        if leaked:
            raise ValueError(
                f"the training snapshots (env.kwargs.snapshot_indices={training_pool!r}) include the held-out "
                f"evaluation snapshots {leaked}: train on indices outside held_out_indices({n_snap}) = "
                f"{held.tolist()}, e.g. snapshot_indices={sorted(set(range(n_snap)) - set(held.tolist()))}"
            )
    snapshot_indices = [int(held[s - first]) for s in seeds]
    training_fields = sorted(set(range(n_snap)) - set(held.tolist())) if training_pool is None else [int(i) for i in training_pool]
    tuning: dict[str, Any] = {}
    for base in baselines:
        if base.startswith("tuned_"):
            kind = base.removeprefix("tuned_")
            factors = tuple(float(f) for f in own.get("tuning_factors", TUNING_FACTORS))
            tuning[kind] = _cached_tuning(Path(run_dir), kind, settings, reference, stats, training_fields, long, factors)
            log.info("tuned static %s on %d training fields: c = %.4g (%.3g x the literature value), spectrum error %.4g",
                     kind, len(training_fields), tuning[kind]["coefficient"], tuning[kind]["factor"], tuning[kind]["score"])  # fmt: skip
    batch = TurbulenceBatch(settings, len(seeds), reference)

    policies: list[tuple[str, WindowFunction]] = []
    trained = None
    if model is not None:
        trained = name or cfg["agent"]["name"]
        if trained in BASELINE_LABELS.values():
            raise ValueError(f"the trained policy's name {trained!r} is also a baseline's name")
        policies.append((trained, policy_window(model)))
    # The baselines use the policy's eddy-viscosity scale (local, or the paper's domain-global one).
    for b in baselines:
        if b.startswith("tuned_"):
            closure = make_closure(b.removeprefix("tuned_"), coefficient=tuning[b.removeprefix("tuned_")]["coefficient"],
                                   scale=settings.scale)  # fmt: skip
        else:
            closure = make_closure(b, scale=settings.scale)
        policies.append((BASELINE_LABELS[b], closure_window(closure)))
    if not policies:
        raise ValueError("nothing to evaluate: no model and no baselines")

    runs: list[LongRun] = []
    records: list[Any] = []
    by_policy: dict[str, list[dict[str, float]]] = {}
    for label, act in policies:
        run = run_long(batch, act, snapshot_indices, long, stats, policy=label)
        rows = episode_metrics(run, stats, long)
        runs.append(run)
        by_policy[label] = rows
        for i, seed in enumerate(seeds):
            records.append(EpisodeRecord(label, seed, float(run.episode_return[i]), int(run.steps[i] // spa),
                                         False, True, {**rows[i], "wall_time": run.wall_time / len(seeds)}))  # fmt: skip
        log.info("evaluated %-20s on %d held-out fields x %d steps in %.1f s (%d blew up)",
                 label, len(seeds), steps, run.wall_time, int(run.blowup.sum()))  # fmt: skip
    batch.model.close()

    summary = summarise_runs(by_policy)
    classical = [BASELINE_LABELS[b] for b in baselines if b != "none"]
    paired = paired_differences(by_policy, classical, blowup_fraction={k: v["blowup_fraction"] for k, v in summary.items()})
    comparison = target_comparison(summary, trained, paired) if trained is not None else {}
    cost = _cost_summary(reference, summary)
    table = format_summary_table(summary, steps)
    table += "\n\n" + format_paired_table(paired, list(by_policy))
    if tuning:
        table += "\n\nTuned static coefficients (1-D search on %d training fields, mean spectrum error): %s" % (
            len(training_fields), ", ".join(f"{k} c = {v['coefficient']:.4g} ({v['factor']:.3g} x literature)"
                                            for k, v in tuning.items()))  # fmt: skip
    if cost.get("dns_seconds_per_time_unit"):
        table += "\nCost (wall time per simulated time unit, LES field / DNS): " + ", ".join(
            f"{p} {c:.3g}" for p, c in cost["ratio"].items())
    if comparison:
        table += (f"\n\n{trained}: stable on every field and better than the best classical closure on spectrum error "
                  f"and PDF-tail error (paired 95 % intervals below 0): {comparison['target_met']}")  # fmt: skip
    n_records = steps // long.record_every + 1
    arrays = _policy_arrays(runs, stats, n_records)
    arrays["initial_field"] = batch.grid.to_physical(batch.targets.snapshots[snapshot_indices[0]])
    arrays["seeds"] = np.array(seeds)
    arrays["snapshot_indices"] = np.array(snapshot_indices)
    payload = {
        "run": asdict(run_identity(cfg, run_dir)),
        "policies": summary,
        "comparison": comparison,
        "paired": paired,
        "tuning": tuning,
        "cost": cost,
        "objective": float(summary[trained]["spectrum_error"]["mean"]) if trained else float("nan"),
        "seeds": seeds,
        "held_out_snapshots": snapshot_indices,
        "snapshots_available": n_snap,
        "settings": {**asdict(long), "env": {k: v for k, v in asdict(settings).items()}, "baselines": baselines},
        "reasons": {r.policy: [int(s) for s in r.status] for r in runs},
    }
    files: dict[str, str | bytes] = {
        "summary.json": json.dumps(payload, indent=2, default=_json_default),
        "table.txt": table + "\n",
        "spectra.npz": npz_bytes(arrays),
        "spectra.png": plot_spectra(arrays, trained),
        "pdf.png": plot_pdfs(arrays, trained),
        "fields.png": plot_fields(arrays),
    }
    write_evaluation(out_dir, records, run_identity(cfg, run_dir), baselines=[BASELINE_LABELS[b] for b in baselines], files=files)
    return {"table": table, "out_dir": str(out_dir), "objective": payload["objective"], "summary": summary,
            "comparison": comparison}  # fmt: skip


def format_paired_table(paired: Mapping[str, Mapping[str, Any]], policies: Sequence[str]) -> str:
    """Per policy and paired metric: mean per-field difference to the best classical closure [95 % interval]."""
    metrics = [m for m in PAIRED_METRICS if m in paired]
    if not metrics:
        return "Paired differences: none (no classical closure without blow-ups)"
    width = 30
    lines = ["Paired per-field difference to the best classical closure (negative = better; 95 % bootstrap interval); "
             "reference: " + ", ".join(f"{PAIRED_LABELS[m]}: {paired[m]['reference']}" for m in metrics),
             f"{'policy':<22} " + " ".join(f"{PAIRED_LABELS[m]:>{width}}" for m in metrics)]
    lines.append("-" * len(lines[-1]))
    for p in policies:
        cells = []
        for m in metrics:
            d = paired[m].get(p, {})
            cells.append("n/a" if not np.isfinite(d.get("mean", np.nan))
                         else f"{d['mean']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]")  # fmt: skip
        lines.append(f"{p:<22} " + " ".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def _cost_summary(reference: Any, summary: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """LES wall seconds per simulated time unit per field, and their ratio to the DNS's (timed here)."""
    les = {p: v["seconds_per_time_unit"]["mean"] for p, v in summary.items()}
    params = getattr(reference, "turbulence_parameters", None)
    if params is None:  # an injected LESTargets: no DNS to compare with
        return {"les_seconds_per_time_unit": les}
    dns = dns_seconds_per_time_unit(params)
    return {"les_seconds_per_time_unit": les, "dns_seconds_per_time_unit": dns,
            "dns_grid": int(params.n), "ratio": {p: v / dns for p, v in les.items()}}  # fmt: skip


#: Settings the search does not depend on (it plays uniform coefficients of each kind over its own range).
TUNING_INDEPENDENT = ("action", "coefficient_range", "normalized_actions", "backscatter")


def tuning_key(kind: str, settings: Any, reference: Any, fields: Sequence[int], long: LongRunSettings,
               factors: Sequence[float]) -> str:
    """The cache key of :func:`tune_static_coefficient`: everything its result depends on, nothing else (so the
    same search serves policies with other action ranges)."""
    reference_id = [str(getattr(reference, "case", "")), str(getattr(reference, "manifest", {}).get("sha256", id(reference)))]
    env = {k: v for k, v in asdict(settings).items() if k not in TUNING_INDEPENDENT}
    return json.dumps({"kind": kind, "settings": env, "fields": list(fields), "long": asdict(long),
                       "factors": list(factors), "reference": reference_id}, sort_keys=True, default=_json_default)  # fmt: skip


def _cached_tuning(run_dir: Path, kind: str, settings: Any, reference: Any, stats: ReferenceStatistics,
                   fields: Sequence[int], long: LongRunSettings, factors: Sequence[float]) -> dict[str, Any]:
    """:func:`tune_static_coefficient`, from a cache when one holds the same search.

    The search depends only on the environment settings, the training fields, the run settings, the grid and
    the reference file (its SHA-256), all of which make its key. It is written to ``<run_dir>/closure_tuning.json``
    (the run's record) and to ``closure_tuning_cache.json`` in the run's parent folder, which the sibling runs
    of a seed sweep share (a 16-field search at 64^2 costs several minutes; every run would repeat it).
    """
    from simrl.atomic_io import atomic_write_bytes

    key = tuning_key(kind, settings, reference, fields, long, factors)
    own, shared = run_dir / "closure_tuning.json", run_dir.parent / "closure_tuning_cache.json"

    def read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    result = None
    for path in (own, shared):
        entry = read(path).get(kind if path == own else hashlib.sha256(key.encode()).hexdigest())
        if isinstance(entry, dict) and entry.get("key") == key and isinstance(entry.get("result"), dict):
            result = entry["result"]
            break
    if result is None:
        result = tune_static_coefficient(kind, settings, reference, stats, fields, long, factors)
    if run_dir.is_dir():
        for path, name in ((own, kind), (shared, hashlib.sha256(key.encode()).hexdigest())):
            data = read(path)
            data[name] = {"key": key, "result": result}
            atomic_write_bytes(path, (json.dumps(data, indent=2, default=_json_default) + "\n").encode())
    return result


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")
