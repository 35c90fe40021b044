"""Ops that add or remove axes without touching the data: expand_dims, squeeze, flatten.

Each is a reshape, so each backward reshapes the gradient back to the input's shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from opgraph import Attr, OpSpec, ShapeError, attrs
from opgraph.shapes import normalize_axes
from opgraph_ops.tensor import INTS
from opgraph_ops.views import readonly_view


def _reshape_back(ctx, gy):
    return ctx.ops.reshape(gy, ctx.inputs[0].shape)


def _new_axes(value: Any) -> int | tuple[int, ...]:
    """An int or a tuple of ints (None is not a place for a new axis)."""
    if value is None:
        raise TypeError("expected an int or a tuple of ints, got None")
    return attrs.axis(value)


# --- expand_dims ---
def _expand_dims_rule(x, axis):
    n_new = 1 if isinstance(axis, int) else len(axis)
    new = normalize_axes("expand_dims", axis, len(x) + n_new)
    old = iter(x)
    return tuple(1 if i in new else next(old) for i in range(len(x) + n_new))


# --- squeeze ---
def _squeezed_axes(x, axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(i for i, d in enumerate(x) if d == 1)
    axes = normalize_axes("squeeze", axis, len(x), x)
    if wide := [a for a in axes if x[a] != 1]:
        raise ShapeError(
            f"squeeze: cannot squeeze axes {wide} of shape {tuple(x)}: only size-1 axes can go"
        )
    return axes


def _squeeze_rule(x, axis):
    gone = _squeezed_axes(x, axis)
    return tuple(d for i, d in enumerate(x) if i not in gone)


def _squeeze_examples(shapes):
    (x,) = shapes
    ones = tuple(i for i, d in enumerate(x) if d == 1)
    return [ones, tuple(i - len(x) for i in ones)] if ones else []


# --- flatten ---
def _flatten_rule(x):
    if not x:
        raise ShapeError(
            f"flatten: a 0-d input (shape {tuple(x)}) has no batch axis to keep; reshape it instead"
        )
    return (x[0], math.prod(x[1:]))


SPECS = [
    OpSpec(
        "expand_dims",
        lambda x, axis: readonly_view(np.expand_dims(x, axis), x),
        _expand_dims_rule,
        _reshape_back,
        attrs=(Attr("axis", check=_new_axes, examples=lambda shapes: [0, -1, (0, -1)]),),
        kind="shape",
        dtypes=INTS,
        doc="Insert size-1 axes at axis (an int or a tuple; negative counts from the end).",
    ),
    OpSpec(
        "squeeze",
        lambda x, axis: readonly_view(np.squeeze(x, axis), x),
        _squeeze_rule,
        _reshape_back,
        attrs=(Attr("axis", None, attrs.axis, _squeeze_examples),),
        kind="shape",
        dtypes=INTS,
        doc="Remove size-1 axes (all of them when axis is None).",
    ),
    OpSpec(
        "flatten",
        lambda x: readonly_view(x.reshape(_flatten_rule(x.shape)), x),
        _flatten_rule,
        _reshape_back,
        kind="shape",
        dtypes=INTS,
        doc="Reshape to (batch, features), keeping the first axis.",
    ),
]
