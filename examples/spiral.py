"""Train a two-layer network on a generated spiral (3 classes, 300 points) with plain SGD.

    python examples/spiral.py [epochs]

prints the loss and accuracy per epoch; the final accuracy is at least 0.95.
"""

from __future__ import annotations

import sys

import numpy as np
from sgd import dense_params, fit

import opgraph


def make_spiral(
    points_per_class: int = 100, classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Points on ``classes`` interleaved spiral arms with a little angular noise: x (N, 2)
    float64, t (N,) integer labels."""
    rng = np.random.default_rng(seed)
    rate = np.tile(np.arange(points_per_class) / points_per_class, classes)
    label = np.repeat(np.arange(classes), points_per_class)
    theta = 4.0 * label + 4.0 * rate + rng.normal(scale=0.2, size=rate.size)
    x = np.stack([rate * np.sin(theta), rate * np.cos(theta)], axis=1)
    return x, label


class TwoLayerNet:
    """linear -> sigmoid -> linear: class scores for softmax cross-entropy."""

    def __init__(self, hidden: int, classes: int, rng: np.random.Generator) -> None:
        self.w1, self.b1 = dense_params(rng, 2, hidden)
        self.w2, self.b2 = dense_params(rng, hidden, classes)
        self.params = (self.w1, self.b1, self.w2, self.b2)

    def __call__(self, x: np.ndarray) -> opgraph.Variable:
        ops = opgraph.ops
        return ops.linear(ops.sigmoid(ops.linear(x, self.w1, self.b1)), self.w2, self.b2)


def train(
    epochs: int = 300,
    *,
    hidden: int = 30,
    lr: float = 1.0,
    batch_size: int = 30,
    seed: int = 0,
    log=print,
) -> list[tuple[float, float]]:
    """Train from scratch; returns (loss, accuracy) per epoch and logs each epoch."""
    x, t = make_spiral(seed=seed)
    rng = np.random.default_rng(seed)
    model = TwoLayerNet(hidden, 3, rng)
    return fit(model, x, t, epochs=epochs, lr=lr, batch_size=batch_size, rng=rng, log=log)


if __name__ == "__main__":
    train(epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 300)
