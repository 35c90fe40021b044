"""Activation ops against plain numpy references (math.erf for the exact gelu)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import opgraph
from opgraph import Variable

X = np.linspace(-3.0, 3.0, 13)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


REFERENCES = {
    "erf": lambda x: np.array([math.erf(v) for v in x]),
    "softplus": softplus,
    "silu": lambda x: x * sigmoid(x),
    "mish": lambda x: x * np.tanh(softplus(x)),
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1.0),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_forward_matches_the_numpy_reference(name):
    np.testing.assert_allclose(opgraph.ops[name](X).data, REFERENCES[name](X), rtol=1e-12)


def test_gelu_exact_is_x_times_the_normal_cdf():
    cdf = np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in X])
    np.testing.assert_allclose(opgraph.ops.gelu(X).data, X * cdf, rtol=1e-12)


def test_gelu_tanh_is_the_tanh_formula_and_close_to_exact():
    inner = math.sqrt(2.0 / math.pi) * (X + 0.044715 * X**3)
    approx = opgraph.ops.gelu(X, approximate="tanh").data
    np.testing.assert_allclose(approx, 0.5 * X * (1.0 + np.tanh(inner)), rtol=1e-12)
    np.testing.assert_allclose(approx, opgraph.ops.gelu(X).data, atol=1e-3)


def test_gelu_rejects_unknown_approximations():
    with pytest.raises(opgraph.OpArgumentError, match=r"gelu.*approximate.*'none', 'tanh'"):
        opgraph.ops.gelu(X, approximate="fast")


def test_elu_alpha_scales_the_negative_side():
    y = opgraph.ops.elu(X, alpha=0.5).data
    np.testing.assert_allclose(y, np.where(X > 0, X, 0.5 * (np.exp(X) - 1.0)), rtol=1e-12)


def test_softplus_and_elu_do_not_overflow_on_large_inputs():
    big = np.array([-1000.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_allclose(opgraph.ops.softplus(big).data, [0.0, 1000.0])
        x = Variable(big.copy())
        opgraph.ops.elu(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 1.0])


@pytest.mark.parametrize(
    ("name", "derivative"),
    [
        ("softplus", sigmoid),
        ("silu", lambda x: sigmoid(x) * (1 + x * (1 - sigmoid(x)))),
        ("hard_sigmoid", lambda x: np.where(np.abs(x) < 2.5, 0.2, 0.0)),
        ("elu", lambda x: np.where(x > 0, 1.0, np.exp(x))),
        ("erf", lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x)),
    ],
)
def test_gradient_matches_the_closed_form(name, derivative):
    x = Variable(X + 0.01)  # off the kinks at 0 and +-2.5
    opgraph.ops[name](x).sum().backward()
    np.testing.assert_allclose(x.grad.data, derivative(X + 0.01), rtol=1e-10)


@pytest.mark.parametrize("name", ["gelu", "softplus", "silu", "mish", "elu", "hard_sigmoid"])
def test_float32_in_float32_out(name):
    x = Variable(X.astype(np.float32))
    y = opgraph.ops[name](x)
    y.sum().backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == np.float32
