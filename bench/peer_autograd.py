"""HIPS autograd: tracing numpy functions, gradients by ``grad`` of a Python function."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

import autograd
import autograd.numpy as anp
import numpy as np
import problems
from autograd import elementwise_grad, grad

NAME = "autograd"
VERSION = metadata.version("autograd")


def to_numpy(value: np.ndarray) -> np.ndarray:
    return np.asarray(value)


def describe() -> str:
    return f"autograd from {autograd.__file__}"


LAYERS = {
    "linear": problems.linear,
    "sigmoid": problems.sigmoid_with(anp.exp),
    "mean_squared_error": problems.mean_squared_error,
}


def sin_step() -> Callable[[], list]:
    x = problems.sin_input()
    d_sin = elementwise_grad(anp.sin)

    def step() -> list:
        return [d_sin(x)]

    return step


def chain_step() -> Callable[[], list]:
    x = problems.chain_input()
    d_chain = grad(lambda v: anp.sum(problems.chain(v, anp.sin, anp.tanh)))

    def step() -> list:
        return [d_chain(x)]

    return step


def mlp_step(dtype: str) -> Callable[[], list]:
    data = problems.mlp_data(dtype)
    params = data.fresh_params()
    value_and_grads = autograd.value_and_grad(
        lambda ps: problems.mlp_loss(data.x, data.t, ps, LAYERS)
    )

    def step() -> list:
        loss, grads = value_and_grads(params)
        problems.sgd_update(params, grads)
        return [loss, *grads]

    return step


def matmul_step() -> Callable[[], list]:
    a, b = problems.matmul_inputs()
    d_ab = grad(lambda ab: anp.sum(anp.dot(ab[0], ab[1])))

    def step() -> list:
        return list(d_ab((a, b)))

    return step
