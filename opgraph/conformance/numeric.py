"""Central differences in float64, projected or element by element, and the comparison of an
analytic against a numerical value under a tolerance.

A projection ``v^T J u`` costs two evaluations of the function whatever the tensor sizes; the
full Jacobian (one column per input element) is only built to explain a failure, or on request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from opgraph.contract import Tolerance

Arrays = Sequence[np.ndarray]
Function = Callable[[list[np.ndarray]], tuple[np.ndarray, ...]]
"""Inputs in, outputs out (each output as float64)."""

EPS_FLOAT64 = 1e-6
EPS_LOW_PRECISION = 1e-3
"""Step for functions whose float64 evaluation still rounds to a narrower dtype (a cast)."""
JACOBIAN_LIMIT = 4096
"""Largest Jacobian (outputs x input elements) rebuilt to explain a failure."""

DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-6, atol=1e-7, reason="central differences in float64"),
    "float32": Tolerance(rtol=3e-4, atol=1e-5, reason="float32 analytic vs float64 numerical"),
    "float16": Tolerance(rtol=1e-2, atol=1e-3, reason="float16 analytic vs float64 numerical"),
}
"""Gradient tolerances. The rtols were 1e-5 (float64) and 1e-3 (float32) before the Taylor
verdict backed a narrow miss: tightened 10x and 3.3x, where the default op set, both plugins
and every config stay far inside them (worst error / bound over every projection and Jacobian
element, seeds 0-2, and float32-prone ops over 50 seeds: float64 0.005, float32 0.19; astype's
float32 rounding bounds float32 at 0.4 with --full-jacobian). A 10x tightening keeps a miss
that was narrow (<= 10x) under the old rtol narrow (<= 100x, `differentiation.NARROW`) under
the new, so it still gets the verdict, which resolves relative errors to about 1e-8. The atols
stay: on a near-zero projection the allowance is the atol alone, and the verdict resolves only
about sqrt(curvature * rounding) there (3-5e-8 for three 0-d samples of the default set, so
1e-8 would fail them on a narrow miss). float16: no default op compares float16 gradients."""


def step_for(outputs: Sequence[np.ndarray]) -> float:
    """The difference step: small when outputs are float64, larger when they are rounded."""
    narrow = any(o.dtype.kind == "f" and o.dtype.itemsize < 8 for o in outputs)
    return EPS_LOW_PRECISION if narrow else EPS_FLOAT64


def _shifted(xs: Arrays, k: int, delta: np.ndarray) -> list[np.ndarray]:
    return [x + delta if j == k else x for j, x in enumerate(xs)]


def directional(f: Function, xs: Arrays, k: int, u: np.ndarray, eps: float) -> list[np.ndarray]:
    """d f(xs) / d xs[k] along ``u``, per output, by central differences."""
    plus = f(_shifted(xs, k, eps * u))
    minus = f(_shifted(xs, k, -eps * u))
    return [(p.astype(np.float64) - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]


def project(outputs: Sequence[np.ndarray], vs: Sequence[np.ndarray]) -> float:
    """``sum_m <outputs[m], vs[m]>`` in float64."""
    return float(sum(np.sum(o.astype(np.float64) * v) for o, v in zip(outputs, vs, strict=True)))


def numerical_jacobian(f: Function, xs: Arrays, k: int, eps: float) -> np.ndarray:
    """Rows: every output element (outputs concatenated); columns: elements of ``xs[k]``."""
    x = xs[k]
    if x.size == 0:
        return np.zeros((sum(o.size for o in f(list(xs))), 0))
    columns = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = 1.0
        columns.append(
            np.concatenate([d.ravel() for d in directional(f, xs, k, e.reshape(x.shape), eps)])
        )
    return np.stack(columns, axis=1)


def analytic_jacobian(
    vjp: Callable[[list[np.ndarray]], np.ndarray],
    output_shapes: Sequence[tuple[int, ...]],
    n_in: int,
) -> np.ndarray:
    """Rows from one vector-Jacobian product per output element (``vjp`` takes cotangents per
    output and returns the flattened gradient of the input of interest)."""
    sizes = [int(np.prod(s)) for s in output_shapes]
    rows = []
    for m, size in enumerate(sizes):
        for i in range(size):
            cotangents = [np.zeros(s) for s in output_shapes]
            cotangents[m].reshape(-1)[i] = 1.0
            rows.append(vjp(cotangents))
    return np.stack(rows) if rows else np.zeros((0, n_in))


@dataclass(frozen=True)
class Mismatch:
    """One element of a comparison: where, both values, both errors and the tolerance's bound."""

    where: tuple[int, int]
    analytic: float
    numerical: float
    abs_err: float
    rel_err: float
    bound: float

    @property
    def ok(self) -> bool:
        return self.abs_err <= self.bound


def excess(analytic: np.ndarray, numerical: np.ndarray, tol: Tolerance) -> np.ndarray:
    """Each element's error beyond the tolerance (inf where a value is nan)."""
    with np.errstate(invalid="ignore"):
        over = np.abs(analytic - numerical) - (tol.atol + tol.rtol * np.abs(numerical))
    return np.where(np.isnan(over), np.inf, over)


def mismatch_at(analytic: np.ndarray, numerical: np.ndarray, tol: Tolerance, flat: int) -> Mismatch:
    """The comparison of the element at flat index ``flat``."""
    where = np.unravel_index(flat, analytic.shape)
    a, n = float(analytic[where]), float(numerical[where])
    with np.errstate(invalid="ignore"):
        abs_err = abs(a - n)
    return Mismatch(
        (int(where[0]), int(where[1])),
        a,
        n,
        abs_err,
        abs_err / abs(n) if n else float("inf") if abs_err else 0.0,
        tol.atol + tol.rtol * abs(n),
    )


def worst_element(analytic: np.ndarray, numerical: np.ndarray, tol: Tolerance) -> Mismatch | None:
    """The element with the largest excess over the tolerance (None for empty Jacobians)."""
    if analytic.size == 0:
        return None
    return mismatch_at(analytic, numerical, tol, int(np.argmax(excess(analytic, numerical, tol))))


def rounding(outputs: Sequence[np.ndarray], vs: Sequence[np.ndarray]) -> float:
    """A bound on the rounding error of ``project(outputs, vs)`` from the rounding of each
    output element: half a unit in the last place each, in the outputs' own dtype."""
    total = 0.0
    for y, v in zip(outputs, vs, strict=True):
        if y.dtype.kind == "f" and y.size:
            ulp = np.spacing(np.abs(y)).astype(np.float64)
            total += float(np.sum(np.abs(v) * ulp))
    return total / 2


def rounding_noise(outputs: Sequence[np.ndarray], vs: Sequence[np.ndarray], eps: float) -> float:
    """A bound on the error that rounding of the evaluated outputs puts into a projected central
    difference ``<v, (f(x + eps u) - f(x - eps u)) / 2 eps>``: each output element is off by at
    most half a unit in the last place in each of the two evaluations. It matters when the
    float64 evaluation still rounds to float32 (a cast), where it grows with the outputs'
    magnitude, not with the projection's — so a fixed atol fails on some seeds."""
    return 4.0 * rounding(outputs, vs) / (2 * eps)


def bound(numerical: float, scale: float, tol: Tolerance, noise: float = 0.0) -> float:
    """The largest error `close` accepts."""
    return tol.atol + tol.rtol * max(scale, abs(numerical)) + noise


def close(
    analytic: float, numerical: float, scale: float, tol: Tolerance, noise: float = 0.0
) -> bool:
    """Whether a projected derivative matches: ``scale`` bounds the size of the summed terms,
    so cancellation inside the projection cannot make a correct gradient look wrong; ``noise``
    is the rounding error of the numerical side (`rounding_noise`)."""
    if not (np.isfinite(analytic) and np.isfinite(numerical)):
        return False
    return abs(analytic - numerical) <= bound(numerical, scale, tol, noise)
