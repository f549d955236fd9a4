"""Explicit-state xoshiro256** random numbers for Numba kernels (one stream per model).

Why not ``np.random`` inside ``@njit``: Numba keeps one hidden NumPy-style generator per
thread, seeded only by calling ``np.random.seed`` *inside* jitted code (numba issue #3249).
Models sharing it are not reproducible under ``prange`` (the thread -> model assignment is
not fixed) and one model's draws shift every other model's. Here every model instead owns a
``(4,) uint64`` state array that the kernels advance in place; nothing global is read or
written (neither NumPy's nor Numba's global generator), so a batch of B models holds B
independent streams in a ``(B, 4)`` array and gives the same numbers serially or in parallel.

Generator: xoshiro256** 1.0 (Blackman & Vigna, "Scrambled linear pseudorandom number
generators", ACM TOMS 47(4), 2021; reference C code at https://prng.di.unimi.it/), period
2**256 - 1. Seeding: ``SeedSequence(seed).generate_state(4, np.uint64)`` (NumPy's
recommended entropy spreading); a batch spawns one child ``SeedSequence`` per model, so the
streams are statistically independent (no jump-ahead is needed).

Derived draws:

* :func:`uniform` -- a double in [0, 1) from the top 53 bits (``(x >> 11) * 2**-53``).
* :func:`randint` -- an integer in ``[0, n)`` as ``floor(uniform() * n)``; its bias is below
  ``n * 2**-53`` (about 1e-11 for the largest ``n`` used here), far under anything a
  simulation can resolve, and it costs one draw (no rejection loop), which keeps the number
  of draws per event fixed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_TWO_POW_M53 = 1.0 / 9007199254740992.0  # 2**-53

RNG_STATE_WORDS = 4


@njit(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(inline="always")
def next_u64(s):
    """Advance the state ``s`` ((4,) uint64, in place) and return the next 64-bit output."""
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result


@njit(inline="always")
def uniform(s):
    """A double uniform in [0, 1) (53 random bits)."""
    return np.float64(next_u64(s) >> np.uint64(11)) * _TWO_POW_M53


@njit(inline="always")
def randint(s, n):
    """An integer uniform in ``[0, n)`` for ``n >= 1`` (returns 0 for ``n <= 1``)."""
    if n <= 1:
        return 0
    k = np.int64(uniform(s) * n)
    return k if k < n else n - 1  # guards the (impossible in exact arithmetic) k == n


@njit(cache=True)
def fill_u64(s, out):
    """Fill ``out`` (uint64) with consecutive outputs of state ``s`` (for tests)."""
    for i in range(out.shape[0]):
        out[i] = next_u64(s)


def seed_state(seed: int | np.random.SeedSequence) -> np.ndarray:
    """Return a fresh ``(4,) uint64`` xoshiro256** state derived from ``seed`` via SeedSequence."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    state = ss.generate_state(RNG_STATE_WORDS, np.uint64)
    if not state.any():  # the all-zero state is the one fixed point of xoshiro
        state[0] = np.uint64(0x9E3779B97F4A7C15)
    return state
