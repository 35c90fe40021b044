"""Neural-network activations: sigmoid, relu, leaky_relu, softmax and log_softmax.

softmax and log_softmax normalise over ``axis`` (DeZero's default 1: the class axis of a batch)
and subtract the maximum first, so huge inputs neither overflow nor turn into NaN.
"""

from __future__ import annotations

import numpy as np

from opgraph import Attr, Domain, OpSpec, ShapeError, attrs
from opgraph_ops.elementwise import same_shape
from opgraph_ops.masks import constant
from opgraph_ops.reductions import nonempty_reduction_rule, stable_logsumexp


# --- sigmoid ---
def _sigmoid_forward(x):
    """1 / (1 + exp(-x)) as tanh(x / 2) / 2 + 1/2: no overflow for large |x|, one temporary."""
    y = np.tanh(x * 0.5)
    y *= 0.5
    y += 0.5
    return y


def _sigmoid_backward(ctx, gy):
    (y,) = ctx.outputs
    return ctx.ops.sigmoid_grad(y, gy)


def _sigmoid_grad_forward(y, gy):
    """gy * y * (1 - y) in one pass with one temporary: sigmoid's backward is on the hot path of
    every sigmoid network, where three separate ops cost three full-size arrays."""
    g = 1.0 - y  # a Python float keeps float32
    g *= y
    g *= gy
    return g


def _sigmoid_grad_backward(ctx, gg):
    y, gy = ctx.inputs
    return gg * gy * (1 - 2 * y), ctx.ops.sigmoid_grad(y, gg)


def _same_shapes(y, gy):
    if y != gy:
        raise ShapeError(f"sigmoid_grad: shapes {y} and {gy} must be equal")
    return y


# --- relu / leaky_relu ---
def _relu_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * constant(lambda a: a > 0, x, x)


def _leaky_relu_forward(x, slope):
    return np.where(x > 0, x, x * float(slope))  # a Python float keeps float32


def _leaky_relu_backward(ctx, gy):
    (x,) = ctx.inputs
    slope = ctx.attrs["slope"]
    return gy * constant(lambda a: np.where(a > 0, 1.0, slope), x, x)


# --- softmax / log_softmax ---
def _normalising(name: str, forward, backward, **kw) -> OpSpec:
    along_axis = nonempty_reduction_rule(name)

    def rule(x, axis):
        along_axis(x, axis, keepdims=True)  # rejects bad and empty axes
        return x

    return OpSpec(
        name,
        forward,
        rule,
        backward,
        attrs=(Attr("axis", 1, attrs.Axes()),),
        kind="shape",
        **kw,
    )


def _softmax_forward(x, axis):
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def _softmax_backward(ctx, gy):
    (y,) = ctx.outputs
    gx = y * gy
    return gx - y * ctx.ops.sum(gx, ctx.attrs["axis"], True)


def _log_softmax_backward(ctx, gy):
    (y,) = ctx.outputs
    return gy - ctx.ops.exp(y) * ctx.ops.sum(gy, ctx.attrs["axis"], True)


SPECS = [
    OpSpec(
        "sigmoid",
        _sigmoid_forward,
        same_shape,
        _sigmoid_backward,
        requires=("sigmoid_grad",),
        reference=lambda x: 1 / (1 + np.exp(-x)),
        doc="1 / (1 + exp(-x)).",
    ),
    OpSpec(
        "sigmoid_grad",
        _sigmoid_grad_forward,
        _same_shapes,
        _sigmoid_grad_backward,
        inputs=("y", "gy"),
        requires=("sigmoid_grad",),
        domain=(Domain(0.05, 0.95), Domain()),
        doc="gy * y * (1 - y): sigmoid's backward given its output y, fused.",
    ),
    OpSpec(
        "relu",
        lambda x: np.maximum(x, 0),
        same_shape,
        _relu_backward,
        domain=Domain(avoid=(0.0,)),
        reference=lambda x: x * (x > 0),
        doc="max(x, 0); the gradient at 0 is 0.",
    ),
    OpSpec(
        "leaky_relu",
        _leaky_relu_forward,
        lambda x, slope: x,
        _leaky_relu_backward,
        attrs=(Attr("slope", 0.2, attrs.number),),
        domain=Domain(avoid=(0.0,)),
        doc="x for x > 0, else slope * x.",
    ),
    _normalising(
        "softmax",
        _softmax_forward,
        _softmax_backward,
        reference=lambda x, axis: np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True),
        doc="exp(x) normalised to sum 1 over axis (default 1), computed stably.",
    ),
    _normalising(
        "log_softmax",
        lambda x, axis: x - stable_logsumexp(x, axis, keepdims=True),
        _log_softmax_backward,
        requires=("exp",),
        reference=lambda x, axis: x - np.log(np.exp(x).sum(axis=axis, keepdims=True)),
        doc="log(softmax(x, axis)) computed stably: x - logsumexp(x, axis).",
    ),
]
