"""Hand-written numpy: the forward and its derivative written out, the floor for every engine."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import problems

NAME = "numpy"
VERSION = np.__version__


def to_numpy(value: np.ndarray) -> np.ndarray:
    return np.asarray(value)


def sin_step() -> Callable[[], list]:
    x = problems.sin_input()
    return lambda: problems.sin_by_hand(x, np.sin, np.cos, np.ones_like)


def chain_step() -> Callable[[], list]:
    x = problems.chain_input()
    return lambda: problems.chain_by_hand(x, np.sin, np.tanh, np.cos, np.ones_like)


def chain_forward_step() -> Callable[[], list]:
    x = problems.chain_input()
    return lambda: [problems.chain(x, np.sin, np.tanh).sum()]


def mlp_step(dtype: str) -> Callable[[], list]:
    data = problems.mlp_data(dtype)
    x, t = data.x, data.t
    w1, b1, w2, b2 = params = data.fresh_params()
    n = len(x)

    def step() -> list:
        # written tight: large temporaries reused in place, sigmoid as tanh(h / 2) / 2 + 1/2
        s = x @ w1
        s += b1
        s *= 0.5
        np.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        diff = s @ w2
        diff += b2
        diff -= t
        loss = (diff * diff).sum() / n
        gy = diff * (2 / n)
        gh = gy @ w2.T
        gh *= s
        gh *= 1 - s
        grads = [x.T @ gh, gh.sum(axis=0), s.T @ gy, gy.sum(axis=0)]
        problems.sgd_update(params, grads)
        return [loss, *grads]

    return step


def matmul_step() -> Callable[[], list]:
    a, b = problems.matmul_inputs()

    def step() -> list:
        y = a @ b
        gy = np.ones_like(y)
        return [gy @ b.T, a.T @ gy]

    return step
