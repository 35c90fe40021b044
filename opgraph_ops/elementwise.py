"""Elementwise math: each op maps any shape to itself."""

from __future__ import annotations

import numpy as np

from opgraph import Domain, OpSpec


def same_shape(x: tuple[int, ...]) -> tuple[int, ...]:
    return x


def _sin_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * ctx.ops.cos(x)


def _cos_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * -ctx.ops.sin(x)


def _tanh_backward(ctx, gy):
    (y,) = ctx.outputs
    return gy * (1 - y * y)


def _exp_backward(ctx, gy):
    (y,) = ctx.outputs
    return gy * y


def _log_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy / x


SPECS = [
    OpSpec("sin", np.sin, same_shape, _sin_backward, requires=("cos",), doc="Elementwise sine."),
    OpSpec("cos", np.cos, same_shape, _cos_backward, requires=("sin",), doc="Elementwise cosine."),
    OpSpec("tanh", np.tanh, same_shape, _tanh_backward, doc="Elementwise hyperbolic tangent."),
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
