"""Validators for common op attributes, for `Attr(check=...)`.

Each takes the value a caller passed and returns its normal form, or raises TypeError /
ValueError with a short reason (the op adds its name and the attribute's).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def _int(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return int(value)


def axis(value: Any) -> int | tuple[int, ...] | None:
    """None (all axes), an int or a sequence of ints (negative allowed)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(_int(v) for v in value)
    return _int(value)


def axes(value: Any) -> tuple[int, ...] | None:
    """None or a sequence of ints (a permutation, checked against the rank by the shape rule)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a tuple of ints, got {type(value).__name__}")
    return tuple(_int(v) for v in value)


def shape(value: Any) -> tuple[int, ...]:
    """An int or a sequence of ints."""
    if isinstance(value, (list, tuple)):
        return tuple(_int(v) for v in value)
    return (_int(value),)


def flag(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected True or False, got {value!r}")
    return bool(value)


def number(value: Any) -> int | float:
    """A real number as a Python int or float: Python numbers adapt to the array's dtype,
    whereas a numpy scalar such as np.float64 would upcast a float32 input."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a real number, got {type(value).__name__}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def dtype(value: Any) -> np.dtype:
    return np.dtype(value)
