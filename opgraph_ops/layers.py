"""Layer functions: linear (affine map) and dropout (random zeroing while training)."""

from __future__ import annotations

import math

import numpy as np

from opgraph import (
    Attr,
    ErrorInput,
    OpArgumentError,
    OpSpec,
    Sample,
    ShapeError,
    attrs,
    is_training,
    unbroadcast,
)
from opgraph.shapes import fmt_shapes
from opgraph_ops.views import readonly_view


# --- linear ---
def _linear_forward(x, w, b=None):
    y = np.matmul(x, w)
    if b is None:
        return y
    if b.dtype == y.dtype:
        y += b  # y is a fresh array: add in place, no extra copy
        return y
    return y + b


def _linear_rule(x, w, b=None):
    shapes = (x, w) if b is None else (x, w, b)
    if len(w) != 2 or not x or x[-1] != w[0]:
        raise ShapeError(
            f"linear: shapes {fmt_shapes(shapes)}: need x (..., in), W (in, out) and a bias "
            "that broadcasts to (out,)"
        )
    out = (*x[:-1], w[1])
    if b is not None and not _broadcasts_to(b, out):
        raise ShapeError(
            f"linear: shapes {fmt_shapes(shapes)}: the bias does not broadcast to the output {out}"
        )
    return out


def _broadcasts_to(shape, target) -> bool:
    try:
        return np.broadcast_shapes(target, shape) == tuple(target)
    except ValueError:
        return False


def _linear_backward(ctx, gy):
    """Products only for the inputs that need a gradient: a first layer's data x is a constant,
    and its gradient would cost as much as the forward."""
    ops = ctx.ops
    x, w, *b = ctx.inputs
    need_x, need_w, *need_b = ctx.needs_input_grad
    gx = unbroadcast(ops.matmul(gy, ops.transpose(w)), x) if need_x else None
    gw = None
    if need_w and x.ndim == 2:
        gw = ops.matmul(ops.transpose(x), gy)
    elif need_w:  # batch axes: flatten them, then one matrix product
        rows = math.prod(x.shape[:-1])  # not -1: undefined when a size is 0
        flat_x = ops.reshape(x, (rows, x.shape[-1]))
        gw = ops.matmul(ops.transpose(flat_x), ops.reshape(gy, (rows, gy.shape[-1])))
    grads = (gx, None if gw is None else unbroadcast(gw, w))
    return (*grads, unbroadcast(gy, b[0]) if need_b[0] else None) if b else grads


def _linear_samples(rng: np.random.Generator, dtype: np.dtype):
    for x_shape, w_shape, b_shape in [
        ((4, 3), (3, 2), (2,)),
        ((4, 3), (3, 2), None),
        ((3,), (3, 5), (5,)),
        ((2, 4, 3), (3, 2), (1, 2)),
        ((5, 3), (3, 1), ()),
    ]:
        shapes = [x_shape, w_shape] + ([b_shape] if b_shape is not None else [])
        arrays = tuple(rng.uniform(-2, 2, s).astype(dtype) for s in shapes)
        yield Sample(arrays, note=f"x {x_shape} @ W {w_shape} + b {b_shape}")


# --- dropout ---
def _dropout_forward(x, dropout_ratio, rng):
    """Train: zero each element with probability dropout_ratio, scale the rest by
    1 / (1 - dropout_ratio) so the expectation is unchanged. Test: pass x through."""
    if not is_training():
        return readonly_view(x, x), None
    mask = (rng.random(x.shape) >= dropout_ratio) * (1 / (1 - dropout_ratio))
    mask = np.asarray(mask, dtype=x.dtype)  # an array even for a 0-d x: the backward uses it
    return x * mask, mask


def _dropout_backward(ctx, gy):
    mask = ctx.state
    if mask is None:  # test mode: the identity (unbroadcast gives a read-only view of gy)
        return unbroadcast(gy, ctx.inputs[0])
    return gy * mask  # the mask is an array of gy's dtype, named in a trace's recording


def _dropout_errors():
    yield ErrorInput(
        (np.zeros(3),),
        {"dropout_ratio": 1.0},
        OpArgumentError,
        match="dropout_ratio",
        note="a ratio of 1 would drop everything",
    )


SPECS = [
    OpSpec(
        "linear",
        _linear_forward,
        _linear_rule,
        _linear_backward,
        inputs=("x", "W", "b?"),
        kind="custom",
        reference=lambda x, w, b=None: x @ w + (0.0 if b is None else b),
        sample_inputs=_linear_samples,
        doc="x @ W + b for x (..., in), W (in, out) and an optional bias broadcast to (out,).",
    ),
    OpSpec(
        "dropout",
        _dropout_forward,
        lambda x, dropout_ratio: x,
        _dropout_backward,
        attrs=(Attr("dropout_ratio", 0.5, attrs.FloatRange(0.0, 1.0, open=("high",))),),
        stochastic=True,
        saves_state=True,
        error_inputs=_dropout_errors,
        doc="Training: zero elements with probability dropout_ratio and rescale the rest; "
        "test mode (opgraph.test_mode()): identity.",
    ),
]
