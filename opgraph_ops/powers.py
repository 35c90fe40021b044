"""Square and square root, elementwise."""

from __future__ import annotations

import numpy as np

from opgraph import Domain, OpSpec
from opgraph_ops.elementwise import same_shape


def _sqrt_backward(ctx, gy):
    (y,) = ctx.outputs
    return gy / (y * 2)


def _square_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * x * 2


SPECS = [
    OpSpec(
        "sqrt",
        np.sqrt,
        same_shape,
        _sqrt_backward,
        domain=Domain(0.2, 3.0),
        doc="Elementwise square root (inputs must be non-negative; the gradient needs x > 0).",
    ),
    OpSpec("square", np.square, same_shape, _square_backward, doc="Elementwise x ** 2."),
]
