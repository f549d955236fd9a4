"""``simrl/MetabolicPathway-v0``: choose the substrate feed of an agent-based toy metabolic pathway."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
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
from simrl.physics.ecology import STATUS_OK, spawn_seeds
from simrl.physics.ecology.metabolic import (
    METABOLITES,
    N_METABOLITES,
    PUBLISHED_CONTINUOUS_STEADY_STATE,
    REACTIONS,
    SUBSTRATE_POOL,
    MetabolicBatch,
    MetabolicParams,
    MetabolicState,
)
from simrl.physics.ecology.rng import seed_state

#: The shipped start states: 32 continuous-mode steady states (feed 1.0, scale 0.1).
DEFAULT_SNAPSHOTS = DATA_DIR / "metabolic_scale0.1.npz"
REGENERATE = "python -m simrl.envs.metabolic"
#: The ``"kind"`` of this environment's snapshot manifests.
SNAPSHOT_KIND = "metabolic_snapshots"
SNAPSHOT_SPLITS = ("train", "eval", "all")
#: Products whose yield can be the objective, and the catalysis event (index into REACTIONS)
#: that forms each.
PRODUCTS = {"R": REACTIONS.index("Q->R"), "T": REACTIONS.index("P->T")}
#: Step rewards: increments of the running yield (the return is the episode's yield) or the
#: linearised (Dinkelbach) form; see the env docstring.
REWARDS = ("yield", "linearised")
HISTORY_STEPS = 1000  # metabolite counts stored per snapshot for the trend at reset


# --------------------------------------------------------------------------------------
# Snapshot sets
# --------------------------------------------------------------------------------------


class MetabolicSnapshotSet(SnapshotSet):
    """K stored continuous-mode steady states and their last metabolite-count histories."""


def _pack(states: Sequence[MetabolicState]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {
        "params": np.array(json.dumps(dataclasses.asdict(states[0].params))),
        "tick": np.array([s.tick for s in states], np.int64),
        "rng_state": np.stack([s.rng_state for s in states]).astype(np.uint64),
        "feed_carry": np.array([s.feed_carry for s in states]),
        "fed": np.array([s.fed for s in states], np.int64),
        "diluted": np.stack([s.diluted for s in states]).astype(np.int64),
        "reactions": np.stack([s.reactions for s in states]).astype(np.int64),
    }
    for xy, codes in (("molecules", "species"), ("enzymes", "enzyme_states")):
        out[xy] = np.concatenate([getattr(s, xy) for s in states], axis=1)
        out[codes] = np.concatenate([getattr(s, codes) for s in states]).astype(np.int8)
        out[f"{xy}_offsets"] = np.concatenate([[0], np.cumsum([getattr(s, xy).shape[1] for s in states])]).astype(np.int64)
    return out


def _unpack(arrays: dict[str, np.ndarray]) -> list[MetabolicState]:
    p = MetabolicParams(**json.loads(str(arrays["params"])))
    if p.mode != "continuous":
        raise ValueError(f"its states are of mode {p.mode!r}; the environment's are continuous-mode steady states")
    states = []
    for k in range(arrays["tick"].shape[0]):
        parts = {}
        for xy, codes in (("molecules", "species"), ("enzymes", "enzyme_states")):
            o = arrays[f"{xy}_offsets"]
            parts[xy] = arrays[xy][:, o[k]: o[k + 1]].astype(np.float64)
            parts[codes] = arrays[codes][o[k]: o[k + 1]].astype(np.int8)
        states.append(MetabolicState(
            params=p, tick=int(arrays["tick"][k]), rng_state=arrays["rng_state"][k].astype(np.uint64),
            feed_carry=float(arrays["feed_carry"][k]), fed=int(arrays["fed"][k]),
            diluted=arrays["diluted"][k].astype(np.int64), reactions=arrays["reactions"][k].astype(np.int64), **parts))
    return states


def generate_snapshot_set(path: str | Path, params: MetabolicParams | None = None, count: int = 32,
                          steps: int = 40_000, seed: int = 20240205, eval_count: int | None = None,
                          parallel: bool = False) -> Path:
    """Run ``count`` continuous-mode models from the script's initial state for ``steps`` steps
    (burn-in to the steady state of ``params.feed``) and store their final states atomically.

    The metabolite counts of the last ``min(steps, 1000)`` steps are stored too (the trend at
    reset). The last ``eval_count`` states (default a quarter) form the "eval" split. Returns
    the manifest path. Cost (scale 0.1): about 1.5 s per model for 40,000 steps on one core.
    """
    params = params or MetabolicParams(scale=0.1)
    if params.mode != "continuous":
        raise ValueError("snapshots are continuous-mode steady states: use MetabolicParams(mode='continuous')")
    count = check_int("count", count, 2)
    steps = check_int("steps", steps, 1)
    splits = snapshot_splits(count, eval_count)
    batch = MetabolicBatch(params, spawn_seeds(seed, count), parallel=parallel)
    tail = min(steps, HISTORY_STEPS)
    if steps > tail:
        batch.step(steps - tail)
    history = batch.run(tail, every=1)[:, :, :N_METABOLITES]
    if (batch.status != STATUS_OK).any():
        raise RuntimeError("a model hit max_molecules while generating snapshots")
    states = batch.snapshots()
    arrays = _pack(states)
    arrays["history"] = history.astype(np.int32)
    manifest = {
        "kind": SNAPSHOT_KIND,
        "params": dataclasses.asdict(params),
        "count": count,
        "steps": steps,
        "seed": seed,
        "splits": splits,
        "mean_metabolites_last_steps_full_scale": (history.reshape(-1, N_METABOLITES).mean(axis=0)
                                                   / params.effective_scale).tolist(),
        "command": f"{REGENERATE} --count {count} --steps {steps} --seed {seed} --scale {params.scale}",
    }
    return save_npz_atomic(path, arrays, manifest)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, *stamps: Any) -> MetabolicSnapshotSet:
    return read_snapshot_set(MetabolicSnapshotSet, path, DEFAULT_SNAPSHOTS, REGENERATE,
                             "simrl.envs.metabolic.generate_snapshot_set", _unpack, SNAPSHOT_KIND)


def load_snapshot_set(path: str | Path | None = None) -> MetabolicSnapshotSet:
    """The snapshot set at ``path`` (default: the shipped scale-0.1 set), checksum-verified, its
    manifest validated (:func:`~simrl.envs.digital_twin_core.read_snapshot_set`), cached."""
    return _load_cached(*snapshot_cache_key(path, DEFAULT_SNAPSHOTS))


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


#: Largest ``feed_max`` (and ``feed_min``) in molecules per step at full scale: 222 x the default
#: 4.5. A step costs about linearly in the molecules present, and the free S settle near
#: ``feed * effective_scale / dilution``: at feed 1,000 (scale 0.1) about 200,000 molecules,
#: about 0.8 s per 250-step action on one core (feed 10,000 was 5.6 s and growing).
MAX_ENV_FEED = 1000.0
#: Smallest ``feed_max``: the observations divide by it (a feed of 1e-300 made them inf/NaN).
MIN_ENV_FEED_MAX = 1e-3

#: The valid domain of every argument of :class:`MetabolicPathwayEnv` (the vector env adds
#: ``num_envs`` and ``autoreset_mode``, :data:`~simrl.envs.digital_twin_core.FACE_ARGUMENTS`).
#: ``steps_per_action`` <= 100,000 keeps a step within about 1.5 s per model at scale 0.1.
ARGUMENTS: dict[str, Arg] = {
    "steps_per_action": Arg("int", 1, 100_000),
    "episode_steps": Arg("int", 1, 10_000_000, relation="a multiple of steps_per_action"),
    "feed_max": Arg("real", MIN_ENV_FEED_MAX, MAX_ENV_FEED),
    "feed_min": Arg("real", 0.0, MAX_ENV_FEED, relation="below feed_max"),
    "product": Arg("choice", choices=tuple(PRODUCTS)),
    "reward": Arg("choice", choices=REWARDS),
    "yield_reference": Arg("real", 0.0, 1.0, low_open=True),
    "params": Arg("params", relation="continuous mode, the snapshot set's torus size, max_molecules above the "
                  "stored molecules"),
    "snapshots": Arg("path", optional=True),
    "snapshot_split": Arg("choice", choices=SNAPSHOT_SPLITS),
    "parallel": Arg("bool"),
}


@dataclass
class MetabolicSettings:
    """Validated arguments of :class:`MetabolicPathwayEnv` (see its docstring for their meaning;
    their domains are :data:`ARGUMENTS`)."""

    steps_per_action: int = 250
    episode_steps: int = 20_000
    feed_max: float = 4.5
    feed_min: float = 0.5
    product: str = "T"
    reward: str = "yield"
    yield_reference: float = 0.14
    params: Any = None
    snapshots: str | None = None
    snapshot_split: str = "train"
    parallel: bool = False

    def __post_init__(self) -> None:
        check_arguments(self, ARGUMENTS)
        if self.episode_steps % self.steps_per_action:
            raise ValueError(f"episode_steps ({self.episode_steps}) must be a multiple of steps_per_action "
                             f"({self.steps_per_action})")
        if self.feed_min >= self.feed_max:
            raise ValueError(f"feed_min ({self.feed_min}) must be below feed_max ({self.feed_max}); accepted: "
                             f"0 <= feed_min < feed_max")
        self.snapshot_set = load_snapshot_set(self.snapshots)
        base = self.snapshot_set.params
        self.params = params_from_snapshots(self.params, base)
        if self.params.mode != "continuous":
            raise ValueError("the feed is the action: params.mode must be 'continuous'; accepted: 'continuous'")
        if self.params.side != base.side:
            raise ValueError(f"params give a {self.params.side}x{self.params.side} torus (scale {self.params.scale}) but the "
                             f"snapshot set has {base.side}x{base.side} (scale {base.scale}); generate a matching set: "
                             f"{REGENERATE} --scale {self.params.scale} --out FILE")
        check_params_fit(self.params, self.snapshot_set, f"generate a matching set: {REGENERATE} --out FILE ... "
                         "(see generate_snapshot_set) and pass snapshots=FILE")
        self.split_indices = self.snapshot_set.splits[self.snapshot_split]
        self.reaction_index = PRODUCTS[self.product]

    @property
    def reference(self) -> np.ndarray:
        """Free S, P, Q, R, T of the published steady state (feed 1.0) at this model's scale."""
        return np.asarray(PUBLISHED_CONTINUOUS_STEADY_STATE) * self.params.effective_scale


def _spaces(settings: MetabolicSettings) -> tuple[spaces.Box, spaces.Box]:
    return (spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
            spaces.Box(-np.inf, np.inf, shape=(14,), dtype=np.float32))


# --------------------------------------------------------------------------------------
# The batched core
# --------------------------------------------------------------------------------------


class MetabolicCore(DigitalTwinCore):
    """B metabolic-pathway models (one :class:`MetabolicBatch`) and their episode bookkeeping."""

    @staticmethod
    def bytes_per_model(settings: MetabolicSettings) -> int:
        """Estimated bytes of one model at its largest: the molecule buffers (29 bytes per slot with
        the scratch, room for twice the molecules) hold the stored molecules plus what the largest
        feed accumulates (``feed_max * effective_scale`` per step, over the episode or the dilution
        time ``1 / dilution``, at most ``max_molecules``), the enzymes and the patch scratch; twice
        that, since a reset rebuilds the batch from snapshots of every row."""
        p = settings.params
        states = settings.snapshot_set.states
        n_mol = max(s.molecules.shape[1] for s in states)
        n_enz = max(s.enzymes.shape[1] for s in states)
        d = p.effective_dilution
        horizon = settings.episode_steps if d <= 0 else min(settings.episode_steps, 1.0 / d)
        peak = min(float(p.max_molecules), n_mol + settings.feed_max * p.effective_scale * horizon)
        cap = max(1024, 2 * int(peak))
        return 2 * (29 * cap + 33 * n_enz + 12 * p.n_patches)

    def __init__(self, settings: MetabolicSettings, num_envs: int) -> None:
        super().__init__(settings, num_envs)
        b = self.num_envs
        self._batch: MetabolicBatch | None = None
        self._frozen: dict[int, MetabolicState] = {}
        self.metabolites = np.zeros((b, N_METABOLITES))
        self.window_start = np.zeros((b, N_METABOLITES))
        self.elapsed = np.zeros(b, np.int64)
        self.fed = np.zeros(b)
        self.pool = np.zeros(b)
        self.supplied = np.ones(b)
        self.product = np.zeros(b)
        self.yield_ = np.zeros(b)
        self.window_yield = np.zeros(b)
        self.feed = np.zeros(b)
        self.blowup = np.zeros(b, bool)
        self.snapshot = np.zeros(b, np.int64)
        self._fed0 = np.zeros(b)
        self._product0 = np.zeros(b)
        self._pool0 = np.zeros(b)

    def reset_rows(self, rows, rngs, options) -> None:
        s = self.settings
        snap = s.snapshot_set
        chosen = options.get("snapshot")
        restarts: dict[int, MetabolicState] = {}
        for i, rng in zip(rows, rngs):
            index, state = pick_snapshot(s, rng, chosen, seed_state)
            restarts[i] = state
            self._frozen.pop(i, None)
            hist = snap.history[index]
            self.metabolites[i] = hist[-1]
            self.window_start[i] = hist[max(len(hist) - 1 - s.steps_per_action, 0)]
            self.snapshot[i] = index
            self.feed[i] = snap.params.feed
            self._fed0[i] = state.fed
            self._product0[i] = state.reactions[s.reaction_index]
            self._pool0[i] = self.pool[i] = state.counts @ SUBSTRATE_POOL
            self.supplied[i] = max(self._pool0[i], 1.0)
        if not restarts:
            return
        self._batch = install_restarts(MetabolicBatch, self._batch, restarts, self.num_envs, parallel=s.parallel)
        r = list(restarts)
        for arr in (self.elapsed, self.fed, self.product, self.yield_, self.window_yield, self.blowup):
            arr[r] = 0

    def freeze_rows(self, rows) -> None:
        for i in rows:
            self._frozen[i] = self._batch.snapshot(i)

    def step(self, actions, active) -> dict[str, Any]:
        s = self.settings
        k = s.steps_per_action
        feed = scale_unit_actions(actions, self.num_envs, 1, np.array([s.feed_max]), s.feed_min)[:, 0]
        # Finished rows (DISABLED autoreset) keep their saved snapshot; unfed, they are cheap.
        counts = self._batch.step(k, np.where(active, feed, 0.0))
        status = self._batch.status
        fed = self._batch.fed - self._fed0
        product = self._batch.reactions[:, s.reaction_index] - self._product0
        pool = counts @ SUBSTRATE_POOL
        # Substrate that left the pool in this window (formed a product or was diluted): >= 0.
        consumed = (fed - self.fed) + (self.pool - pool)
        d_product = product - self.product
        supplied = np.maximum(self._pool0 + fed, 1.0)
        new_yield = product / supplied
        if s.reward == "yield":
            reward = new_yield - self.yield_
        else:  # linearised: product formed minus its worth in substrate fed, per step at full scale
            reward = (d_product - s.yield_reference * (fed - self.fed)) / (k * s.params.effective_scale)
        reward = np.where(active, reward, 0.0)
        blowup = status != STATUS_OK
        elapsed = self.elapsed + k

        a = active
        self.window_start[a] = self.metabolites[a]
        self.metabolites[a] = counts[a, :N_METABOLITES]
        self.elapsed[a] = elapsed[a]
        self.fed[a] = fed[a]
        self.pool[a] = pool[a]
        self.supplied[a] = supplied[a]
        self.product[a] = product[a]
        self.yield_[a] = new_yield[a]
        self.window_yield[a] = (d_product / np.maximum(consumed, 1.0))[a]
        self.feed[a] = feed[a]
        self.blowup[a] = blowup[a]
        # The yield is defined over exactly episode_steps and the elapsed fraction is observed, so
        # the horizon is a terminal state of the task (Pardo et al., ICML 2018: a time limit that
        # is part of the task is not a truncation); a learner must not bootstrap past it, or the
        # substrate left in the pathway would look like future product.
        terminated = a & ~blowup & (elapsed >= s.episode_steps)
        truncated = a & blowup
        return {"reward": reward, "terminated": terminated, "truncated": truncated, "info": self.batch_info()}

    def observations(self) -> np.ndarray:
        s = self.settings
        ref = s.reference
        level = self.metabolites / ref
        trend = (self.metabolites - self.window_start) / ref
        extra = np.stack([
            self.yield_ * 5.0,
            self.fed / (s.feed_max * s.params.effective_scale * s.episode_steps),
            self.elapsed / s.episode_steps,
            self.feed / s.feed_max,
        ], axis=1)
        return np.concatenate([level, trend, extra], axis=1).astype(np.float32)

    def batch_info(self) -> dict[str, np.ndarray]:
        info = {
            "objective": -self.yield_,
            "yield": self.yield_.copy(),
            "window_yield": self.window_yield.copy(),
            "feed": self.feed.copy(),
            "fed": self.fed.copy(),
            "supplied": self.supplied.copy(),
            "pool": self.pool.copy(),
            "product": self.product.copy(),
        }
        for j, name in enumerate(METABOLITES):
            info[name] = self.metabolites[:, j].astype(np.int64)
        info.update({"blowup": self.blowup.copy(), "step": self.elapsed.copy(), "snapshot": self.snapshot.copy()})
        return info

    def render_row(self, i: int) -> np.ndarray:
        st = self._frozen[i] if i in self._frozen else self._batch.snapshot(i)
        return render_molecules(st, self.settings.params.side)


#: Colours of the free metabolites S, P, Q, R, T and of the enzyme units (any state).
COLOURS = np.array([(120, 120, 120), (60, 110, 255), (0, 200, 200), (230, 40, 40), (255, 210, 0)], np.uint8)
ENZYME_COLOUR = (255, 255, 255)


def render_molecules(state: MetabolicState, side: int, size: int = 256) -> np.ndarray:
    """A molecule map (H, W, 3) uint8: the torus drawn at ``size // side`` pixels per patch,
    free S grey, P blue, Q cyan, R red, T yellow, enzymes (free or complexed) white, 2x2 px;
    row 0 is the top (largest y)."""
    f = max(1, size // side)
    n = side * f
    img = np.zeros((n, n, 3), np.uint8)
    img[:] = (15, 15, 30)
    for xy, colour, r in ((state.molecules, COLOURS[np.asarray(state.species, np.int64)], 1),
                          (state.enzymes, np.array(ENZYME_COLOUR, np.uint8), 2)):
        if xy.shape[1] == 0:
            continue
        px = np.minimum((xy[0] * f).astype(np.int64), n - 1)
        py = np.minimum((xy[1] * f).astype(np.int64), n - 1)
        for dx in range(r):
            for dy in range(r):
                img[np.minimum(py + dy, n - 1), np.minimum(px + dx, n - 1)] = colour
    return img[::-1].copy()


# --------------------------------------------------------------------------------------
# The environments
# --------------------------------------------------------------------------------------


class MetabolicPathwayEnv(DigitalTwinEnv):
    """Choose the substrate feed of the agent-based toy metabolic pathway to maximise a product yield.

    After Boettcher, Fonseca & Laubenbacher (Phil. Trans. R. Soc. A 383:20240228, 2025;
    arXiv:2403.13851), whose second objective J2 is a ratio, and the companion Fonseca et al.
    (PLOS Comput Biol 2024), whose off-lattice pathway S -A-> P -E-> Q -I-> R, P -O-> T with
    feedback (R inhibits A and I, activates O; Q inhibits E; T inhibits O) is simulated in
    continuous mode (S fed, every free metabolite diluted with probability 0.0005 per step) by
    the Numba core :mod:`simrl.physics.ecology.metabolic`.

    ## Action space
    ``Box(0, 1, (1,), float32)``: the S feed ``feed_min + a * (feed_max - feed_min)`` in
    molecules per step of the full-scale model (defaults 0.5 and 4.5, so action 0.25 is a feed
    of 1.5; the published runs use 0.2 and 1.0), held for
    ``steps_per_action`` steps (default 250). The core multiplies it by the model's
    ``effective_scale`` and carries fractional molecules over. Values outside [0, 1] are
    clipped; a wrong shape, NaN or inf, None, booleans, strings and complex numbers raise
    ``ValueError``.
    ``feed_max`` is at most 1,000 (:data:`MAX_ENV_FEED`: the cost of a step grows with the
    molecules the feed accumulates).

    ## Observation space
    ``Box(-inf, inf, (14,), float32)``; ``ref`` = the published continuous steady state at
    feed 1.0 (S, P, Q, R, T = 1,246, 171, 177, 106, 304) x ``effective_scale``:

    | index | observation | meaning |
    |---|---|---|
    | 0-4 | ``x / ref`` | free S, P, Q, R, T now |
    | 5-9 | ``(x_t - x_{t-k}) / ref`` | trend: change over the last action window |
    | 10 | ``5 Y_t`` | running yield (below), x 5 so that typical values are about 0.7 |
    | 11 | ``F_t / (feed_max * effective_scale * episode_steps)`` | substrate fed so far, as a fraction of the most possible |
    | 12 | ``t / episode_steps`` | elapsed fraction of the episode |
    | 13 | ``feed / feed_max`` | the feed in force |

    ## Reward: the overall product yield, a ratio
    ``product = "T"`` (default) or ``"R"``. With ``P_t`` the product molecules formed since
    reset (catalysis events P -> T by O, as OP or ORP; or Q -> R by I -- exact event counts of
    the core), ``F_t`` the S molecules fed since reset and ``U_0`` the substrate in the pathway
    at reset (S, P and Q, free or bound to an enzyme:
    :data:`~simrl.physics.ecology.metabolic.SUBSTRATE_POOL`), the running yield is

        Y_t = P_t / (U_0 + F_t)

    -- the overall yield on substrate supplied of a fed-batch run: product per substrate that
    was in the pathway or was fed. The step reward is ``Y_t - Y_{t-1}``, so the return
    telescopes to the episode's yield ``Y_T`` (``info["yield"]``; ``info["objective"] = -Y_t``,
    lower is better as for every simrl objective). ``0 <= Y_t <= 1``: by the pathway's mass
    balance ``U_0 + F_t = U_t + P_t + (other product) + (S, P, Q diluted)``
    (``tests/physics/test_metabolic.py::test_substrate_pool_balance``).

    Why the stock ``U_0``: intermediates already present at reset would otherwise count as free
    product (an earlier form, ``P_t / F_t``, was maximised by starving the pathway), and
    substrate still in the pathway at the end counts as supplied but not converted (as in a
    harvested fed-batch). Why the basal feed ``feed_min``: even so, a zero feed drains the stock
    of a feed-1.0 steady state with a yield (about 0.18) that no sustained operation reaches,
    because the activator R accumulated before reset is free to the episode; the pathway of a
    patient keeps receiving substrate, so the controller modulates a supply it cannot stop.
    The trade-off left (measured at scale 0.1 on 12 training states, 20,000 steps; feeds in
    full-scale molecules per step): a constant feed has a flat interior optimum (Y 0.131 at
    0.5, 0.134 at 1.0, 0.135 at 1.5, 0.133 at 2.0; T inhibits O and dilution loses more S at
    higher feed, R activates O), and a time-varying feed does better: 1.5, then the basal 0.5
    for the last 6,000 steps, converts part of the pathway's stock and reaches 0.1445 (+-0.0012).
    ``product = "R"``: its yield falls with the feed (R inhibits its producers A and I).
    ``info["window_yield"]`` is the last window's selectivity: product formed / substrate that
    left the pool (formed a product or was diluted) in the window.

    ``reward = "linearised"`` (for learners; the objective in ``info`` is unchanged): the step
    reward is ``(dP_t - y_ref dF_t) / (steps_per_action * effective_scale)`` with ``y_ref =
    yield_reference`` (default 0.14, about the best constant feed's yield), so the return is
    ``(P_T - y_ref F_T)`` per step: product minus its worth in substrate fed. Maximising
    ``P - y* (U_0 + F)`` at the optimal yield ``y*`` maximises the ratio ``P / (U_0 + F)``
    (Dinkelbach, Management Science 13:492, 1967), and unlike the yield increments, whose size
    shrinks as ``1 / (U_0 + F_t)`` (about 20x from the first window to the last), every window
    counts alike -- the last ones, where feeding stops, included. Measured with PPO (SB3,
    gamma 1, 8 envs): its training yield fell from 0.142 to 0.131 in 24k steps on the yield
    increments, while on the linearised reward it beat the best constant feed in 80k steps
    (README, "Digital twins").

    ## Starting state
    A stored continuous-mode steady state at feed 1.0: the shipped set
    (``simrl/data/ecology/metabolic_scale0.1.npz``, made by ``python -m simrl.envs.metabolic``)
    holds 32 independent runs after a 40,000-step burn-in from the script's initial state
    (80,000 S, 20,000 P and Q, 10 R and T, 200 of each enzyme), with their last 1,000 steps of
    counts. A burn-in per reset would cost about 1.5 s (the 80,000 initial S take ~20,000 steps
    to dilute away), ten times an episode, hence stored states. States 0-23 are the
    ``"train"`` split, 24-31 the held-out ``"eval"`` split (``snapshot_split``); ``reset(seed)``
    picks one with the environment's generator and continues it with a fresh random stream;
    ``reset(options={"snapshot": i})`` picks the i-th of the split (``options`` is None or a
    dict with that key only). The set's SHA-256 and its manifest (model kind, count, parameters,
    splits in range and disjoint) are checked on loading; an error names the file, what is
    wrong and the regeneration command.

    ## Scale and episode length
    Default ``params``: the set's, ``MetabolicParams(scale=0.1)``: a 32 x 32 torus with every
    count x 0.1024 (same concentrations, so the same rates; its steady state at feed 1.0 matches
    the published one, see the tests), about 14 us per step on one core instead of about 10x
    that at full scale. Episode length: after a feed change, S relaxes with a time constant of
    about 1,500 steps, R and T of about 4,500 (measured from the stored states, feed 1 -> 0.25,
    2 and 4; 90 % of the change by about 9,000 steps), so the default 20,000 steps (80 actions)
    reach the new steady state.

    ## Episode end
    Terminated after ``episode_steps`` steps: the yield is defined over exactly that horizon and
    the elapsed fraction is observed, so the end is part of the task (a learner that
    bootstrapped past it would value the substrate left in the pathway as future product).
    Truncated, with ``info["blowup"] = True``, if the molecules exceed ``params.max_molecules``.

    ## Info
    ``objective`` (= -yield), ``yield``, ``window_yield``, ``feed`` (in force, full-scale
    units), ``fed`` and ``product`` (molecules since reset, scaled model), ``supplied``
    (``U_0 + F_t``), ``pool`` (substrate in the pathway now), ``S``, ``P``, ``Q``,
    ``R``, ``T`` (free counts now), ``blowup``, ``step`` (steps since reset), ``snapshot``.

    ## Arguments
    | argument | default | meaning |
    |---|---|---|
    | steps_per_action | 250 | steps each feed is held |
    | episode_steps | 20000 | episode length (a multiple of steps_per_action) |
    | feed_max | 4.5 | feed at action 1 (molecules per step, full scale) |
    | feed_min | 0.5 | basal feed at action 0 (0 allows starving the pathway, see Reward) |
    | product | "T" | "T" or "R": the product of the yield |
    | reward | "yield" | "yield" (increments of Y_t) or "linearised" (Dinkelbach form) |
    | yield_reference | 0.14 | ``y_ref`` of the linearised reward, in (0, 1] |
    | params | the snapshot set's | ``MetabolicParams`` or a dict of changes (same torus size, continuous mode) |
    | snapshots | shipped scale-0.1 set | path of a set made by ``generate_snapshot_set`` |
    | snapshot_split | "train" | "train", "eval" or "all" |
    | parallel | False | Numba ``prange`` over models (vector env) |
    | render_mode | None | "rgb_array": molecule map (S grey, P blue, Q cyan, R red, T yellow, enzymes white) |

    ## Example
    >>> import numpy as np, gymnasium as gym, simrl
    >>> env = gym.make("simrl/MetabolicPathway-v0", episode_steps=1000)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["snapshot"] < 24
    ((14,), True)
    >>> obs, reward, terminated, truncated, info = env.step(np.array([0.25], np.float32))
    >>> info["step"], info["feed"], info["fed"] > 0
    (250, 1.5, True)
    """

    settings_cls = MetabolicSettings
    core_cls = MetabolicCore
    make_spaces = staticmethod(_spaces)

    @property
    def model(self) -> MetabolicBatch:
        """The underlying batch of one model."""
        return self._core._batch


class MetabolicPathwayVectorEnv(DigitalTwinVectorEnv):
    """``num_envs`` copies of :class:`MetabolicPathwayEnv` advanced by one Numba call per step.

    Same arguments as :class:`MetabolicPathwayEnv` plus ``num_envs`` (1 to 4,096; the batch's
    estimated memory must fit in the machine's) and ``autoreset_mode`` (``SAME_STEP``,
    default, or ``DISABLED``); seeding, autoreset, ``final_obs``/``final_info``
    and ``reset_mask`` behave as documented in
    :class:`~simrl.envs.digital_twin_core.DigitalTwinVectorEnv`. Sub-environment i reset with
    seed s follows exactly the trajectory of a single env reset with seed s.

    >>> import numpy as np, gymnasium as gym, simrl
    >>> envs = gym.make_vec("simrl/MetabolicPathway-v0", num_envs=2, vectorization_mode="vector_entry_point")
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (2, 14)
    """

    settings_cls = MetabolicSettings
    core_cls = MetabolicCore
    single_env_cls = MetabolicPathwayEnv


insert_argument_docs(MetabolicPathwayEnv, {**ARGUMENTS, "render_mode": FACE_ARGUMENTS["render_mode"]})


def main(argv: list[str] | None = None) -> None:
    """Command line: generate a snapshot set (default: the shipped one)."""
    parser = argparse.ArgumentParser(description="Generate the stored start states of simrl/MetabolicPathway-v0")
    parser.add_argument("--out", default=str(DEFAULT_SNAPSHOTS))
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40_000, help="burn-in steps from the script's initial state")
    parser.add_argument("--seed", type=int, default=20240205)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--feed", type=float, default=1.0, help="feed of the steady state (full-scale molecules/step)")
    parser.add_argument("--eval-count", type=int, default=None)
    parser.add_argument("--parallel", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    params = MetabolicParams(scale=args.scale, feed=args.feed)
    manifest = generate_snapshot_set(args.out, params, args.count, args.steps, args.seed, args.eval_count, args.parallel)
    info = json.loads(manifest.read_text())
    print(f"wrote {args.out} ({info['bytes'] / 1e6:.2f} MB) in {time.perf_counter() - start:.1f} s")
    print("mean free S, P, Q, R, T over the last steps (full-scale units):",
          [round(v, 1) for v in info["mean_metabolites_last_steps_full_scale"]])


if __name__ == "__main__":
    main()
