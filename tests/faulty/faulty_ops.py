"""A deliberately broken op plugin: one op per defect class the conformance harness must catch.

Installed by the tests through a fake distribution (the real entry-point path). ``DEFECTS``
maps each op to the one check that must flag it; every other check must pass or skip.
"""

from __future__ import annotations

import numpy as np

from opgraph import OpSpec, ShapeError, Variable, hookimpl, unbroadcast
from opgraph.shapes import broadcast


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
    return gy, gy  # forgets to sum the broadcast axes away


def _wrong_value(ctx, gy):
    (x,) = ctx.inputs
    return gy * ctx.ops.cos(x) * 2.0  # d sin = cos, not 2 cos


def _too_few(ctx, gy):
    return unbroadcast(gy, ctx.inputs[0])  # one gradient for two inputs


def _too_many(ctx, gy):
    return gy * 2.0, gy


def _float64_grad(ctx, gy):
    return ctx.ops.astype(gy * 2.0, "float64")  # float32 inputs get a float64 gradient


def _double(ctx, gy):
    return gy * 2.0


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


def _vague_rule(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ShapeError("incompatible shapes") from None  # names neither the op nor the shapes


def _add_backward(ctx, gy):
    a, b = ctx.inputs
    return unbroadcast(gy, a), unbroadcast(gy, b)


def _raising_backward(ctx, gy):
    raise RuntimeError("faulty_backward_raises: backward not implemented")


def _nan_forward(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x - 1.0)  # NaN below 1, inside the default domain [-2, 2]


def _nan_backward(ctx, gy):
    (y,) = ctx.outputs
    return gy * 0.5 / y


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
}
"""Each faulty op and the only check that may fail (or error) for it."""


@hookimpl
def opgraph_ops():
    return SPECS
