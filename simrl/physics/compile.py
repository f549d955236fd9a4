"""Compile one batched Python kernel into a serial and a ``prange``-parallel Numba function."""

from __future__ import annotations

import types
from typing import Callable

from numba import njit


def serial_and_parallel(fn: Callable) -> tuple[Callable, Callable]:
    """Return ``(serial, parallel)`` compiled variants of ``fn``, both cached on disk.

    Numba's on-disk cache is keyed by the function's qualified name and source location but
    not by the ``parallel`` flag (numba issue #6845): two ``njit(cache=True)`` wrappers of the
    same function share one cache entry, and whichever variant compiles first silently serves
    both. The parallel variant is therefore compiled from a copy of ``fn`` under its own name.
    """
    name = f"{fn.__name__}_parallel"
    code = fn.__code__.replace(co_name=name, co_qualname=f"{fn.__qualname__}_parallel")
    parallel_fn = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    parallel_fn.__qualname__ = f"{fn.__qualname__}_parallel"
    parallel_fn.__doc__ = fn.__doc__
    parallel_fn.__module__ = fn.__module__
    return njit(cache=True)(fn), njit(cache=True, parallel=True)(parallel_fn)
