"""Elementwise math: each op maps any shape to itself.

The backwards of sin, cos and tanh are one fused op each (``sin_grad``, ``cos_grad``,
``tanh_grad``, like ``sigmoid_grad``): one op call and one pass over the data on the hot path of
every network instead of two or three, and still differentiable (their own backwards are
written with ops).
"""

from __future__ import annotations

import numpy as np

from opgraph import Domain, OpSpec
from opgraph.errors import ShapeError
from opgraph.shapes import fmt_shapes


def same_shape(x: tuple[int, ...]) -> tuple[int, ...]:
    return x


def _equal_shapes(name: str):
    def rule(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
        if a != b:
            raise ShapeError(f"{name}: shapes {fmt_shapes([a, b])} must be equal")
        return a

    return rule


def _times_gy(derivative):
    """The forward of a fused gradient op, ``derivative(x) * gy``: the product is taken in the
    fresh temporary ``derivative`` returns when the dtypes allow it (one pass, no new array)."""

    def forward(x, gy):
        g = derivative(x)
        if type(g) is np.ndarray and g.dtype == gy.dtype:
            g *= gy
            return g
        return g * gy

    return forward


def _sin_backward(ctx, gy):
    (x,) = ctx.inputs
    return ctx.ops.sin_grad(x, gy)


def _sin_grad_backward(ctx, gg):  # sin_grad(x, gy) = gy * cos(x)
    x, gy = ctx.inputs
    return ctx.ops.cos_grad(x, gg * gy), ctx.ops.sin_grad(x, gg)


def _cos_backward(ctx, gy):
    (x,) = ctx.inputs
    return ctx.ops.cos_grad(x, gy)


def _cos_grad_backward(ctx, gg):  # cos_grad(x, gy) = -gy * sin(x)
    x, gy = ctx.inputs
    return -ctx.ops.sin_grad(x, gg * gy), ctx.ops.cos_grad(x, gg)


def _tanh_backward(ctx, gy):
    (y,) = ctx.outputs
    return ctx.ops.tanh_grad(y, gy)


def _tanh_grad_backward(ctx, gg):  # tanh_grad(y, gy) = gy * (1 - y * y)
    y, gy = ctx.inputs
    return gg * gy * (-2.0 * y), ctx.ops.tanh_grad(y, gg)


def _fused(name: str, forward, backward, requires: tuple[str, ...], doc: str) -> OpSpec:
    return OpSpec(
        name,
        forward,
        _equal_shapes(name),
        backward,
        inputs=("x", "gy"),
        requires=requires,
        doc=doc,
    )


def _exp_backward(ctx, gy):
    (y,) = ctx.outputs
    return gy * y


def _log_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy / x


SPECS = [
    OpSpec(
        "sin", np.sin, same_shape, _sin_backward, requires=("sin_grad",), doc="Elementwise sine."
    ),
    OpSpec(
        "cos", np.cos, same_shape, _cos_backward, requires=("cos_grad",), doc="Elementwise cosine."
    ),
    OpSpec(
        "tanh",
        np.tanh,
        same_shape,
        _tanh_backward,
        requires=("tanh_grad",),
        doc="Elementwise hyperbolic tangent.",
    ),
    _fused(
        "sin_grad",
        _times_gy(np.cos),
        _sin_grad_backward,
        ("sin_grad", "cos_grad"),
        "gy * cos(x): the backward of sin, fused.",
    ),
    _fused(
        "cos_grad",
        _times_gy(lambda x: np.negative(np.sin(x))),
        _cos_grad_backward,
        ("sin_grad", "cos_grad"),
        "-gy * sin(x): the backward of cos, fused.",
    ),
    _fused(
        "tanh_grad",
        _times_gy(lambda y: 1.0 - y * y),  # a Python float keeps float32
        _tanh_grad_backward,
        ("tanh_grad",),
        "gy * (1 - y * y): the backward of tanh from its output y, fused.",
    ),
    OpSpec("exp", np.exp, same_shape, _exp_backward, doc="Elementwise e**x."),
    OpSpec(
        "log",
        np.log,
        same_shape,
        _log_backward,
        domain=Domain(0.2, 3.0),
        doc="Natural logarithm (inputs must be positive).",
    ),
]
