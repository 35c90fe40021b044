"""The Taylor-remainder test: a verdict on an analytic directional derivative that needs no
difference step.

Along a line ``phi(h)`` (a function projected to a scalar), the remainder of the first-order
expansion ``r(h) = |phi(h) - phi(0) - h * slope|`` shrinks as ``h**2`` when ``slope`` is the
derivative, and only as ``h`` when it is off by ``delta`` (then ``r(h) ~ delta * h`` once
``delta * h`` outweighs the curvature). Central differences mix the gradient's error with their
own truncation and rounding at one step; the remainder's *order* over a geometric range of
steps tells them apart, and in the first-order regime ``r(h) / h`` measures the gradient's error
itself. `numeric` keeps the central differences; this module is numpy only and pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from opgraph.conformance import numeric


class Point(NamedTuple):
    """One evaluation along a line: ``phi(h)``, a bound on its rounding error, and the
    elements it is summed from (to tell which of them moved)."""

    value: float
    rounding: float
    elements: np.ndarray


Line = Callable[[float], Point]


H_MAX = 2.0**-5
"""Largest step (along a direction scaled to a largest element of 1): below the default
`Domain.margin` (0.05), so the line stays on one side of every declared kink or pole."""
FINE = 2.0**-16
"""Steps (on `H_MAX`'s scale) at or below which an element that then stops moving is below the
forward's resolution rather than past a kink: far inside any kink's margin, yet above the
float32 resolution (6e-8) of a forward computing in float32 inside."""
HALVINGS = 36
"""Steps ``H_MAX / 2**i``: down to about 1e-12, where float64 rounding swamps any remainder."""
FLOOR_FACTOR = 4.0
"""A remainder counts only above this multiple of the rounding level (see `remainders`)."""
NOISE_STEPS = 4
"""The smallest steps whose remainders measure the forward's own rounding (see `remainders`)."""
RESOLVED = 3
"""Smallest steps above rounding whose ``r(h) / h`` estimate the slope's error (a median: one
of them may sit where curvature and error cancel)."""
MIN_POINTS = 4
"""Fewest consecutive steps (a factor 8 in h) that make an order."""
WINDOW = 8
"""The order is fitted over the smallest (at most) this many steps of the clean run: the
asymptotic end, where a gradient's error outweighs the curvature."""
MIN_SLOPE = 0.5
"""A remainder that shrinks slower than ``h**0.5`` between two steps is rounding noise (or a
kink), not a Taylor term: it ends a clean run."""
MAX_SPREAD = 0.25
"""Largest median deviation of the local slopes from the fitted order for a clean order."""
FIRST_ORDER = (0.7, 1.3)
"""Clean orders that read as h: with an error beyond the allowance, a wrong slope."""
SECOND_ORDER = 1.7
"""Clean orders from here up read as h^2 (h^3 where the curvature vanishes along the line):
an error beyond the allowance is then unresolved, not shown to be wrong."""


def line(
    f: numeric.Function, xs: numeric.Arrays, k: int, u: np.ndarray, ws: numeric.Arrays
) -> Line:
    """``phi(h) = <ws, f(xs with xs[k] + h u)>``, summed from the outputs' elements that
    ``ws`` weighs."""
    weighed = [np.asarray(w) != 0 for w in ws]

    def phi(h: float) -> Point:
        outputs = f([x + h * u if j == k else x for j, x in enumerate(xs)])
        elements = [
            np.asarray(y, dtype=np.float64)[m] for y, m in zip(outputs, weighed, strict=True)
        ]
        return Point(
            numeric.project(outputs, ws),
            numeric.rounding(outputs, ws),
            np.concatenate(elements) if elements else np.zeros(0),
        )

    return phi


def steps(direction_size: float) -> np.ndarray:
    """The geometric range of steps for a direction whose largest element is
    ``direction_size``, largest first."""
    return H_MAX / max(direction_size, np.finfo(float).tiny) * 0.5 ** np.arange(HALVINGS)


def remainders(phi: Line, slope: float, hs: np.ndarray) -> tuple[np.ndarray, float]:
    """``r(h)`` at each step, and the rounding floor below which it is noise.

    ``r`` is nan where the line left the function's domain (nan, inf or an exception), and at
    steps where an element that moved at a larger step, at most `FINE`, does not move at all:
    below the forward's own resolution (``(x + 1e8) - 1e8``, a float32 computation inside),
    where ``r = h * |its slope|`` would pass for a first-order error. (An element that only
    moved at larger steps crossed a kink there.) The floor is `FLOOR_FACTOR`
    times the larger of the rounding bound of two evaluations and the largest remainder over
    the `NOISE_STEPS` smallest steps (where any Taylor term of a narrowly wrong gradient is far
    below float64's resolution, so what is left is the forward's own rounding, which the bound
    of its outputs misses: a sum's error grows with its terms, not with its result)."""
    base = phi(0.0)
    values, bounds = np.full(len(hs), np.nan), np.zeros(len(hs))
    moved_before = np.zeros(base.elements.shape, dtype=bool)
    unresolved = np.zeros(len(hs), dtype=bool)
    for i, h in enumerate(hs):
        try:
            point = phi(float(h))
        except Exception:  # a forward may refuse a point outside its domain: no remainder
            continue
        values[i], bounds[i] = point.value, base.rounding + point.rounding
        moved = point.elements != base.elements
        unresolved[i] = bool((moved_before & ~moved).any())
        if h <= hs[0] * FINE / H_MAX:
            moved_before |= moved
    with np.errstate(all="ignore"):
        r = np.abs(values - base.value - hs * slope)
    r[~np.isfinite(r)] = np.nan
    tail = r[-NOISE_STEPS:]
    noise = float(np.max(tail[np.isfinite(tail)], initial=0.0))
    r[unresolved] = np.nan
    return r, FLOOR_FACTOR * max(float(np.max(bounds)), noise)


@dataclass(frozen=True)
class OrderFit:
    """The order of ``r(h)`` as ``h`` shrinks: a Theil-Sen slope of ``log r`` against
    ``log h`` over ``window`` (indices into the steps), and whether the local slopes agree."""

    order: float | None
    window: tuple[int, int] | None
    clean: bool


def fit_order(hs: np.ndarray, rs: np.ndarray, floor: float) -> OrderFit:
    """The clean run is the smallest-h stretch of at least `MIN_POINTS` steps whose remainders
    are finite, above the rounding floor, and shrink at least as ``h**MIN_SLOPE`` from each step
    to the next; the order is the median pairwise slope over its last `WINDOW` steps, clean
    when the local slopes deviate from it by at most `MAX_SPREAD` (median)."""
    with np.errstate(all="ignore"):
        above = np.isfinite(rs) & (rs > floor)
        log_h, log_r = np.log(hs), np.log(np.where(above, rs, 1.0))
    runs: list[tuple[int, int]] = []
    start = None
    for i in range(len(hs)):
        joins = (
            start is not None
            and above[i]
            and (log_r[i - 1] - log_r[i]) >= MIN_SLOPE * (log_h[i - 1] - log_h[i])
        )
        if not joins:
            if start is not None:
                runs.append((start, i))
            start = i if above[i] else None
    if start is not None:
        runs.append((start, len(hs)))
    runs = [(a, b) for a, b in runs if b - a >= MIN_POINTS]
    if not runs:
        return OrderFit(None, None, False)
    first, stop = runs[-1]
    window = (max(first, stop - WINDOW), stop)
    x, y = log_h[window[0] : window[1]], log_r[window[0] : window[1]]
    i, j = np.triu_indices(len(x), 1)
    order = float(np.median((y[i] - y[j]) / (x[i] - x[j])))
    local = np.diff(y) / np.diff(x)
    return OrderFit(order, window, bool(np.median(np.abs(local - order)) <= MAX_SPREAD))


@dataclass(frozen=True)
class Verdict:
    """What the remainders say about a slope that central differences rejected.

    ``kind``: ``right`` (the slope's error, measured or bounded, is within ``allowed``),
    ``wrong`` (beyond it, and the remainder shrinks cleanly as h: a first-order error),
    ``unresolved`` (beyond it, but the remainder shrinks cleanly as h^2 and reaches rounding
    before a first-order error of ``allowed`` could show) or ``no_order`` (neither). ``error``
    is `_slope_error`; ``window`` indexes the steps the order was fitted over."""

    kind: str
    order: float | None
    error: float
    allowed: float
    steps: tuple[float, ...]
    remainders: tuple[float, ...]
    window: tuple[int, int] | None

    @property
    def right(self) -> bool:
        return self.kind == "right"

    def shown(self) -> list[tuple[float, float]]:
        """The steps and remainders that tell: the fitted window, else the finite ones."""
        pairs = list(zip(self.steps, self.remainders, strict=True))
        if self.window is not None:
            return pairs[slice(*self.window)]
        return [(h, r) for h, r in pairs if np.isfinite(r)]

    def details(self) -> dict[str, Any]:
        """JSON data: the verdict, the fitted order, the slope's error and ``r(h)``."""
        shown = self.shown()
        return {
            "verdict": self.kind,
            "order": self.order,
            "gradient_error": self.error if np.isfinite(self.error) else None,
            "allowed": self.allowed,
            "steps": [h for h, _ in shown],
            "remainders": [r for _, r in shown],
        }

    def describe(self) -> str:
        """One sentence: what the remainder did and what it means."""
        pairs = ", ".join(f"r({h:.2g})={r:.2g}" for h, r in self.shown()[-4:])
        order = "no clean order" if self.order is None else f"order {self.order:.2f}"
        remainder = f"the Taylor remainder |f(x+hv) - f(x) - h<grad, v>| ({order}: {pairs})"
        if self.kind == "wrong":
            return (
                f"wrong gradient: {remainder} shrinks as h, not h^2: the gradient is off by "
                f"{self.error:.3g} along v (allowed {self.allowed:.3g})"
            )
        if self.kind == "right":
            return (
                f"numerical noise: {remainder} bounds the gradient's error along v by "
                f"{self.error:.3g} (allowed {self.allowed:.3g}): the analytic gradient is right"
            )
        if self.kind == "unresolved":
            return (
                f"numerical noise: {remainder} shrinks as h^2 but reaches rounding before it "
                f"could show a gradient error of {self.allowed:.3g}"
            )
        return f"numerical noise: no clean order ({remainder})"


def verdict(phi: Line, slope: float, allowed: float, direction_size: float) -> Verdict:
    """The Taylor test of ``slope`` along ``phi``; ``allowed`` is the gradient error the
    tolerance accepts, in the units of ``slope``.

    As h shrinks, ``r(h) / h -> |delta|`` (the slope's error): its median over the last
    `RESOLVED` steps where ``r`` is above rounding measures ``delta`` once the first-order
    regime is reached, and bounds it otherwise (the curvature only adds). Within ``allowed``
    the slope is right whatever the order; beyond it, a clean first order says wrong."""
    hs = steps(direction_size)
    rs, floor = remainders(phi, slope, hs)
    fit = fit_order(hs, rs, floor)
    error = _slope_error(hs, rs, floor)
    order = fit.order if fit.clean else None
    if error <= allowed:
        kind = "right"
    elif order is not None and FIRST_ORDER[0] <= order <= FIRST_ORDER[1]:
        kind = "wrong"
    elif order is not None and order >= SECOND_ORDER:
        kind = "unresolved"
    else:
        kind = "no_order"
    return Verdict(kind, order, error, allowed, _floats(hs), _floats(rs), fit.window)


def _slope_error(hs: np.ndarray, rs: np.ndarray, floor: float) -> float:
    """The slope's error as h shrinks: ``r(h) / h`` over the smallest `RESOLVED` steps above
    rounding — or less, ``2 * floor / h`` at the first step below them that is under the floor
    (a first-order error halves from one step to the next, so it would have stayed above). It
    is less when the remainder drops to rounding at once: it came from farther out (a kink the
    line crossed), and the expansion is exact to rounding closer in."""
    finite = np.isfinite(rs)
    resolved = np.flatnonzero(finite & (rs > floor))[-RESOLVED:]
    measured = float(np.median(rs[resolved] / hs[resolved])) if resolved.size else np.inf
    start = resolved[-1] + 1 if resolved.size else 0
    quiet = np.flatnonzero(finite[start:]) + start
    return min(measured, 2 * floor / float(hs[quiet[0]]) if quiet.size else np.inf)


def _floats(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
