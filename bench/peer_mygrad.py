"""mygrad: numpy-like tensors with define-by-run gradients (``Tensor.backward``)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

import mygrad as mg
import numpy as np
import problems
from mygrad.nnet.activations import sigmoid

NAME = "mygrad"
VERSION = metadata.version("mygrad")

LAYERS = {
    "linear": problems.linear,
    "sigmoid": sigmoid,
    "mean_squared_error": problems.mean_squared_error,
}


def to_numpy(value: mg.Tensor | np.ndarray) -> np.ndarray:
    return np.asarray(value.data if isinstance(value, mg.Tensor) else value)


def describe() -> str:
    return f"mygrad from {mg.__file__}"


def sin_step() -> Callable[[], list]:
    x = mg.Tensor(problems.sin_input())

    def step() -> list:
        mg.sin(x).backward()  # a non-scalar's backward seeds with ones
        return [x.grad]

    return step


def chain_step() -> Callable[[], list]:
    x = mg.Tensor(problems.chain_input())

    def step() -> list:
        mg.sum(problems.chain(x, mg.sin, mg.tanh)).backward()
        return [x.grad]

    return step


def _mlp(dtype: str, frozen: bool) -> Callable[[], list]:
    data = problems.mlp_data(dtype)
    params = [mg.Tensor(p) for p in data.fresh_params()]
    x, t = (mg.Tensor(a, constant=True) for a in (data.x, data.t)) if frozen else (data.x, data.t)

    def step() -> list:
        loss = problems.mlp_loss(x, t, params, LAYERS)
        loss.backward()
        for p in params:
            p.data -= problems.LEARNING_RATE * p.grad
        return [loss, *(p.grad for p in params)]

    return step


def mlp_step(dtype: str) -> Callable[[], list]:
    return _mlp(dtype, frozen=False)


def mlp_frozen_step() -> Callable[[], list]:
    """The batch as constant Tensors, mygrad's Variables without gradient."""
    return _mlp("float64", frozen=True)


def matmul_step() -> Callable[[], list]:
    a, b = (mg.Tensor(m) for m in problems.matmul_inputs())

    def step() -> list:
        mg.matmul(a, b).backward()
        return [a.grad, b.grad]

    return step
