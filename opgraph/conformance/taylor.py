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
from typing import Any

import numpy as np

from opgraph.conformance import numeric

Line = Callable[[float], tuple[float, float]]
"""``h -> (phi(h), a bound on the rounding error of that value)``."""

H_MAX = 2.0**-5
"""Largest step (along a direction scaled to a largest element of 1): below the default
`Domain.margin` (0.05), so the line stays on one side of every declared kink or pole."""
HALVINGS = 36
"""Steps ``H_MAX / 2**i``: down to about 5e-13, where float64 rounding swamps any remainder."""
FLOOR_FACTOR = 4.0
"""A remainder counts only above this multiple of the rounding level (see `remainders`)."""
NOISE_STEPS = 4
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
SECOND_ORDER = 1.7
"""Orders from here up (3 where the curvature vanishes along the line) mean a right slope."""


def line(
    f: numeric.Function, xs: numeric.Arrays, k: int, u: np.ndarray, ws: numeric.Arrays
) -> Line:
    """``phi(h) = <ws, f(xs with xs[k] + h u)>`` with the rounding bound of its outputs."""

    def phi(h: float) -> tuple[float, float]:
        outputs = f([x + h * u if j == k else x for j, x in enumerate(xs)])
        return numeric.project(outputs, ws), numeric.rounding(outputs, ws)

    return phi


def steps(direction_size: float) -> np.ndarray:
    """The geometric range of steps for a direction whose largest element is
    ``direction_size``, largest first."""
    return H_MAX / max(direction_size, np.finfo(float).tiny) * 0.5 ** np.arange(HALVINGS)


def remainders(phi: Line, slope: float, hs: np.ndarray) -> tuple[np.ndarray, float]:
    """``r(h)`` at each step (nan where the line left the function's domain), and the rounding
    floor below which it is noise: `FLOOR_FACTOR` times the larger of the rounding bound of two
    evaluations and the largest remainder over the `NOISE_STEPS` smallest steps (where any
    Taylor term of a narrowly wrong gradient is far below float64's resolution, so what is left
    is the forward's own rounding, which the bound of its outputs alone misses: a sum's error
    grows with its terms, not with its result)."""
    base, base_rounding = phi(0.0)
    rs, bounds = [], []
    with np.errstate(all="ignore"):
        for h in hs:
            value, rounding = phi(float(h))
            rs.append(abs(value - base - h * slope))
            bounds.append(base_rounding + rounding)
    r = np.array(rs, dtype=np.float64)
    r[~np.isfinite(r)] = np.nan
    tail = r[-NOISE_STEPS:]
    noise = float(np.max(tail[np.isfinite(tail)], initial=0.0))
    return r, FLOOR_FACTOR * max(float(np.max(bounds, initial=0.0)), noise)


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

    ``kind``: ``right`` (the remainder shrinks as h^2, or as h with an error within
    ``allowed``), ``wrong`` (it shrinks as h: the slope is off by ``error``), ``no_order`` (no
    clean order) or ``unresolved`` (a clean h^2 that reaches the rounding floor before it could
    show an error of ``allowed``). ``error`` is the measured error (first order) or a bound on it
    (second order)."""

    kind: str
    order: float | None
    error: float | None
    allowed: float
    steps: tuple[float, ...]
    remainders: tuple[float, ...]
    window: tuple[int, int] | None

    @property
    def right(self) -> bool:
        return self.kind == "right"

    def details(self) -> dict[str, Any]:
        """JSON data: the verdict, the fitted order, and ``r(h)`` over the fitted steps."""
        lo, hi = self.window or (0, 0)
        return {
            "verdict": self.kind,
            "order": self.order,
            "gradient_error": self.error,
            "allowed": self.allowed,
            "steps": list(self.steps[lo:hi]),
            "remainders": list(self.remainders[lo:hi]),
        }

    def describe(self) -> str:
        """One sentence: what the remainder did and what it means."""
        shown = ", ".join(
            f"r({h:.2g})={r:.2g}"
            for h, r in list(zip(self.steps, self.remainders, strict=True))[
                slice(*(self.window or (0, 0)))
            ][-4:]
        )
        order = "none" if self.order is None else f"{self.order:.2f}"
        if self.kind == "wrong":
            return (
                f"wrong gradient: the Taylor remainder |f(x+hv) - f(x) - h<grad, v>| shrinks as "
                f"h^{order} ({shown}): the gradient is off by {self.error:.3g} along v (allowed "
                f"{self.allowed:.3g})"
            )
        if self.kind == "right":
            if self.order is None:
                why = "stays at rounding for every step (the expansion is exact to rounding)"
            elif self.order < SECOND_ORDER:
                why = (
                    f"shrinks as h^{order} with a gradient error of {self.error:.3g}, within "
                    f"the allowed {self.allowed:.3g}"
                )
            else:
                why = f"shrinks as h^{order} ({shown})"
            return f"numerical noise: the Taylor remainder {why}: the analytic gradient is right"
        if self.kind == "unresolved":
            return (
                f"numerical noise: the Taylor remainder shrinks as h^{order} ({shown}) but reaches "
                f"rounding before it could show a gradient error of {self.allowed:.3g}"
            )
        return f"numerical noise: no clean order (estimated {order}; {shown or 'r(h) at rounding'})"


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
    return Verdict(kind, fit.order, error, allowed, _floats(hs), _floats(rs), fit.window)


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
