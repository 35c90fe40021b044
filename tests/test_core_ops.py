"""Values and gradients of the core ops against numpy and finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import opgraph
from opgraph import ShapeError, Variable

ops = opgraph.ops
rng = np.random.default_rng(0)


def check_op(numgrad, fn, reference, *arrays):
    """fn on Variables equals reference on arrays; gradients match finite differences."""
    xs = [Variable(a.copy()) for a in arrays]
    y = fn(*xs)
    np.testing.assert_allclose(y.data, reference(*arrays), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    for x, want in zip(xs, numgrad(reference, *arrays), strict=True):
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.data, want, rtol=1e-6, atol=1e-7)


UNARY = [
    (ops.sin, np.sin, (-2, 2)),
    (ops.cos, np.cos, (-2, 2)),
    (ops.tanh, np.tanh, (-2, 2)),
    (ops.exp, np.exp, (-2, 2)),
    (ops.log, np.log, (0.2, 3)),
    (ops.neg, np.negative, (-2, 2)),
]


@pytest.mark.parametrize(("op", "ref", "domain"), UNARY, ids=lambda v: getattr(v, "name", ""))
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
def test_unary(numgrad, op, ref, domain, shape):
    check_op(numgrad, op, ref, rng.uniform(*domain, size=shape))


BINARY = [
    (ops.add, np.add),
    (ops.sub, np.subtract),
    (ops.mul, np.multiply),
    (ops.div, np.divide),
    (ops.pow, np.power),
]
BROADCAST_PAIRS = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 1), (1, 3)),
    ((), (2, 3)),
    ((4, 1, 3), (2, 1)),
]


@pytest.mark.parametrize(("op", "ref"), BINARY, ids=lambda v: getattr(v, "name", ""))
@pytest.mark.parametrize(("sa", "sb"), BROADCAST_PAIRS)
def test_binary_broadcasting_in_both_directions(numgrad, op, ref, sa, sb):
    check_op(numgrad, op, ref, rng.uniform(0.5, 2, size=sa), rng.uniform(0.5, 2, size=sb))


@pytest.mark.parametrize(("op", "ref"), BINARY, ids=lambda v: getattr(v, "name", ""))
def test_binary_incompatible_shapes_raise_shape_error_naming_op_and_shapes(op, ref):
    a, b = Variable(np.ones((2, 3))), Variable(np.ones(4))
    with pytest.raises(ShapeError, match=rf"^{op.name}: shapes \(2, 3\) and \(4,\) cannot be"):
        op(a, b)


@pytest.mark.parametrize(
    ("shape", "target"), [((2, 3), (3, 2)), ((2, 3), (6,)), ((2, 3), (-1, 2)), ((), (1, 1))]
)
def test_reshape(numgrad, shape, target):
    check_op(
        numgrad,
        lambda x: ops.reshape(x, target),
        lambda a: a.reshape(target),
        rng.normal(size=shape),
    )


@pytest.mark.parametrize("axes", [None, (1, 0, 2), (-1, 0, -2)])
def test_transpose(numgrad, axes):
    check_op(
        numgrad,
        lambda x: ops.transpose(x, axes),
        lambda a: np.transpose(a, axes),
        rng.normal(size=(2, 3, 4)),
    )


@pytest.mark.parametrize(
    ("axis", "keepdims"), [(None, False), (None, True), (1, False), (-1, True), ((0, 2), False)]
)
def test_sum(numgrad, axis, keepdims):
    check_op(
        numgrad,
        lambda x: ops.sum(x, axis, keepdims),
        lambda a: np.sum(a, axis=axis, keepdims=keepdims),
        rng.normal(size=(2, 3, 4)),
    )


@pytest.mark.parametrize("dtype", ["float64", "float32", ">f8", "int8", "complex128", "bool"])
@pytest.mark.parametrize("target", [(), (4,), (2, 3), (0,), (2, 0, 3)])
def test_broadcast_to_of_a_0d_array_is_numpys_read_only_view(dtype, target):
    # a full reduction's gradient is 0-d: broadcast_to builds its stride-0 view directly
    base = np.asarray(3, dtype)
    got = ops.broadcast_to(Variable(base, requires_grad=False), target).data
    want = np.broadcast_to(base, target)
    assert (got.shape, got.dtype, got.strides) == (want.shape, want.dtype, want.strides)
    np.testing.assert_array_equal(got, want)
    assert not got.flags.writeable and np.shares_memory(got, base) == (got.size > 0)
    del base  # the view keeps its memory alive
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("shape", "target"), [((3,), (2, 3)), ((2, 1), (2, 4)), ((), (3,))])
def test_broadcast_to_and_sum_to_are_each_others_backward(numgrad, shape, target):
    check_op(
        numgrad,
        lambda x: ops.broadcast_to(x, target),
        lambda a: np.broadcast_to(a, target),
        rng.normal(size=shape),
    )
    check_op(
        numgrad,
        lambda x: ops.sum_to(x, shape),
        lambda a: (
            a.sum(axis=tuple(range(len(target) - len(shape)))).reshape(shape)
            if len(target) > len(shape)
            else a.sum(axis=1, keepdims=True)
        ),
        rng.normal(size=target),
    )


MATMUL_SHAPES = [
    ((2, 3), (3, 4)),
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((5, 2, 3), (3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((2, 1, 2, 3), (4, 3, 2)),
]


@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES)
def test_matmul_numpy_semantics_and_gradients(numgrad, sa, sb):
    check_op(numgrad, ops.matmul, np.matmul, rng.normal(size=sa), rng.normal(size=sb))


@pytest.mark.parametrize(("sa", "sb"), [((2, 3), (3, 4)), ((3,), (3, 4)), ((5, 2, 3), (3,))])
def test_matmul_is_twice_differentiable(sa, sb):
    a, b = Variable(rng.normal(size=sa)), Variable(rng.normal(size=sb))
    y = (ops.matmul(a, b) ** 2).sum()
    y.backward(create_graph=True)
    ga = a.grad
    a.cleargrad()
    b.cleargrad()
    ga.sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ops.reshape(Variable(np.ones((2, 3))), (4, 2)),
            r"reshape: cannot reshape .*\(2, 3\)",
        ),
        (lambda: ops.transpose(Variable(np.ones((2, 3))), (0, 0)), r"transpose: repeated axis"),
        (lambda: ops.transpose(Variable(np.ones((2, 3))), (0, 2)), r"transpose: axis 2 is out"),
        (lambda: ops.transpose(Variable(np.ones((2, 3))), (0,)), r"transpose: axes \(0,\) do not"),
        (lambda: ops.sum(Variable(np.ones((2, 3))), 2), r"sum: axis 2 is out of range"),
        (lambda: ops.sum(Variable(np.ones((2, 3))), -3), r"sum: axis -3 is out of range"),
        (lambda: ops.broadcast_to(Variable(np.ones(3)), (3, 2)), r"broadcast_to: shape"),
        (lambda: ops.sum_to(Variable(np.ones((2, 3))), (2,)), r"sum_to: shape \(2, 3\) cannot"),
        (
            lambda: ops.matmul(Variable(np.ones((2, 3))), Variable(np.ones((2, 3)))),
            r"matmul: shapes",
        ),
        (lambda: ops.matmul(Variable(np.ones(3)), Variable(np.array(1.0))), r"matmul: shapes"),
    ],
)
def test_shape_errors_name_the_op_and_record_nothing(call, message):
    with pytest.raises(ShapeError, match=message):
        call()


def test_invalid_attribute_types_are_rejected_with_op_and_attribute_named():
    with pytest.raises(opgraph.OpArgumentError, match=r"sum: invalid axis=1.5"):
        ops.sum(Variable(np.ones(3)), axis=1.5)
    with pytest.raises(opgraph.OpArgumentError, match=r"did you mean 'keepdims'"):
        ops.sum(Variable(np.ones(3)), keepdim=True)


def test_astype_casts_and_casts_the_gradient_back():
    x = Variable(np.ones(3, dtype=np.float32))
    y = ops.astype(x, np.float64)
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
