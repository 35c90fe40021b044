"""Shape arithmetic shared by shape rules: broadcasting, axis normalisation, reductions.

Every helper takes the op name first so the `ShapeError` it raises can name the op.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from opgraph.errors import ShapeError

Shape = tuple[int, ...]


def fmt_shapes(shapes: Sequence[Shape]) -> str:
    """`(2, 3) and (4,)` / `(1,), (2,) and (3,)` for messages."""
    parts = [str(tuple(s)) for s in shapes]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def broadcast(op: str, *shapes: Shape) -> Shape:
    """numpy's broadcast result of `shapes`, or a ShapeError naming `op` and every shape."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(
            f"{op}: shapes {fmt_shapes(shapes)} cannot be broadcast together"
        ) from None


def normalize_axes(
    op: str, axis: int | Sequence[int] | None, ndim: int, shape: Shape | None = None
) -> Shape:
    """Turn `axis` (None, int, negative, tuple) into sorted non-negative axes of an ndim array.

    None means every axis. Out-of-range or repeated axes raise ShapeError, naming the input's
    ``shape`` when the caller has one.
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            where = f"shape {tuple(shape)}" if shape is not None else f"an array of rank {ndim}"
            raise ShapeError(f"{op}: axis {a} is out of range for {where}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        where = f" for shape {tuple(shape)}" if shape is not None else ""
        raise ShapeError(f"{op}: repeated axis in {axis!r}{where}")
    return tuple(sorted(out))


def reduce_shape(op: str, shape: Shape, axis: int | Sequence[int] | None, keepdims: bool) -> Shape:
    """Shape of a reduction of `shape` over `axis`."""
    axes = normalize_axes(op, axis, len(shape), shape)
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def check_sum_to(op: str, shape: Shape, target: Shape) -> Shape:
    """`target` if `shape` can be summed down to it (i.e. `target` broadcasts to `shape`)."""
    if len(target) > len(shape) or any(
        t not in (1, s) for t, s in zip(target[::-1], shape[::-1], strict=False)
    ):
        raise ShapeError(f"{op}: shape {tuple(shape)} cannot be summed to {tuple(target)}")
    return tuple(target)
