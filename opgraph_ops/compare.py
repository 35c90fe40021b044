"""Ops that pick values by comparing them: abs, maximum/minimum, clip and where.

Each backward routes the output gradient through a constant mask (`opgraph_ops.masks`), so
it is differentiable again. Ties of maximum/minimum share the gradient equally (half each).
"""

from __future__ import annotations

import numpy as np

from opgraph import Attr, Domain, ErrorInput, OpSpec, Sample, attrs, unbroadcast
from opgraph.shapes import broadcast
from opgraph_ops.arithmetic import broadcasting
from opgraph_ops.elementwise import same_shape
from opgraph_ops.masks import constant


# --- abs ---
def _abs_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * constant(np.sign, x, x)


# --- maximum / minimum ---
def _extremum(name: str, pick, wins) -> OpSpec:
    """maximum or minimum: ``pick`` computes it, ``wins(a, b)`` tells where a strictly wins."""

    def backward(ctx, gy):
        a, b = ctx.inputs
        share_a = constant(lambda p, q: np.where(p == q, 0.5, wins(p, q)), gy, a, b)
        ga = gy * share_a
        gb = gy * constant(lambda s: 1.0 - s, gy, share_a)
        return unbroadcast(ga, a), unbroadcast(gb, b)

    return broadcasting(
        name,
        pick,
        backward,
        inputs=("a", "b"),
        doc=f"Elementwise {name} of a and b with broadcasting; ties split the gradient equally.",
    )


# --- clip ---
def _clip_forward(x, x_min, x_max):
    if x_min > x_max:
        raise ValueError(f"clip: x_min={x_min} is greater than x_max={x_max}; swap them")
    return np.clip(x, float(x_min), float(x_max))  # Python floats keep float32


def _clip_backward(ctx, gy):
    (x,) = ctx.inputs
    low, high = ctx.attrs["x_min"], ctx.attrs["x_max"]
    return gy * constant(lambda a: (a >= low) & (a <= high), x, x)


def _clip_errors():
    yield ErrorInput(
        (np.zeros(3),), {"x_min": 1.0, "x_max": -1.0}, ValueError, "x_min", "empty range"
    )


# --- where ---
def _where_backward(ctx, gy):
    cond, a, b = ctx.inputs
    take_a = constant(lambda c: np.broadcast_to(c.astype(bool), gy.shape), gy, cond)
    ga = gy * take_a
    gb = gy * constant(lambda s: 1.0 - s, gy, take_a)
    return None, unbroadcast(ga, a), unbroadcast(gb, b)


def _where_samples(rng: np.random.Generator, dtype: np.dtype):
    for cond_shape, a_shape, b_shape in [
        ((3,), (3,), (3,)),
        ((2, 3), (2, 3), ()),
        ((2, 1), (3,), (2, 3)),
        ((), (2, 2), (2, 2)),
    ]:
        cond = rng.random(cond_shape) < 0.5
        a = rng.uniform(-2, 2, a_shape).astype(dtype)
        b = rng.uniform(-2, 2, b_shape).astype(dtype)
        yield Sample((cond, a, b), note=f"cond {cond_shape}, a {a_shape}, b {b_shape}")


SPECS = [
    OpSpec(
        "abs",
        np.abs,
        same_shape,
        _abs_backward,
        domain=Domain(avoid=(0.0,)),
        doc="Elementwise |x| (gradient sign(x); 0 at 0).",
    ),
    _extremum("maximum", np.maximum, np.greater),
    _extremum("minimum", np.minimum, np.less),
    OpSpec(
        "clip",
        _clip_forward,
        lambda x, x_min, x_max: x,
        _clip_backward,
        attrs=(
            Attr("x_min", check=attrs.number, examples=lambda shapes: [-1.0]),
            Attr("x_max", check=attrs.number, examples=lambda shapes: [1.0]),
        ),
        domain=Domain(avoid=(-1.0, 1.0)),
        error_inputs=_clip_errors,
        reference=lambda x, x_min, x_max: np.where(x < x_min, x_min, np.where(x > x_max, x_max, x)),
        doc="Limit x to [x_min, x_max]; the gradient is 1 inside the range (bounds included).",
    ),
    OpSpec(
        "where",
        np.where,
        lambda cond, a, b: broadcast("where", cond, a, b),
        _where_backward,
        inputs=("cond", "a", "b"),
        nondiff=("cond",),
        kind="custom",
        domain=(None, Domain(), Domain()),
        sample_inputs=_where_samples,
        doc="a where cond is true, else b, all three broadcast; cond gets no gradient.",
    ),
]
