"""The benchmark workloads, defined once: their sizes, their seeded data, and the forward
computations every engine with operator overloading runs unchanged."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

SIN_SHAPE = (3,)
CHAIN_SIZE = 1000
CHAIN_ROUNDS = 10  # 5 elementwise ops a round (* 0.5, + 0.1, tanh, sin, * 1.5): 50, then a sum
MLP_SIZES = (100, 784, 1000, 10)  # batch, inputs, hidden (sigmoid), outputs
MATMUL_N = 1000
LEARNING_RATE = 0.01

WORKLOADS = {
    "sin": "sin on (3,), forward+backward",
    "chain": f"{CHAIN_ROUNDS} x (*0.5, +0.1, tanh, sin, *1.5) on ({CHAIN_SIZE},) + sum, "
    "forward+backward",
    "mlp64": "MLP step {}x{}-{}(sigmoid)-{}, MSE, SGD, float64".format(*MLP_SIZES),
    "mlpfrozen": "same float64 step, batch and targets in frozen Variables",
    "mlp32": "same MLP step, float32",
    "matmul": f"{MATMUL_N}x{MATMUL_N} matmul, forward+backward",
}


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def sin_input() -> np.ndarray:
    return rng().standard_normal(SIN_SHAPE)


def chain_input() -> np.ndarray:
    return rng().uniform(0.0, 1.0, CHAIN_SIZE)


def chain(x: Any, sin: Callable, tanh: Callable) -> Any:
    """The 50-op chain; ``x`` is any engine's array type with arithmetic operators."""
    y = x
    for _ in range(CHAIN_ROUNDS):
        y = y * 0.5
        y = y + 0.1
        y = tanh(y)
        y = sin(y)
        y = y * 1.5
    return y


def sin_by_hand(x: Any, sin: Callable, cos: Callable, ones_like: Callable) -> list:
    """sin's forward and its derivative written out in one array library's kernels."""
    y = sin(x)
    return [ones_like(y) * cos(x)]


def chain_by_hand(
    x: Any, sin: Callable, tanh: Callable, cos: Callable, ones_like: Callable
) -> list:
    """`chain` + sum, forward and the gradient written out in one array library's kernels:
    the floor an engine built on those kernels is measured against."""
    saved = []  # per round: tanh's output
    y = x
    for _ in range(CHAIN_ROUNDS):
        t = tanh(y * 0.5 + 0.1)
        saved.append(t)
        y = sin(t) * 1.5
    y.sum()
    g = ones_like(x)
    for t in reversed(saved):
        g = g * 1.5
        g = g * cos(t)
        g = g * (1 - t * t)
        g = g * 0.5
    return [g]


@dataclass(frozen=True)
class MLPData:
    """A batch, its targets and the initial parameters (W1, b1, W2, b2) in one dtype."""

    x: np.ndarray
    t: np.ndarray
    params: tuple[np.ndarray, ...]

    def fresh_params(self) -> list[np.ndarray]:
        """Copies, so that an engine's SGD updates don't leak into the next engine's run."""
        return [p.copy() for p in self.params]


def mlp_data(dtype: str) -> MLPData:
    n, d_in, d_hidden, d_out = MLP_SIZES
    g = rng()
    cast = np.dtype(dtype)
    return MLPData(
        x=g.standard_normal((n, d_in)).astype(cast),
        t=g.standard_normal((n, d_out)).astype(cast),
        params=(
            (g.standard_normal((d_in, d_hidden)) / np.sqrt(d_in)).astype(cast),
            np.zeros(d_hidden, cast),
            (g.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden)).astype(cast),
            np.zeros(d_out, cast),
        ),
    )


def mlp_loss(x: Any, t: Any, params: Any, layers: Mapping[str, Callable]) -> Any:
    """Two linear layers with a sigmoid between, and the mean squared error over the batch;
    ``layers`` maps linear, sigmoid and mean_squared_error to one engine's functions."""
    w1, b1, w2, b2 = params
    linear, sigmoid = layers["linear"], layers["sigmoid"]
    return layers["mean_squared_error"](linear(sigmoid(linear(x, w1, b1)), w2, b2), t)


def linear(x: Any, w: Any, b: Any) -> Any:
    """The composed layer for engines without a fused one."""
    return x @ w + b


def sigmoid_with(exp: Callable) -> Callable:
    """The composed sigmoid, 1 / (1 + exp(-h)), for an engine's ``exp``."""
    return lambda h: 1 / (1 + exp(-h))


def mean_squared_error(y: Any, t: Any) -> Any:
    """Sum of squared differences over the batch size (DeZero's definition)."""
    diff = y - t
    return (diff * diff).sum() / len(diff)


def sgd_update(params: list[np.ndarray], grads: list[np.ndarray]) -> None:
    """Plain SGD, in place: the step functions close over these very arrays."""
    for param, grad in zip(params, grads, strict=True):
        param[...] -= LEARNING_RATE * grad


def matmul_inputs() -> tuple[np.ndarray, np.ndarray]:
    g = rng()
    return g.standard_normal((MATMUL_N, MATMUL_N)), g.standard_normal((MATMUL_N, MATMUL_N))


def kernel_steps(peer: Any) -> dict[str, Callable[[], list]]:
    """The per-op workloads written by hand in the kernels of a peer that does not compute with
    numpy's (``sin_kernel_step``, ``chain_kernel_step``): shown beside the peer, because the
    overheads are measured above numpy's floor and these kernels may be faster or slower."""
    found = {w: getattr(peer, f"{w}_kernel_step", None) for w in ("sin", "chain")}
    return {w: make() for w, make in found.items() if make is not None}


def steps(peer: Any) -> dict[str, Callable[[], list]]:
    """Each workload's step function for one peer module: a call runs forward + backward (and
    the SGD update for the MLP) and returns the gradients (the loss first for the MLP). A peer
    whose batch needs no wrapping (numpy, torch tensors, traced arrays) runs its plain float64
    step as ``mlpfrozen``; one that wraps inputs defines ``mlp_frozen_step``."""
    frozen = getattr(peer, "mlp_frozen_step", None)
    return {
        "sin": peer.sin_step(),
        "chain": peer.chain_step(),
        "mlp64": peer.mlp_step("float64"),
        "mlpfrozen": frozen() if frozen else peer.mlp_step("float64"),
        "mlp32": peer.mlp_step("float32"),
        "matmul": peer.matmul_step(),
    }
