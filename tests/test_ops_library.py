"""Values of the op library against plain numpy formulas, and first- and second-order
gradients against central differences (float64)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

import opgraph
from opgraph import Variable

ops = opgraph.ops
rng = np.random.default_rng(5)


def uniform(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape)


def away_from(points, *shape):
    """Uniform values at least 0.1 away from each of ``points`` (kinks of piecewise ops)."""
    x = uniform(*shape)
    for p in points:
        near = np.abs(x - p) < 0.1
        x[near] = p + np.where(x[near] >= p, 0.1, -0.1) + 0.05 * np.sign(x[near] - p + 1e-9)
    return x


def naive_softmax(x, axis):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


LABELS = np.array([2, 0, 1, 2])
MASK = np.array([[True, False, True], [False, False, True]])
HALF = rng.random((2, 3)) < 0.5

# (id, op call on Variables, numpy reference on arrays, inputs, indices of differentiable inputs)
TABLE = [
    ("sqrt", ops.sqrt, np.sqrt, [uniform(3, 4, low=0.3)], None),
    ("square", ops.square, np.square, [uniform(3, 4)], None),
    ("abs", ops.abs, np.abs, [away_from([0], 3, 4)], None),
    ("maximum", ops.maximum, np.maximum, [uniform(2, 3), uniform(3)], None),
    ("minimum", ops.minimum, np.minimum, [uniform(3, 1), uniform(1, 4)], None),
    (
        "clip",
        lambda x: ops.clip(x, -1.0, 1.0),
        lambda x: np.minimum(np.maximum(x, -1.0), 1.0),
        [away_from([-1, 1], 4, 5)],
        None,
    ),
    ("where", ops.where, np.where, [HALF, uniform(2, 3), uniform(3)], (1, 2)),
    ("get_item-int", lambda x: x[1], lambda x: x[1], [uniform(3, 4)], None),
    ("get_item-slices", lambda x: x[::-1, 1:3], lambda x: x[::-1, 1:3], [uniform(3, 4)], None),
    (
        "get_item-ellipsis-none",
        lambda x: x[..., None, 0],
        lambda x: x[..., None, 0],
        [uniform(2, 3, 4)],
        None,
    ),
    (
        "get_item-repeated",
        lambda x: x[[0, 2, 0, 0]],
        lambda x: x[[0, 2, 0, 0]],
        [uniform(3, 2)],
        None,
    ),
    (
        "get_item-2d-array",
        lambda x: x[:, np.array([[1, 1], [0, 3]])],
        lambda x: x[:, np.array([[1, 1], [0, 3]])],
        [uniform(2, 4)],
        None,
    ),
    ("get_item-mask", lambda x: x[MASK], lambda x: x[MASK], [uniform(2, 3)], None),
    (
        "expand_dims",
        lambda x: ops.expand_dims(x, (0, -1)),
        lambda x: x[None, ..., None],
        [uniform(2, 3)],
        None,
    ),
    (
        "squeeze",
        lambda x: ops.squeeze(x, -1),
        lambda x: x[..., 0],
        [uniform(1, 3, 1)],
        None,
    ),
    ("squeeze-all", ops.squeeze, lambda x: x.reshape(3), [uniform(1, 3, 1)], None),
    ("flatten", ops.flatten, lambda x: x.reshape(2, 12), [uniform(2, 3, 4)], None),
    (
        "concat",
        lambda *xs: ops.concat(list(xs), axis=-1),
        lambda *xs: np.concatenate(xs, axis=-1),
        [uniform(2, 1), uniform(2, 3), uniform(2, 2)],
        None,
    ),
    (
        "stack",
        lambda *xs: ops.stack(xs, axis=1),
        lambda *xs: np.stack(xs, axis=1),
        [uniform(2, 3), uniform(2, 3)],
        None,
    ),
    (
        "mean",
        lambda x: ops.mean(x, axis=(0, -1), keepdims=True),
        lambda x: x.sum(axis=(0, 2), keepdims=True) / 8,
        [uniform(2, 3, 4)],
        None,
    ),
    ("mean-all", ops.mean, lambda x: x.sum() / x.size, [uniform(3, 4)], None),
    ("max", lambda x: ops.max(x, axis=-1), lambda x: np.max(x, axis=1), [uniform(3, 4)], None),
    (
        "min",
        lambda x: ops.min(x, axis=(0, -1)),
        lambda x: np.min(x, axis=(0, 2)),
        [uniform(2, 3, 4)],
        None,
    ),
    (
        "logsumexp",
        lambda x: ops.logsumexp(x, axis=1),
        lambda x: np.log(np.exp(x).sum(axis=1)),
        [uniform(3, 4)],
        None,
    ),
    ("sigmoid", ops.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [uniform(3, 4, low=-5)], None),
    ("relu", ops.relu, lambda x: x * (x > 0), [away_from([0], 3, 4)], None),
    (
        "leaky_relu",
        lambda x: ops.leaky_relu(x, slope=0.1),
        lambda x: np.where(x > 0, x, 0.1 * x),
        [away_from([0], 3, 4)],
        None,
    ),
    ("softmax", ops.softmax, lambda x: naive_softmax(x, 1), [uniform(3, 4)], None),
    (
        "softmax-3d",
        lambda x: ops.softmax(x, axis=-1),
        lambda x: naive_softmax(x, -1),
        [uniform(2, 3, 4)],
        None,
    ),
    (
        "log_softmax",
        ops.log_softmax,
        lambda x: np.log(naive_softmax(x, 1)),
        [uniform(3, 4)],
        None,
    ),
    (
        "linear",
        ops.linear,
        lambda x, w, b: x @ w + b,
        [uniform(4, 3), uniform(3, 2), uniform(2)],
        None,
    ),
    ("linear-no-bias", ops.linear, lambda x, w: x @ w, [uniform(4, 3), uniform(3, 2)], None),
    (
        "linear-batched",
        ops.linear,
        lambda x, w, b: x @ w + b,
        [uniform(2, 4, 3), uniform(3, 2), uniform(1, 2)],
        None,
    ),
    (
        "mean_squared_error",
        ops.mean_squared_error,
        lambda a, b: ((a - b) ** 2).sum() / 4,
        [uniform(4, 3), uniform(3)],
        None,
    ),
    (
        "softmax_cross_entropy",
        ops.softmax_cross_entropy,
        lambda x, t: -np.log(naive_softmax(x, 1))[np.arange(4), t].mean(),
        [uniform(4, 3), LABELS],
        (0,),
    ),
    (
        "sigmoid_cross_entropy",
        ops.sigmoid_cross_entropy,
        lambda x, t: (
            -(t * np.log(1 / (1 + np.exp(-x))) + (1 - t) * np.log(1 - 1 / (1 + np.exp(-x)))).sum()
            / 4
        ),
        [uniform(4, 2), (rng.random((4, 2)) < 0.5).astype(np.int64)],
        (0,),
    ),
]


class Case(NamedTuple):
    name: str
    fn: object
    reference: object
    arrays: list
    diff: tuple[int, ...] | None


CASES = [Case(*row) for row in TABLE]


def _differentiable(arrays, diff):
    return list(range(len(arrays))) if diff is None else list(diff)


def _gradients(fn, arrays, diff, weight, create_graph=False):
    """Gradients of sum(fn(*arrays) * weight) with respect to the differentiable inputs."""
    xs = [Variable(a.copy()) if k in diff else a for k, a in enumerate(arrays)]
    (fn(*xs) * weight).sum().backward(create_graph=create_graph)
    return [xs[k].grad for k in diff]


def _partial(reference, arrays, diff):
    """``reference`` as a function of the differentiable inputs only."""

    def f(*values):
        full = list(arrays)
        for k, v in zip(diff, values, strict=True):
            full[k] = v
        return reference(*full)

    return f


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_values_and_gradients(numgrad, case):
    fn, reference, arrays, diff = case.fn, case.reference, case.arrays, case.diff
    diff = _differentiable(arrays, diff)
    want = reference(*arrays)
    np.testing.assert_allclose(fn(*arrays).data, want, rtol=1e-12, atol=1e-12)

    weight = rng.normal(size=np.shape(want))  # a projection: sum(softmax) alone has zero gradient
    grads = _gradients(fn, arrays, diff, weight)
    f = _partial(lambda *a: reference(*a) * weight, arrays, diff)
    expected = numgrad(f, *[arrays[k] for k in diff])
    for g, x, e in zip(grads, [arrays[k] for k in diff], expected, strict=True):
        assert g.shape == x.shape and g.dtype == x.dtype
        np.testing.assert_allclose(g.data, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_second_order(numgrad, case):
    """d/dx sum(grad(x) * v) through create_graph=True equals finite differences of grad."""
    fn, reference, arrays, diff = case.fn, case.reference, case.arrays, case.diff
    diff = _differentiable(arrays, diff)
    weight = rng.normal(size=np.shape(reference(*arrays)))
    probes = [rng.normal(size=np.shape(arrays[k])) for k in diff]

    def projected_grad(*values):
        full = list(arrays)
        for k, v in zip(diff, values, strict=True):
            full[k] = v
        grads = _gradients(fn, full, diff, weight)
        return sum(np.sum(g.data * p) for g, p in zip(grads, probes, strict=True))

    xs = [Variable(a.copy()) if k in diff else a for k, a in enumerate(arrays)]
    (fn(*xs) * weight).sum().backward(create_graph=True)
    leaves = [xs[k] for k in diff]
    first = [x.grad for x in leaves]
    for x in leaves:
        x.cleargrad()
    expected = numgrad(projected_grad, *[arrays[k] for k in diff], eps=1e-5)
    recorded = [(g * p).sum() for g, p in zip(first, probes, strict=True) if g.creator is not None]
    if recorded:  # else no gradient depends on the inputs: a linear op, zero second derivative
        sum(recorded).backward()
    for x, e in zip(leaves, expected, strict=True):
        got = np.zeros_like(x.data) if x.grad is None else x.grad.data
        np.testing.assert_allclose(got, e, rtol=1e-5, atol=1e-6)
