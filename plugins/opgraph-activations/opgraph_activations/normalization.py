"""``layer_norm`` and ``batch_norm``: normalise, then scale by gamma and shift by beta.

Both are one computation over different axes (layer norm: the last axis of each sample; batch
norm: every axis but the channel axis 1), so they share `Normalization`. ``batch_norm`` holds
no state: it also returns the batch mean and variance, and `opgraph_activations.BatchNorm`
keeps the running statistics outside the op — so no call, and no conformance run, can corrupt
them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from opgraph import Attr, ErrorInput, OpSpec, Sample, ShapeError, attrs
from opgraph.shapes import fmt_shapes

PLUGIN = "opgraph-activations"
EPS = Attr(
    "eps",
    1e-5,
    attrs.FloatRange(0.0, math.inf, open=("low", "high")),
    doc="added to the variance: a finite number > 0 (0 or less divides by zero or goes negative)",
)


@dataclass(frozen=True)
class Normalization:
    """Which axes are normalised together (``stat_axes``) and where gamma/beta's one axis of
    length C sits in x (``param_axis``)."""

    op: str
    param_axis: int
    min_ndim: int

    def check(self, x, gamma, beta) -> tuple[int, ...]:
        """The output shape of x; a ShapeError unless gamma and beta have shape (C,)."""
        shapes = (x, gamma, beta)
        if len(x) < self.min_ndim:
            raise ShapeError(
                f"{self.op} ({PLUGIN}): input shapes {fmt_shapes(shapes)}: x needs at least "
                f"{self.min_ndim} dimensions"
            )
        channels = x[self.param_axis]
        if tuple(gamma) != (channels,) or tuple(beta) != (channels,):
            raise ShapeError(
                f"{self.op} ({PLUGIN}): input shapes {fmt_shapes(shapes)}: gamma and beta "
                f"must have shape ({channels},), the length of axis {self.param_axis} of x"
            )
        if any(x[a] == 0 for a in self.stat_axes(len(x))):
            raise ShapeError(
                f"{self.op} ({PLUGIN}): input shapes {fmt_shapes(shapes)}: the axes it "
                f"normalises over ({', '.join(map(str, self.stat_axes(len(x))))}) are empty, "
                "so there is no mean or variance"
            )
        return tuple(x)

    def stat_axes(self, ndim: int) -> tuple[int, ...]:
        if self.param_axis == -1:
            return (ndim - 1,)
        return tuple(a for a in range(ndim) if a != self.param_axis)

    def param_shape(self, ndim: int) -> tuple[int, ...]:
        """gamma's shape for broadcasting against x: (1, C, 1, 1) or (..., 1, C)."""
        shape = [1] * ndim
        shape[self.param_axis] = -1
        return tuple(shape)

    def forward(self, x, gamma, beta, eps):
        """(y, mean, var) with mean and var of shape (C,) squeezed from the statistic axes."""
        self.check(x.shape, gamma.shape, beta.shape)
        axes = self.stat_axes(x.ndim)
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        shape = self.param_shape(x.ndim)
        y = centred / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)
        return y, mean, var

    def backward(self, ctx, gy, gmean=None, gvar=None):
        """Gradients of y (and of the batch mean and variance when given) w.r.t. x, gamma and
        beta, all as opgraph ops on the inputs so they can be differentiated again."""
        x, gamma, _ = ctx.inputs
        ops = ctx.ops
        axes = self.stat_axes(x.ndim)
        count = math.prod(x.shape[a] for a in axes)

        def mean_of(v):
            return ops.sum(v, axes, True) / count

        centred = x - mean_of(x)
        rstd = (mean_of(centred * centred) + ctx.attrs["eps"]) ** -0.5
        xhat = centred * rstd
        gxhat = gy * ops.reshape(gamma, self.param_shape(x.ndim))
        gx = rstd * (gxhat - mean_of(gxhat) - xhat * mean_of(gxhat * xhat))
        if gmean is not None:  # d mean / dx = 1 / count; d var / dx = 2 (x - mean) / count
            kept = self.param_shape(x.ndim)
            gx = gx + (ops.reshape(gmean, kept) + 2.0 * ops.reshape(gvar, kept) * centred) / count
        param_axes = tuple(a for a in range(x.ndim) if a != self.param_axis % x.ndim)
        return gx, ops.sum(gy * xhat, param_axes), ops.sum(gy, param_axes)


LAYER = Normalization("layer_norm", param_axis=-1, min_ndim=1)
BATCH = Normalization("batch_norm", param_axis=1, min_ndim=2)


def _layer_norm_forward(x, gamma, beta, eps):
    return LAYER.forward(x, gamma, beta, eps)[0]


def _batch_norm_forward(x, gamma, beta, eps):
    y, mean, var = BATCH.forward(x, gamma, beta, eps)
    return y, mean.reshape(-1), var.reshape(-1)


def _batch_norm_rule(x, gamma, beta, eps):
    return BATCH.check(x, gamma, beta), tuple(gamma), tuple(gamma)


# --- conformance hints ---
def _samples(shapes, channel_axis):
    def samples(rng, dtype):
        for shape in shapes:
            c = shape[channel_axis]
            arrays = (rng.uniform(-2, 2, shape), rng.uniform(0.5, 2, c), rng.uniform(-1, 1, c))
            yield Sample(tuple(a.astype(dtype) for a in arrays), {}, f"x {shape}")

    return samples


def _errors(op, x_shape):
    def errors():
        c = x_shape[-1 if op == "layer_norm" else 1]
        x, good = np.zeros(x_shape), np.ones(c)
        yield ErrorInput((x, np.ones(c + 1), good), {}, ShapeError, f"{op}.*gamma and beta")
        yield ErrorInput((x, good, np.ones((1, c))), {}, ShapeError, f"{op}.*gamma and beta")
        if op == "batch_norm":
            yield ErrorInput((np.zeros(c), good, good), {}, ShapeError, "at least 2 dim")

    return errors


SPECS = [
    OpSpec(
        "layer_norm",
        _layer_norm_forward,
        lambda x, gamma, beta, eps: LAYER.check(x, gamma, beta),
        LAYER.backward,
        inputs=("x", "gamma", "beta"),
        attrs=(EPS,),
        kind="custom",
        sample_inputs=_samples([(3, 4), (2, 3, 5), (6,)], -1),
        error_inputs=_errors("layer_norm", (2, 3)),
        doc="Normalise over the last axis (mean 0, variance 1), then * gamma + beta; gamma "
        "and beta have the last axis's length.",
    ),
    OpSpec(
        "batch_norm",
        _batch_norm_forward,
        _batch_norm_rule,
        BATCH.backward,
        inputs=("x", "gamma", "beta"),
        attrs=(EPS,),
        n_outputs=3,
        kind="custom",
        sample_inputs=_samples([(5, 3), (2, 3, 2, 2)], 1),
        error_inputs=_errors("batch_norm", (4, 3)),
        doc="Training-mode batch normalisation of x (N, C, ...) over every axis but the "
        "channel axis 1. Returns (y, batch mean, batch variance), the statistics of shape "
        "(C,); opgraph_activations.BatchNorm keeps running statistics and uses them in test "
        "mode.",
    ),
]
