"""Smooth activations: ``erf``, ``gelu`` (exact and tanh approximation), ``softplus``,
``silu`` and ``mish``.

Backwards are written with opgraph ops on the inputs, so every op here can be differentiated
to any order. The logistic sigmoid is taken as 0.5 * (1 + tanh(x / 2)): exact, and it never
overflows the way 1 / (1 + exp(-x)) does.
"""

from __future__ import annotations

import math

import numpy as np

from opgraph import Attr, ErrorInput, OpArgumentError, OpSpec, attrs

SQRT_2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
TANH_SCALE = math.sqrt(2.0 / math.pi)  # the tanh approximation of gelu (Hendrycks & Gimpel)
TANH_CUBIC = 0.044715

# numpy has no erf; math.erf per element is exact to double precision (a Python call per
# element: fine for activations, not meant for huge tensors)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def same_shape(x: tuple[int, ...], **_attrs) -> tuple[int, ...]:
    return x


def sigmoid_array(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def sigmoid_of(ops, x):
    """The logistic sigmoid as opgraph ops (needs ``tanh`` in the op's ``requires``)."""
    return 0.5 * (ops.tanh(0.5 * x) + 1.0)


# --- erf ---
def _erf_forward(x):
    return _erf(x).astype(x.dtype, copy=False)


def _erf_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * (TWO_OVER_SQRT_PI * ctx.ops.exp(-(x * x)))


# --- gelu ---
APPROXIMATIONS = ("none", "tanh")


def _gelu_forward(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(TANH_SCALE * (x + TANH_CUBIC * x**3)))
    return 0.5 * x * (1.0 + _erf_forward(x / SQRT_2))


def _gelu_backward(ctx, gy):
    (x,) = ctx.inputs
    ops = ctx.ops
    if ctx.attrs["approximate"] == "tanh":
        t = ops.tanh(TANH_SCALE * (x + TANH_CUBIC * x**3))
        du = TANH_SCALE * (1.0 + 3.0 * TANH_CUBIC * x * x)
        return gy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
    cdf = 0.5 * (1.0 + ops.erf(x / SQRT_2))
    pdf = INV_SQRT_2PI * ops.exp(-0.5 * (x * x))
    return gy * (cdf + x * pdf)


def _gelu_errors():
    yield ErrorInput((np.zeros(3),), {"approximate": "fast"}, OpArgumentError, "gelu.*approximate")


# --- softplus, silu, mish ---
def _softplus_forward(x):
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def _silu_backward(ctx, gy):
    (x,) = ctx.inputs
    s = sigmoid_of(ctx.ops, x)
    return gy * (s * (1.0 + x * (1.0 - s)))


def _mish_forward(x):
    return x * np.tanh(_softplus_forward(x))


def _mish_backward(ctx, gy):
    (x,) = ctx.inputs
    ops = ctx.ops
    t = ops.tanh(ops.softplus(x))
    return gy * (t + x * (1.0 - t * t) * sigmoid_of(ops, x))


SPECS = [
    OpSpec(
        "erf",
        _erf_forward,
        same_shape,
        _erf_backward,
        requires=("exp",),
        doc="The Gauss error function, elementwise (exact to double precision).",
    ),
    OpSpec(
        "gelu",
        _gelu_forward,
        same_shape,
        _gelu_backward,
        attrs=(
            Attr(
                "approximate",
                "none",
                attrs.Choice(APPROXIMATIONS),
                doc="'none': x * Phi(x) exactly; 'tanh': the tanh approximation",
            ),
        ),
        requires=("erf", "exp", "tanh"),
        error_inputs=_gelu_errors,
        doc="Gaussian error linear unit x * Phi(x), exact or with the tanh approximation.",
    ),
    OpSpec(
        "softplus",
        _softplus_forward,
        same_shape,
        lambda ctx, gy: gy * sigmoid_of(ctx.ops, ctx.inputs[0]),
        requires=("tanh",),
        doc="log(1 + exp(x)), computed without overflow; its derivative is the sigmoid.",
    ),
    OpSpec(
        "silu",
        lambda x: x * sigmoid_array(x),
        same_shape,
        _silu_backward,
        requires=("tanh",),
        doc="x * sigmoid(x) (also called swish).",
    ),
    OpSpec(
        "mish",
        _mish_forward,
        same_shape,
        _mish_backward,
        requires=("softplus", "tanh"),
        doc="x * tanh(softplus(x)).",
    ),
]
