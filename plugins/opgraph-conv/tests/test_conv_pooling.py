"""Max and average pooling against plain-loop references, with non-square windows."""

from __future__ import annotations

import numpy as np
import pytest

import opgraph
from opgraph import Variable

CASES = [  # (x shape, kernel, stride, pad)
    ((2, 2, 5, 7), (2, 3), (2, 3), (1, 1)),
    ((1, 3, 6, 4), (3, 2), (1, 2), (1, 0)),
    ((1, 1, 4, 4), 2, 2, 0),
]


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def naive_pool(x, kernel, stride, pad, *, reduce, fill):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(pad)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.zeros((*x.shape[:2], oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = reduce(xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], (2, 3))
    return y


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.mark.parametrize(("shape", "kernel", "stride", "pad"), CASES)
def test_pooling_matches_the_loop(rng, shape, kernel, stride, pad):
    x = rng.normal(size=shape)
    y = opgraph.ops.pooling(x, kernel, stride, pad)
    np.testing.assert_array_equal(
        y.data, naive_pool(x, kernel, stride, pad, reduce=np.max, fill=-np.inf)
    )


@pytest.mark.parametrize(("shape", "kernel", "stride", "pad"), CASES)
def test_average_pooling_matches_the_loop(rng, shape, kernel, stride, pad):
    x = rng.normal(size=shape)
    y = opgraph.ops.average_pooling(x, kernel, stride, pad)
    expected = naive_pool(x, kernel, stride, pad, reduce=np.mean, fill=0.0)
    np.testing.assert_allclose(y.data, expected, atol=1e-12)


def test_average_pooling_keeps_kernel_height_and_width_apart():
    """A (1, 3) kernel averages along rows only (DeZero swaps the two)."""
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    y = opgraph.ops.average_pooling(x, (1, 3), stride=(1, 1))
    assert y.shape == (1, 1, 3, 2)
    np.testing.assert_allclose(y.data[0, 0], [[1, 2], [5, 6], [9, 10]])


def test_max_pooling_padding_never_wins():
    x = -np.ones((1, 1, 2, 2))
    y = opgraph.ops.pooling(x, 2, stride=1, pad=1)
    np.testing.assert_array_equal(y.data, -np.ones((1, 1, 3, 3)))


def test_max_pooling_gradient_goes_to_each_window_maximum():
    x = Variable(np.array([[[[1.0, 5.0, 2.0], [4.0, 3.0, 0.0]]]]))
    y = opgraph.ops.pooling(x, (2, 2), stride=1)
    (y * np.array([[[[10.0, 100.0]]]])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[[[0, 110, 0], [0, 0, 0]]]])


def test_average_pooling_gradient_spreads_evenly():
    x = Variable(np.zeros((1, 1, 2, 4)))
    opgraph.ops.average_pooling(x, (2, 2), stride=(2, 2)).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full((1, 1, 2, 4), 0.25))


def test_max_pooling_rejects_padding_as_wide_as_the_window():
    with pytest.raises(opgraph.ShapeError, match=r"pooling \(opgraph-conv\).*pad"):
        opgraph.ops.pooling(np.zeros((1, 1, 4, 4)), (2, 3), pad=(2, 1))
