"""Shared cases and call wrappers for the tests of the batched N-body kernels.

A plain helper module (not a test file): the kernel tests import it by name, which works
because pytest's default ``prepend`` import mode puts ``tests/physics`` on ``sys.path``.
"""

from __future__ import annotations

import math

import numpy as np

from simrl.physics.nbody import STATUS_OK
from simrl.physics.nbody.initial_conditions import (
    figure8_initial_conditions,
    paper_initial_conditions,
    pythagorean_initial_conditions,
    random_initial_conditions,
)

MAX_STEPS = 10**7
FIELDS = ("pos", "vel", "time", "force_evals", "status")


def kepler_binary(e, m1=0.6, m2=0.4, a=1.0):
    """Two bodies at pericentre of a Kepler orbit (COM frame); returns pos, vel, mass, period."""
    total = m1 + m2
    r = a * (1.0 - e)
    v = math.sqrt(total * (1.0 + e) / (a * (1.0 - e)))  # vis-viva at pericentre
    rel = np.array([r, 0.0, 0.0])
    vrel = np.array([0.0, v, 0.0])
    pos = np.array([-m2 / total * rel, m1 / total * rel])
    vel = np.array([-m2 / total * vrel, m1 / total * vrel])
    return pos, vel, np.array([m1, m2]), 2.0 * math.pi * math.sqrt(a**3 / total)


def run_batch(pos, vel, mass, t_end, param, *extra, fn, time=None, max_steps=MAX_STEPS):
    """Call kernel ``fn`` on batched copies; returns (pos, vel, time, force_evals, status).

    ``t_end`` and ``param`` broadcast over the batch; ``extra`` are passed after the ten
    arguments of the kernel contract (the Hermite criterion).
    """
    pos = np.array(pos, dtype=np.float64)
    vel = np.array(vel, dtype=np.float64)
    mass = np.array(mass, dtype=np.float64)
    b = pos.shape[0]
    time = np.zeros(b) if time is None else np.array(time, dtype=np.float64)
    t_end = np.broadcast_to(np.asarray(t_end, dtype=np.float64), (b,)).copy()
    param = np.broadcast_to(np.asarray(param, dtype=np.float64), (b,)).copy()
    force_evals = np.full(b, -1, dtype=np.int64)
    status = np.full(b, -1, dtype=np.int64)
    fn(pos, vel, mass, time, t_end, param, np.zeros(b), max_steps, force_evals, status, *extra)
    return pos, vel, time, force_evals, status


def run_one(pos, vel, mass, t_end, param, *extra, **kw):
    """:func:`run_batch` on one unbatched system; returns (pos, vel, time, force_evals, status)."""
    p, v, t, fe, st = run_batch(pos[None], vel[None], mass[None], t_end, param, *extra, **kw)
    return p[0], v[0], t[0], fe[0], st[0]


def mixed_batch(seed):
    """Pythagorean, figure-eight, paper and random systems (4, 3, 3) and a target time for each.

    ``seed`` seeds the generator of the paper and random systems; returns pos, vel, mass, t_end.
    """
    rng = np.random.default_rng(seed)
    systems = [
        pythagorean_initial_conditions(),
        figure8_initial_conditions(),
        paper_initial_conditions(rng),
        random_initial_conditions(rng),
    ]
    pos = np.stack([s[0] for s in systems])
    vel = np.stack([s[1] for s in systems])
    mass = np.stack([s[2] for s in systems])
    t_end = np.array([1.3, 2.0, 0.77, 0.5])
    return pos, vel, mass, t_end


def check_batched_equals_single_and_parallel(pos, vel, mass, t_end, param, *extra, serial, parallel, single):
    """Assert that the ``serial`` kernel on the whole batch equals ``parallel`` bitwise, that each
    system equals a ``single`` call on it alone, and that every system landed on its t_end."""
    batched = run_batch(pos, vel, mass, t_end, param, *extra, fn=serial)
    in_parallel = run_batch(pos, vel, mass, t_end, param, *extra, fn=parallel)
    for name, a, b in zip(FIELDS, batched, in_parallel):
        assert np.array_equal(a, b), name
    for b in range(pos.shape[0]):
        one = run_batch(pos[b : b + 1], vel[b : b + 1], mass[b : b + 1], t_end[b], param[b], *extra, fn=single)
        for name, whole, alone in zip(FIELDS, batched, one):
            assert np.array_equal(whole[b : b + 1], alone), (b, name)
    assert np.all(batched[4] == STATUS_OK)
    assert np.array_equal(batched[2], t_end)
