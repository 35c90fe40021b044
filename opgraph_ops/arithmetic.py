"""Binary arithmetic with numpy broadcasting, and negation.

Every backward reduces its gradients to the inputs' shapes and dtypes with `unbroadcast`.
"""

from __future__ import annotations

import numpy as np

from opgraph import Domain, OpSpec, unbroadcast
from opgraph.shapes import broadcast
from opgraph_ops.tensor import INTS


def broadcasting(name, forward, backward, inputs=("x0", "x1"), **kw) -> OpSpec:
    """The spec of a binary op whose inputs broadcast together (numpy rules)."""
    return OpSpec(
        name,
        forward,
        lambda a, b: broadcast(name, a, b),
        backward,
        inputs=inputs,
        kind="broadcast",
        **kw,
    )


def _add_backward(ctx, gy):
    x0, x1 = ctx.inputs
    need0, need1 = ctx.needs_input_grad  # constants (x + 1.0) get no gradient work
    return unbroadcast(gy, x0) if need0 else None, unbroadcast(gy, x1) if need1 else None


def _sub_backward(ctx, gy):
    x0, x1 = ctx.inputs
    need0, need1 = ctx.needs_input_grad
    return unbroadcast(gy, x0) if need0 else None, unbroadcast(-gy, x1) if need1 else None


def _mul_backward(ctx, gy):
    x0, x1 = ctx.inputs
    need0, need1 = ctx.needs_input_grad  # constants (x * 2.0) get no gradient work
    mul = ctx.ops.mul  # the op itself: `gy * x1` would look it up in the active op set
    return (
        unbroadcast(mul(gy, x1), x0, fresh=True) if need0 else None,
        unbroadcast(mul(gy, x0), x1, fresh=True) if need1 else None,
    )


def _div_backward(ctx, gy):
    x0, x1 = ctx.inputs
    gx0 = gy / x1
    gx1 = unbroadcast(gx0 * (-x0 / x1), x1, fresh=True) if ctx.needs_input_grad[1] else None
    return unbroadcast(gx0, x0, fresh=True), gx1


def _pow_backward(ctx, gy):
    x, c = ctx.inputs
    gx = unbroadcast(gy * c * x ** (c - 1), x, fresh=True)
    if not ctx.needs_input_grad[1]:  # a constant exponent: skip log(x), undefined for x <= 0
        return gx, None
    (y,) = ctx.outputs
    return gx, unbroadcast(gy * y * ctx.ops.log(x), c, fresh=True)


def _neg_backward(ctx, gy):
    return -gy


SPECS = [
    broadcasting("add", np.add, _add_backward, dtypes=INTS, doc="x0 + x1 with broadcasting."),
    broadcasting("sub", np.subtract, _sub_backward, dtypes=INTS, doc="x0 - x1 with broadcasting."),
    broadcasting("mul", np.multiply, _mul_backward, dtypes=INTS, doc="x0 * x1 with broadcasting."),
    broadcasting(
        "div",
        np.true_divide,
        _div_backward,
        domain=(Domain(), Domain(0.5, 2.0)),
        doc="x0 / x1 with broadcasting.",
    ),
    OpSpec(
        "pow",
        np.power,
        lambda x, c: broadcast("pow", x, c),
        _pow_backward,
        inputs=("x", "c"),
        kind="broadcast",
        requires=("log",),
        domain=(Domain(0.5, 2.0), Domain(-2.0, 3.0)),
        doc="x ** c with broadcasting; c may be a number or a Variable.",
    ),
    OpSpec("neg", np.negative, lambda x: x, _neg_backward, dtypes=INTS, doc="Elementwise -x."),
]
