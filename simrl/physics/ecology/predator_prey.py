"""NetLogo "Wolf Sheep Predation" (sheep-wolves-grass), big-world variant, as batched Numba kernels.

Model (Wilensky 1997, NetLogo models library; "bigworld" files of
``LaboratoryForSystemsMedicine/Metamodeling-and-Control-of-Medical-Digital-Twins_2024``, used by
Fonseca et al., PLOS Comput Biol 2024, and Boettcher, Fonseca & Laubenbacher, Phil Trans R Soc A
2025). Defaults are the big world: a 255 x 255 wrapping torus (65,025 patches), 2,500 sheep,
1,250 wolves, grass-regrowth-time 30, sheep gain 4 and reproduce 4 % per tick, wolf gain 20
and reproduce 5 % per tick.

Coordinates: NetLogo's patch ``pxcor`` covers ``[pxcor - 0.5, pxcor + 0.5)``; here everything
is shifted by +0.5, so positions lie in ``[0, width) x [0, height)`` and an animal stands on
patch ``(floor(x), floor(y))`` (flat index ``floor(y) * width + floor(x)``). Headings are in
degrees, clockwise from north (NetLogo's convention): ``fd 1`` adds ``(sin h, cos h)``.

Setup (NetLogo ``setup``):

* each patch is green or brown with probability 1/2 (``one-of [green brown]``); a green
  patch's countdown is the regrowth time, a brown one's ``random regrowth`` in [0, regrowth);
* each animal gets a random integer heading in [0, 360) (``create-turtles``), energy
  ``random (2 * gain)`` -- an integer uniform on {0, ..., floor(2 gain) - 1} (0 when that is
  < 1) -- and a uniform position on the torus (``setxy random-xcor random-ycor``).

One tick (NetLogo ``go``, in this order):

1. Sheep, in a fresh random order (``ask sheep``; offspring born this tick do not act):
   turn right ``random 50`` then left ``random 50`` degrees; forward 1; energy - 1; on a
   green patch eat (patch -> brown, energy + sheep gain); die if energy < 0; otherwise with
   probability ``sheep_reproduce`` halve the energy and hatch one offspring with the halved
   energy, which turns ``random-float 360`` and moves forward 1.
2. Wolves, in a fresh random order: the same, but instead of grazing a wolf eats one sheep
   chosen uniformly among those on its patch (``one-of sheep-here``; newborn sheep count)
   and gains the wolf gain.
3. External removal (the control input): each sheep is removed with probability
   ``p_sheep`` and each wolf with ``p_wolf``. This is where the repository's controlled
   files (``..._ConSheep2.nlogo``, ``..._ConWolves1.5.nlogo``) cull: after the wolves and
   before regrowth. A probability of 0 draws no random numbers (so a run with removal 0 is
   identical to the uncontrolled run); 1 removes everyone without drawing.
4. Patches: a brown patch whose countdown is <= 0 turns green and resets its countdown to the
   regrowth time, otherwise its countdown decreases by 1. (Eating does not reset the
   countdown: an eaten patch keeps the regrowth time it had while green and turns green again
   in the ``regrowth + 1``-th regrowth step after it was eaten, i.e. it can be eaten again
   ``regrowth + 1`` ticks later.)

The counts reported after a tick are (green patches, sheep, wolves), NetLogo's
``count grass``, ``count sheep``, ``count wolves`` after ``tick``. Extinction is a normal
state: counts reach 0 and the grass keeps regrowing (NetLogo's ``stop`` when no turtles
remain is a user-interface convenience, not model dynamics).

Randomness: every model owns one xoshiro256** stream (:mod:`simrl.physics.ecology.rng`),
a ``(4,) uint64`` state advanced in place; the order of draws within a tick is fixed, so a
model's trajectory depends only on its seed, parameters and removal schedule -- not on the
batch it runs in, on serial versus parallel execution, or on buffer capacities.

Kernel contract (``advance_predator_prey_{serial,parallel}``; B models, P = width * height
patches, buffer capacities Cs, Cw shared across the batch)::

    advance(rng, green, countdown, sheep, n_sheep, wolves, n_wolves, width, height,
            gains, reproduce, regrowth, max_population, removal, counts, ticks_done, tick, status,
            work)

==============  =============  ===============================================================
argument        shape/dtype    meaning
==============  =============  ===============================================================
rng             (B, 4) u8      xoshiro256** states, advanced in place
green           (B, P) u1      1 = green patch (flat index ``y * width + x``), in place
countdown       (B, P) i4      patch regrowth countdowns, in place
sheep, wolves   (B, 4, C) f8   rows ``X, Y, HEADING, ENERGY``; the first ``n_*[b]`` columns
                               are the living animals, compacted (order = creation order)
n_sheep/wolves  (B,) i8        population sizes, in place
width, height   int            world size in patches
gains           (B, 2) f8      (sheep gain from food, wolf gain from food)
reproduce       (B, 2) f8      per-tick reproduction probabilities (sheep, wolf), in [0, 1]
regrowth        (B,) i8        grass regrowth time in ticks
max_population  (B,) i8        hard cap per species; exceeding it stops the model (status 2)
removal         (B, n, 2) f8   per-tick removal probabilities (p_sheep, p_wolf), in [0, 1]
counts          (B, n, 3) i8   out: (grass, sheep, wolves) after each tick of this call
ticks_done      (B,) i8        in/out: ticks of this call already done (0 on the first call;
                               a call resumes from here, so a caller can grow the buffers and
                               call again)
tick            (B,) i8        absolute tick counter, advanced in place
status          (B,) i8        out: ``STATUS_OK`` all n ticks done; ``STATUS_NEED_CAPACITY``
                               stopped before a tick whose offspring might overflow a buffer
                               (needs ``C >= 2 n``: at most one offspring per animal per tick);
                               ``STATUS_POPULATION_CAP`` a population exceeds max_population
work            (B, L) i4      scratch (patch index, random order, alive flags); contents are
                               irrelevant between calls; ``L >= work_length(P, Cs, Cw)``, else
                               the model stops with ``STATUS_NEED_CAPACITY``
==============  =============  ===============================================================

Kernels never raise; inputs are validated by the Python classes (:class:`PredatorPreyParams`,
:class:`PredatorPreyBatch`, :class:`PredatorPreyModel`), which also grow the buffers by
reallocation between kernel calls (a stop for capacity falls between ticks, so results do not
depend on capacity).

Cost (default big world at its steady state, one thread of a 2-core x86-64 machine, 2026):
about 0.39 ms per tick and model (1,000 ticks in 0.39 s, about 15 M animal-steps/s), also when
stepping one tick per call (the scratch is persistent); ``parallel=True`` scales over models.
Memory is about 2 MB per model (grass 0.3 MB, scratch 0.9 MB, animal buffers 0.8 MB, growing
with the populations).

Validation: ``scripts/validate_predator_prey.py`` (100 runs) compares the uncontrolled
steady state with NetLogo's means :data:`NETLOGO_BIGWORLD_STEADY_STATE`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np
from numba import njit, prange

from simrl.physics.ecology import (
    STATUS_NEED_CAPACITY,
    STATUS_OK,
    STATUS_POPULATION_CAP,
)
from simrl.physics.ecology.common import (
    BatchBase,
    SingleModel,
    as_params,
    as_seed_sequence,
    check_int,
    check_real,
    checked_snapshots,
    is_int,
    params_list,
    replace_params,
    save_npz_atomic,
    seed_sequence_list,
)
from simrl.physics.ecology.rng import randint, seed_state, uniform
from simrl.physics.compile import serial_and_parallel

# Rows of the (4, C) animal arrays.
X = 0
Y = 1
HEADING = 2
ENERGY = 3
ANIMAL_FIELDS = ("x", "y", "heading", "energy")
#: Columns of the per-tick counts.
COUNT_FIELDS = ("grass", "sheep", "wolves")
#: Uncontrolled steady state of the NetLogo big world with the default parameters: means over
#: ticks 500-1000 of 100 NetLogo runs (the repository's ``.mat`` files, as summarised in
#: ``shared/references/digital_twin.md``), in ``COUNT_FIELDS`` order.
NETLOGO_BIGWORLD_STEADY_STATE = (24200.0, 4020.0, 1910.0)

_DEG = math.pi / 180.0
_MAX_WORLD_SIDE = 8192
_MAX_POPULATION_LIMIT = 2**28  # keeps buffer indices (< 4 * max_population) within int32
_MIN_CAPACITY = 64


# --------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------


@njit(inline="always")
def _wrap(v, length):
    if v < 0.0:
        v += length
    if v >= length:  # also catches -tiny + length rounding to length
        v -= length
    return v


@njit(inline="always")
def _norm_heading(h):
    h = h % 360.0
    if h >= 360.0:
        h -= 360.0
    return h


@njit(inline="always")
def _patch(x, y, width, height):
    px = np.int64(x)
    py = np.int64(y)
    if px >= width:
        px = width - 1
    if py >= height:
        py = height - 1
    return py * width + px


@njit(inline="always")
def _shuffle_prefix(perm, n, rng):
    """``perm[:n]`` = a uniform random permutation of 0..n-1 (Fisher-Yates)."""
    for i in range(n):
        perm[i] = i
    for i in range(n - 1, 0, -1):
        j = randint(rng, i + 1)
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t


@njit(inline="always")
def _compact(a, alive, m):
    """Keep the columns ``i < m`` with ``alive[i]``, in order; return how many remain."""
    j = 0
    for i in range(m):
        if alive[i]:
            if j != i:
                a[X, j] = a[X, i]
                a[Y, j] = a[Y, i]
                a[HEADING, j] = a[HEADING, i]
                a[ENERGY, j] = a[ENERGY, i]
            j += 1
    return j


@njit(inline="always")
def _move(a, i, width, height, rng):
    """``rt random 50  lt random 50  fd 1``; returns the new patch index."""
    right = randint(rng, 50)
    left = randint(rng, 50)
    h = _norm_heading(a[HEADING, i] + (right - left))
    a[HEADING, i] = h
    rad = h * _DEG
    x = _wrap(a[X, i] + math.sin(rad), width)
    y = _wrap(a[Y, i] + math.cos(rad), height)
    a[X, i] = x
    a[Y, i] = y
    return _patch(x, y, width, height)


@njit(inline="always")
def _hatch(a, i, m, energy, width, height, rng):
    """Offspring of ``i`` in column ``m``: ``hatch 1 [ rt random-float 360 fd 1 ]``; returns its patch."""
    h = _norm_heading(a[HEADING, i] + uniform(rng) * 360.0)
    rad = h * _DEG
    x = _wrap(a[X, i] + math.sin(rad), width)
    y = _wrap(a[Y, i] + math.cos(rad), height)
    a[X, m] = x
    a[Y, m] = y
    a[HEADING, m] = h
    a[ENERGY, m] = energy
    return _patch(x, y, width, height)


@njit(cache=True)
def _tick(rng, green, countdown, sheep, ns, wolves, nw, width, height,
          sheep_gain, wolf_gain, sheep_rep, wolf_rep, regrowth, p_rm_sheep, p_rm_wolf,
          perm, alive_s, alive_w, spatch, pstart, pcount, plist):
    """Advance one model by one tick; returns ``(n_sheep, n_wolves, green patches)``."""
    # 1. Sheep.
    n0 = ns
    _shuffle_prefix(perm, n0, rng)
    m = n0
    for t in range(n0):
        i = perm[t]
        p = _move(sheep, i, width, height, rng)
        e = sheep[ENERGY, i] - 1.0
        if green[p]:
            green[p] = 0
            e += sheep_gain
        if e < 0.0:
            sheep[ENERGY, i] = e
            alive_s[i] = 0
            continue
        alive_s[i] = 1
        spatch[i] = p
        if uniform(rng) < sheep_rep:
            e *= 0.5
            spatch[m] = _hatch(sheep, i, m, e, width, height, rng)
            alive_s[m] = 1
            m += 1
        sheep[ENERGY, i] = e
    ms = m

    # 2. Wolves. Patch -> living sheep index by counting sort (sheep do not move here); an
    #    eaten sheep is swapped out of its patch's bucket so that ``one-of`` stays uniform.
    n0 = nw
    m = n0
    if n0 > 0:
        n_patches = width * height
        for p in range(n_patches):
            pcount[p] = 0
        for i in range(ms):
            if alive_s[i]:
                pcount[spatch[i]] += 1
        pstart[0] = 0
        for p in range(n_patches):
            pstart[p + 1] = pstart[p] + pcount[p]
            pcount[p] = 0
        for i in range(ms):
            if alive_s[i]:
                p = spatch[i]
                plist[pstart[p] + pcount[p]] = i
                pcount[p] += 1

        _shuffle_prefix(perm, n0, rng)
        for t in range(n0):
            i = perm[t]
            p = _move(wolves, i, width, height, rng)
            e = wolves[ENERGY, i] - 1.0
            c = pcount[p]
            if c > 0:
                base = pstart[p]
                j = base + randint(rng, c)
                alive_s[plist[j]] = 0
                plist[j] = plist[base + c - 1]
                pcount[p] = c - 1
                e += wolf_gain
            if e < 0.0:
                wolves[ENERGY, i] = e
                alive_w[i] = 0
                continue
            alive_w[i] = 1
            if uniform(rng) < wolf_rep:
                e *= 0.5
                _hatch(wolves, i, m, e, width, height, rng)
                alive_w[m] = 1
                m += 1
            wolves[ENERGY, i] = e
    mw = m

    # 3. External removal (control).
    if p_rm_sheep > 0.0:
        for i in range(ms):
            if alive_s[i] and (p_rm_sheep >= 1.0 or uniform(rng) < p_rm_sheep):
                alive_s[i] = 0
    if p_rm_wolf > 0.0:
        for i in range(mw):
            if alive_w[i] and (p_rm_wolf >= 1.0 or uniform(rng) < p_rm_wolf):
                alive_w[i] = 0
    ns = _compact(sheep, alive_s, ms)
    nw = _compact(wolves, alive_w, mw)

    # 4. Grass regrowth.
    grass = 0
    for p in range(green.shape[0]):
        if green[p] == 0:
            if countdown[p] <= 0:
                green[p] = 1
                countdown[p] = regrowth
            else:
                countdown[p] -= 1
        grass += green[p]
    return ns, nw, grass


@njit(cache=True)
def work_length(n_patches, cs, cw):
    """Length of a model's int32 scratch row for ``n_patches`` patches and capacities cs, cw."""
    return 2 * n_patches + 1 + max(cs, cw) + 3 * cs + cw


@njit(cache=True)
def _advance_model(rng, green, countdown, sheep, wolves, ns, nw, width, height,
                   sheep_gain, wolf_gain, sheep_rep, wolf_rep, regrowth, max_pop,
                   removal, counts, k, tick, work):
    """Run one model from tick ``k`` of this call; returns ``(ns, nw, k, tick, status)``."""
    n_ticks = counts.shape[0]
    cs = sheep.shape[1]
    cw = wolves.shape[1]
    n_patches = width * height
    if work.shape[0] < work_length(n_patches, cs, cw):
        return ns, nw, k, tick, STATUS_NEED_CAPACITY
    # Scratch views (persistent, so no per-call allocation or page faults).
    o = 0
    pstart = work[o : o + n_patches + 1]
    o += n_patches + 1
    pcount = work[o : o + n_patches]
    o += n_patches
    perm = work[o : o + max(cs, cw)]
    o += max(cs, cw)
    spatch = work[o : o + cs]
    o += cs
    plist = work[o : o + cs]
    o += cs
    alive_s = work[o : o + cs]
    o += cs
    alive_w = work[o : o + cw]
    while k < n_ticks:
        if ns > max_pop or nw > max_pop:
            return ns, nw, k, tick, STATUS_POPULATION_CAP
        if 2 * ns > cs or 2 * nw > cw:
            return ns, nw, k, tick, STATUS_NEED_CAPACITY
        ns, nw, grass = _tick(rng, green, countdown, sheep, ns, wolves, nw, width, height,
                              sheep_gain, wolf_gain, sheep_rep, wolf_rep, regrowth,
                              removal[k, 0], removal[k, 1],
                              perm, alive_s, alive_w, spatch, pstart, pcount, plist)
        counts[k, 0] = grass
        counts[k, 1] = ns
        counts[k, 2] = nw
        k += 1
        tick += 1
    if ns > max_pop or nw > max_pop:
        return ns, nw, k, tick, STATUS_POPULATION_CAP
    return ns, nw, k, tick, STATUS_OK


def _advance_predator_prey(rng, green, countdown, sheep, n_sheep, wolves, n_wolves, width, height,
                           gains, reproduce, regrowth, max_population, removal, counts,
                           ticks_done, tick, status, work):
    """Advance each of B models by the remaining ticks of this call (see the module contract)."""
    for b in prange(rng.shape[0]):
        ns, nw, k, t, st = _advance_model(
            rng[b], green[b], countdown[b], sheep[b], wolves[b], n_sheep[b], n_wolves[b],
            width, height, gains[b, 0], gains[b, 1], reproduce[b, 0], reproduce[b, 1],
            regrowth[b], max_population[b], removal[b], counts[b], ticks_done[b], tick[b], work[b])
        n_sheep[b] = ns
        n_wolves[b] = nw
        ticks_done[b] = k
        tick[b] = t
        status[b] = st


advance_predator_prey_serial, advance_predator_prey_parallel = serial_and_parallel(_advance_predator_prey)


@njit(cache=True)
def _init_animals(a, n, gain, width, height, rng):
    n_energy = np.int64(math.floor(2.0 * gain))
    for i in range(n):
        a[HEADING, i] = np.float64(randint(rng, 360))
        a[ENERGY, i] = np.float64(randint(rng, n_energy))
        a[X, i] = _wrap(uniform(rng) * width, width)
        a[Y, i] = _wrap(uniform(rng) * height, height)


def _init_predator_prey(rng, green, countdown, sheep, n_sheep, wolves, n_wolves, width, height,
                        gains, regrowth):
    """NetLogo ``setup`` for each of B models (patches, then sheep, then wolves)."""
    for b in prange(rng.shape[0]):
        r = rng[b]
        reg = regrowth[b]
        for p in range(width * height):
            g = randint(r, 2)
            green[b, p] = g
            countdown[b, p] = reg if g else randint(r, reg)
        _init_animals(sheep[b], n_sheep[b], gains[b, 0], width, height, r)
        _init_animals(wolves[b], n_wolves[b], gains[b, 1], width, height, r)


init_predator_prey_serial, init_predator_prey_parallel = serial_and_parallel(_init_predator_prey)


# --------------------------------------------------------------------------------------
# Parameters and validation
# --------------------------------------------------------------------------------------


# Shared with the metabolic model (same messages); the private names stay for existing imports.
_is_int = is_int
_check_int = check_int
_check_real = check_real


@dataclass(frozen=True)
class PredatorPreyParams:
    """Parameters of the sheep-wolves-grass model; defaults are the NetLogo big world.

    Probabilities are per tick as fractions: NetLogo's ``sheep-reproduce`` slider value 4 (%)
    is ``sheep_reproduce=0.04``. ``max_population`` is a safety cap per species (not a NetLogo
    rule): a model whose sheep or wolves exceed it stops with ``STATUS_POPULATION_CAP``.
    """

    width: int = 255
    height: int = 255
    initial_sheep: int = 2500
    initial_wolves: int = 1250
    grass_regrowth_time: int = 30
    sheep_gain_from_food: float = 4.0
    wolf_gain_from_food: float = 20.0
    sheep_reproduce: float = 0.04
    wolf_reproduce: float = 0.05
    max_population: int = 1_000_000

    def __post_init__(self):
        _check_int("width", self.width, 1, _MAX_WORLD_SIDE)
        _check_int("height", self.height, 1, _MAX_WORLD_SIDE)
        _check_int("max_population", self.max_population, 1, _MAX_POPULATION_LIMIT)
        _check_int("initial_sheep", self.initial_sheep, 0, self.max_population)
        _check_int("initial_wolves", self.initial_wolves, 0, self.max_population)
        _check_int("grass_regrowth_time", self.grass_regrowth_time, 0, 2**31 - 1)
        _check_real("sheep_gain_from_food", self.sheep_gain_from_food, 0.0, 1e12)
        _check_real("wolf_gain_from_food", self.wolf_gain_from_food, 0.0, 1e12)
        for name in ("sheep_reproduce", "wolf_reproduce"):
            _check_real(name, getattr(self, name), 0.0, 1.0,
                        "a per-tick probability (NetLogo's 4 % is 0.04)")

    @property
    def n_patches(self) -> int:
        return self.width * self.height

    def replace(self, **changes) -> "PredatorPreyParams":
        """A copy with some fields changed (validated)."""
        return replace_params(self, changes)


def _as_params(params) -> PredatorPreyParams:
    return as_params(params, PredatorPreyParams)


_as_seed_sequence = as_seed_sequence


def spawn_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seed sequences of ``seed`` (for a batch from one seed)."""
    return _as_seed_sequence(seed).spawn(_check_int("n", n, 0, 2**31 - 1))


def _check_removal(removal, n_models: int, n_ticks: int) -> np.ndarray:
    """Validate ``removal`` and return it as a contiguous (B, n, 2) float64 array."""
    try:
        r = np.asarray(removal, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"removal must be probabilities (p_sheep, p_wolf) in [0, 1], got {removal!r}") from None
    if r.shape == (2,):
        r = np.broadcast_to(r, (n_models, n_ticks, 2))
    elif r.shape == (n_models, 2):
        r = np.broadcast_to(r[:, None, :], (n_models, n_ticks, 2))
    elif r.shape != (n_models, n_ticks, 2):
        raise ValueError(f"removal must have shape (2,), (n_models, 2) = ({n_models}, 2) or "
                         f"(n_models, n, 2) = ({n_models}, {n_ticks}, 2), got {r.shape}")
    if r.size and not (np.all(np.isfinite(r)) and r.min() >= 0.0 and r.max() <= 1.0):
        bad = r[~(np.isfinite(r) & (r >= 0.0) & (r <= 1.0))]
        raise ValueError(f"removal probabilities (p_sheep, p_wolf) must lie in [0, 1]; got {bad[0]!r}")
    return np.array(r, dtype=np.float64, order="C", copy=True)  # writable: one Numba signature


# --------------------------------------------------------------------------------------
# State snapshots
# --------------------------------------------------------------------------------------


@dataclass
class PredatorPreyState:
    """The full state of one model: enough to continue it exactly (or branch it with a new seed).

    ``green`` and ``countdown`` are (height, width) patch grids indexed ``[y, x]``;
    ``sheep``/``wolves`` are (4, n) arrays with rows ``x, y, heading, energy``.
    """

    params: PredatorPreyParams
    tick: int
    rng_state: np.ndarray
    green: np.ndarray
    countdown: np.ndarray
    sheep: np.ndarray
    wolves: np.ndarray
    status: int = STATUS_OK

    @property
    def counts(self) -> np.ndarray:
        """(grass, sheep, wolves) of this state."""
        return np.array([int(self.green.sum()), self.sheep.shape[1], self.wolves.shape[1]], np.int64)

    def copy(self) -> "PredatorPreyState":
        return PredatorPreyState(self.params, self.tick, self.rng_state.copy(), self.green.copy(),
                                 self.countdown.copy(), self.sheep.copy(), self.wolves.copy(), self.status)

    def validate(self) -> None:
        """Raise ValueError if the arrays are inconsistent with ``params`` or with each other."""
        p = self.params
        if not isinstance(p, PredatorPreyParams):
            raise ValueError("state.params must be a PredatorPreyParams")
        grid = (p.height, p.width)
        checks = [
            (_is_int(self.tick) and self.tick >= 0, "tick must be an integer >= 0"),
            (np.shape(self.rng_state) == (4,) and np.asarray(self.rng_state).dtype == np.uint64
             and np.any(self.rng_state), "rng_state must be a non-zero (4,) uint64 array"),
            (np.shape(self.green) == grid, f"green must have shape (height, width) = {grid}"),
            (np.shape(self.countdown) == grid, f"countdown must have shape (height, width) = {grid}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        cd = np.asarray(self.countdown)
        if cd.size and (cd.min() < 0 or cd.max() > p.grass_regrowth_time):
            raise ValueError(f"countdown values must lie in [0, grass_regrowth_time] = [0, {p.grass_regrowth_time}]")
        for name, arr in (("sheep", self.sheep), ("wolves", self.wolves)):
            a = np.asarray(arr)
            if a.ndim != 2 or a.shape[0] != 4:
                raise ValueError(f"{name} must have shape (4, n) with rows x, y, heading, energy; got {a.shape}")
            if a.shape[1] > p.max_population:
                raise ValueError(f"{name}: {a.shape[1]} animals exceed max_population = {p.max_population}")
            if a.size == 0:
                continue
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} must be finite")
            if a[X].min() < 0 or a[X].max() >= p.width or a[Y].min() < 0 or a[Y].max() >= p.height:
                raise ValueError(f"{name} positions must lie in [0, width) x [0, height) "
                                 f"= [0, {p.width}) x [0, {p.height})")
            if a[HEADING].min() < 0 or a[HEADING].max() >= 360:
                raise ValueError(f"{name} headings must lie in [0, 360)")
            if a[ENERGY].min() < 0:
                raise ValueError(f"{name} energies must be >= 0 (animals with energy < 0 are dead)")

    def save(self, path) -> None:
        """Write the state atomically to an ``.npz`` file (parameters stored as JSON).

        As with ``np.savez_compressed``, ``.npz`` is appended to a path that lacks it.
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        save_npz_atomic(path, params=json.dumps(asdict(self.params)), tick=self.tick,
                        rng_state=self.rng_state, green=self.green, countdown=self.countdown,
                        sheep=self.sheep, wolves=self.wolves, status=self.status)

    @classmethod
    def load(cls, path) -> "PredatorPreyState":
        with np.load(path, allow_pickle=False) as f:
            state = cls(PredatorPreyParams(**json.loads(str(f["params"]))), int(f["tick"]),
                        f["rng_state"].astype(np.uint64), f["green"].astype(bool),
                        f["countdown"].astype(np.int32), f["sheep"].astype(np.float64),
                        f["wolves"].astype(np.float64), int(f["status"]))
        state.validate()
        return state


# --------------------------------------------------------------------------------------
# Python-facing classes
# --------------------------------------------------------------------------------------


class PredatorPreyBatch(BatchBase):
    """B independent sheep-wolves-grass models on the same world size, advanced together.

    >>> batch = PredatorPreyBatch(PredatorPreyParams(width=31, height=31, initial_sheep=40,
    ...                                              initial_wolves=20), seeds=[1, 2, 3])
    >>> batch.step(10, removal=[(0.0, 0.0), (0.02, 0.0), (0.0, 0.015)]).shape
    (3, 10, 3)

    ``params``: one :class:`PredatorPreyParams` for all models or one per model (all with the
    same width and height). ``seeds``: one seed per model (int, ``SeedSequence``); model ``b``
    is identical to ``PredatorPreyModel(params[b], seed=seeds[b])`` (use :func:`spawn_seeds`
    to derive B seeds from one). ``parallel``: advance the models with ``prange`` (one model
    per thread; identical results).
    """

    def __init__(self, params, seeds: Sequence, *, parallel: bool = False):
        self.parallel = bool(parallel)
        self.seed_sequences = seed_sequence_list(seeds, "spawn_seeds")
        plist = self._params_list(params, len(self.seed_sequences))
        self._setup_arrays(plist)
        self._rng[:] = np.stack([seed_state(ss) for ss in self.seed_sequences])
        self._n_sheep[:] = [p.initial_sheep for p in plist]
        self._n_wolves[:] = [p.initial_wolves for p in plist]
        init = init_predator_prey_parallel if self.parallel else init_predator_prey_serial
        init(self._rng, self._green, self._countdown, self._sheep, self._n_sheep, self._wolves,
             self._n_wolves, self.width, self.height, self._gains, self._regrowth)

    # ---- construction helpers -----------------------------------------------------------

    @staticmethod
    def _params_list(params, n) -> list[PredatorPreyParams]:
        plist = params_list(params, n, PredatorPreyParams)
        if len({(p.width, p.height) for p in plist}) != 1:
            raise ValueError("all models of a batch must have the same width and height")
        return plist

    def _setup_arrays(self, plist: list[PredatorPreyParams]) -> None:
        b = len(plist)
        self.params: tuple[PredatorPreyParams, ...] = tuple(plist)
        self.width, self.height = plist[0].width, plist[0].height
        n_patches = self.width * self.height
        self._gains = np.array([(p.sheep_gain_from_food, p.wolf_gain_from_food) for p in plist], np.float64)
        self._reproduce = np.array([(p.sheep_reproduce, p.wolf_reproduce) for p in plist], np.float64)
        self._regrowth = np.array([p.grass_regrowth_time for p in plist], np.int64)
        self._max_pop = np.array([p.max_population for p in plist], np.int64)
        self._rng = np.zeros((b, 4), np.uint64)
        self._green = np.zeros((b, n_patches), np.uint8)
        self._countdown = np.zeros((b, n_patches), np.int32)
        self._n_sheep = np.zeros(b, np.int64)
        self._n_wolves = np.zeros(b, np.int64)
        self._tick = np.zeros(b, np.int64)
        self._status = np.zeros(b, np.int64)
        cs = max(_MIN_CAPACITY, 4 * max(p.initial_sheep for p in plist))
        cw = max(_MIN_CAPACITY, 4 * max(p.initial_wolves for p in plist))
        self._sheep = np.zeros((b, 4, cs), np.float64)
        self._wolves = np.zeros((b, 4, cw), np.float64)
        self._work = np.zeros((b, work_length(n_patches, cs, cw)), np.int32)

    @classmethod
    def from_snapshots(cls, states: Iterable[PredatorPreyState], seeds: Sequence | None = None, *,
                       parallel: bool = False) -> "PredatorPreyBatch":
        """A batch continuing the given states.

        With ``seeds=None`` each model continues its stored random stream (an exact
        continuation); with seeds (one per state) the streams are replaced, e.g. to branch
        many independent controlled runs from one warm-started steady state.
        """
        states, seeds = checked_snapshots(states, seeds)
        self = cls.__new__(cls)
        self.parallel = bool(parallel)
        self._setup_arrays(cls._params_list([s.params for s in states], len(states)))
        need_s = max(s.sheep.shape[1] for s in states)
        need_w = max(s.wolves.shape[1] for s in states)
        self._ensure_capacity(2 * need_s, 2 * need_w)
        self.seed_sequences = [None] * len(states)
        for b, s in enumerate(states):
            self._write_state(b, s)
            if seeds is not None:
                self.seed_sequences[b] = _as_seed_sequence(seeds[b])
                self._rng[b] = seed_state(self.seed_sequences[b])
        return self

    def _write_state(self, b: int, s: PredatorPreyState) -> None:
        self._rng[b] = s.rng_state
        self._green[b] = np.asarray(s.green, bool).reshape(-1)
        self._countdown[b] = np.asarray(s.countdown).reshape(-1)
        ns, nw = s.sheep.shape[1], s.wolves.shape[1]
        self._sheep[b, :, :ns] = s.sheep
        self._wolves[b, :, :nw] = s.wolves
        self._n_sheep[b] = ns
        self._n_wolves[b] = nw
        self._tick[b] = s.tick
        self._status[b] = s.status

    def _ensure_capacity(self, cs: int, cw: int) -> None:
        """Grow the animal buffers (by reallocation, at least doubling) to hold cs / cw columns."""
        for attr, need in (("_sheep", cs), ("_wolves", cw)):
            old = getattr(self, attr)
            if need > old.shape[2]:
                new = np.zeros((old.shape[0], 4, max(need, 2 * old.shape[2])), np.float64)
                new[:, :, : old.shape[2]] = old
                setattr(self, attr, new)
        length = work_length(self.width * self.height, self._sheep.shape[2], self._wolves.shape[2])
        if self._work.shape[1] < length:
            self._work = np.zeros((self.n_models, length), np.int32)

    # ---- stepping -----------------------------------------------------------------------

    def step(self, n: int = 1, removal=(0.0, 0.0)) -> np.ndarray:
        """Advance every model by ``n`` ticks; return the (B, n, 3) counts (grass, sheep, wolves).

        ``removal``: per-tick removal probabilities (p_sheep, p_wolf) in [0, 1], shape (2,)
        for all models, (B, 2) per model, or (B, n, 2) per model and tick. A model that hits
        its ``max_population`` stops (``status`` = ``STATUS_POPULATION_CAP``); its rows for
        the ticks not done are -1.
        """
        n = _check_int("n", n, 0, 2**31 - 1)
        rem = _check_removal(removal, self.n_models, n)
        counts = np.full((self.n_models, n, 3), -1, np.int64)
        done = np.zeros(self.n_models, np.int64)
        status = np.zeros(self.n_models, np.int64)
        kernel = advance_predator_prey_parallel if self.parallel else advance_predator_prey_serial
        while True:
            kernel(self._rng, self._green, self._countdown, self._sheep, self._n_sheep, self._wolves,
                   self._n_wolves, self.width, self.height, self._gains, self._reproduce,
                   self._regrowth, self._max_pop, rem, counts, done, self._tick, status, self._work)
            need = status == STATUS_NEED_CAPACITY
            if not need.any():
                break
            self._ensure_capacity(2 * int(self._n_sheep.max()), 2 * int(self._n_wolves.max()))
        self._status[:] = status
        return counts

    # ---- observation --------------------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """(B, 3) current (grass, sheep, wolves)."""
        grass = self._green.sum(axis=1, dtype=np.int64)
        return np.stack([grass, self._n_sheep, self._n_wolves], axis=1)

    def sheep(self, b: int = 0) -> np.ndarray:
        """Read-only (4, n) view of model b's sheep (rows x, y, heading, energy)."""
        v = self._sheep[b, :, : self._n_sheep[b]]
        v = v.view()
        v.flags.writeable = False
        return v

    def wolves(self, b: int = 0) -> np.ndarray:
        """Read-only (4, n) view of model b's wolves (rows x, y, heading, energy)."""
        v = self._wolves[b, :, : self._n_wolves[b]].view()
        v.flags.writeable = False
        return v

    def green(self, b: int = 0) -> np.ndarray:
        """(height, width) boolean grass grid of model b (a copy), indexed [y, x]."""
        return self._green[b].reshape(self.height, self.width).astype(bool)

    def countdown(self, b: int = 0) -> np.ndarray:
        """(height, width) regrowth countdowns of model b (a copy), indexed [y, x]."""
        return self._countdown[b].reshape(self.height, self.width).copy()

    def snapshot(self, b: int = 0) -> PredatorPreyState:
        """A deep copy of model b's full state."""
        return PredatorPreyState(
            params=self.params[b], tick=int(self._tick[b]), rng_state=self._rng[b].copy(),
            green=self.green(b), countdown=self.countdown(b),
            sheep=self._sheep[b, :, : self._n_sheep[b]].copy(),
            wolves=self._wolves[b, :, : self._n_wolves[b]].copy(), status=int(self._status[b]))


class PredatorPreyModel(SingleModel):
    """One NetLogo-faithful sheep-wolves-grass model (a batch of one).

    >>> sim = PredatorPreyModel(PredatorPreyParams(width=51, height=51, initial_sheep=100,
    ...                                            initial_wolves=50), seed=42)
    >>> sim.step(5).shape
    (5, 3)
    >>> warm = sim.snapshot()              # store a (warm-started) state ...
    >>> a = sim.step(20, removal=(0.02, 0.0))
    >>> sim.restore(warm)                  # ... and continue it exactly again
    >>> bool((sim.step(20, removal=(0.02, 0.0)) == a).all())
    True
    """

    batch_cls = PredatorPreyBatch

    def step(self, n: int = 1, removal=(0.0, 0.0)) -> np.ndarray:
        """Advance ``n`` ticks; return the (n, 3) counts (grass, sheep, wolves) after each tick.

        ``removal``: (p_sheep, p_wolf) per-tick removal probabilities in [0, 1], or an (n, 2)
        per-tick schedule.
        """
        try:
            r = np.asarray(removal, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"removal must be probabilities (p_sheep, p_wolf) in [0, 1], got {removal!r}") from None
        if r.ndim == 2:
            r = r[None]
        return self._batch.step(n, r)[0]

    @property
    def seed_sequence(self) -> np.random.SeedSequence | None:
        """The seed of the current random stream (None after restoring a stored stream)."""
        return self._batch.seed_sequences[0]

    @property
    def counts(self) -> np.ndarray:
        """Current (grass, sheep, wolves)."""
        return self._batch.counts[0]

    @property
    def sheep(self) -> np.ndarray:
        """Read-only (4, n) view: rows x, y, heading, energy."""
        return self._batch.sheep(0)

    @property
    def wolves(self) -> np.ndarray:
        """Read-only (4, n) view: rows x, y, heading, energy."""
        return self._batch.wolves(0)

    @property
    def green(self) -> np.ndarray:
        """(height, width) boolean grass grid, indexed [y, x] (a copy)."""
        return self._batch.green(0)

    @property
    def countdown(self) -> np.ndarray:
        """(height, width) regrowth countdowns, indexed [y, x] (a copy)."""
        return self._batch.countdown(0)
