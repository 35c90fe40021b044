"""Joining several inputs into one: concat (along an existing axis) and stack (along a new one).

Both are variadic (``concat([a, b], axis=0)``); the backward hands each input its slice of the
gradient with `get_item`, cast back to that input's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opgraph import Attr, OpSpec, ShapeError, attrs, unbroadcast
from opgraph.shapes import fmt_shapes, normalize_axes
from opgraph_ops.tensor import INTS


def _slices_along(axis: int, index: Any) -> tuple[Any, ...]:
    return (slice(None),) * axis + (index,)


# --- concat ---
def _concat_rule(*shapes, axis):
    first = shapes[0]
    if not first:
        raise ShapeError(f"concat: 0-d inputs {fmt_shapes(shapes)} have no axis to join; use stack")
    (ax,) = normalize_axes("concat", axis, len(first))
    for s in shapes:
        if len(s) != len(first) or any(s[i] != first[i] for i in range(len(s)) if i != ax):
            raise ShapeError(
                f"concat: shapes {fmt_shapes(shapes)} must agree on every axis but axis {axis}"
            )
    return (*first[:ax], sum(s[ax] for s in shapes), *first[ax + 1 :])


def _concat_backward(ctx, gy):
    xs = ctx.inputs
    (ax,) = normalize_axes("concat", ctx.attrs["axis"], gy.ndim)
    grads, start = [], 0
    for x in xs:
        stop = start + x.shape[ax]
        grads.append(unbroadcast(ctx.ops.get_item(gy, _slices_along(ax, slice(start, stop))), x))
        start = stop
    return tuple(grads)


# --- stack ---
def _stack_rule(*shapes, axis):
    if any(s != shapes[0] for s in shapes):
        raise ShapeError(f"stack: shapes {fmt_shapes(shapes)} must all be equal")
    (ax,) = normalize_axes("stack", axis, len(shapes[0]) + 1)
    return (*shapes[0][:ax], len(shapes), *shapes[0][ax:])


def _stack_backward(ctx, gy):
    (ax,) = normalize_axes("stack", ctx.attrs["axis"], gy.ndim)
    return tuple(
        unbroadcast(ctx.ops.get_item(gy, _slices_along(ax, k)), x) for k, x in enumerate(ctx.inputs)
    )


SPECS = [
    OpSpec(
        "concat",
        lambda *xs, axis: np.concatenate(xs, axis=axis),
        _concat_rule,
        _concat_backward,
        inputs=("*xs",),
        attrs=(Attr("axis", 0, attrs.Axis()),),
        requires=("get_item",),
        kind="shape",
        dtypes=INTS,
        doc="Join inputs along an existing axis: concat([a, b], axis=0).",
    ),
    OpSpec(
        "stack",
        lambda *xs, axis: np.stack(xs, axis=axis),
        _stack_rule,
        _stack_backward,
        inputs=("*xs",),
        attrs=(Attr("axis", 0, attrs.Axis(new=1)),),
        requires=("get_item",),
        kind="shape",
        dtypes=INTS,
        doc="Join equally shaped inputs along a new axis: stack([a, b], axis=0).",
    ),
]
