"""``simrl/PredatorPrey-v0``: steer the sheep-wolves-grass agent-based model to a target by culling."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

from simrl.envs.digital_twin_core import (
    DATA_DIR,
    FACE_ARGUMENTS,
    Arg,
    DigitalTwinCore,
    DigitalTwinEnv,
    DigitalTwinVectorEnv,
    SnapshotSet,
    check_arguments,
    check_int,
    check_params_fit,
    insert_argument_docs,
    install_restarts,
    params_from_snapshots,
    pick_snapshot,
    read_snapshot_set,
    save_npz_atomic,
    scale_unit_actions,
    snapshot_cache_key,
    snapshot_splits,
)
from simrl.physics.ecology import (
    NETLOGO_BIGWORLD_STEADY_STATE,
    STATUS_OK,
    PredatorPreyBatch,
    PredatorPreyParams,
    PredatorPreyState,
    spawn_seeds,
)
from simrl.physics.ecology.predator_prey import _MAX_POPULATION_LIMIT, _MIN_CAPACITY, work_length
from simrl.physics.ecology.rng import seed_state

#: The shipped start states: 32 uncontrolled big-world runs at tick 1,000.
DEFAULT_SNAPSHOTS = DATA_DIR / "predator_prey_bigworld.npz"
REGENERATE = "python scripts/make_predator_prey_snapshots.py"
#: The ``"kind"`` of this environment's snapshot manifests.
SNAPSHOT_KIND = "predator_prey_snapshots"
SNAPSHOT_SPLITS = ("train", "eval", "all")
_BIG_WORLD_PATCHES = 255 * 255

#: Default target as densities per patch (grass, sheep, wolves) x n_patches: the measured
#: steady state of the big world under constant culling of 1 % of the sheep and 0.5 % of the
#: wolves per tick (mean over ticks 500-2000 of 8 runs, standard errors 20 / 6 / 3; see
#: PredatorPreyEnv, "Target"): reachable by construction, with 58 % fewer wolves.
DEFAULT_TARGET_BIGWORLD = (22560.0, 4450.0, 795.0)
TREND_TICKS = 100.0  # the trend is a relative change per 100 ticks


# --------------------------------------------------------------------------------------
# Snapshot sets
# --------------------------------------------------------------------------------------


class PredatorPreySnapshotSet(SnapshotSet):
    """K stored model states (uncontrolled runs at their last tick) and their count histories."""


def _pack_states(states: Sequence[PredatorPreyState]) -> dict[str, np.ndarray]:
    """Compact arrays: grass as bits, countdowns as small ints, animals as float32 columns."""
    p = states[0].params
    cd_dtype = np.uint8 if p.grass_regrowth_time < 256 else np.int32
    out: dict[str, np.ndarray] = {
        "params": np.array(json.dumps(dataclasses.asdict(p))),
        "tick": np.array([s.tick for s in states], np.int64),
        "rng_state": np.stack([s.rng_state for s in states]).astype(np.uint64),
        "green_bits": np.stack([np.packbits(np.asarray(s.green, bool).reshape(-1)) for s in states]),
        "countdown": np.stack([np.asarray(s.countdown).reshape(-1) for s in states]).astype(cd_dtype),
    }
    for name in ("sheep", "wolves"):
        arrays = [getattr(s, name) for s in states]
        out[name] = np.concatenate(arrays, axis=1).astype(np.float32)
        out[f"{name}_offsets"] = np.concatenate([[0], np.cumsum([a.shape[1] for a in arrays])]).astype(np.int64)
    return out


def _unpack_states(arrays: dict[str, np.ndarray]) -> list[PredatorPreyState]:
    p = PredatorPreyParams(**json.loads(str(arrays["params"])))
    n_patches = p.width * p.height
    # float32 storage may round a coordinate just below the world size up to it: clip into range.
    upper = np.array([p.width, p.height, 360.0, np.inf])[:, None]
    states = []
    for k in range(arrays["tick"].shape[0]):
        animals = {}
        for name in ("sheep", "wolves"):
            o = arrays[f"{name}_offsets"]
            a = arrays[name][:, o[k]: o[k + 1]].astype(np.float64)
            animals[name] = np.minimum(a, np.nextafter(upper, 0.0))
        green = np.unpackbits(arrays["green_bits"][k], count=n_patches).astype(bool).reshape(p.height, p.width)
        states.append(PredatorPreyState(
            params=p, tick=int(arrays["tick"][k]), rng_state=arrays["rng_state"][k].astype(np.uint64),
            green=green, countdown=arrays["countdown"][k].astype(np.int32).reshape(p.height, p.width),
            sheep=animals["sheep"], wolves=animals["wolves"]))
    return states


def generate_snapshot_set(path: str | Path, params: PredatorPreyParams | None = None, count: int = 32,
                          ticks: int = 1000, seed: int = 20240318, eval_count: int | None = None,
                          parallel: bool = False) -> Path:
    """Run ``count`` independent uncontrolled models for ``ticks`` ticks and store their final states.

    Written atomically with a manifest (:func:`~simrl.envs.digital_twin_core.save_npz_atomic`).
    The last ``eval_count`` states (default a quarter, at least 1) form the "eval" split,
    the others "train". Returns the manifest path. Cost: about 0.4 s per model and 1,000
    big-world ticks on one core.
    """
    params = params or PredatorPreyParams()
    count = check_int("count", count, 2)
    ticks = check_int("ticks", ticks, 1)
    splits = snapshot_splits(count, eval_count)
    batch = PredatorPreyBatch(params, spawn_seeds(seed, count), parallel=parallel)
    history = batch.step(ticks)
    if (batch.status != STATUS_OK).any():
        raise RuntimeError("a model hit its population cap while generating snapshots")
    states = batch.snapshots()
    arrays = _pack_states(states)
    arrays["history"] = history.astype(np.int32)
    manifest = {
        "kind": SNAPSHOT_KIND,
        "params": dataclasses.asdict(params),
        "count": count,
        "ticks": ticks,
        "seed": seed,
        "splits": splits,
        "final_counts": [s.counts.tolist() for s in states],
        "mean_counts_second_half": history[:, ticks // 2:].reshape(-1, 3).mean(axis=0).tolist(),
        "command": f"{REGENERATE} --count {count} --ticks {ticks} --seed {seed}",
    }
    return save_npz_atomic(path, arrays, manifest)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, *stamps: Any) -> PredatorPreySnapshotSet:
    return read_snapshot_set(PredatorPreySnapshotSet, path, DEFAULT_SNAPSHOTS, REGENERATE,
                             "simrl.envs.predator_prey.generate_snapshot_set", _unpack_states, SNAPSHOT_KIND)


def load_snapshot_set(path: str | Path | None = None) -> PredatorPreySnapshotSet:
    """The snapshot set at ``path`` (default: the shipped big-world set), checksum-verified, its
    manifest validated (:func:`~simrl.envs.digital_twin_core.read_snapshot_set`), cached."""
    return _load_cached(*snapshot_cache_key(path, DEFAULT_SNAPSHOTS))


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


#: Most animals any model holds (the physics' ``max_population`` limit): the bound of the target populations.
MAX_TARGET_POPULATION = _MAX_POPULATION_LIMIT

#: The valid domain of every argument of :class:`PredatorPreyEnv` (the vector env adds
#: ``num_envs`` and ``autoreset_mode``, :data:`~simrl.envs.digital_twin_core.FACE_ARGUMENTS`).
#: The bounds keep a step's cost bounded (10,000 big-world ticks: about 4 s per model) and every
#: observation and reward finite in float32 at any reachable state (populations up to 2**28).
ARGUMENTS: dict[str, Arg] = {
    "ticks_per_action": Arg("int", 1, 10_000),
    "episode_ticks": Arg("int", 1, 10_000_000, relation="a multiple of ticks_per_action"),
    "max_removal": Arg("reals", 0.0, 1.0, size=2,
                       accepted="two per-tick removal probabilities (sheep, wolves) in [0, 1]"),
    "target": Arg("reals", 0.0, MAX_TARGET_POPULATION, size=3, optional=True,
                  accepted=f"three finite numbers (grass, sheep, wolves) >= 0, sheep and wolves <= "
                           f"{MAX_TARGET_POPULATION}", relation="grass <= n_patches"),
    "weights": Arg("reals", 0.0, 1e6, size=3),
    "effort_weight": Arg("real", 0.0, 1e6),
    "extinction_cost": Arg("real", 0.0, 1e30, optional=True),
    "reference": Arg("reals", 1e-3, 1e12, size=3, optional=True,
                     accepted="three positive numbers (G_ref, S_ref, W_ref) in [0.001, 1e+12]"),
    "params": Arg("params", relation="same world size as the snapshot set, grass_regrowth_time >= the set's "
                  "largest stored countdown, populations within max_population"),
    "snapshots": Arg("path", optional=True),
    "snapshot_split": Arg("choice", choices=SNAPSHOT_SPLITS),
    "parallel": Arg("bool"),
}


@dataclass
class PredatorPreySettings:
    """Validated arguments of :class:`PredatorPreyEnv` (see its docstring for their meaning;
    their domains are :data:`ARGUMENTS`)."""

    ticks_per_action: int = 10
    episode_ticks: int = 1000
    max_removal: tuple[float, float] = (0.05, 0.05)
    target: tuple[float, float, float] | None = None
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    effort_weight: float = 1.0
    extinction_cost: float | None = None
    reference: tuple[float, float, float] | None = None
    params: Any = None
    snapshots: str | None = None
    snapshot_split: str = "train"
    parallel: bool = False

    def __post_init__(self) -> None:
        check_arguments(self, ARGUMENTS)
        if self.episode_ticks % self.ticks_per_action:
            raise ValueError(f"episode_ticks ({self.episode_ticks}) must be a multiple of ticks_per_action "
                             f"({self.ticks_per_action})")
        self.snapshot_set = load_snapshot_set(self.snapshots)
        base = self.snapshot_set.params
        self.params = params_from_snapshots(self.params, base)
        if (self.params.width, self.params.height) != (base.width, base.height):
            raise ValueError(f"params world {self.params.width}x{self.params.height} differs from the snapshot set's "
                             f"{base.width}x{base.height}; generate a matching set: {REGENERATE} --width W --height H --out FILE")
        self._check_regrowth(base)
        check_params_fit(self.params, self.snapshot_set, f"generate a matching set: {REGENERATE} --out FILE ... "
                         "(see generate_snapshot_set) and pass snapshots=FILE")
        self.n_patches = self.params.n_patches
        area = self.n_patches / _BIG_WORLD_PATCHES
        if self.reference is None:
            # The steady state is extensive: the big world's densities times the number of patches.
            self.reference = ARGUMENTS["reference"].check(
                "reference", tuple(v * area for v in NETLOGO_BIGWORLD_STEADY_STATE))
        if self.target is None:
            self.target = tuple(v * area for v in DEFAULT_TARGET_BIGWORLD)  # type: ignore[assignment]
        if self.target[0] > self.n_patches:
            raise ValueError(f"target grass {self.target[0]} exceeds the number of patches {self.n_patches}: "
                             "accepted targets are (grass, sheep, wolves) with 0 <= grass <= n_patches, sheep, wolves >= 0")
        if self.extinction_cost is None:
            # Cost per remaining tick of the all-extinct absorbing state: grass everywhere, no animals.
            cost = float(self.tick_cost(np.array([[self.n_patches, 0.0, 0.0]]), np.zeros(2))[0])
            if not math.isfinite(cost):  # not reachable within ARGUMENTS' bounds; a guard
                raise ValueError(f"the default extinction_cost (the cost of the all-extinct state) computed from "
                                 f"target {self.target}, weights {self.weights} and reference {self.reference} is "
                                 "not finite; pass smaller values or an explicit extinction_cost")
            self.extinction_cost = cost
        self.split_indices = self.snapshot_set.splits[self.snapshot_split]

    def _check_regrowth(self, base: PredatorPreyParams) -> None:
        """The stored countdowns go up to the set's regrowth time: a shorter one makes every stored
        start state invalid, so it is refused here rather than at every reset."""
        regrowth = self.params.grass_regrowth_time
        if regrowth >= base.grass_regrowth_time:
            return
        longest = max(int(np.max(s.countdown, initial=0)) for s in self.snapshot_set.states)
        if regrowth < longest:
            raise ValueError(
                f"params grass_regrowth_time={regrowth} is shorter than the regrowth countdowns stored in the snapshot "
                f"set (up to {longest}; it was made with grass_regrowth_time={base.grass_regrowth_time}), so no stored "
                f"start state is valid under it; accepted with this set: grass_regrowth_time >= {longest}. For a "
                f"shorter regrowth generate a matching set: {REGENERATE} --grass-regrowth-time {regrowth} --width "
                f"{base.width} --height {base.height} --out FILE and pass snapshots=FILE")

    @property
    def obs_scale(self) -> np.ndarray:
        """Divisors of the observed (grass, sheep, wolves): n_patches, sheep ref, wolf ref."""
        return np.array([self.n_patches, self.reference[1], self.reference[2]])

    def tick_cost(self, counts: np.ndarray, removal: np.ndarray) -> np.ndarray:
        """Per-tick cost c_t (see the env docstring) for counts (..., 3) and removal (..., 2) broadcastable."""
        ref = np.asarray(self.reference)
        dist = (np.asarray(self.weights) * ((counts - np.asarray(self.target)) / ref) ** 2).sum(axis=-1)
        return dist + self.effort_weight * self.effort(counts, removal)

    def effort(self, counts: np.ndarray, removal: np.ndarray) -> np.ndarray:
        """Expected removals per tick relative to the reference populations: p_s S/S_ref + p_w W/W_ref."""
        ref = np.asarray(self.reference)
        return removal[..., 0] * counts[..., 1] / ref[1] + removal[..., 1] * counts[..., 2] / ref[2]


def _spaces(settings: PredatorPreySettings) -> tuple[spaces.Box, spaces.Box]:
    action_space = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
    observation_space = spaces.Box(-np.inf, np.inf, shape=(9,), dtype=np.float32)
    return action_space, observation_space


# --------------------------------------------------------------------------------------
# The batched core
# --------------------------------------------------------------------------------------


class PredatorPreyCore(DigitalTwinCore):
    """B sheep-wolves-grass models (one :class:`PredatorPreyBatch`) and their episode bookkeeping."""

    @staticmethod
    def bytes_per_model(settings: PredatorPreySettings) -> int:
        """Estimated bytes of one model: the grass and countdown grids, the animal buffers (room for
        twice the stored populations, as :meth:`PredatorPreyBatch.from_snapshots` allocates), the
        scratch and the per-step (ticks_per_action, 3) arrays; twice that, since a reset rebuilds
        the batch from snapshots of every row. Populations that grow during an episode grow it."""
        p = settings.params
        states = settings.snapshot_set.states
        cs = max(_MIN_CAPACITY, 4 * p.initial_sheep, 2 * max(s.sheep.shape[1] for s in states))
        cw = max(_MIN_CAPACITY, 4 * p.initial_wolves, 2 * max(s.wolves.shape[1] for s in states))
        n = p.n_patches
        return 2 * (5 * n + 32 * (cs + cw) + 4 * work_length(n, cs, cw)) + 200 * settings.ticks_per_action

    def __init__(self, settings: PredatorPreySettings, num_envs: int) -> None:
        super().__init__(settings, num_envs)
        b = self.num_envs
        self._batch: PredatorPreyBatch | None = None
        self._frozen: dict[int, PredatorPreyState] = {}
        self.counts = np.zeros((b, 3))
        self.window_start = np.zeros((b, 3))
        self.elapsed = np.zeros(b, np.int64)
        self.cost_sum = np.zeros(b)
        self.objective = np.zeros(b)
        self.removal = np.zeros((b, 2))
        self.removed = np.zeros((b, 2))
        self.total_removed = np.zeros((b, 2))
        self.effort = np.zeros(b)
        self.distance = np.zeros(b)
        self.extinct = np.zeros(b, bool)
        self.blowup = np.zeros(b, bool)
        self.snapshot = np.zeros(b, np.int64)

    # ---- reset ------------------------------------------------------------------------
    def reset_rows(self, rows, rngs, options) -> None:
        s = self.settings
        snap = s.snapshot_set
        chosen = options.get("snapshot")
        restarts: dict[int, PredatorPreyState] = {}
        for i, rng in zip(rows, rngs):
            index, state = pick_snapshot(s, rng, chosen, seed_state)
            restarts[i] = state
            self._frozen.pop(i, None)
            hist = snap.history[index]
            self.counts[i] = hist[-1]
            self.window_start[i] = hist[max(len(hist) - 1 - s.ticks_per_action, 0)]
            self.snapshot[i] = index
        if not restarts:
            return
        self._batch = install_restarts(PredatorPreyBatch, self._batch, restarts, self.num_envs, parallel=s.parallel)
        r = list(restarts)
        for arr in (self.elapsed, self.cost_sum, self.objective, self.removal, self.removed, self.total_removed,
                    self.effort, self.distance, self.extinct, self.blowup):
            arr[r] = 0

    def freeze_rows(self, rows) -> None:
        for i in rows:
            self._frozen[i] = self._batch.snapshot(i)

    # ---- step -------------------------------------------------------------------------
    def step(self, actions, active) -> dict[str, Any]:
        s = self.settings
        k = s.ticks_per_action
        p = scale_unit_actions(actions, self.num_envs, 2, np.array(s.max_removal))
        # Finished rows (DISABLED autoreset) keep their saved snapshot; their live model is culled
        # completely (probability 1 draws no random numbers), so it costs only grass regrowth.
        removal = np.where(active[:, None], p, 1.0)
        counts = self._batch.step(k, removal).astype(np.float64)  # (B, k, 3); -1 after a population cap
        status = self._batch.status
        done_ticks = (counts[:, :, 0] >= 0).sum(axis=1)
        dead = (counts[:, :, 1] == 0) | (counts[:, :, 2] == 0)
        first_dead = np.where(dead.any(axis=1), dead.argmax(axis=1), k)
        used = np.minimum(first_dead + 1, done_ticks)  # ticks scored in this window
        mask = np.arange(k)[None, :] < used[:, None]
        cost = s.tick_cost(counts, p[:, None, :])
        dist = cost - s.effort_weight * s.effort(counts, p[:, None, :])
        extinct = dead.any(axis=1) & (first_dead < done_ticks)
        blowup = (status != STATUS_OK) & ~extinct
        ended = extinct | blowup
        elapsed = self.elapsed + used
        penalty = np.where(ended, (s.episode_ticks - elapsed) * s.extinction_cost, 0.0)
        window_cost = np.where(mask, cost, 0.0).sum(axis=1) + penalty
        cost_sum = self.cost_sum + window_cost
        n_used = np.maximum(used, 1)
        expected_removed = np.where(mask[:, :, None], p[:, None, :] * counts[:, :, 1:], 0.0).sum(axis=1)

        a = active
        now = self._batch.counts.astype(np.float64)
        self.window_start[a] = self.counts[a]
        self.counts[a] = now[a]
        self.elapsed[a] = elapsed[a]
        self.cost_sum[a] = cost_sum[a]
        self.objective[a] = (cost_sum / np.where(ended, s.episode_ticks, np.maximum(elapsed, 1)))[a]
        self.removal[a] = p[a]
        self.removed[a] = expected_removed[a]
        self.total_removed[a] += expected_removed[a]
        self.effort[a] = (np.where(mask, s.effort(counts, p[:, None, :]), 0.0).sum(axis=1) / n_used)[a]
        self.distance[a] = (np.where(mask, dist, 0.0).sum(axis=1) / n_used)[a]
        self.extinct[a] = extinct[a]
        self.blowup[a] = blowup[a]
        terminated = a & extinct
        truncated = a & ~extinct & (blowup | (elapsed >= s.episode_ticks))
        reward = np.where(a, -window_cost / k, 0.0)
        return {"reward": reward, "terminated": terminated, "truncated": truncated, "info": self.batch_info()}

    # ---- observation, info, render ----------------------------------------------------
    def observations(self) -> np.ndarray:
        s = self.settings
        scale = s.obs_scale
        level = self.counts / scale
        trend = (self.counts - self.window_start) / (s.ticks_per_action * scale) * TREND_TICKS
        target = np.broadcast_to(np.asarray(s.target) / scale, level.shape)
        return np.concatenate([level, trend, target], axis=1).astype(np.float32)

    def batch_info(self) -> dict[str, np.ndarray]:
        return {
            "objective": self.objective.copy(),
            "grass": self.counts[:, 0].astype(np.int64),
            "sheep": self.counts[:, 1].astype(np.int64),
            "wolves": self.counts[:, 2].astype(np.int64),
            "p_sheep": self.removal[:, 0].copy(),
            "p_wolf": self.removal[:, 1].copy(),
            "removed_sheep": self.removed[:, 0].copy(),
            "removed_wolves": self.removed[:, 1].copy(),
            "total_removed_sheep": self.total_removed[:, 0].copy(),
            "total_removed_wolves": self.total_removed[:, 1].copy(),
            "effort": self.effort.copy(),
            "distance": self.distance.copy(),
            "extinct": self.extinct.copy(),
            "blowup": self.blowup.copy(),
            "tick": self.elapsed.copy(),
            "snapshot": self.snapshot.copy(),
        }

    def render_row(self, i: int) -> np.ndarray:
        if i in self._frozen:
            st = self._frozen[i]
            return render_grid(st.green, st.sheep, st.wolves)
        b = self._batch
        return render_grid(b.green(i), b.sheep(i), b.wolves(i))


def render_grid(green: np.ndarray, sheep: np.ndarray, wolves: np.ndarray) -> np.ndarray:
    """The world as an (height, width, 3) uint8 image: grass green, bare patches brown, sheep
    white, wolves red (drawn last); row 0 is the top (largest y, NetLogo's orientation)."""
    height, width = green.shape
    img = np.empty((height, width, 3), np.uint8)
    img[:] = (130, 90, 50)
    img[np.asarray(green, bool)] = (40, 150, 40)
    for animals, colour in ((sheep, (255, 255, 255)), (wolves, (200, 0, 0))):
        if animals.shape[1]:
            x = np.minimum(animals[0].astype(np.int64), width - 1)
            y = np.minimum(animals[1].astype(np.int64), height - 1)
            img[y, x] = colour
    return img[::-1].copy()


# --------------------------------------------------------------------------------------
# The environments
# --------------------------------------------------------------------------------------


class PredatorPreyEnv(DigitalTwinEnv):
    """Cull sheep and wolves so that the sheep-wolves-grass agent-based model settles at a target.

    After Boettcher, Fonseca & Laubenbacher, "Control of Medical Digital Twins with Artificial
    Neural Networks" (Phil. Trans. R. Soc. A 383:20240228, 2025; arXiv:2403.13851) and its
    companion Fonseca et al. (PLOS Comput Biol 2024): the model is NetLogo's Wolf Sheep Predation
    (big world: 255 x 255 torus, NetLogo-faithful Numba core
    :mod:`simrl.physics.ecology.predator_prey`); the control is the companion paper's per-tick
    removal of each animal with a fixed probability, here chosen anew by the agent every
    ``ticks_per_action`` ticks.

    ## Action space
    ``Box(0, 1, (2,), float32)``: ``a = (a_s, a_w)`` gives the per-tick removal probabilities
    ``p_s = a_s * max_removal[0]`` of every sheep and ``p_w = a_w * max_removal[1]`` of every
    wolf (default ``max_removal = (0.05, 0.05)``), held for ``ticks_per_action`` ticks (default
    10). Removal happens after the wolves move and before grass regrowth, as in the companion
    repository's ``ConSheep``/``ConWolves`` NetLogo files. Values outside [0, 1] are clipped;
    a wrong shape, NaN or inf, None, booleans, strings and complex numbers raise ``ValueError``.

    ## Observation space
    ``Box(-inf, inf, (9,), float32)``; with ``x = (grass, sheep, wolves)`` after the last tick,
    ``n = (n_patches, S_ref, W_ref)`` and ``k = ticks_per_action``:

    | index | observation | meaning |
    |---|---|---|
    | 0-2 | ``x / n`` | green patches / patches, sheep / S_ref, wolves / W_ref |
    | 3-5 | ``100 (x_t - x_{t-k}) / (k n)`` | trend: change over the last action window, per 100 ticks |
    | 6-8 | ``target / n`` | the target, normalised the same way |

    ``(G_ref, S_ref, W_ref) = reference``, by default the uncontrolled NetLogo steady state
    (24,200, 4,020, 1,910) scaled by ``n_patches / 65,025`` (the steady state is extensive).
    After a reset the trend is the snapshot run's own change over its last ``k`` ticks.

    ## Reward
    Per tick t, with the removal probabilities p = (p_s, p_w) in force and x_t the counts after
    the tick (``w = weights``, ``lambda = effort_weight``, ``x* = target``):

        c_t = sum_j w_j ((x_tj - x*_j) / ref_j)^2 + lambda (p_s S_t / S_ref + p_w W_t / W_ref)

    The second term is the effort: the expected removals per tick (the companion repository's
    "Total Control" p_s S + p_w W) relative to the reference populations. The step reward is
    ``-sum(c_t over the window) / k`` (minus the window mean). ``info["objective"]`` is the mean
    of c_t over the episode's ticks so far -- the paper's kind of steady-state objective, lower
    is better; at the end of an untruncated-early episode the return equals
    ``-(episode_ticks / k) * objective``.

    Extinction of the sheep or of the wolves at tick tau ends the episode (below); every
    remaining tick up to ``episode_ticks`` is charged ``extinction_cost`` (default: c of the
    all-extinct absorbing state, grass on every patch and no animals, without effort), in the
    terminal reward and in the objective, which is then the mean over all ``episode_ticks``.

    ## Target
    Default: (22,560, 4,450, 795) x ``n_patches / 65,025`` -- the measured steady state of the
    big world under constant removal of 1 % of the sheep and 0.5 % of the wolves per tick (mean
    of ticks 500-2,000 of 8 runs from the stored snapshots; it is reached about 100 ticks after
    the control starts). A constant-rate policy reaches it, so it is reachable; a better policy
    gets there faster and with less effort. (A steady state with *fewer sheep* than the
    uncontrolled one is not reachable by culling while wolves survive: the sheep's equilibrium
    is set by the wolves' rates (Volterra's principle); measured: removing 1 % or 2 % of the
    sheep per tick leaves about 4,000 sheep and lowers the wolves to 1,120 and 260, 3 % drives
    the wolves extinct.) Any ``target = (grass, sheep, wolves)`` with
    ``0 <= grass <= n_patches`` and non-negative populations is accepted.

    ## Starting state
    A stored uncontrolled steady state: the shipped set (``simrl/data/ecology/``, made by
    ``python scripts/make_predator_prey_snapshots.py``) holds 32 independent big-world runs at
    tick 1,000 with their count histories; states 0-23 are the ``"train"`` split, 24-31 the
    held-out ``"eval"`` split (``snapshot_split = "train" | "eval" | "all"``). ``reset(seed)``
    picks a state of the split with the environment's generator and continues it with a fresh
    random stream drawn from the same generator, so two episodes from one state differ unless
    the seed is the same. ``reset(options={"snapshot": i})`` starts from the i-th state of the
    split (``options`` is None or a dict with that key only). The file's SHA-256 is checked
    against its manifest and the manifest against the file (model kind, count, parameters,
    splits in range and disjoint); a missing, corrupt or edited set raises an error naming the
    file, what is wrong and the regeneration command.

    ## Episode end
    Terminated when the sheep or the wolves are extinct (``info["extinct"]``), with the
    penalty above. Truncated after ``episode_ticks`` ticks (default 1,000; the paper's control
    runs last a few thousand), or if a population exceeds ``params.max_population``
    (``info["blowup"] = True``, charged like an extinction).

    ## Info
    ``objective``; ``grass``, ``sheep``, ``wolves`` (counts now); ``p_sheep``, ``p_wolf``
    (removal probabilities in force); ``removed_sheep``, ``removed_wolves`` (expected removals
    in the last window, sum of p x count over its ticks; the kernel does not report realised
    removals), ``total_removed_sheep``, ``total_removed_wolves``; ``effort`` and ``distance``
    (window means of the two parts of c_t, effort unweighted); ``extinct``; ``blowup``;
    ``tick`` (ticks since reset); ``snapshot`` (index of the start state in the set).

    ## Arguments
    | argument | default | meaning |
    |---|---|---|
    | ticks_per_action | 10 | ticks each action is held |
    | episode_ticks | 1000 | episode length in ticks (a multiple of ticks_per_action) |
    | max_removal | (0.05, 0.05) | per-tick removal probability of sheep, of wolves at action 1 |
    | target | see Target | (grass, sheep, wolves) to reach |
    | weights | (1, 1, 1) | weights of the squared distances of grass, sheep, wolves |
    | effort_weight | 1.0 | lambda, weight of the effort |
    | extinction_cost | all-extinct cost | cost per tick after an extinction |
    | reference | NetLogo steady state x area | (G_ref, S_ref, W_ref) |
    | params | the snapshot set's | ``PredatorPreyParams`` or a dict of changes (same world size) |
    | snapshots | shipped big-world set | path of a set made by ``generate_snapshot_set`` |
    | snapshot_split | "train" | "train", "eval" or "all" |
    | parallel | False | Numba ``prange`` over models (vector env) |
    | render_mode | None | "rgb_array": the world, grass green, bare brown, sheep white, wolves red |

    Cost: about 0.4 ms per tick and model on one core (4 ms per default step).

    ## Example
    >>> import numpy as np, gymnasium as gym, simrl
    >>> env = gym.make("simrl/PredatorPrey-v0", episode_ticks=100)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["snapshot"] < 24
    ((9,), True)
    >>> obs, reward, terminated, truncated, info = env.step(np.array([0.2, 0.1], np.float32))
    >>> info["tick"], round(info["p_sheep"], 6), reward < 0
    (10, 0.01, True)
    """

    settings_cls = PredatorPreySettings
    core_cls = PredatorPreyCore
    make_spaces = staticmethod(_spaces)

    @property
    def model(self) -> PredatorPreyBatch:
        """The underlying batch of one model (read its ``green(0)``, ``sheep(0)``, ``wolves(0)``)."""
        return self._core._batch


class PredatorPreyVectorEnv(DigitalTwinVectorEnv):
    """``num_envs`` copies of :class:`PredatorPreyEnv` advanced by one Numba call per step.

    Same arguments as :class:`PredatorPreyEnv` plus ``num_envs`` (1 to 4,096; the batch's
    estimated memory, about 3 MB per big-world model, must fit in the machine's) and
    ``autoreset_mode`` (``SAME_STEP``, default, or ``DISABLED``); seeding, autoreset, ``final_obs``/``final_info``
    and ``reset_mask`` behave as documented in
    :class:`~simrl.envs.digital_twin_core.DigitalTwinVectorEnv`. Sub-environment i reset with
    seed s follows exactly the trajectory of a single env reset with seed s. A finished
    sub-environment in ``DISABLED`` mode keeps its final state (and frame) until reset.

    >>> import numpy as np, gymnasium as gym, simrl
    >>> envs = gym.make_vec("simrl/PredatorPrey-v0", num_envs=2, vectorization_mode="vector_entry_point")
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (2, 9)
    >>> obs, rewards, terminated, truncated, info = envs.step(np.full((2, 2), 0.5, np.float32))
    >>> info["tick"].tolist()
    [10, 10]
    """

    settings_cls = PredatorPreySettings
    core_cls = PredatorPreyCore
    single_env_cls = PredatorPreyEnv


insert_argument_docs(PredatorPreyEnv, {**ARGUMENTS, "render_mode": FACE_ARGUMENTS["render_mode"]})
