"""Indexing: `get_item` (``x[slices]``, what `Variable.__getitem__` calls) and its backward
`get_item_grad`, which scatters a gradient back into zeros and is in turn differentiated by
`get_item` — so indexing is differentiable to any order.

Indices follow numpy: ints, slices, Ellipsis, None, integer and boolean arrays (or lists, or
Variables holding them). Repeated integer indices accumulate their gradients.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from opgraph import Attr, ErrorInput, OpSpec, Sample, ShapeError, Variable, attrs, derive
from opgraph_ops.tensor import INTS
from opgraph_ops.views import readonly_view


def _index_part(part: Any) -> Any:
    if isinstance(part, Variable):  # its values, read so that opgraph.trace replays them fresh
        part = derive(np.asarray, part)
    if isinstance(part, list):
        part = np.asarray(part) if part else np.zeros(0, dtype=np.intp)
    if part is None or part is Ellipsis or isinstance(part, slice):
        return part
    if isinstance(part, np.ndarray):
        if part.dtype.kind not in "biu":
            raise TypeError(f"index arrays must hold integers or booleans, not {part.dtype}")
        return part
    if isinstance(part, numbers.Integral) and not isinstance(part, (bool, np.bool_)):
        return int(part)
    raise TypeError(
        f"an index part must be an int, slice, Ellipsis, None or an integer/boolean array, "
        f"not {type(part).__name__}"
    )


def check_index(value: Any) -> Any:
    """Normal form of a numpy index: lists and Variables become arrays, tuples part by part."""
    if isinstance(value, tuple):
        return tuple(_index_part(p) for p in value)
    return _index_part(value)


def indexed_shape(op: str, shape: tuple[int, ...], slices: Any) -> tuple[int, ...]:
    """Shape of ``x[slices]`` for an ``x`` of ``shape``, computed without data."""
    probe = np.broadcast_to(np.zeros((), dtype=np.int8), shape)
    try:
        return probe[slices].shape
    except IndexError as exc:
        raise ShapeError(
            f"{op}: index {slices!r} does not fit shape {tuple(shape)}: {exc}"
        ) from None


def _has_index_array(slices: Any) -> bool:
    parts = slices if isinstance(slices, tuple) else (slices,)
    return any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)


# --- get_item ---
def _get_item_backward(ctx, gy):
    return ctx.ops.get_item_grad(gy, ctx.attrs["slices"], ctx.inputs[0].shape)


def _index_examples(shapes):
    (x,) = shapes
    if not x:
        return [(), Ellipsis, None]
    n = x[0]
    examples = [(Ellipsis, None), slice(None, None, -1)]
    if n:
        repeated = np.array([0, n - 1, 0, 0])
        negative = np.array([-1, 0, -n, -1])  # repeats spelled two ways
        examples += [-1, slice(1, None, 2), repeated, negative, np.arange(n) % 2 == 0]
        mask = np.arange(math.prod(x)).reshape(x) % 3 == 0
        examples.append(mask)
    if len(x) > 1 and x[1]:
        examples.append((slice(None), np.array([[0, 0], [x[1] - 1, 0]])))
    return examples


def _get_item_errors():
    x = np.zeros((2, 3))
    yield ErrorInput((x,), {"slices": 5}, ShapeError, "get_item", "int index out of range")
    yield ErrorInput(
        (x,), {"slices": np.array([True, False, True])}, ShapeError, "get_item", "mask too long"
    )
    yield ErrorInput((x,), {"slices": 1.5}, TypeError, "index", "float index")


# --- get_item_grad ---
def _get_item_grad_forward(gy, slices, shape):
    gx = np.zeros(shape, dtype=gy.dtype)
    if _has_index_array(slices):
        np.add.at(gx, slices, gy)  # repeated indices accumulate
    else:
        gx[slices] = gy  # basic indexing and masks never repeat an element
    return gx


def _get_item_grad_rule(gy, slices, shape):
    picked = indexed_shape("get_item_grad", shape, slices)
    if picked != tuple(gy):
        raise ShapeError(
            f"get_item_grad: gradient of shape {tuple(gy)} does not match x[{slices!r}] of "
            f"shape {picked} for x of shape {tuple(shape)}"
        )
    return tuple(shape)


def _get_item_grad_samples(rng: np.random.Generator, dtype: np.dtype):
    cases = [
        ((4,), np.array([0, 2, 0, 0])),
        ((3, 4), (slice(None), np.array([1, 1]))),
        ((3, 4), (slice(1, None), Ellipsis, None)),
        ((2, 3), np.array([[True, False, True], [False, True, True]])),
        ((2, 3), -1),
    ]
    for shape, slices in cases:
        gy = rng.uniform(-2, 2, indexed_shape("get_item_grad", shape, slices)).astype(dtype)
        yield Sample((gy,), {"slices": slices, "shape": shape}, note=f"x{shape}[{slices!r}]")


SPECS = [
    OpSpec(
        "get_item",
        lambda x, slices: readonly_view(x[slices], x),
        lambda x, slices: indexed_shape("get_item", x, slices),
        _get_item_backward,
        attrs=(Attr("slices", check=check_index, examples=_index_examples),),
        requires=("get_item_grad",),
        kind="shape",
        dtypes=INTS,
        error_inputs=_get_item_errors,
        doc="x[slices] with numpy indexing; repeated indices accumulate in the gradient.",
    ),
    OpSpec(
        "get_item_grad",
        _get_item_grad_forward,
        _get_item_grad_rule,
        lambda ctx, ggx: ctx.ops.get_item(ggx, ctx.attrs["slices"]),
        inputs=("gy",),
        attrs=(Attr("slices", check=check_index), Attr("shape", check=attrs.shape)),
        requires=("get_item",),
        kind="custom",
        dtypes=INTS,
        sample_inputs=_get_item_grad_samples,
        doc="Zeros of shape with gy added at [slices]: the backward of get_item.",
    ),
]
