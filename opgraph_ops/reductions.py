"""Reductions beyond sum: mean, max, min and logsumexp over ``axis`` (None, an int, negative,
or a tuple), with ``keepdims``.

Ties of max/min share the gradient equally: with k maxima in a reduced slice, each gets 1/k of
that slice's gradient (the sum of the gradient is preserved; numpy's argmax-style "first wins"
would make the gradient depend on element order).
"""

from __future__ import annotations

import math

import numpy as np

from opgraph import Attr, OpSpec, ShapeError, attrs
from opgraph.shapes import normalize_axes, reduce_shape
from opgraph_ops.masks import constant
from opgraph_ops.tensor import spread

REDUCTION_ATTRS = (Attr("axis", None, attrs.Axes()), Attr("keepdims", False, attrs.flag))


def nonempty_reduction_rule(op: str):
    """The shape rule of a reduction that has no value over an empty axis (max of nothing)."""

    def rule(x, axis, keepdims):
        axes = normalize_axes(op, axis, len(x), x)
        if any(x[a] == 0 for a in axes):
            raise ShapeError(
                f"{op}: cannot reduce shape {tuple(x)} over axis {axis}: an axis is empty"
            )
        return reduce_shape(op, x, axis, keepdims)

    return rule


def _kept_output(ctx):
    """The op's output as a Variable with the reduced axes kept (size 1)."""
    (x,), (y,) = ctx.inputs, ctx.outputs
    return ctx.ops.reshape(y, reduce_shape(ctx.op.name, x.shape, ctx.attrs["axis"], True))


# --- mean ---
def _reduced_count(shape, axis) -> int:
    return math.prod(shape[a] for a in normalize_axes("mean", axis, len(shape)))


def _mean_forward(x, axis, keepdims):
    return np.mean(x, axis=axis, keepdims=keepdims)  # the rule has refused empty reductions


def _mean_backward(ctx, gy):
    (x,) = ctx.inputs
    axes = normalize_axes("mean", ctx.attrs["axis"], x.ndim)
    return spread(ctx, gy) * (1 / math.prod(x.shape[a] for a in axes))


# --- max / min ---
def _extreme(name: str, pick) -> OpSpec:
    def backward(ctx, gy):
        (x,) = ctx.inputs
        axes = normalize_axes(name, ctx.attrs["axis"], x.ndim)

        def share(a):  # ties split the gradient equally
            hit = a == pick(a, axis=axes, keepdims=True)
            return hit / hit.sum(axis=axes, keepdims=True)

        return spread(ctx, gy) * constant(share, x, x)

    return OpSpec(
        name,
        pick,
        nonempty_reduction_rule(name),
        backward,
        attrs=REDUCTION_ATTRS,
        kind="reduction",
        doc=f"{name.capitalize()} over axis; tied extremes share the gradient equally.",
    )


# --- logsumexp ---
def stable_logsumexp(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """log(sum(exp(x))) over axis without overflow: the maximum is factored out first."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # slices that are all -inf (or hold inf) stay exact
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis)


def _logsumexp_backward(ctx, gy):
    (x,) = ctx.inputs
    return spread(ctx, gy) * ctx.ops.exp(x - _kept_output(ctx))


SPECS = [
    OpSpec(
        "mean",
        _mean_forward,
        nonempty_reduction_rule("mean"),
        _mean_backward,
        attrs=REDUCTION_ATTRS,
        reference=lambda x, axis, keepdims: (
            np.sum(x, axis=axis, keepdims=keepdims) / _reduced_count(x.shape, axis)
        ),
        kind="reduction",
        doc="Arithmetic mean over axis (None: all; int, negative or tuple).",
    ),
    _extreme("max", np.max),
    _extreme("min", np.min),
    OpSpec(
        "logsumexp",
        stable_logsumexp,
        nonempty_reduction_rule("logsumexp"),
        _logsumexp_backward,
        attrs=REDUCTION_ATTRS,
        reference=lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
        requires=("exp",),
        kind="reduction",
        doc="log(sum(exp(x))) over axis, computed stably (no overflow for large x).",
    ),
]
