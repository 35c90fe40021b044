"""What both examples share: parameter initialisation, shuffled minibatches, the SGD step and
one epoch of training. Plain numpy and opgraph ops only."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

import opgraph
from opgraph import Variable


def dense_params(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[Variable, Variable]:
    """Weights (n_in, n_out) scaled by 1/sqrt(n_in) (keeps activations near unit scale), and
    zero biases."""
    w = Variable(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in))
    return w, Variable(np.zeros(n_out))


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def sgd_step(params: Sequence[Variable], lr: float) -> None:
    """p <- p - lr * dL/dp, then forget the gradients for the next batch."""
    for p in params:
        p.data -= lr * p.grad.data
        p.cleargrad()


def train_epoch(
    model: Callable[[np.ndarray], Variable],
    params: Sequence[Variable],
    x: np.ndarray,
    t: np.ndarray,
    *,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """One pass over (x, t) in shuffled minibatches; returns the mean softmax cross-entropy
    over the epoch's batches and the accuracy on the whole set afterwards."""
    ops = opgraph.ops
    total = 0.0
    for idx in minibatches(len(x), batch_size, rng):
        loss = ops.softmax_cross_entropy(model(x[idx]), t[idx])
        loss.backward()
        sgd_step(params, lr)
        total += float(loss.data) * len(idx)
    with opgraph.no_grad():
        accuracy = float(ops.accuracy(model(x), t).data)
    return total / len(x), accuracy


def fit(
    model: Callable[[np.ndarray], Variable],
    x: np.ndarray,
    t: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    log: Callable[[str], object] = print,
) -> list[tuple[float, float]]:
    """``epochs`` epochs of `train_epoch` over ``model.params``; logs and returns (loss,
    accuracy) per epoch."""
    history = []
    for epoch in range(1, epochs + 1):
        loss, accuracy = train_epoch(
            model, model.params, x, t, lr=lr, batch_size=batch_size, rng=rng
        )
        history.append((loss, accuracy))
        log(f"epoch {epoch:3d}  loss {loss:.4f}  accuracy {accuracy:.3f}")
    return history
