"""Input checks shared by the environments' faces (the argument tables stay with each family's settings)."""

from __future__ import annotations

import reprlib
from typing import Any

import numpy as np

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def short_repr(value: Any) -> str:
    """A short repr of ``value`` for error messages."""
    return _short.repr(value)


def real_array(value: Any, what: str, detail: str = "(integers or floats)") -> np.ndarray:
    """``value`` as a NumPy array of real numbers (integer or float dtype), else a ValueError naming ``what``.

    Refused rather than converted: strings (``"0.5"`` is not a number), complex numbers (the imaginary part
    would be dropped), booleans (a flag passed for a number), None, other objects and ragged nestings.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        arr = None
    if arr is None or arr.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be real numbers {detail}, got {short_repr(value)}")
    return arr
