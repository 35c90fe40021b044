"""layer_norm, batch_norm and the BatchNorm helper's running statistics."""

from __future__ import annotations

import numpy as np
import pytest
from opgraph_activations import BatchNorm

import opgraph
from opgraph import Variable


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def test_layer_norm_normalises_the_last_axis(rng):
    x, gamma, beta = rng.normal(size=(2, 3, 5)), rng.normal(size=5), rng.normal(size=5)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
    np.testing.assert_allclose(opgraph.ops.layer_norm(x, gamma, beta).data, expected, rtol=1e-12)


def test_batch_norm_returns_normalised_x_and_the_batch_statistics(rng):
    x, gamma, beta = rng.normal(size=(4, 3, 2, 2)), rng.normal(size=3), rng.normal(size=3)
    y, mean, var = opgraph.ops.batch_norm(x, gamma, beta, eps=1e-3)
    np.testing.assert_allclose(mean.data, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var.data, x.var(axis=(0, 2, 3)), rtol=1e-12)
    shape = (1, 3, 1, 1)
    expected = (x - mean.data.reshape(shape)) / np.sqrt(var.data.reshape(shape) + 1e-3)
    expected = expected * gamma.reshape(shape) + beta.reshape(shape)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)


def test_batch_norm_gradients_of_y_are_those_of_a_composed_graph(rng):
    """Same gradients as building batch norm out of core ops."""
    data = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)
    fused = [Variable(a.copy()) for a in data]
    composed = [Variable(a.copy()) for a in data]
    weights = rng.normal(size=(5, 3))
    (opgraph.ops.batch_norm(*fused)[0] * weights).sum().backward()
    x, gamma, beta = composed
    centred = x - x.sum(axis=0, keepdims=True) / 5
    var = (centred * centred).sum(axis=0, keepdims=True) / 5
    ((centred * (var + 1e-5) ** -0.5 * gamma + beta) * weights).sum().backward()
    for a, b in zip(fused, composed, strict=True):
        np.testing.assert_allclose(a.grad.data, b.grad.data, rtol=1e-9, atol=1e-12)


def test_shape_errors_name_op_plugin_and_shapes():
    with pytest.raises(opgraph.ShapeError, match=r"layer_norm \(opgraph-activations\).*\(4,\)"):
        opgraph.ops.layer_norm(np.zeros((2, 4)), np.ones(3), np.zeros(3))
    with pytest.raises(opgraph.ShapeError, match=r"batch_norm \(opgraph-activations\)"):
        opgraph.ops.batch_norm(np.zeros(4), np.ones(4), np.zeros(4))


def test_batchnorm_updates_running_statistics_only_when_training(rng):
    bn = BatchNorm(3, decay=0.5)
    x = rng.normal(loc=2.0, scale=3.0, size=(8, 3, 2, 2))
    y = bn(x)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    unbiased = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * unbiased, rtol=1e-12)
    stats = bn.running_mean.copy(), bn.running_var.copy()
    with opgraph.test_mode():
        y_test = bn(x)
    np.testing.assert_array_equal(bn.running_mean, stats[0])
    np.testing.assert_array_equal(bn.running_var, stats[1])
    shape = (1, 3, 1, 1)
    expected = (x - stats[0].reshape(shape)) / np.sqrt(stats[1].reshape(shape) + 1e-5)
    np.testing.assert_allclose(y_test.data, expected, rtol=1e-12)


def test_the_op_itself_holds_no_state(rng):
    """What a conformance run does (call the op directly, any number of times) cannot reach
    a BatchNorm's running statistics, and repeated calls agree exactly."""
    bn = BatchNorm(2)
    bn(rng.normal(size=(6, 2)))
    stats = bn.running_mean.copy(), bn.running_var.copy()
    x = rng.normal(size=(4, 2))
    first = opgraph.ops.batch_norm(x, bn.gamma, bn.beta)
    second = opgraph.ops.batch_norm(x, bn.gamma, bn.beta)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(bn.running_mean, stats[0])
    np.testing.assert_array_equal(bn.running_var, stats[1])


def test_batchnorm_gamma_and_beta_learn(rng):
    bn = BatchNorm(2)
    x = rng.normal(size=(6, 2))
    (bn(x) * np.array([1.0, -2.0])).sum().backward()
    assert bn.gamma.grad is not None
    np.testing.assert_allclose(bn.beta.grad.data, [6.0, -12.0])
