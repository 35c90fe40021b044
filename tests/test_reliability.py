"""No silently wrong answer: bad attributes, inputs and shapes are refused with a clear error,
and integer sums behave as numpy's."""

from __future__ import annotations

import numpy as np
import pytest

import opgraph
from opgraph import Variable


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "bool"])
def test_small_integers_sum_as_numpy_sums_them_and_the_gradient_keeps_their_dtype(dtype):
    data = np.array([100, 100, 100], dtype=dtype)
    x = Variable(data)
    y = opgraph.ops.sum(x)
    assert y.data == np.sum(data) and y.dtype == np.sum(data).dtype
    if dtype != "bool":
        y.backward()
        assert x.grad.dtype == np.dtype(dtype) and x.grad.data.tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: opgraph.ops.clip(x, float("nan"), 1.0), r"clip: invalid x_min=nan: .*NaN"),
        (lambda x: opgraph.ops.clip(x, -1.0, float("nan")), r"clip: invalid x_max=nan"),
        (lambda x: opgraph.ops.leaky_relu(x, float("nan")), r"leaky_relu: invalid slope=nan"),
        (
            lambda x: opgraph.ops.layer_norm(x, np.ones(3), np.zeros(3), eps=-1),
            r"layer_norm: invalid eps=-1: expected a number in \(0.0, inf\)",
        ),
        (
            lambda x: opgraph.ops.layer_norm(x, np.ones(3), np.zeros(3), eps=0.0),
            r"layer_norm: invalid eps=0.0",
        ),
    ],
)
def test_attributes_that_would_give_nan_are_refused(call, message):
    with pytest.raises(opgraph.OpArgumentError, match=message):
        call(Variable(np.ones((2, 3))))


def test_normalising_over_an_empty_axis_is_a_shape_error():
    with pytest.raises(opgraph.ShapeError, match=r"batch_norm .*\(0, 3\).* are empty"):
        opgraph.ops.batch_norm(Variable(np.ones((0, 3))), np.ones(3), np.zeros(3))
    with pytest.raises(opgraph.ShapeError, match=r"layer_norm .* are empty"):
        opgraph.ops.layer_norm(Variable(np.ones((2, 0))), np.ones(0), np.zeros(0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: opgraph.ops.softmax_cross_entropy(
                Variable(np.zeros((2, 3))), np.zeros((2, 1), dtype=int)
            ),
            "softmax_cross_entropy",
        ),
        (lambda: opgraph.ops.accuracy(np.zeros((2, 3)), np.zeros((2, 1), dtype=int)), "accuracy"),
        (lambda: opgraph.ops.accuracy(np.zeros((2, 5, 4)), np.zeros(2, dtype=int)), "accuracy"),
        (
            lambda: opgraph.ops.sigmoid_cross_entropy(Variable(np.array(0.5)), np.ones(5)),
            "sigmoid_cross_entropy",
        ),
        (lambda: opgraph.ops.softmax(Variable(np.array(1.0))), "softmax"),
        (lambda: opgraph.ops.reshape(Variable(np.ones(4)), (-(10**9),)), "reshape"),
    ],
)
def test_shapes_the_rule_rejects_never_give_a_result(call, message):
    with pytest.raises((opgraph.ShapeError, opgraph.OpArgumentError), match=message):
        call()
