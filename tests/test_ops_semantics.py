"""Behaviour of the op library that a value table does not show: DeZero's known bugs (negative
and tuple axes of max/min, broadcasting MSE), ties, numerical stability on huge inputs,
dropout's train/test modes, repeated indices, dtypes and error messages."""

from __future__ import annotations

import numpy as np
import pytest

import opgraph
from opgraph import OpArgumentError, ShapeError, Variable

ops = opgraph.ops
rng = np.random.default_rng(11)


def grad_of(fn, *arrays):
    xs = [Variable(a) for a in arrays]
    fn(*xs).sum().backward()
    return [x.grad.data for x in xs]


# --- max / min: negative and tuple axes, ties ---
@pytest.mark.parametrize("op", [ops.max, ops.min], ids=["max", "min"])
@pytest.mark.parametrize("axis", [-1, -2, (0, -1), (-3, 1), None])
@pytest.mark.parametrize("keepdims", [False, True])
def test_extremes_negative_and_tuple_axes(op, axis, keepdims):
    x = rng.normal(size=(2, 3, 4))
    pick = np.max if op is ops.max else np.min
    want = pick(x, axis=axis, keepdims=keepdims)
    y = op(Variable(x), axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(y.data, want)
    (g,) = grad_of(lambda v: op(v, axis=axis, keepdims=keepdims), x)
    np.testing.assert_array_equal(g, (x == pick(x, axis=axis, keepdims=True)).astype(float))


def test_max_ties_split_the_gradient_equally():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    (g,) = grad_of(lambda v: ops.max(v, axis=1), x)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    (g,) = grad_of(ops.min, x)  # a single global minimum takes it all
    np.testing.assert_allclose(g, [[1, 0, 0], [0, 0, 0]])


def test_maximum_minimum_ties_give_half_to_each_side():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 5.0])
    np.testing.assert_allclose(grad_of(ops.maximum, a, b), [[0.5, 1, 0], [0.5, 0, 1]])
    np.testing.assert_allclose(grad_of(ops.minimum, a, b), [[0.5, 0, 1], [0.5, 1, 0]])


def test_reduction_over_an_empty_axis_is_a_shape_error():
    for op in (ops.max, ops.min, ops.mean, ops.logsumexp):
        with pytest.raises(ShapeError, match=rf"{op.name}: cannot reduce shape \(2, 0\)"):
            op(np.zeros((2, 0)), axis=1)
    assert ops.max(np.zeros((0, 3)), axis=1).shape == (0,)  # empty batch, non-empty axis


# --- numerical stability ---
def test_logsumexp_and_log_softmax_stay_finite_on_huge_inputs():
    x = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1e308]])
    np.testing.assert_allclose(ops.logsumexp(x, axis=1).data, [1000 + np.log(2), -1000 + np.log(2)])
    np.testing.assert_allclose(
        ops.log_softmax(x).data,
        [[-np.log(2), -np.log(2), -2000 - np.log(2)], [-np.log(2)] * 2 + [-1e308]],
    )
    sm = ops.softmax(Variable(x))
    np.testing.assert_allclose(sm.data, [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    for fn in (lambda v: ops.logsumexp(v, axis=1), ops.log_softmax, ops.softmax):
        (g,) = grad_of(fn, x)
        assert np.isfinite(g).all()


def test_logsumexp_of_minus_infinity_is_minus_infinity():
    with np.errstate(divide="ignore"):
        y = ops.logsumexp(np.full((2, 3), -np.inf), axis=1)
    np.testing.assert_array_equal(y.data, [-np.inf, -np.inf])


def test_losses_are_stable_for_huge_logits():
    x = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    np.testing.assert_allclose(ops.softmax_cross_entropy(x, np.array([0, 1])).data, 0.0)
    np.testing.assert_allclose(ops.softmax_cross_entropy(x, np.array([1, 1])).data, 1000.0)
    z = np.array([800.0, -800.0])
    np.testing.assert_allclose(ops.sigmoid_cross_entropy(z, np.array([0, 0])).data, 400.0)
    np.testing.assert_allclose(ops.sigmoid(z).data, [1.0, 0.0])


# --- dropout ---
def test_dropout_training_zeroes_and_rescales_with_the_harness_seed():
    x = np.ones((200, 50))
    opgraph.seed(3)
    y = ops.dropout(Variable(x), 0.3)
    kept = y.data != 0
    assert 0.25 < 1 - kept.mean() < 0.35
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    opgraph.seed(3)
    np.testing.assert_array_equal(ops.dropout(x, 0.3).data, y.data)  # reproducible
    v = Variable(x)
    ops.dropout(v, dropout_ratio=0.3).sum().backward()
    assert 0.25 < (v.grad.data == 0).mean() < 0.35  # the backward reuses the forward's mask
    np.testing.assert_allclose(v.grad.data[v.grad.data != 0], 1 / 0.7)


def test_dropout_is_the_identity_in_test_mode():
    x = rng.normal(size=(4, 5))
    v = Variable(x)
    with opgraph.test_mode():
        assert not opgraph.is_training()
        y = ops.dropout(v, 0.9)
    assert opgraph.is_training()
    np.testing.assert_array_equal(y.data, x)
    y.sum().backward()
    np.testing.assert_array_equal(v.grad.data, np.ones_like(x))


@pytest.mark.parametrize("ratio", [1.0, -0.1, "0.5"])
def test_dropout_rejects_a_bad_ratio(ratio):
    with pytest.raises(OpArgumentError, match="dropout_ratio"):
        ops.dropout(np.ones(3), ratio)


# --- indexing ---
def test_repeated_indices_accumulate_their_gradients():
    x = Variable(np.arange(4.0))
    y = x[[0, 0, 3, 0]] * np.array([1.0, 2.0, 3.0, 4.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [7, 0, 0, 3])


def test_index_arrays_may_be_variables_and_indexing_is_twice_differentiable():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = (x[Variable(np.array([2, 2, 0]))] ** 3).sum()  # 2 * x2^3 + x0^3
    y.backward(create_graph=True)
    np.testing.assert_allclose(x.grad.data, [3, 0, 54])
    g = x.grad
    x.cleargrad()
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, [6, 0, 36])


def test_get_item_rejects_indices_that_do_not_fit():
    with pytest.raises(ShapeError, match=r"get_item: index 5 does not fit shape \(2, 3\)"):
        Variable(np.zeros((2, 3)))[5]
    with pytest.raises(OpArgumentError, match="get_item: invalid slices"):
        Variable(np.zeros(3))[1.5]


# --- mean_squared_error: DeZero divides by len(x0) even when x1 broadcasts over the batch ---
def test_mean_squared_error_divides_by_the_broadcast_batch_size():
    x0, x1 = rng.normal(size=(1, 3)), rng.normal(size=(4, 3))
    want = ((x0 - x1) ** 2).sum() / 4
    np.testing.assert_allclose(ops.mean_squared_error(x0, x1).data, want)
    np.testing.assert_allclose(ops.mean_squared_error(x1, x0).data, want)
    g0, g1 = grad_of(ops.mean_squared_error, x0, x1)
    assert g0.shape == (1, 3) and g1.shape == (4, 3)
    np.testing.assert_allclose(g0, (2 * (x0 - x1) / 4).sum(axis=0, keepdims=True))


# --- dtypes ---
@pytest.mark.parametrize(
    "fn",
    [
        ops.sigmoid,
        ops.softmax,
        ops.log_softmax,
        lambda v: ops.leaky_relu(v, np.float64(0.1)),
        lambda v: ops.clip(v, np.float64(-0.5), 0.5),
        lambda v: ops.mean_squared_error(v, np.float32(1.0) * np.ones(3, np.float32)),
        lambda v: ops.logsumexp(v, axis=-1),
        lambda v: ops.linear(v, np.ones((3, 2), np.float32), np.ones(2, np.float32)),
    ],
    ids=["sigmoid", "softmax", "log_softmax", "leaky_relu", "clip", "mse", "logsumexp", "linear"],
)
def test_float32_stays_float32(fn):
    v = Variable(rng.normal(size=(2, 3)).astype(np.float32))
    y = fn(v)
    assert y.dtype == np.float32
    y.sum().backward()
    assert v.grad.dtype == np.float32


def test_mixed_dtypes_get_gradients_in_their_own_dtype():
    a = Variable(np.ones((2, 2), np.float32))
    b = Variable(np.ones((1, 2), np.float64))
    y = ops.concat([a, b], axis=0)
    assert y.dtype == np.float64 and y.shape == (3, 2)
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


# --- non-differentiable inputs ---
def test_where_condition_and_labels_get_no_gradient():
    cond = Variable(np.array([True, False]))
    a, b = Variable(np.array([1.0, 2.0])), Variable(np.array([3.0, 4.0]))
    ops.where(cond, a, b).sum().backward()
    assert cond.grad is None
    np.testing.assert_array_equal(a.grad.data, [1, 0])
    t = Variable(np.array([1, 0]))
    ops.softmax_cross_entropy(Variable(np.zeros((2, 3))), t).backward()
    assert t.grad is None


def test_accuracy_value():
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert ops.accuracy(y, np.array([1, 1, 1])).data == pytest.approx(2 / 3)


def test_accuracy_blocks_no_gradient_elsewhere():
    w = Variable(np.ones((2, 2)))
    loss = ops.accuracy(w, np.array([0, 1])) * w.sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, np.full((2, 2), 0.5))


# --- shape and argument errors name the op and the shapes ---
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: ops.concat([np.zeros((2, 3)), np.zeros((3, 2))], axis=0),
            r"concat: shapes \(2, 3\) and \(3, 2\)",
        ),
        (lambda: ops.stack([np.zeros(2), np.zeros(3)]), r"stack: shapes \(2,\) and \(3,\)"),
        (
            lambda: ops.squeeze(np.zeros((2, 1)), 0),
            r"squeeze: cannot squeeze axes \[0\] of shape \(2, 1\)",
        ),
        (lambda: ops.expand_dims(np.zeros((2,)), 3), r"expand_dims: axis 3 is out of range"),
        (lambda: ops.flatten(np.zeros(())), "flatten: a 0-d input"),
        (
            lambda: ops.linear(np.zeros((4, 3)), np.zeros((2, 5))),
            r"linear: shapes \(4, 3\) and \(2, 5\)",
        ),
        (lambda: ops.softmax(np.zeros(3)), r"softmax: axis 1 is out of range"),
        (
            lambda: ops.softmax_cross_entropy(np.zeros((3, 2)), np.array([0, 1])),
            r"softmax_cross_entropy: scores of shape \(3, 2\)",
        ),
        (
            lambda: ops.sigmoid_cross_entropy(np.zeros(3), np.zeros(2)),
            "sigmoid_cross_entropy: logits of shape",
        ),
        (lambda: ops.maximum(np.zeros(2), np.zeros(3)), r"maximum: shapes \(2,\) and \(3,\)"),
        (
            lambda: ops.where(np.zeros(2, bool), np.zeros(3), 1.0),
            r"where: shapes \(2,\), \(3,\) and \(\)",
        ),
        (lambda: ops.mean_squared_error(np.zeros(2), np.zeros(3)), "mean_squared_error: shapes"),
    ],
)
def test_shape_errors_name_the_op_and_shapes(call, match):
    with pytest.raises(ShapeError, match=match):
        call()


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 3\)"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"x_min=1\.0 is greater than x_max=-1\.0"):
        ops.clip(np.zeros(2), 1.0, -1.0)


def test_linear_on_constant_data_gives_only_parameter_gradients():
    x = rng.normal(size=(4, 3))
    w, b = Variable(rng.normal(size=(3, 2))), Variable(np.zeros(2))
    ops.linear(x, w, b).sum().backward()
    np.testing.assert_allclose(w.grad.data, np.repeat(x.sum(axis=0)[:, None], 2, axis=1))
    np.testing.assert_array_equal(b.grad.data, [4.0, 4.0])
