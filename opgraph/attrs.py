"""Validators for common op attributes, for `Attr(check=...)`.

Each takes the value a caller passed and returns its normal form, or raises TypeError /
ValueError with a short reason (the op adds its name and the attribute's; the caller gets an
`opgraph.OpArgumentError`, which is both).

The typed attributes (`AttrType` subclasses: `Axis`, `Axes`, `Permutation`, `BroadcastTarget`,
`IndexArray`, `IntRange`, `FloatRange`, `Choice`) validate the same way and also tell the
conformance harness which values are valid for given input shapes, and which are not, so that it
generates every permutation up to rank 3, stretching broadcast targets, repeated and negative
indices, and rejected values (axis out of range, duplicate axes, wrong length) by itself.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from opgraph.records import datarecord

Shape = tuple[int, ...]


def _int(value: Any) -> int:
    if type(value) is int:  # the common case, before the (slow) abstract-class check
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return int(value)


def axis(value: Any) -> int | tuple[int, ...] | None:
    """None (all axes), an int or a sequence of ints (negative allowed)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple([_int(v) for v in value])
    return _int(value)


def _axes_value(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a tuple of ints, got {type(value).__name__}")
    return tuple([_int(v) for v in value])


def _shape_value(value: Any) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple([_int(v) for v in value])
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
    if isinstance(value, numbers.Integral):
        return int(value)
    if math.isnan(value):
        raise ValueError("expected a number, got NaN (it compares false with everything)")
    return float(value)


def dtype(value: Any) -> np.dtype:
    return np.dtype(value)


# --- typed attributes ---
@datarecord
class Invalid:
    """A candidate value an op should reject, and why. The harness keeps it where the type's
    own check rejects it (the caller gets an `OpArgumentError`) or the op's shape rule does (a
    `ShapeError`), which the forward must then raise too."""

    value: Any
    why: str


class AttrType:
    """A validator (call it with a value) that also generates values for given input shapes.

    ``strict``: its invalid values are invalid for every op that declares the type, so the op
    must reject each; otherwise they are candidates, kept where the op's shape rule rejects
    them (the plain validators `axes` and `shape` are such types: an op may use them loosely).
    """

    strict = True

    def __call__(self, value: Any) -> Any:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        """Values the op must accept for inputs of ``shapes`` (may be empty)."""
        return []

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        """Values the op must reject for inputs of ``shapes``."""
        return []


def _rank(shapes: Sequence[Shape], input: int) -> int | None:
    return len(shapes[input]) if input < len(shapes) else None


@datarecord
class Axis(AttrType):
    """One axis of input ``input`` (negative counts from the end); ``new`` extra positions for
    ops that insert axes (``stack``: 1); ``none``: None is allowed too (all axes)."""

    input: int = 0
    new: int = 0
    none: bool = False

    def __call__(self, value: Any) -> int | None:
        if value is None and self.none:
            return None
        return _int(value)

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        rank = _rank(shapes, self.input)
        found: list[Any] = [None] if self.none else []
        if rank is not None and rank + self.new:
            n = rank + self.new  # the first and last axis, a middle one, a negative spelling
            found += [0, -1] + ([n // 2] if n >= 3 else [])
        return found

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        rank = _rank(shapes, self.input)
        if rank is None:
            return []
        n = rank + self.new
        return [
            Invalid(n, f"axis {n} is out of range for rank {rank}"),
            Invalid(-n - 1, f"axis {-n - 1} is out of range for rank {rank}"),
            Invalid(0.5, "not an int"),
        ]


@datarecord
class Axes(AttrType):
    """None (all axes, when ``none``), an int or a tuple of distinct axes of input ``input``.

    The check needs no rank, so it checks types only; the shape rule rejects axes out of range
    and repeated ones (`opgraph.shapes.normalize_axes`), naming the input's shape."""

    input: int = 0
    none: bool = True

    def __call__(self, value: Any) -> int | tuple[int, ...] | None:
        if value is None and self.none:
            return None
        normal = axis(value)
        if normal is None:
            raise TypeError("expected an int or a tuple of ints, got None")
        return normal

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        rank = _rank(shapes, self.input)
        found: list[Any] = [None] if self.none else []
        if rank:  # one axis either way, a tuple mixing both spellings, every axis
            found += [0, -1] + ([(0, -1)] if rank > 1 else []) + [tuple(range(rank))]
        return found

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        rank = _rank(shapes, self.input)
        if rank is None:
            return []
        found = [Invalid(rank, f"axis {rank} is out of range for rank {rank}")]
        if rank:
            found.append(Invalid((0, -rank), f"(0, {-rank}) repeats axis 0 of rank {rank}"))
        return [*found, Invalid("0", "a string, not an axis")]


@datarecord
class Permutation(AttrType):
    """A permutation of the axes of input ``input`` (None: reversed, when ``none``); like
    `Axes`, the check takes types, the shape rule length, range and repeats."""

    input: int = 0
    none: bool = True
    strict: bool = True

    def __call__(self, value: Any) -> tuple[int, ...] | None:
        if value is None and self.none:
            return None
        normal = _axes_value(value)
        if normal is None:
            raise TypeError("expected a tuple of ints, got None")
        return normal

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        rank = _rank(shapes, self.input)
        found: list[Any] = [None] if self.none else []
        if rank is None:
            return found
        if rank <= 3:  # every permutation, so a non-inverted one cannot hide
            found += list(itertools.permutations(range(rank)))
        else:
            found += [tuple(range(rank)), tuple(range(rank))[::-1], (*range(1, rank), 0)]
        if rank:
            found.append(tuple(a - rank for a in found[-1]))  # the negative spelling
        return found

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        rank = _rank(shapes, self.input)
        if rank is None:
            return []
        found = [Invalid(tuple(range(rank + 1)), f"{rank + 1} axes for rank {rank}")]
        if rank >= 2:
            found.append(Invalid((0,) * rank, "a repeated axis"))
        if rank:
            found.append(Invalid((rank, *range(1, rank)), f"axis {rank} for rank {rank}"))
        return found


@datarecord
class TargetShape(AttrType):
    """A shape derived from input ``input``'s (an int or a sequence of ints): it offers the
    input's shape with axes prepended and size-1 axes stretched, and changed sizes and dropped
    axes as invalid candidates — which the harness keeps only where the shape rule rejects
    them, so it suits broadcast targets, reshape targets and the like."""

    input: int = 0
    strict: bool = False

    def __call__(self, value: Any) -> tuple[int, ...]:
        return _shape_value(value)

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        if self.input >= len(shapes):
            return []
        x = tuple(shapes[self.input])
        stretched = tuple(3 if d == 1 else d for d in x)
        found = [x, (2, *x), stretched, (2, *stretched)]
        return list(dict.fromkeys(found))

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        if self.input >= len(shapes):
            return []
        x = tuple(shapes[self.input])
        found = []
        wide = [i for i, d in enumerate(x) if d > 1]
        if wide:
            i = wide[0]
            bad = (*x[:i], x[i] + 1, *x[i + 1 :])
            found.append(Invalid(bad, f"axis {i} of size {x[i]} cannot become {x[i] + 1}"))
        if x and x[0] != 1:
            found.append(Invalid(x[1:], f"fewer axes than the input's {x}"))
        return found


@datarecord
class BroadcastTarget(TargetShape):
    """A shape input ``input`` broadcasts to: its size-1 axes stretched, axes prepended."""

    strict: bool = True

    def __call__(self, value: Any) -> tuple[int, ...]:
        target = _shape_value(value)
        if target and min(target) < 0:
            raise ValueError(f"negative size in {target}")
        return target


axes = Permutation(strict=False)
"""None or a sequence of ints, e.g. a permutation of the axes (checked against the rank by the
shape rule); as a `Permutation`, it also gives the harness every permutation up to rank 3."""

shape = TargetShape()
"""An int or a sequence of ints; as a `TargetShape`, it also gives the harness targets derived
from the input's shape."""


@datarecord
class IndexArray(AttrType):
    """Integer positions along axis ``axis`` of input ``input``, negatives and repeats allowed
    (a gradient must accumulate repeated positions)."""

    input: int = 0
    axis: int = 0

    def __call__(self, value: Any) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype.kind not in "iu":
            raise TypeError(f"expected integer positions, got an array of {array.dtype}")
        return array.astype(np.intp, copy=False)

    def _length(self, shapes: Sequence[Shape]) -> int | None:
        if self.input >= len(shapes) or len(shapes[self.input]) <= self.axis:
            return None
        return shapes[self.input][self.axis]

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        n = self._length(shapes)
        if not n:
            return []
        return [np.array([0, n - 1, 0]), np.array([-1, 0, -n, -1]), np.array([[n - 1, -1]])]

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        n = self._length(shapes)
        if n is None:
            return []
        return [
            Invalid(np.array([0, n]), f"position {n} is out of range for length {n}"),
            Invalid(np.array([-n - 1]), f"position {-n - 1} is out of range for length {n}"),
        ]


@datarecord
class IntRange(AttrType):
    """An int in [low, high] (None: unbounded on that side)."""

    low: int | None = None
    high: int | None = None

    def __call__(self, value: Any) -> int:
        v = _int(value)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ValueError(f"expected an int in [{self.low}, {self.high}], got {v}")
        return v

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        ends = [e for e in (self.low, self.high) if e is not None]
        middle = sum(ends) // 2 if len(ends) == 2 else (ends[0] + 1 if ends else 1)
        return list(dict.fromkeys([*ends, middle]))

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        found = [Invalid(1.5, "not an int")]
        if self.low is not None:
            found.append(Invalid(self.low - 1, f"below {self.low}"))
        if self.high is not None:
            found.append(Invalid(self.high + 1, f"above {self.high}"))
        return found


@datarecord
class FloatRange(AttrType):
    """A real number in [low, high] (a bound in ``open`` is excluded: "low", "high")."""

    low: float = -math.inf
    high: float = math.inf
    open: tuple[str, ...] = ()

    def _inside(self, v: float) -> bool:
        above = v > self.low if "low" in self.open else v >= self.low
        below = v < self.high if "high" in self.open else v <= self.high
        return above and below

    def __call__(self, value: Any) -> float:
        v = float(number(value))
        if not self._inside(v):
            low = "(" if "low" in self.open else "["
            high = ")" if "high" in self.open else "]"
            raise ValueError(f"expected a number in {low}{self.low}, {self.high}{high}, got {v}")
        return v

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        low = self.low if math.isfinite(self.low) else min(-2.0, self.high - 1)
        high = self.high if math.isfinite(self.high) else max(2.0, low + 1)
        ends = [e for e in (self.low, self.high) if math.isfinite(e) and self._inside(e)]
        return list(dict.fromkeys([*ends, (low + high) / 2]))

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        found = [Invalid("1.0", "a string, not a number")]
        for end, step in ((self.low, -1.0), (self.high, 1.0)):
            if math.isfinite(end):
                found.append(Invalid(end + step * max(1.0, abs(end)) * 0.5, "outside the range"))
        if "low" in self.open and math.isfinite(self.low):
            found.append(Invalid(self.low, "the excluded lower bound"))
        if "high" in self.open and math.isfinite(self.high):
            found.append(Invalid(self.high, "the excluded upper bound"))
        return found


@datarecord
class Choice(AttrType):
    """One of ``options`` (compared with ==)."""

    options: tuple[Any, ...]

    def __call__(self, value: Any) -> Any:
        for option in self.options:
            if type(value) is type(option) and value == option:
                return option
        raise ValueError(f"expected one of {', '.join(map(repr, self.options))}, got {value!r}")

    def valid(self, shapes: Sequence[Shape]) -> list[Any]:
        return list(self.options)

    def invalid(self, shapes: Sequence[Shape]) -> list[Invalid]:
        outsider = "|".join(map(str, self.options)) + "?"
        return [Invalid(outsider, "not one of the options")]
