"""Shape ops and matmul: reshape, transpose, sum, broadcast_to/sum_to (each other's
backward), astype, and matmul with numpy's full semantics (1-D operands, batch broadcasting)."""

from __future__ import annotations

import math

import numpy as np

from opgraph import Attr, OpSpec, Sample, ShapeError, attrs
from opgraph.shapes import broadcast, check_sum_to, normalize_axes, reduce_shape
from opgraph_ops.views import readonly_view

INTS = ("float64", "float32", "int64")


# --- reshape ---
def _reshape_rule(x, shape):
    known = [d for d in shape if d != -1]
    size = math.prod(x)
    unknown = len(shape) - len(known)
    if unknown > 1 or any(d < -1 for d in shape):
        raise ShapeError(
            f"reshape: invalid target shape {shape} (at most one -1, no other negatives)"
        )
    if unknown == 1:
        rest = math.prod(known)
        if rest == 0 or size % rest:
            raise ShapeError(
                f"reshape: cannot reshape array of shape {x} (size {size}) into {shape}"
            )
        return tuple(size // rest if d == -1 else d for d in shape)
    if math.prod(shape) != size:
        raise ShapeError(f"reshape: cannot reshape array of shape {x} (size {size}) into {shape}")
    return tuple(shape)


def _reshape_examples(shapes):
    (x,) = shapes
    return [(-1,), (*x, 1), (1, -1)] if x else [(1,), ()]


def _reshape_backward(ctx, gy):
    return ctx.ops.reshape(gy, ctx.inputs[0].shape)


# --- transpose ---
def _transpose_rule(x, axes):
    if axes is None:
        return tuple(reversed(x))
    if len(axes) != len(x):
        raise ShapeError(f"transpose: axes {axes} do not match an array of rank {len(x)} {x}")
    perm = normalize_axes("transpose", axes, len(x), x)  # range and duplicates
    if len(perm) != len(x):
        raise ShapeError(f"transpose: axes {axes} are not a permutation")
    return tuple(x[a % len(x)] for a in axes)


def _transpose_backward(ctx, gy):
    axes = ctx.attrs["axes"]
    if axes is None:
        return ctx.ops.transpose(gy)
    inverse = tuple(np.argsort([a % len(axes) for a in axes]).tolist())
    return ctx.ops.transpose(gy, inverse)


# --- sum ---
def spread(ctx, gy):
    """Broadcast a reduction's output gradient back over the reduced axes of its input (the
    backward of sum, and the first step of every other reduction's backward)."""
    (x,) = ctx.inputs
    kept = reduce_shape(ctx.op.name, x.shape, ctx.attrs["axis"], keepdims=True)
    if gy.shape != kept and gy.ndim:  # a 0-d or kept-dims gradient broadcasts as it is
        gy = ctx.ops.reshape(gy, kept)
    g = ctx.ops.broadcast_to(gy, x.shape)
    return g if g.dtype == x.dtype else ctx.ops.astype(g, x.dtype)  # int8 summed as int64


def _sum_forward(x, axis, keepdims):
    # numpy's accumulator: small integers (bool, int8 ... int32) sum as int64, never overflow
    # at 127; floats keep their dtype. (np.add.reduce: np.sum adds ~2 us of dispatch.)
    return np.add.reduce(
        x, axis=axis, keepdims=keepdims, dtype=x.dtype if x.dtype.kind in "fc" else None
    )


# --- broadcast_to / sum_to ---
def _broadcast_to_forward(x, shape):
    """np.broadcast_to (which raises where the rule would; the op then reports the rule's
    error), with a 0-d ``x`` (a full reduction's gradient: every ``loss.backward()``) made the
    read-only stride-0 view directly, for a tenth of np.broadcast_to's cost."""
    if type(x) is not np.ndarray or x.ndim:
        return np.broadcast_to(x, shape)
    view = np.ndarray(shape, x.dtype, x, 0, (0,) * len(shape))
    view.setflags(False)
    return view


def _broadcast_to_rule(x, shape):
    if broadcast("broadcast_to", x, shape) != tuple(shape):
        raise ShapeError(f"broadcast_to: shape {x} cannot be broadcast to {tuple(shape)}")
    return tuple(shape)


def _sum_to_forward(x, shape):
    check_sum_to("sum_to", x.shape, shape)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape) if d == 1)
    y = np.add.reduce(x, axis=axes, keepdims=True, dtype=x.dtype)
    return y.reshape(shape) if lead else y


def _sum_to_examples(shapes):
    (x,) = shapes
    return [x[1:], tuple(1 for _ in x), tuple(1 if i % 2 else d for i, d in enumerate(x))]


# --- astype ---
def _astype_backward(ctx, gy):
    return ctx.ops.astype(gy, ctx.inputs[0].dtype)


# --- matmul ---
def _matmul_rule(a, b):
    if not a or not b:
        raise ShapeError(f"matmul: shapes {a} and {b}: 0-d operands are not allowed")
    k_b = b[-2] if len(b) > 1 else b[0]
    if a[-1] != k_b:
        raise ShapeError(
            f"matmul: shapes {a} and {b} have mismatched inner dimensions ({a[-1]} vs {k_b})"
        )
    rows, cols = a[-2:-1], b[-1:] if len(b) > 1 else ()
    return broadcast("matmul", a[:-2], b[:-2]) + rows + cols


def _matmul_backward(ctx, gy):
    """Promote 1-D operands to matrices, apply the matrix rule, then undo broadcasting and
    promotion (numpy semantics in every case, not only 2-D)."""
    ops = ctx.ops
    a, b = ctx.inputs
    a2 = a if a.ndim > 1 else ops.reshape(a, (1, a.shape[0]))
    b2 = b if b.ndim > 1 else ops.reshape(b, (b.shape[0], 1))
    g = gy
    if a.ndim == 1:
        g = ops.reshape(g, (*g.shape[:-1], 1, g.shape[-1]) if b.ndim > 1 else (*g.shape, 1))
    if b.ndim == 1:
        g = ops.reshape(g, (*g.shape, 1))
    need_a, need_b = ctx.needs_input_grad  # skip the product for a constant operand
    ga = _fit(ops, ops.matmul(g, _swap_last(ops, b2)), a2.shape, a.shape) if need_a else None
    gb = _fit(ops, ops.matmul(_swap_last(ops, a2), g), b2.shape, b.shape) if need_b else None
    return ga, gb


def _fit(ops, g, promoted, shape):
    """Sum a gradient over broadcast batch axes, then drop the promoted axis of a 1-D operand."""
    if g.shape != promoted:
        g = ops.sum_to(g, promoted)
    return g if promoted == shape else ops.reshape(g, shape)


_MATMUL_SHAPES = (
    ((2, 3), (3, 4), "matrix @ matrix"),
    ((3,), (3, 4), "1-D @ matrix"),
    ((2, 3), (3,), "matrix @ 1-D"),
    ((3,), (3,), "1-D @ 1-D"),
    ((2, 2, 3), (3, 4), "batch @ matrix"),
    ((3, 1, 2, 3), (2, 3, 2), "batch broadcasting both ways"),
    ((0, 3), (3, 2), "zero rows"),
)


def _matmul_samples(rng, dtype):
    """Every numpy matmul case: 1-D promotion on either side, batch broadcasting, zero rows."""
    for a, b, note in _MATMUL_SHAPES:
        yield Sample(
            (rng.uniform(-2, 2, a).astype(dtype), rng.uniform(-2, 2, b).astype(dtype)), note=note
        )
    a = rng.uniform(-2, 2, (4, 3)).astype(dtype)
    b = rng.uniform(-2, 2, (2, 4)).astype(dtype)
    yield Sample((a.T, b.T[::-1]), note="transposed @ reversed-transposed view")


def _swap_last(ops, v):
    axes = list(range(v.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return ops.transpose(v, tuple(axes))


SPECS = [
    OpSpec(
        "reshape",
        lambda x, shape: readonly_view(np.reshape(x, shape), x),
        _reshape_rule,
        _reshape_backward,
        kind="shape",
        dtypes=INTS,
        attrs=(Attr("shape", check=attrs.shape, examples=_reshape_examples),),
        doc="Same data, new shape (one -1 allowed).",
    ),
    OpSpec(
        "transpose",
        lambda x, axes: readonly_view(np.transpose(x, axes), x),
        _transpose_rule,
        _transpose_backward,
        kind="shape",
        dtypes=INTS,
        attrs=(Attr("axes", None, attrs.Permutation()),),
        doc="Permute axes (reverse them when axes is None).",
    ),
    OpSpec(
        "sum",
        _sum_forward,
        lambda x, axis, keepdims: reduce_shape("sum", x, axis, keepdims),
        spread,
        kind="reduction",
        dtypes=INTS,
        attrs=(Attr("axis", None, attrs.Axes()), Attr("keepdims", False, attrs.flag)),
        doc="Sum over axis (None: all; int, negative or tuple).",
    ),
    OpSpec(
        "broadcast_to",
        _broadcast_to_forward,
        _broadcast_to_rule,
        lambda ctx, gy: ctx.ops.sum_to(gy, ctx.inputs[0].shape),
        kind="shape",
        dtypes=INTS,
        attrs=(Attr("shape", check=attrs.BroadcastTarget()),),
        doc="Broadcast to shape; its backward is sum_to.",
    ),
    OpSpec(
        "sum_to",
        _sum_to_forward,
        lambda x, shape: check_sum_to("sum_to", x, shape),
        lambda ctx, gy: ctx.ops.broadcast_to(gy, ctx.inputs[0].shape),
        kind="shape",
        dtypes=INTS,
        attrs=(Attr("shape", check=attrs.shape, examples=_sum_to_examples),),
        doc="Sum over broadcast axes down to shape; its backward is broadcast_to.",
    ),
    OpSpec(
        "astype",
        lambda x, dtype: readonly_view(x.astype(dtype, copy=False), x),
        lambda x, dtype: x,
        _astype_backward,
        kind="shape",
        dtypes=INTS,
        attrs=(Attr("dtype", check=attrs.dtype, examples=lambda s: ["float64", "float32"]),),
        dtype_rule=lambda x, dtype: dtype,
        doc="Cast to dtype; the gradient is cast back to the input's dtype.",
    ),
    OpSpec(
        "matmul",
        np.matmul,
        _matmul_rule,
        _matmul_backward,
        inputs=("a", "b"),
        kind="custom",
        dtypes=INTS,
        sample_inputs=_matmul_samples,
        doc="numpy matmul: 1-D operands promoted, leading dimensions broadcast.",
    ),
]
