"""Toy metabolic pathway (Fonseca et al. 2024), off-lattice agent-based model, as batched Numba kernels.

Model: the "toy metabolic pathway" ABM of Fonseca, Boettcher, Mehrad & Laubenbacher,
*Optimal control of agent-based models via surrogate modeling*, PLOS Comput Biol 2024
(arXiv:2402.05750), also used by Boettcher, Fonseca & Laubenbacher, Phil Trans R Soc A 2025.
The rules and every parameter below are transcribed from the MATLAB scripts
``Met_Pathway_dataset_80k_20k_20k_10_10_wDil_wFeed.m`` (continuous) and
``..._NoDil.m`` (batch) of ``LaboratoryForSystemsMedicine/Metamodeling-and-Control-of-Medical-Digital-Twins_2024``
(MIT); none is assumed. Pathway::

    S --A--> P --E--> Q --I--> R          P --O--> T   (R activates O: ORP catalyses at 10 %, OP at 2 %)
    inhibition: R binds A (dead-end AR); P binds A (product AP); Q binds E (EQ); R binds I (IR);
                T binds O (OT)

World: a ``world x world`` torus (default 100 x 100) of unit patches; positions are continuous
in ``[0, L)^2`` and a molecule is on patch ``(floor(x), floor(y))``. Species: free metabolites
S, P, Q, R, T and enzyme units, each in one of 16 states (free A, E, I, O or a complex). An
enzyme unit keeps its identity and position through its states (the MATLAB script moves a
complex to a new table row but copies the enzyme's position), so each enzyme's total is
conserved exactly.

Initial state (script ``par.*0``): S 80,000, P 20,000, Q 20,000, R 10, T 10; 200 each of free
A, E, I, O; no complexes; all uniform on the torus (the script uses a Latin hypercube,
``lhsdesign``; here plain uniform positions).

One step (the script's ``while`` body, in this order):

1. Move: every metabolite moves ``mol_speed`` = 1 in a uniformly random direction, every
   enzyme unit (free or complexed) ``enz_speed`` = 0.1; positions wrap around the torus.
2. Binding, by type in the order A, E, I, O, OR, OP, OT; within a type in a fresh random
   order; only units that have not changed state in this step act. Each free ligand molecule
   on the unit's patch succeeds independently with the binding probability below (percent
   per step); the unit binds the first success in a uniformly random order of the patch's
   ligands -- equivalently, one success chosen uniformly -- which leaves the free pool and
   is unavailable to later units. The new complex is "fresh" (does not act again this step).
3. Separation: every complex that existed at the start of the step (not fresh) draws one
   uniform number and, with the probabilities below, releases its ligand, catalyses, or does
   nothing. A released molecule appears at the complex's position and is fresh.
4. Feed (continuous mode): ``feed * scale`` S molecules per step (the fractional part is
   carried over to the next step, as the script's ``NonInt``) at uniform random positions;
   they are fresh.
5. Dilution (continuous mode): every free metabolite that is not fresh (not released or fed
   in this step -- the script's ``status > 0`` test) is removed with probability
   ``dilution`` (script: D = 0.0005).

Rates, percent per step (script values; all are fields of :class:`MetabolicParams`):

=========  =================================  ==============================================
enzyme     binding                            separation of the complex
=========  =================================  ==============================================
A          S 4 (AS), P 2 (AP), R 8 (AR)       AS: release S 2, catalysis -> AP 2;
                                              AP: release P 4; AR: release R 1
E          P 8 (EP), Q 2 (EQ)                 EP: release P 2, catalysis -> EQ 3; EQ: release Q 4
I          Q 2 (IQ), R 2 (IR)                 IQ: release Q 0.5, catalysis -> IR 2; IR: release R 4
O          P 4 (OP), T 2 (OT), R 16 (OR)      OP: release P 2, catalysis -> OT 2; OT: release T 4;
                                              OR: release R 1 (``release_or``)
OR         P 32 (ORP), T 1 (ORT)              ORP: release P 1 (-> OR), catalysis -> ORT 10,
                                              release R 1 (-> OP);
OP, OT     R 16 (-> ORP, ORT; ``binding_or``)  ORT: release T 8 (-> OR), release R 1 (-> OT)
=========  =================================  ==============================================

``scale`` (0 < scale <= 1) shrinks the model for fast experiments by shrinking the *area*:
the torus side becomes ``L = round(world * sqrt(scale))`` and every molecule count is
multiplied by the exact area ratio ``effective_scale = L^2 / world^2`` (rounded to integers).
Concentrations (molecules per patch) -- which set every encounter rate -- are therefore those
of the full model, so ``counts / effective_scale`` estimates the full model's counts; keeping
the 100 x 100 world with fewer molecules would instead dilute every species and slow every
binding reaction by the factor ``scale``, a different model. The feed is given in molecules
per step *of the full model* and multiplied by ``effective_scale``, so the same feed value
means the same concentration flux at every scale. Rounding costs a few percent at small
scales (scale 0.1: L = 32, effective_scale 0.1024, 20 enzymes of each kind instead of 20.48,
R0 = T0 = 1).

Counts (:data:`SPECIES` order): free S, P, Q, R, T, then the 16 enzyme states. The published
continuous steady state (feed 1.0; mean trajectories of the repository's
``Met_Pathwayv2_S80k_P20k_Q20k_Dil0005In1.mat``, as summarised in
``shared/references/digital_twin.md``) is :data:`PUBLISHED_CONTINUOUS_STEADY_STATE`;
``scripts/validate_metabolic.py`` compares this kernel against it. Measured (scale 0.1, 4 runs,
full-scale counts; every rate is the script's, nothing was calibrated): continuous, feed 1.0,
mean over steps 30,001-50,000: S 1,236 (published 1,246, -0.8 %), P 165 (171, -3.5 %),
Q 163 (177, -8.1 %, standard error 5 %), R 101 (106, -4.6 %), T 297 (304, -2.3 %); feed 0.2:
S 230 (233), R 27.3 (29), T 51.1 (48); batch mode at t = 1e5: S 21.0k (20.5k), R 36.3k
(36.7k), T 61.4k (61.4k). The R and T labels of the published means therefore match this
model's species (R made from Q by I, T from P by O), whatever the ODE scripts' comments say.

Randomness: one xoshiro256** stream per model (:mod:`simrl.physics.ecology.rng`); the draws of
a step depend only on the model's own state, so a model's trajectory depends only on its seed,
parameters and feed schedule -- not on the batch or on serial versus parallel execution.

Cost: see ``benchmarks/bench_ecology.py`` (per step: O(molecules) for the moves and the
sparse patch binning -- only molecules on patches holding a binding-capable enzyme are
binned, by a counting sort -- plus O(enzymes x ligands per patch) for binding; dilution uses
geometric skips, O(diluted molecules), instead of one draw per molecule).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np
from numba import njit, prange

from simrl.physics.compile import serial_and_parallel
from simrl.physics.ecology import STATUS_NEED_CAPACITY, STATUS_OK, STATUS_POPULATION_CAP
from simrl.physics.ecology.common import (
    BatchBase,
    SingleModel,
    as_params,
    as_seed_sequence,
    check_real,
    checked_snapshots,
    is_int,
    params_list,
    replace_params,
    save_npz_atomic,
    seed_sequence_list,
)
from simrl.physics.ecology.rng import next_u64, randint, seed_state, uniform

# --------------------------------------------------------------------------------------
# Species and reaction tables
# --------------------------------------------------------------------------------------

#: Free metabolites (codes 0..4 in the kernels).
METABOLITES = ("S", "P", "Q", "R", "T")
#: Enzyme-unit states (codes 0..15 in the kernels): the free enzymes and their complexes.
ENZYME_STATES = ("A", "AS", "AP", "AR", "E", "EP", "EQ", "I", "IQ", "IR",
                 "O", "OP", "OT", "OR", "ORP", "ORT")
#: Names of the counted quantities, metabolites first (columns of every ``counts`` array).
SPECIES = METABOLITES + ENZYME_STATES
N_METABOLITES = len(METABOLITES)
N_STATES = len(ENZYME_STATES)
#: Catalysis events counted by ``reactions``: S->P (by A), P->Q (E), Q->R (I), P->T (O, as OP or ORP).
REACTIONS = ("S->P", "P->Q", "Q->R", "P->T")
#: Enzymes (free states), and the states that belong to each: ``ENZYME_FORMS["A"]``.
ENZYMES = ("A", "E", "I", "O")
ENZYME_FORMS = {
    "A": ("A", "AS", "AP", "AR"),
    "E": ("E", "EP", "EQ"),
    "I": ("I", "IQ", "IR"),
    "O": ("O", "OP", "OT", "OR", "ORP", "ORT"),
}
#: Carbon of each counted species (1 per metabolite, bound or free; 2 in ORP and ORT): in
#: batch mode ``counts @ CARBON`` is conserved.
CARBON = np.array([1, 1, 1, 1, 1,                       # S P Q R T
                   0, 1, 1, 1, 0, 1, 1, 0, 1, 1,        # A AS AP AR E EP EQ I IQ IR
                   0, 1, 1, 1, 2, 2], np.int64)         # O OP OT OR ORP ORT
#: Substrate not yet turned into a product: S, P and Q, free or bound (AS; AP, EP, OP and the P
#: of ORP; EQ, IQ), one per molecule. ``counts @ SUBSTRATE_POOL`` changes only by the feed, the
#: two product-forming catalyses (Q->R, P->T) and the dilution of free S, P, Q; it is the
#: inventory in the yield of ``simrl/MetabolicPathway-v0``.
SUBSTRATE_POOL = np.array([1, 1, 1, 0, 0,               # S P Q R T
                           0, 1, 1, 0, 0, 1, 1, 0, 1, 0,  # A AS AP AR E EP EQ I IQ IR
                           0, 1, 0, 0, 1, 0], np.int64)   # O OP OT OR ORP ORT
#: Continuous mode, feed 1.0, dilution 0.0005: published mean steady state of the free
#: metabolites (S, P, Q, R, T), full scale.
PUBLISHED_CONTINUOUS_STEADY_STATE = (1246.0, 171.0, 177.0, 106.0, 304.0)
#: Batch mode, t = 1e5: published means of S, R, T (the other two are not summarised).
PUBLISHED_BATCH_T100K = {"S": 20500.0, "R": 36700.0, "T": 61400.0}

_M = {name: i for i, name in enumerate(METABOLITES)}
_ST = {name: i for i, name in enumerate(ENZYME_STATES)}
# Binding: (enzyme state, ligand, complex, MetabolicParams field).
_BINDING = (
    ("A", "S", "AS", "binding_as"), ("A", "P", "AP", "binding_ap"), ("A", "R", "AR", "binding_ar"),
    ("E", "P", "EP", "binding_ep"), ("E", "Q", "EQ", "binding_eq"),
    ("I", "Q", "IQ", "binding_iq"), ("I", "R", "IR", "binding_ir"),
    ("O", "P", "OP", "binding_op"), ("O", "T", "OT", "binding_ot"), ("O", "R", "OR", "binding_or"),
    ("OR", "P", "ORP", "binding_orp"), ("OR", "T", "ORT", "binding_ort"),
    ("OP", "R", "ORP", "binding_or"), ("OT", "R", "ORT", "binding_or"),
)
#: Order in which the binder types act in a step (the script's order).
BINDER_ORDER = ("A", "E", "I", "O", "OR", "OP", "OT")
# Separation: complex -> list of (field, new state, released metabolite or None, reaction index
# or -1), tried in this order against one uniform draw (the script's dice order).
_SEPARATION = {
    "AS": (("release_as", "A", "S", -1), ("cat_as", "AP", None, 0)),
    "AP": (("release_ap", "A", "P", -1),),
    "AR": (("release_ar", "A", "R", -1),),
    "EP": (("release_ep", "E", "P", -1), ("cat_ep", "EQ", None, 1)),
    "EQ": (("release_eq", "E", "Q", -1),),
    "IQ": (("release_iq", "I", "Q", -1), ("cat_iq", "IR", None, 2)),
    "IR": (("release_ir", "I", "R", -1),),
    "OP": (("release_op", "O", "P", -1), ("cat_op", "OT", None, 3)),
    "OT": (("release_ot", "O", "T", -1),),
    "OR": (("release_or", "O", "R", -1),),
    "ORP": (("release_orp", "OR", "P", -1), ("cat_orp", "ORT", None, 3), ("release_or", "OP", "R", -1)),
    "ORT": (("release_ort", "OR", "T", -1), ("release_or", "OT", "R", -1)),
}
_MAX_OUTCOMES = 3


def _structure_tables():
    bnext = np.full((N_STATES, N_METABOLITES), -1, np.int8)
    for enz, lig, cplx, _ in _BINDING:
        bnext[_ST[enz], _M[lig]] = _ST[cplx]
    sep_next = np.full((N_STATES, _MAX_OUTCOMES), -1, np.int8)
    sep_mol = np.full((N_STATES, _MAX_OUTCOMES), -1, np.int8)
    sep_rx = np.full((N_STATES, _MAX_OUTCOMES), -1, np.int8)
    for cplx, outs in _SEPARATION.items():
        for k, (_, new, mol, rx) in enumerate(outs):
            sep_next[_ST[cplx], k] = _ST[new]
            sep_mol[_ST[cplx], k] = -1 if mol is None else _M[mol]
            sep_rx[_ST[cplx], k] = rx
    is_complex = np.zeros(N_STATES, np.uint8)
    for cplx in _SEPARATION:
        is_complex[_ST[cplx]] = 1
    is_binder = np.zeros(N_STATES, np.uint8)
    for s in BINDER_ORDER:
        is_binder[_ST[s]] = 1
    order = np.array([_ST[s] for s in BINDER_ORDER], np.int8)
    return bnext, sep_next, sep_mol, sep_rx, is_complex, is_binder, order


_BNEXT, _SEP_NEXT, _SEP_MOL, _SEP_RX, _IS_COMPLEX, _IS_BINDER, _BINDER_ORDER = _structure_tables()

# --------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------

_TWO_POW_M31 = 1.0 / 2147483648.0


@njit(inline="always")
def _rand_dir(rng):
    """A uniformly random unit vector (Marsaglia's rejection from the square; ~1.27 draws)."""
    while True:
        r = next_u64(rng)
        u = np.float64(r >> np.uint64(32)) * _TWO_POW_M31 - 1.0
        v = np.float64(r & np.uint64(0xFFFFFFFF)) * _TWO_POW_M31 - 1.0
        s = u * u + v * v
        if 0.0 < s <= 1.0:
            inv = 1.0 / math.sqrt(s)
            return u * inv, v * inv


@njit(inline="always")
def _wrap(v, length):
    if v < 0.0:
        v += length
    if v >= length:  # also catches -tiny + length rounding to length
        v -= length
    return v


@njit(inline="always")
def _patch(x, y, side):
    px = np.int64(x)
    py = np.int64(y)
    if px >= side:
        px = side - 1
    if py >= side:
        py = side - 1
    return py * side + px


@njit(inline="always")
def _shuffle(a, n, rng):
    """Fisher-Yates shuffle of ``a[:n]`` in place."""
    for i in range(n - 1, 0, -1):
        j = randint(rng, i + 1)
        t = a[i]
        a[i] = a[j]
        a[j] = t


@njit(cache=True)
def _step(rng, mx, my, msp, nm, ex, ey, est, ne, side, mol_speed, enz_speed,
          pbind, sep_cum, bnext, sep_next, sep_mol, sep_rx, is_complex, is_binder, binder_order,
          n_feed, dilution, counts, diluted, reactions,
          mark, pstart, pcount, sorted_, cand, dead, plist, epatch, order, fresh):
    """One step of one model (see the module docstring); returns the new molecule count."""
    lf = np.float64(side)
    # 1a. Enzymes move; mark the patches of binding-capable units.
    npl = 0
    for u in range(ne):
        dx, dy = _rand_dir(rng)
        x = _wrap(ex[u] + enz_speed * dx, lf)
        y = _wrap(ey[u] + enz_speed * dy, lf)
        ex[u] = x
        ey[u] = y
        p = _patch(x, y, side)
        epatch[u] = p
        fresh[u] = 0
        if is_binder[est[u]] and mark[p] == 0:
            mark[p] = 1
            plist[npl] = p
            npl += 1
    # 1b. Metabolites move; those on marked patches are binned (counting sort).
    nc = 0
    for i in range(nm):
        dx, dy = _rand_dir(rng)
        x = _wrap(mx[i] + mol_speed * dx, lf)
        y = _wrap(my[i] + mol_speed * dy, lf)
        mx[i] = x
        my[i] = y
        p = _patch(x, y, side)
        if mark[p]:
            pcount[p] += 1
            cand[nc] = i
            nc += 1
    off = 0
    for k in range(npl):
        p = plist[k]
        off += pcount[p]
        pstart[p] = off  # end offset; the scatter below decrements it to the start
    for c in range(nc - 1, -1, -1):
        i = cand[c]
        p = _patch(mx[i], my[i], side)
        pstart[p] -= 1
        sorted_[pstart[p]] = i
    # 2. Binding, type by type, units in random order.
    ndead = 0
    for t in range(binder_order.shape[0]):
        s = binder_order[t]
        k = 0
        for u in range(ne):
            if est[u] == s and fresh[u] == 0:
                order[k] = u
                k += 1
        _shuffle(order, k, rng)
        for j in range(k):
            u = order[j]
            p = epatch[u]
            start = pstart[p]
            chosen = -1
            nsucc = 0
            for q in range(start, start + pcount[p]):
                i = sorted_[q]
                m = msp[i]
                if m < 0:
                    continue
                pb = pbind[s, m]
                if pb > 0.0 and uniform(rng) < pb:
                    nsucc += 1  # reservoir sampling: a uniform choice among the successes
                    if nsucc == 1 or randint(rng, nsucc) == 0:
                        chosen = i
            if chosen >= 0:
                m = msp[chosen]
                msp[chosen] = -1
                counts[m] -= 1
                dead[ndead] = chosen
                ndead += 1
                est[u] = bnext[s, m]
                fresh[u] = 1
    for k in range(npl):
        p = plist[k]
        mark[p] = 0
        pcount[p] = 0
    # 3. Separation of the complexes that existed at the start of the step.
    n_old = nm
    for u in range(ne):
        s = est[u]
        if fresh[u] or not is_complex[s]:
            continue
        d = uniform(rng)
        for o in range(sep_cum.shape[1]):
            if d < sep_cum[s, o]:
                est[u] = sep_next[s, o]
                fresh[u] = 1
                m = sep_mol[s, o]
                if m >= 0:
                    mx[nm] = ex[u]
                    my[nm] = ey[u]
                    msp[nm] = m
                    nm += 1
                    counts[m] += 1
                else:
                    reactions[sep_rx[s, o]] += 1
                break
    # 4. Feed (fresh S at uniform positions).
    for f in range(n_feed):
        mx[nm] = _wrap(uniform(rng) * lf, lf)
        my[nm] = _wrap(uniform(rng) * lf, lf)
        msp[nm] = 0
        nm += 1
    counts[0] += n_feed
    # 5. Dilution of the non-fresh free metabolites (indices < n_old): independent Bernoulli
    # marks per index, drawn as geometric gaps between marks (dead indices are skipped).
    if dilution >= 1.0:
        for i in range(n_old):
            m = msp[i]
            if m >= 0:
                msp[i] = -1
                counts[m] -= 1
                diluted[m] += 1
                dead[ndead] = i
                ndead += 1
    elif dilution > 0.0:
        lq = math.log1p(-dilution)
        i = -1
        while True:
            g = math.floor(math.log(1.0 - uniform(rng)) / lq)
            if g >= n_old - i:
                break
            i += np.int64(g) + 1
            if i >= n_old:
                break
            m = msp[i]
            if m >= 0:
                msp[i] = -1
                counts[m] -= 1
                diluted[m] += 1
                dead[ndead] = i
                ndead += 1
    # Compaction: remove the dead by moving the last molecules into the holes, highest first
    # (then the last molecule is always alive or the hole itself).
    dd = dead[:ndead]
    dd.sort()
    for k in range(ndead - 1, -1, -1):
        h = dd[k]
        last = nm - 1
        if h != last:
            mx[h] = mx[last]
            my[h] = my[last]
            msp[h] = msp[last]
        nm -= 1
    for s in range(N_STATES):
        counts[N_METABOLITES + s] = 0
    for u in range(ne):
        counts[N_METABOLITES + est[u]] += 1
    return nm


@njit(cache=True)
def work_length(n_patches, cap_mol, n_enz):
    """Length of a model's int32 scratch row."""
    return 3 * n_patches + 3 * cap_mol + 4 * n_enz


@njit(cache=True)
def _advance_model(rng, mx, my, msp, nm, ex, ey, est, ne, side, mol_speed, enz_speed,
                   pbind, sep_cum, bnext, sep_next, sep_mol, sep_rx, is_complex, is_binder, binder_order,
                   feed, carry, dilution, max_mol, counts, fed, diluted, reactions,
                   n_steps, every, traj, k, tick, work):
    """Run one model from step ``k`` of this call; returns ``(nm, k, tick, carry, fed, status)``."""
    cm = mx.shape[0]
    n_patches = side * side
    if work.shape[0] < work_length(n_patches, cm, ne):
        return nm, k, tick, carry, fed, STATUS_NEED_CAPACITY
    o = 0
    mark = work[o : o + n_patches]
    o += n_patches
    pstart = work[o : o + n_patches]
    o += n_patches
    pcount = work[o : o + n_patches]
    o += n_patches
    sorted_ = work[o : o + cm]
    o += cm
    cand = work[o : o + cm]
    o += cm
    dead = work[o : o + cm]
    o += cm
    plist = work[o : o + ne]
    o += ne
    epatch = work[o : o + ne]
    o += ne
    order = work[o : o + ne]
    o += ne
    fresh = work[o : o + ne]
    while k < n_steps:
        amount = feed + carry
        n_feed = np.int64(math.floor(amount))
        if nm + ne + n_feed > cm:
            return nm, k, tick, carry, fed, STATUS_NEED_CAPACITY
        if nm + n_feed > max_mol:
            return nm, k, tick, carry, fed, STATUS_POPULATION_CAP
        carry = amount - n_feed
        nm = _step(rng, mx, my, msp, nm, ex, ey, est, ne, side, mol_speed, enz_speed,
                   pbind, sep_cum, bnext, sep_next, sep_mol, sep_rx, is_complex, is_binder, binder_order,
                   n_feed, dilution, counts, diluted, reactions,
                   mark, pstart, pcount, sorted_, cand, dead, plist, epatch, order, fresh)
        fed += n_feed
        k += 1
        tick += 1
        if every > 0 and k % every == 0:
            row = k // every - 1
            for c in range(counts.shape[0]):
                traj[row, c] = counts[c]
    return nm, k, tick, carry, fed, STATUS_OK


def _advance_metabolic(rng, mx, my, msp, n_mol, ex, ey, est, n_enz, side, speeds, pbind, sep_cum,
                       bnext, sep_next, sep_mol, sep_rx, is_complex, is_binder, binder_order,
                       feed, carry, dilution, max_mol, counts, fed, diluted, reactions,
                       n_steps, every, traj, done, tick, status, work):
    """Advance each of B models by the remaining steps of this call."""
    for b in prange(rng.shape[0]):
        nm, k, t, c, f, st = _advance_model(
            rng[b], mx[b], my[b], msp[b], n_mol[b], ex[b], ey[b], est[b], n_enz[b], side,
            speeds[b, 0], speeds[b, 1], pbind[b], sep_cum[b], bnext, sep_next, sep_mol, sep_rx,
            is_complex, is_binder, binder_order, feed[b], carry[b], dilution[b], max_mol[b],
            counts[b], fed[b], diluted[b], reactions[b], n_steps, every, traj[b], done[b], tick[b], work[b])
        n_mol[b] = nm
        done[b] = k
        tick[b] = t
        carry[b] = c
        fed[b] = f
        status[b] = st


advance_metabolic_serial, advance_metabolic_parallel = serial_and_parallel(_advance_metabolic)


@njit(cache=True)
def _init_positions(x, y, n, side, rng):
    lf = np.float64(side)
    for i in range(n):
        x[i] = _wrap(uniform(rng) * lf, lf)
        y[i] = _wrap(uniform(rng) * lf, lf)


# --------------------------------------------------------------------------------------
# Parameters and validation
# --------------------------------------------------------------------------------------

_MODES = ("batch", "continuous")
_RATE_FIELDS = (
    "binding_as", "binding_ap", "binding_ar", "release_as", "release_ap", "release_ar", "cat_as",
    "binding_ep", "binding_eq", "release_ep", "release_eq", "cat_ep",
    "binding_iq", "binding_ir", "release_iq", "release_ir", "cat_iq",
    "binding_op", "binding_ot", "binding_or", "release_op", "release_ot", "release_or", "cat_op",
    "binding_orp", "binding_ort", "release_orp", "release_ort", "cat_orp",
)
_COUNT_FIELDS = ("initial_s", "initial_p", "initial_q", "initial_r", "initial_t",
                 "initial_a", "initial_e", "initial_i", "initial_o")
MAX_FEED = 1e6


# Shared with the predator-prey model (same messages); the private names stay for existing imports.
_is_int = is_int
_check_real = check_real


def _round(v: float) -> int:
    return int(math.floor(v + 0.5))


@dataclass(frozen=True)
class MetabolicParams:
    """Parameters of the toy metabolic pathway; defaults are the MATLAB script's.

    ``mode``: ``"continuous"`` (S fed at ``feed`` molecules per step of the full model, free
    metabolites diluted with probability ``dilution`` per step) or ``"batch"`` (closed: no
    feed, no dilution; ``feed`` and ``dilution`` are ignored). ``scale`` in (0, 1] shrinks the
    area and every count (see the module docstring). Rates are percent per step, as in the
    script (``binding_as=4`` is 4 %). Initial counts are those of the full model.
    ``max_molecules`` is a safety cap (not a model rule): a model that would exceed it stops
    with ``STATUS_POPULATION_CAP``.
    """

    mode: str = "continuous"
    feed: float = 1.0
    dilution: float = 0.0005
    scale: float = 1.0
    world: float = 100.0
    mol_speed: float = 1.0
    enz_speed: float = 0.1
    initial_s: int = 80_000
    initial_p: int = 20_000
    initial_q: int = 20_000
    initial_r: int = 10
    initial_t: int = 10
    initial_a: int = 200
    initial_e: int = 200
    initial_i: int = 200
    initial_o: int = 200
    binding_as: float = 4.0
    binding_ap: float = 2.0
    binding_ar: float = 8.0
    release_as: float = 2.0
    release_ap: float = 4.0
    release_ar: float = 1.0
    cat_as: float = 2.0
    binding_ep: float = 8.0
    binding_eq: float = 2.0
    release_ep: float = 2.0
    release_eq: float = 4.0
    cat_ep: float = 3.0
    binding_iq: float = 2.0
    binding_ir: float = 2.0
    release_iq: float = 0.5
    release_ir: float = 4.0
    cat_iq: float = 2.0
    binding_op: float = 4.0
    binding_ot: float = 2.0
    binding_or: float = 16.0
    release_op: float = 2.0
    release_ot: float = 4.0
    release_or: float = 1.0
    cat_op: float = 2.0
    binding_orp: float = 32.0
    binding_ort: float = 1.0
    release_orp: float = 1.0
    release_ort: float = 8.0
    cat_orp: float = 10.0
    max_molecules: int = 10_000_000

    def __post_init__(self):
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        _check_real("feed", self.feed, 0.0, MAX_FEED, "molecules per step (full-scale units)")
        _check_real("dilution", self.dilution, 0.0, 1.0, "a per-step probability")
        if isinstance(self.scale, bool) or not isinstance(self.scale, numbers.Real) or not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale must be a number in (0, 1], got {self.scale!r}")
        _check_real("world", self.world, 1.0, 4096.0, "an integer-valued side length")
        if float(self.world) != math.floor(self.world):
            raise ValueError(f"world must be an integer-valued side length (unit patches), got {self.world!r}")
        _check_real("mol_speed", self.mol_speed, 0.0, self.side / 2.0, "a step length (patches)")
        _check_real("enz_speed", self.enz_speed, 0.0, self.side / 2.0, "a step length (patches)")
        for name in _COUNT_FIELDS:
            v = getattr(self, name)
            if not _is_int(v) or not 0 <= v <= 10**8:
                raise ValueError(f"{name} must be an integer in [0, 100000000], got {v!r}")
        if not _is_int(self.max_molecules) or not 1 <= self.max_molecules <= 2**30:
            raise ValueError(f"max_molecules must be an integer in [1, {2**30}], got {self.max_molecules!r}")
        if self.initial_counts()[:N_METABOLITES].sum() > self.max_molecules:
            raise ValueError("the initial metabolites exceed max_molecules")
        if sum(self.initial_counts()[N_METABOLITES:]) > 2**24:
            raise ValueError("too many enzymes (more than 16,777,216)")
        for name in _RATE_FIELDS:
            _check_real(name, getattr(self, name), 0.0, 100.0, "a percentage per step")
        for cplx, outs in _SEPARATION.items():
            total = sum(getattr(self, f) for f, *_ in outs)
            if total > 100.0:
                raise ValueError(f"the exit percentages of complex {cplx} ({', '.join(f for f, *_ in outs)}) "
                                 f"sum to {total} > 100")

    @property
    def side(self) -> int:
        """Torus side in patches after scaling: ``round(world * sqrt(scale))``, at least 1."""
        return max(1, _round(float(self.world) * math.sqrt(self.scale)))

    @property
    def effective_scale(self) -> float:
        """Exact area ratio ``side^2 / world^2`` that multiplies every count and the feed."""
        return self.side**2 / float(self.world) ** 2

    @property
    def n_patches(self) -> int:
        return self.side * self.side

    def initial_counts(self) -> np.ndarray:
        """(len(SPECIES),) initial counts after scaling (metabolites, then free enzymes)."""
        a = self.effective_scale
        c = np.zeros(len(SPECIES), np.int64)
        for k, name in enumerate(("initial_s", "initial_p", "initial_q", "initial_r", "initial_t")):
            c[k] = _round(getattr(self, name) * a)
        for enz in ENZYMES:
            c[SPECIES.index(enz)] = _round(getattr(self, f"initial_{enz.lower()}") * a)
        return c

    @property
    def effective_feed(self) -> float:
        """S molecules added per step to this (scaled) model: ``feed * effective_scale`` (0 in batch mode)."""
        return self.feed * self.effective_scale if self.mode == "continuous" else 0.0

    @property
    def effective_dilution(self) -> float:
        return self.dilution if self.mode == "continuous" else 0.0

    def replace(self, **changes) -> "MetabolicParams":
        """A copy with some fields changed (validated)."""
        return replace_params(self, changes)

    def binding_table(self) -> np.ndarray:
        """(16, 5) per-step binding probabilities (fractions) of enzyme state x metabolite."""
        t = np.zeros((N_STATES, N_METABOLITES), np.float64)
        for enz, lig, _, f in _BINDING:
            t[_ST[enz], _M[lig]] = getattr(self, f) / 100.0
        return t

    def separation_table(self) -> np.ndarray:
        """(16, 3) cumulative exit probabilities of each complex, in the script's dice order."""
        t = np.zeros((N_STATES, _MAX_OUTCOMES), np.float64)
        for cplx, outs in _SEPARATION.items():
            acc = 0.0
            for k, (f, *_) in enumerate(outs):
                acc += getattr(self, f) / 100.0
                t[_ST[cplx], k] = acc
        return t


def _as_params(params) -> MetabolicParams:
    return as_params(params, MetabolicParams)


_as_seed_sequence = as_seed_sequence


# --------------------------------------------------------------------------------------
# State snapshots
# --------------------------------------------------------------------------------------


@dataclass
class MetabolicState:
    """The full state of one model: enough to continue it exactly (or branch it with a new seed).

    ``molecules`` is (2, n) float64 (rows x, y) with ``species`` (n,) int8 metabolite codes
    (index into :data:`METABOLITES`); ``enzymes`` (2, m) with ``enzyme_states`` (m,) int8
    (index into :data:`ENZYME_STATES`). ``feed_carry`` is the fractional feed carried over;
    ``fed``, ``diluted`` (5,), ``reactions`` (4,) are cumulative event counters.
    """

    params: MetabolicParams
    tick: int
    rng_state: np.ndarray
    molecules: np.ndarray
    species: np.ndarray
    enzymes: np.ndarray
    enzyme_states: np.ndarray
    feed_carry: float = 0.0
    fed: int = 0
    diluted: np.ndarray = None  # type: ignore[assignment]
    reactions: np.ndarray = None  # type: ignore[assignment]
    status: int = STATUS_OK

    def __post_init__(self):
        if self.diluted is None:
            self.diluted = np.zeros(N_METABOLITES, np.int64)
        if self.reactions is None:
            self.reactions = np.zeros(len(REACTIONS), np.int64)

    @property
    def counts(self) -> np.ndarray:
        """(len(SPECIES),) counts of this state."""
        c = np.zeros(len(SPECIES), np.int64)
        c[:N_METABOLITES] = np.bincount(np.asarray(self.species, np.int64), minlength=N_METABOLITES)[:N_METABOLITES]
        c[N_METABOLITES:] = np.bincount(np.asarray(self.enzyme_states, np.int64), minlength=N_STATES)[:N_STATES]
        return c

    def copy(self) -> "MetabolicState":
        return MetabolicState(self.params, self.tick, self.rng_state.copy(), self.molecules.copy(),
                              self.species.copy(), self.enzymes.copy(), self.enzyme_states.copy(),
                              self.feed_carry, self.fed, self.diluted.copy(), self.reactions.copy(), self.status)

    def validate(self) -> None:
        """Raise ValueError if the arrays are inconsistent with ``params`` or with each other."""
        p = self.params
        if not isinstance(p, MetabolicParams):
            raise ValueError("state.params must be a MetabolicParams")
        if not (_is_int(self.tick) and self.tick >= 0):
            raise ValueError("tick must be an integer >= 0")
        if not (np.shape(self.rng_state) == (4,) and np.asarray(self.rng_state).dtype == np.uint64
                and np.any(self.rng_state)):
            raise ValueError("rng_state must be a non-zero (4,) uint64 array")
        side = p.side
        for name, xy, codes, n_codes in (("molecules", self.molecules, self.species, N_METABOLITES),
                                         ("enzymes", self.enzymes, self.enzyme_states, N_STATES)):
            a = np.asarray(xy)
            c = np.asarray(codes)
            if a.ndim != 2 or a.shape[0] != 2 or c.shape != (a.shape[1],):
                raise ValueError(f"{name} must have shape (2, n) (rows x, y) with one code per column")
            if a.size and (not np.all(np.isfinite(a)) or a.min() < 0 or a.max() >= side):
                raise ValueError(f"{name} positions must lie in [0, side) = [0, {side})")
            if c.size and (c.min() < 0 or c.max() >= n_codes):
                raise ValueError(f"{name} codes must lie in [0, {n_codes})")
        if self.molecules.shape[1] > p.max_molecules:
            raise ValueError("more molecules than max_molecules")
        if not (math.isfinite(self.feed_carry) and 0.0 <= self.feed_carry < 1.0):
            raise ValueError("feed_carry must lie in [0, 1)")
        if np.shape(self.diluted) != (N_METABOLITES,) or np.shape(self.reactions) != (len(REACTIONS),):
            raise ValueError(f"diluted must have shape ({N_METABOLITES},), reactions ({len(REACTIONS)},)")

    def save(self, path) -> None:
        """Write the state atomically to an ``.npz`` file (parameters stored as JSON)."""
        save_npz_atomic(path, params=json.dumps(asdict(self.params)), tick=self.tick,
                        rng_state=self.rng_state, molecules=self.molecules, species=self.species,
                        enzymes=self.enzymes, enzyme_states=self.enzyme_states,
                        feed_carry=self.feed_carry, fed=self.fed, diluted=self.diluted,
                        reactions=self.reactions, status=self.status)

    @classmethod
    def load(cls, path) -> "MetabolicState":
        with np.load(path, allow_pickle=False) as f:
            state = cls(MetabolicParams(**json.loads(str(f["params"]))), int(f["tick"]),
                        f["rng_state"].astype(np.uint64), f["molecules"].astype(np.float64),
                        f["species"].astype(np.int8), f["enzymes"].astype(np.float64),
                        f["enzyme_states"].astype(np.int8), float(f["feed_carry"]), int(f["fed"]),
                        f["diluted"].astype(np.int64), f["reactions"].astype(np.int64), int(f["status"]))
        state.validate()
        return state


# --------------------------------------------------------------------------------------
# Python-facing classes
# --------------------------------------------------------------------------------------


def _check_steps(n) -> int:
    if not _is_int(n) or not 0 <= n <= 2**31 - 1:
        raise ValueError(f"n must be an integer in [0, {2**31 - 1}], got {n!r}")
    return int(n)


class MetabolicBatch(BatchBase):
    """B independent metabolic-pathway models of the same size, advanced together by one kernel.

    >>> batch = MetabolicBatch(MetabolicParams(scale=0.01), seeds=[1, 2, 3])
    >>> batch.step(10).shape            # counts after 10 steps, columns = SPECIES
    (3, 21)
    >>> batch.step(5, feed=[0.0, 1.0, 2.0]).shape   # per-model feed for this call
    (3, 21)

    ``params``: one :class:`MetabolicParams` for all models or one per model (all with the same
    ``side``). ``seeds``: one per model; model ``b`` equals ``MetabolicModel(params[b], seeds[b])``.
    ``parallel``: one model per thread (identical results).
    """

    def __init__(self, params, seeds: Sequence, *, parallel: bool = False):
        self.parallel = bool(parallel)
        self.seed_sequences = seed_sequence_list(seeds, "simrl.physics.ecology.spawn_seeds")
        plist = self._params_list(params, len(self.seed_sequences))
        inits = [p.initial_counts() for p in plist]
        n_mol = [int(c[:N_METABOLITES].sum()) for c in inits]
        n_enz = [int(c[N_METABOLITES:].sum()) for c in inits]
        self._setup_arrays(plist, max(n_mol), max(n_enz))
        self._rng[:] = np.stack([seed_state(ss) for ss in self.seed_sequences])
        for b, c in enumerate(inits):
            codes = np.repeat(np.arange(N_METABOLITES, dtype=np.int8), c[:N_METABOLITES])
            self._msp[b, : codes.size] = codes
            self._n_mol[b] = codes.size
            states = np.repeat(np.arange(N_STATES, dtype=np.int8), c[N_METABOLITES:])
            self._est[b, : states.size] = states
            self._n_enz[b] = states.size
            _init_positions(self._mx[b], self._my[b], codes.size, self.side, self._rng[b])
            _init_positions(self._ex[b], self._ey[b], states.size, self.side, self._rng[b])
            self._counts[b] = c

    # ---- construction helpers -----------------------------------------------------------

    @staticmethod
    def _params_list(params, n) -> list[MetabolicParams]:
        plist = params_list(params, n, MetabolicParams)
        if len({p.side for p in plist}) != 1:
            raise ValueError("all models of a batch must have the same side (world * sqrt(scale))")
        return plist

    def _setup_arrays(self, plist: list[MetabolicParams], n_mol: int, n_enz: int) -> None:
        b = len(plist)
        self.params: tuple[MetabolicParams, ...] = tuple(plist)
        self.side = plist[0].side
        cm = max(1024, 2 * n_mol)
        ce = max(1, n_enz)
        self._speeds = np.array([(p.mol_speed, p.enz_speed) for p in plist], np.float64)
        self._pbind = np.stack([p.binding_table() for p in plist])
        self._sep = np.stack([p.separation_table() for p in plist])
        self._dilution = np.array([p.effective_dilution for p in plist], np.float64)
        self._max_mol = np.array([p.max_molecules for p in plist], np.int64)
        self._rng = np.zeros((b, 4), np.uint64)
        self._mx = np.zeros((b, cm), np.float64)
        self._my = np.zeros((b, cm), np.float64)
        self._msp = np.full((b, cm), -1, np.int8)
        self._ex = np.zeros((b, ce), np.float64)
        self._ey = np.zeros((b, ce), np.float64)
        self._est = np.zeros((b, ce), np.int8)
        self._n_mol = np.zeros(b, np.int64)
        self._n_enz = np.zeros(b, np.int64)
        self._counts = np.zeros((b, len(SPECIES)), np.int64)
        self._carry = np.zeros(b, np.float64)
        self._fed = np.zeros(b, np.int64)
        self._diluted = np.zeros((b, N_METABOLITES), np.int64)
        self._reactions = np.zeros((b, len(REACTIONS)), np.int64)
        self._tick = np.zeros(b, np.int64)
        self._status = np.zeros(b, np.int64)
        self._work = np.zeros((b, work_length(self.side * self.side, cm, ce)), np.int32)

    @classmethod
    def from_snapshots(cls, states: Iterable[MetabolicState], seeds: Sequence | None = None, *,
                       parallel: bool = False) -> "MetabolicBatch":
        """A batch continuing the given states (exactly with ``seeds=None``; else new streams)."""
        states, seeds = checked_snapshots(states, seeds)
        self = cls.__new__(cls)
        self.parallel = bool(parallel)
        self._setup_arrays(cls._params_list([s.params for s in states], len(states)),
                           max(s.molecules.shape[1] for s in states), max(s.enzymes.shape[1] for s in states))
        self.seed_sequences = [None] * len(states)
        for b, s in enumerate(states):
            self.restore(b, s, None if seeds is None else seeds[b])
        return self

    def restore(self, b: int, state: MetabolicState, seed=None) -> None:
        """Replace model ``b`` by ``state`` (exactly, or with a fresh stream from ``seed``); the
        other models are untouched. For vector environments that reset one model from a stored
        (e.g. steady-state) snapshot. ``state.params.side`` must equal this batch's side."""
        if not _is_int(b) or not 0 <= b < self.n_models:
            raise ValueError(f"b must be an integer in [0, {self.n_models}), got {b!r}")
        if not isinstance(state, MetabolicState):
            raise ValueError(f"state must be a MetabolicState, got {type(state).__name__}")
        state.validate()
        p = state.params
        if p.side != self.side:
            raise ValueError(f"state side {p.side} differs from the batch's side {self.side}")
        n, m = state.molecules.shape[1], state.enzymes.shape[1]
        self._ensure_capacity(2 * n + m + 2)
        if m > self._ex.shape[1]:
            for attr in ("_ex", "_ey", "_est"):
                a = getattr(self, attr)
                g = np.zeros((a.shape[0], m), a.dtype)
                g[:, : a.shape[1]] = a
                setattr(self, attr, g)
            self._work = np.zeros((self.n_models, work_length(self.side**2, self._mx.shape[1], m)), np.int32)
        plist = list(self.params)
        plist[b] = p
        self.params = tuple(plist)
        self._speeds[b] = (p.mol_speed, p.enz_speed)
        self._pbind[b] = p.binding_table()
        self._sep[b] = p.separation_table()
        self._dilution[b] = p.effective_dilution
        self._max_mol[b] = p.max_molecules
        self._rng[b] = state.rng_state
        self._mx[b, :n], self._my[b, :n] = state.molecules
        self._msp[b, :n] = state.species
        self._ex[b, :m], self._ey[b, :m] = state.enzymes
        self._est[b, :m] = state.enzyme_states
        self._n_mol[b], self._n_enz[b] = n, m
        self._counts[b] = state.counts
        self._carry[b] = state.feed_carry
        self._fed[b] = state.fed
        self._diluted[b] = state.diluted
        self._reactions[b] = state.reactions
        self._tick[b] = state.tick
        self._status[b] = state.status
        self.seed_sequences[b] = None
        if seed is not None:
            self.seed_sequences[b] = _as_seed_sequence(seed)
            self._rng[b] = seed_state(self.seed_sequences[b])

    def _ensure_capacity(self, need: int) -> None:
        old = self._mx.shape[1]
        if need > old:
            new = max(need, 2 * old)
            for attr, fill in (("_mx", 0.0), ("_my", 0.0), ("_msp", -1)):
                a = getattr(self, attr)
                g = np.full((a.shape[0], new), fill, a.dtype)
                g[:, :old] = a
                setattr(self, attr, g)
            self._work = np.zeros((self.n_models, work_length(self.side**2, new, self._ex.shape[1])), np.int32)

    def _feed_array(self, feed) -> np.ndarray:
        """Per-model S added per step (scaled) for a ``feed`` given in full-scale units."""
        b = self.n_models
        if feed is None:
            return np.array([p.effective_feed for p in self.params], np.float64)
        try:
            f = np.asarray(feed, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"feed must be None, a number or a (B,) array of molecules per step, got {feed!r}") from None
        if f.shape == ():
            f = np.full(b, float(f))
        elif f.shape != (b,):
            raise ValueError(f"feed must be None, a scalar or shape (n_models,) = ({b},), got shape {f.shape}")
        if not (np.all(np.isfinite(f)) and f.min() >= 0.0 and f.max() <= MAX_FEED):
            raise ValueError(f"feed must lie in [0, {MAX_FEED}] molecules per step (full-scale units), got {feed!r}")
        batch = np.array([p.mode == "batch" for p in self.params])
        if np.any(f[batch] > 0):
            raise ValueError("feed > 0 was given for a model in mode='batch' (closed system); "
                             "use mode='continuous' to feed")
        return f * np.array([p.effective_scale for p in self.params])

    # ---- stepping -----------------------------------------------------------------------

    def _advance(self, n: int, feed, every: int) -> np.ndarray:
        f = self._feed_array(feed)
        m = n // every if every > 0 else 0
        traj = np.zeros((self.n_models, max(m, 1), len(SPECIES)), np.int64)
        done = np.zeros(self.n_models, np.int64)
        status = np.zeros(self.n_models, np.int64)
        kernel = advance_metabolic_parallel if self.parallel else advance_metabolic_serial
        while True:
            kernel(self._rng, self._mx, self._my, self._msp, self._n_mol, self._ex, self._ey, self._est,
                   self._n_enz, self.side, self._speeds, self._pbind, self._sep, _BNEXT, _SEP_NEXT, _SEP_MOL,
                   _SEP_RX, _IS_COMPLEX, _IS_BINDER, _BINDER_ORDER, f, self._carry, self._dilution,
                   self._max_mol, self._counts, self._fed, self._diluted, self._reactions,
                   n, every, traj, done, self._tick, status, self._work)
            if not np.any(status == STATUS_NEED_CAPACITY):
                break
            self._ensure_capacity(int(self._n_mol.max() + self._n_enz.max() + f.max() + 2) * 2)
        self._status[:] = status
        return traj[:, :m]

    def step(self, n: int = 1, feed=None) -> np.ndarray:
        """Advance every model by ``n`` steps; return the (B, len(SPECIES)) int64 counts after them.

        ``feed``: None (each model's ``params.feed``), a number, or a (B,) array: S molecules per
        step *of the full-scale model* for this call (multiplied by ``effective_scale``); must
        be 0 for models in batch mode. A model that would exceed ``max_molecules`` stops
        (``status`` = ``STATUS_POPULATION_CAP``) and does no more steps.
        """
        self._advance(_check_steps(n), feed, 0)
        return self._counts.copy()

    def run(self, n: int, feed=None, every: int = 1) -> np.ndarray:
        """Advance ``n`` steps and return the (B, n // every, len(SPECIES)) counts after every
        ``every``-th step (a trajectory; ``feed`` as in :meth:`step`)."""
        n = _check_steps(n)
        if not _is_int(every) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        return self._advance(n, feed, int(every))

    # ---- observation --------------------------------------------------------------------

    def counts(self) -> np.ndarray:
        """(B, len(SPECIES)) current counts (a copy)."""
        return self._counts.copy()

    @property
    def fed(self) -> np.ndarray:
        """(B,) S molecules fed since setup (cumulative, scaled model)."""
        return self._fed.copy()

    @property
    def diluted(self) -> np.ndarray:
        """(B, 5) free metabolites removed by dilution since setup, per metabolite."""
        return self._diluted.copy()

    @property
    def reactions(self) -> np.ndarray:
        """(B, 4) catalysis events since setup (:data:`REACTIONS`)."""
        return self._reactions.copy()

    def molecules(self, b: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Model b's free metabolites: ((2, n) positions, (n,) codes into METABOLITES), copies."""
        n = self._n_mol[b]
        return np.stack([self._mx[b, :n], self._my[b, :n]]), self._msp[b, :n].copy()

    def enzymes(self, b: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Model b's enzyme units: ((2, m) positions, (m,) codes into ENZYME_STATES), copies."""
        m = self._n_enz[b]
        return np.stack([self._ex[b, :m], self._ey[b, :m]]), self._est[b, :m].copy()

    def snapshot(self, b: int = 0) -> MetabolicState:
        """A deep copy of model b's full state."""
        mol, sp = self.molecules(b)
        enz, st = self.enzymes(b)
        return MetabolicState(self.params[b], int(self._tick[b]), self._rng[b].copy(), mol, sp, enz, st,
                              float(self._carry[b]), int(self._fed[b]), self._diluted[b].copy(),
                              self._reactions[b].copy(), int(self._status[b]))


class MetabolicModel(SingleModel):
    """One toy-metabolic-pathway model (a batch of one); same methods, without the batch axis.

    >>> sim = MetabolicModel(MetabolicParams(scale=0.01), seed=42)
    >>> c = sim.step(20)
    >>> dict(zip(SPECIES[:5], c[:5].tolist()))["S"] > 0
    True
    >>> warm = sim.snapshot()
    >>> a = sim.step(30, feed=2.0)
    >>> sim.restore(warm)
    >>> bool((sim.step(30, feed=2.0) == a).all())
    True
    """

    batch_cls = MetabolicBatch

    def step(self, n: int = 1, feed=None) -> np.ndarray:
        """Advance ``n`` steps; return the (len(SPECIES),) counts (``feed`` as in MetabolicBatch.step)."""
        return self._batch.step(n, None if feed is None else _scalar_feed(feed))[0]

    def run(self, n: int, feed=None, every: int = 1) -> np.ndarray:
        """(n // every, len(SPECIES)) counts after every ``every``-th step."""
        return self._batch.run(n, None if feed is None else _scalar_feed(feed), every)[0]

    def counts(self) -> np.ndarray:
        return self._batch.counts()[0]

    @property
    def fed(self) -> int:
        return int(self._batch._fed[0])

    @property
    def diluted(self) -> np.ndarray:
        return self._batch.diluted[0]

    @property
    def reactions(self) -> np.ndarray:
        return self._batch.reactions[0]

    def molecules(self) -> tuple[np.ndarray, np.ndarray]:
        return self._batch.molecules(0)

    def enzymes(self) -> tuple[np.ndarray, np.ndarray]:
        return self._batch.enzymes(0)


def _scalar_feed(feed) -> float:
    if isinstance(feed, bool) or not isinstance(feed, numbers.Real):
        raise ValueError(f"feed must be a number of molecules per step (full-scale units), got {feed!r}")
    return float(feed)
