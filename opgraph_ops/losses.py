"""Losses and metrics, averaged over the batch (the first axis) as in DeZero:
mean_squared_error, softmax_cross_entropy, sigmoid_cross_entropy and accuracy.

Labels and targets get no gradient (they are declared ``nondiff``); every loss is computed in
a form that does not overflow for large logits.
"""

from __future__ import annotations

import numpy as np

from opgraph import Domain, ErrorInput, OpSpec, Sample, ShapeError, unbroadcast
from opgraph.shapes import broadcast, fmt_shapes
from opgraph_ops.masks import constant
from opgraph_ops.reductions import stable_logsumexp


def _batch_size(shape: tuple[int, ...]) -> int:
    """The number of samples a loss averages over: the first axis (1 for a 0-d input)."""
    return shape[0] if shape else 1


def _scalar(value, dtype: np.dtype) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


# --- mean_squared_error ---
def _mse_forward(x0, x1):
    diff = np.subtract(x0, x1)  # shapes accepted by the rule: a batch that is not empty
    n = _batch_size(diff.shape)
    flat = diff.ravel()
    return _scalar(np.dot(flat, flat) / n, diff.dtype)


def _mse_rule(x0, x1):
    if _batch_size(broadcast("mean_squared_error", x0, x1)) == 0:
        raise ShapeError(
            f"mean_squared_error: shapes {fmt_shapes((x0, x1))} broadcast to an empty batch, "
            "which has no mean"
        )
    return ()


def _mse_backward(ctx, gy):
    x0, x1 = ctx.inputs
    diff = x0 - x1
    g = diff * (gy * (2 / _batch_size(diff.shape)))
    return unbroadcast(g, x0), unbroadcast(-g, x1)


# --- labels: softmax_cross_entropy and accuracy ---
def _labels_rule(op: str):
    """Shape rule of ops taking scores x (N, C) and integer labels t (N,)."""

    def rule(x, t):
        if len(x) != 2 or len(t) != 1 or x[0] != t[0] or not x[0]:
            raise ShapeError(
                f"{op}: scores of shape {tuple(x)} and labels of shape {tuple(t)}: need scores "
                "(N, C) and labels (N,) with N > 0"
            )
        return ()

    return rule


def _check_labels(op: str, x: np.ndarray, t: np.ndarray) -> None:
    if t.dtype.kind not in "iu" or (t.size and (t.min() < 0 or t.max() >= x.shape[1])):
        raise ValueError(
            f"{op}: labels must be integers in [0, {x.shape[1]}) for {x.shape[1]} classes, got "
            f"{t.dtype} labels in [{t.min()}, {t.max()}]"
        )


def _labelled_samples(rng: np.random.Generator, dtype: np.dtype):
    for n, c in [(4, 3), (1, 5), (6, 2)]:
        x = rng.uniform(-2, 2, (n, c)).astype(dtype)
        yield Sample((x, rng.integers(0, c, n)), note=f"{n} samples, {c} classes")


def _label_errors(op: str):
    def errors():
        x = np.zeros((3, 4))
        yield ErrorInput((x, np.array([0, 4, 1])), {}, ValueError, "labels", "label >= classes")
        yield ErrorInput((x, np.array([0.0, 1.0, 1.0])), {}, ValueError, "labels", "float labels")
        yield ErrorInput((x, np.array([0, 1])), {}, ShapeError, op, "batch sizes differ")

    return errors


def _softmax_cross_entropy_forward(x, t):
    _check_labels("softmax_cross_entropy", x, t)
    log_p = x - stable_logsumexp(x, axis=1, keepdims=True)
    n = len(x)
    return _scalar(-log_p[np.arange(n), t].sum() / n, x.dtype)


def _softmax_cross_entropy_backward(ctx, gy):
    x, t = ctx.inputs
    n, c = x.shape
    onehot = constant(lambda labels: np.eye(c)[labels], x, t)
    return (ctx.ops.softmax(x, 1) - onehot) * (gy * (1 / n)), None


def _accuracy_forward(y, t):
    _check_labels("accuracy", y, t)
    return _scalar(np.mean(y.argmax(axis=1) == t), y.dtype)


def _naive_cross_entropy(x, t):
    """The textbook formula (overflows for huge logits, exact on the harness's samples)."""
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(t)), t]))


# --- sigmoid_cross_entropy ---
def _sigmoid_cross_entropy_forward(x, t):
    """mean over the batch of -[t log p + (1 - t) log(1 - p)], p = sigmoid(x), written as
    max(x, 0) - x t + log(1 + exp(-|x|)) so that no log of 0 or exp overflow occurs."""
    loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return _scalar(loss.sum() / _batch_size(x.shape), x.dtype)


def _naive_binary_cross_entropy(x, t):
    p = 1 / (1 + np.exp(-x))
    return -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)) / _batch_size(np.shape(x))


def _sigmoid_cross_entropy_rule(x, t):
    if x != t:
        raise ShapeError(
            f"sigmoid_cross_entropy: logits of shape {tuple(x)} and targets of shape {tuple(t)} "
            "must have the same shape"
        )
    return ()


def _sigmoid_cross_entropy_backward(ctx, gy):
    x, t = ctx.inputs
    p = ctx.ops.sigmoid(x)
    return (p - constant(np.asarray, x, t)) * (gy * (1 / _batch_size(x.shape))), None


def _binary_samples(rng: np.random.Generator, dtype: np.dtype):
    for shape in [(5,), (4, 3), ()]:
        x = rng.uniform(-3, 3, shape).astype(dtype)
        yield Sample((x, rng.integers(0, 2, shape)), note="0/1 integer targets")
        yield Sample((x, rng.random(shape).astype(dtype)), note="probability targets")


SPECS = [
    OpSpec(
        "mean_squared_error",
        _mse_forward,
        _mse_rule,
        _mse_backward,
        inputs=("x0", "x1"),
        reference=lambda x0, x1: np.sum((x0 - x1) ** 2) / _batch_size(np.broadcast(x0, x1).shape),
        kind="broadcast",
        doc="sum((x0 - x1) ** 2) / batch size (first axis of the broadcast shape).",
    ),
    OpSpec(
        "softmax_cross_entropy",
        _softmax_cross_entropy_forward,
        _labels_rule("softmax_cross_entropy"),
        _softmax_cross_entropy_backward,
        inputs=("x", "t"),
        reference=_naive_cross_entropy,
        nondiff=("t",),
        requires=("softmax",),
        kind="custom",
        domain=(Domain(), None),
        sample_inputs=_labelled_samples,
        error_inputs=_label_errors("softmax_cross_entropy"),
        doc="Mean over the batch of -log softmax(x)[t]; x (N, C), integer labels t (N,).",
    ),
    OpSpec(
        "sigmoid_cross_entropy",
        _sigmoid_cross_entropy_forward,
        _sigmoid_cross_entropy_rule,
        _sigmoid_cross_entropy_backward,
        inputs=("x", "t"),
        reference=_naive_binary_cross_entropy,
        nondiff=("t",),
        requires=("sigmoid",),
        kind="custom",
        domain=(Domain(), None),
        sample_inputs=_binary_samples,
        doc="Binary cross entropy of logits x and targets t in [0, 1], summed / batch size.",
    ),
    OpSpec(
        "accuracy",
        _accuracy_forward,
        _labels_rule("accuracy"),
        None,
        reference=lambda y, t: np.mean(
            [row.argmax() == label for row, label in zip(y, t, strict=True)]
        ),
        inputs=("y", "t"),
        nondiff=("y", "t"),
        kind="custom",
        domain=(Domain(), None),
        sample_inputs=_labelled_samples,
        error_inputs=_label_errors("accuracy"),
        doc="Fraction of rows whose argmax equals the label; not differentiable.",
    ),
]
