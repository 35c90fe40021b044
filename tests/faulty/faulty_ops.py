"""A deliberately broken op plugin: one op per defect class the conformance harness must catch.

Installed by the tests through a fake distribution (the real entry-point path). ``DEFECTS``
maps each op to the one check that must flag it; every other check must pass or skip.
"""

from __future__ import annotations

import itertools

import numpy as np

from opgraph import Attr, Domain, OpSpec, ShapeError, Variable, attrs, hookimpl, unbroadcast
from opgraph.shapes import broadcast, fmt_shapes, normalize_axes


def _same(x):
    return x


def _binary(name, forward, backward, **kw):
    return OpSpec(
        name,
        forward,
        lambda a, b: broadcast(name, a, b),
        backward,
        inputs=("a", "b"),
        kind="broadcast",
        **kw,
    )


def _no_unbroadcast(ctx, gy):
    return gy * 1.0, gy * 1.0  # forgets to sum the broadcast axes away


def _wrong_value(ctx, gy):
    (x,) = ctx.inputs
    return gy * ctx.ops.cos(x) * 2.0  # d sin = cos, not 2 cos


def _too_few(ctx, gy):
    return unbroadcast(gy * ctx.inputs[1], ctx.inputs[0])  # one gradient for two inputs


def _too_many(ctx, gy):
    return gy * 2.0, gy * 1.0


def _float64_grad(ctx, gy):
    return ctx.ops.astype(gy * 2.0, "float64")  # float32 inputs get a float64 gradient


def _double(ctx, gy):
    return gy * 2.0


def _double_view_backward(ctx, gy):
    return gy * 1.0


def _mutating_forward(x):
    y = 2.0 * x
    x[...] = 0  # clobbers the caller's array
    return y


def _clobbering_backward(ctx, gy):
    gx = gy * 2.0
    gy.data[...] = 0  # clobbers the caller's output gradient
    return gx


def _numpy_backward(ctx, gy):
    (x,) = ctx.inputs
    return Variable(gy.data * np.cos(x.data))  # right values, but cut off from the graph


def _reads_data(ctx, gy):
    (x,) = ctx.inputs
    return gy * np.sign(x.data)  # right values, but a mask computed outside the recording


def _vague_rule(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ShapeError("incompatible shapes") from None  # names neither the op nor the shapes


def _add_backward(ctx, gy):
    a, b = ctx.inputs
    g = gy * 1.0  # a new array: gy itself would alias the caller's output gradient
    return unbroadcast(g, a), unbroadcast(g * 1.0, b)


def _raising_backward(ctx, gy):
    raise RuntimeError("faulty_backward_raises: backward not implemented")


def _nan_forward(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x - 1.0)  # NaN below 1, inside the default domain [-2, 2]


def _nan_backward(ctx, gy):
    (y,) = ctx.outputs
    return gy * 0.5 / y


# --- defects the checks added later catch ---
def _returns_gy(ctx, gy):
    return gy  # the caller's output gradient itself: x.grad *is* y.grad


def _writeable_view(x):
    return x.reshape(x.shape)  # a writeable view: writing to the output changes the input


_calls = itertools.count()


def _flaky_triple(x):
    """3x, computed in an order that changes from call to call (like an unordered parallel
    reduction): the last bits differ between two identical calls."""
    return x * 3.0 if next(_calls) % 2 else (x * 0.3) * 10.0


def _triple_backward(ctx, gy):
    return gy * 3.0


def _doubled_cube(x):
    return 2.0 * x**3  # documented (and referenced) as x**3; the backward matches the bug


def _doubled_cube_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * 6.0 * x * x


def _through_float16(x):
    """sin computed through float16 for float32 inputs: right dtype, a tenth of the digits."""
    narrow = x.astype(np.float16) if x.dtype == np.float32 else x
    return np.sin(narrow).astype(x.dtype)


def _sin_backward(ctx, gy):
    return gy * ctx.ops.cos(ctx.inputs[0])


def _raw_linear_backward(ctx, gy):
    return Variable(3.0 * gy.data)  # right values, but a constant with respect to gy


def _asserting_rule(a, b):
    assert a == b, "shapes differ"  # an AssertionError, not a ShapeError naming the shapes
    return a


def _swapped_needs(ctx, gy):
    a, b = ctx.inputs
    need_b, need_a = ctx.needs_input_grad  # swapped: right only while both are Variables
    return (
        unbroadcast(gy * b, a) if need_a else None,
        unbroadcast(gy * a, b) if need_b else None,
    )


def _pair_forward(x):
    return 2.0 * x, 3.0 * x


def _pair_backward(ctx, g0, g1):
    _, y1 = ctx.outputs
    return g0 * 2.0 + g1 * 3.0 + 0.0 * y1  # y1 is None when the caller dropped it


def _join_rule(*shapes):
    first = shapes[0]
    if not first or any(len(s) != len(first) or s[1:] != first[1:] for s in shapes):
        raise ShapeError(f"faulty_equal_split: shapes {fmt_shapes(shapes)} cannot be joined")
    return (sum(s[0] for s in shapes), *first[1:])


def _equal_split(ctx, gy):
    n = ctx.inputs[0].shape[0]  # assumes every input is as long as the first
    return tuple(gy[k * n : (k + 1) * n] * 1.0 for k in range(len(ctx.inputs)))


def _square_backward_dividing(ctx, gy):
    (x,) = ctx.inputs
    (y,) = ctx.outputs
    return gy * 2.0 * y / x  # 2x, written so that x = 0 gives 0 / 0


def _transpose_rule(x, axes):
    perm = tuple(range(len(x))[::-1]) if axes is None else axes
    if len(perm) != len(x) or len(normalize_axes("faulty_uninverted", perm, len(x), x)) != len(x):
        raise ShapeError(f"faulty_uninverted: axes {axes} do not permute shape {x}")
    return tuple(x[a] for a in perm)


def _identity_and_reversal(shapes):
    """The examples an author copies from transpose: both are their own inverse."""
    rank = len(shapes[0])
    return [tuple(range(rank)), tuple(range(rank))[::-1]]


def _uninverted_backward(ctx, gy):
    return ctx.ops.transpose(gy, ctx.attrs["axes"])  # the permutation, not its inverse


def _broadcast_rule(x, shape):
    if broadcast("faulty_prepend_only", x, shape) != tuple(shape):
        raise ShapeError(f"faulty_prepend_only: shape {x} cannot be broadcast to {shape}")
    return tuple(shape)


def _prepend_only(ctx, gy):
    x = ctx.inputs[0]
    lead = tuple(range(gy.ndim - x.ndim))  # forgets the stretched size-1 axes
    return ctx.ops.sum(gy, lead) if lead else gy * 1.0


def _take_rule(x, indices):
    if not x or np.asarray(indices).ndim != 1:
        raise ShapeError(f"faulty_take: indices {indices!r} do not fit shape {tuple(x)}")
    return (len(indices), *x[1:])


def _take_backward(ctx, gy):
    (x,) = ctx.inputs
    gx = np.zeros(x.shape, gy.dtype)
    gx[ctx.attrs["indices"]] = gy.data  # a repeated position keeps one gradient, not the sum
    return Variable(gx)


def _all_positions(shapes):
    """Examples written without a repeat: every position once."""
    (x,) = shapes
    return [np.arange(x[0])] if x and x[0] else []


def _roll(x, axis):
    return np.roll(x, 1, axis % x.ndim) if x.ndim else x * 1.0  # wraps any axis silently


def _unroll(ctx, gy):
    axis = ctx.attrs["axis"]
    return Variable(np.roll(gy.data, -1, axis % gy.ndim) if gy.ndim else gy.data * 1.0)


SPECS = [
    _binary("faulty_unbroadcast", np.add, _no_unbroadcast),
    OpSpec("faulty_wrong_value", np.sin, _same, _wrong_value, requires=("cos",)),
    _binary("faulty_too_few_grads", np.multiply, _too_few),
    OpSpec("faulty_too_many_grads", lambda x: 2.0 * x, _same, _too_many),
    OpSpec("faulty_grad_dtype", lambda x: 2.0 * x, _same, _float64_grad),
    OpSpec("faulty_shape_rule", lambda x: 2.0 * x, lambda x: (*x, 1), _double),
    OpSpec("faulty_mutates_input", _mutating_forward, _same, _double),
    OpSpec("faulty_mutates_grad", lambda x: 2.0 * x, _same, _clobbering_backward),
    OpSpec("faulty_not_differentiable", np.sin, _same, _numpy_backward),
    OpSpec(
        "faulty_vague_shape_error",
        np.add,
        _vague_rule,
        _add_backward,
        inputs=("a", "b"),
        kind="broadcast",
    ),
    OpSpec("faulty_backward_raises", np.cos, _same, _raising_backward),
    OpSpec("faulty_nan_in_domain", _nan_forward, _same, _nan_backward),
    OpSpec("faulty_returns_gy", lambda x: 1.0 * x, _same, _returns_gy),
    OpSpec("faulty_returns_view", _writeable_view, _same, _double_view_backward),
    OpSpec("faulty_nondeterministic", _flaky_triple, _same, _triple_backward),
    OpSpec(
        "faulty_wrong_forward",
        _doubled_cube,
        _same,
        _doubled_cube_backward,
        reference=lambda x: x**3,
    ),
    OpSpec("faulty_half_precision", _through_float16, _same, _sin_backward, requires=("cos",)),
    OpSpec("faulty_raw_linear", lambda x: 3.0 * x, _same, _raw_linear_backward),
    OpSpec("faulty_rule_crashes", np.add, _asserting_rule, _add_backward, inputs=("a", "b")),
    OpSpec("faulty_rule_accepts_all", np.add, lambda a, b: a, _add_backward, inputs=("a", "b")),
    _binary("faulty_needs_input_grad", np.multiply, _swapped_needs),
    OpSpec("faulty_dropped_output", _pair_forward, lambda x: (x, x), _pair_backward, n_outputs=2),
    OpSpec(
        "faulty_equal_split",
        lambda *xs: np.concatenate(xs, axis=0),
        _join_rule,
        _equal_split,
        inputs=("*xs",),
        requires=("get_item",),
    ),
    OpSpec("faulty_zero_division", np.square, _same, _square_backward_dividing),
    OpSpec(
        "faulty_uninverted",
        lambda x, axes: np.transpose(x, axes).copy(),
        _transpose_rule,
        _uninverted_backward,
        attrs=(Attr("axes", None, attrs.axes, _identity_and_reversal),),
        kind="shape",
    ),
    OpSpec(
        "faulty_prepend_only",
        np.broadcast_to,
        _broadcast_rule,
        _prepend_only,
        attrs=(Attr("shape", check=attrs.shape, examples=lambda shapes: [(2, *shapes[0])]),),
        kind="shape",
    ),
    OpSpec(
        "faulty_take",
        lambda x, indices: x[indices],
        _take_rule,
        _take_backward,
        attrs=(Attr("indices", examples=_all_positions),),
        backward_differentiable=False,
        kind="shape",
    ),
    OpSpec(
        "faulty_unchecked_axis",
        _roll,
        lambda x, axis: x,
        _unroll,
        attrs=(Attr("axis", -1, attrs.Axis()),),
        backward_differentiable=False,
        kind="shape",
        domain=Domain(),
    ),
    OpSpec(
        "faulty_declared_traceable",
        np.abs,
        _same,
        _reads_data,
        domain=Domain(avoid=(0.0,)),
        traceable=True,
    ),
]

DEFECTS = {
    "faulty_unbroadcast": "grad_shape",
    "faulty_wrong_value": "grad_value",
    "faulty_too_few_grads": "grad_count",
    "faulty_too_many_grads": "grad_count",
    "faulty_grad_dtype": "grad_dtype",
    "faulty_shape_rule": "shape_rule",
    "faulty_mutates_input": "no_mutation",
    "faulty_mutates_grad": "no_mutation",
    "faulty_not_differentiable": "grad_of_grad",
    "faulty_vague_shape_error": "bad_input",
    "faulty_backward_raises": "grad_count",
    "faulty_nan_in_domain": "grad_value",
    "faulty_returns_gy": "aliasing",
    "faulty_returns_view": "aliasing",
    "faulty_nondeterministic": "determinism",
    "faulty_wrong_forward": "reference",
    "faulty_half_precision": "dtypes",
    "faulty_raw_linear": "grad_of_grad",
    "faulty_rule_crashes": "shape_rule",
    "faulty_rule_accepts_all": "shape_rule",
    "faulty_needs_input_grad": "grad_count",
    "faulty_dropped_output": "grad_count",
    "faulty_equal_split": "grad_shape",
    "faulty_zero_division": "grad_value",
    "faulty_uninverted": "grad_shape",
    "faulty_prepend_only": "grad_shape",
    "faulty_take": "grad_value",
    "faulty_unchecked_axis": "bad_input",
    "faulty_declared_traceable": "trace",
}
"""Each faulty op and the only check that may fail (or error) for it."""


@hookimpl
def opgraph_ops():
    return SPECS
