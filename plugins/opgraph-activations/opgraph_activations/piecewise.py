"""Piecewise activations: ``elu`` and ``hard_sigmoid``.

Their backwards multiply by masks of the input's pieces, which are constants: the mask has no
derivative anywhere except at the kinks, which the conformance samples avoid.
"""

from __future__ import annotations

import numpy as np

from opgraph import Attr, Domain, ErrorInput, OpArgumentError, OpSpec, attrs, derive
from opgraph_activations.smooth import same_shape

HARD_SLOPE = 0.2  # Chainer's hard_sigmoid: clip(0.2 * x + 0.5, 0, 1)
HARD_EDGE = 0.5 / HARD_SLOPE  # |x| beyond which it saturates


# --- elu ---
def _alpha(value):
    """A Python float, so it never promotes a float32 input to float64."""
    return float(attrs.number(value))


def _elu_forward(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _elu_errors():
    yield ErrorInput((np.zeros(3),), {"alpha": "big"}, OpArgumentError, "elu.*alpha")


def _elu_backward(ctx, gy):
    """1 on the positive side; alpha * exp(x) = y + alpha on the other (taken from the output,
    so large positive x never overflows an exp)."""
    (x,) = ctx.inputs
    (y,) = ctx.outputs
    positive = derive(lambda a: (a > 0).astype(a.dtype), x)
    negative = derive(lambda a: (a <= 0).astype(a.dtype), x)
    return gy * (positive + negative * (y + ctx.attrs["alpha"]))


# --- hard_sigmoid ---
def _hard_sigmoid_forward(x):
    return np.clip(HARD_SLOPE * x + 0.5, 0, 1)


def _hard_sigmoid_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * derive(lambda a: HARD_SLOPE * (np.abs(a) < HARD_EDGE).astype(a.dtype), x)


SPECS = [
    OpSpec(
        "elu",
        _elu_forward,
        same_shape,
        _elu_backward,
        attrs=(Attr("alpha", 1.0, _alpha, examples=lambda shapes: (1.0, 0.5), doc="scale"),),
        domain=Domain(avoid=(0.0,)),
        error_inputs=_elu_errors,
        doc="x for x > 0, alpha * (exp(x) - 1) otherwise.",
    ),
    OpSpec(
        "hard_sigmoid",
        _hard_sigmoid_forward,
        same_shape,
        _hard_sigmoid_backward,
        domain=Domain(-4.0, 4.0, avoid=(-HARD_EDGE, HARD_EDGE)),
        doc="clip(0.2 * x + 0.5, 0, 1), a piecewise-linear sigmoid (Chainer's definition).",
    ),
]
