"""Train a small CNN (opgraph-conv's conv2d and pooling) to tell bars from crosses.

    python examples/cnn.py [epochs]

The images are generated: a bar is one straight stroke (horizontal or vertical), a cross two
short strokes meeting at a point, both with about the same amount of ink and some noise, so
the network has to learn shapes rather than count bright pixels.
"""

from __future__ import annotations

import sys

import numpy as np
from sgd import dense_params, fit

import opgraph
from opgraph import Variable

SIZE = 10  # images are 1 x SIZE x SIZE


def make_bars_and_crosses(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x (n, 1, SIZE, SIZE) float64 images, t (n,) labels: 0 for a bar, 1 for a cross."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.1, size=(n, 1, SIZE, SIZE))
    t = rng.integers(0, 2, size=n)
    for img, label in zip(x[:, 0], t, strict=True):
        r, c = rng.integers(2, SIZE - 2, size=2)
        if label:  # a cross: arms of length 2 around (r, c), 9 pixels
            img[r, c - 2 : c + 3] += 1.0
            img[r - 2 : r + 3, c] += 1.0
            img[r, c] -= 1.0
        elif rng.random() < 0.5:  # a horizontal bar of 9 pixels
            img[r, : SIZE - 1] += 1.0
        else:
            img[: SIZE - 1, c] += 1.0
    return x, t


class SmallCNN:
    """conv2d 3x3 (4 filters, same padding) -> relu -> 2x2 max pooling -> linear."""

    def __init__(self, rng: np.random.Generator, filters: int = 4, classes: int = 2) -> None:
        self.kernels = Variable(rng.standard_normal((filters, 1, 3, 3)) / 3.0)
        self.bias = Variable(np.zeros(filters))
        self.w, self.b = dense_params(rng, filters * (SIZE // 2) ** 2, classes)
        self.params = (self.kernels, self.bias, self.w, self.b)

    def __call__(self, x: np.ndarray) -> Variable:
        ops = opgraph.ops
        h = ops.relu(ops.conv2d(x, self.kernels, self.bias, stride=1, pad=1))
        h = ops.pooling(h, 2, stride=2)
        return ops.linear(ops.reshape(h, (len(x), -1)), self.w, self.b)


def train(
    epochs: int = 30, *, lr: float = 0.1, batch_size: int = 20, seed: int = 0, log=print
) -> list[tuple[float, float]]:
    """Train from scratch; returns (loss, accuracy) per epoch and logs each epoch."""
    x, t = make_bars_and_crosses(seed=seed)
    rng = np.random.default_rng(seed)
    model = SmallCNN(rng)
    return fit(model, x, t, epochs=epochs, lr=lr, batch_size=batch_size, rng=rng, log=log)


if __name__ == "__main__":
    train(epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 30)
