"""DeZero 0.0.13 (PyPI ``dezero``): the define-by-run design opgraph follows."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

import numpy as np
import problems

if not hasattr(np, "int"):  # DeZero 0.0.13 still uses the alias numpy 1.24 removed
    np.int = int  # must precede `import dezero`

import dezero
import dezero.functions as F  # noqa: N812 - DeZero's documented alias
from dezero import Variable

NAME = "dezero"
VERSION = metadata.version("dezero")  # the package has no __version__


LAYERS = {"linear": F.linear, "sigmoid": F.sigmoid, "mean_squared_error": F.mean_squared_error}


def to_numpy(value: Variable) -> np.ndarray:
    return value.data


def describe() -> str:
    return f"dezero from {dezero.__file__}"


def sin_step() -> Callable[[], list]:
    x = Variable(problems.sin_input())

    def step() -> list:
        y = F.sin(x)
        x.cleargrad()
        y.backward()
        return [x.grad]

    return step


def chain_step() -> Callable[[], list]:
    x = Variable(problems.chain_input())

    def step() -> list:
        y = F.sum(problems.chain(x, F.sin, F.tanh))
        x.cleargrad()
        y.backward()
        return [x.grad]

    return step


def mlp_step(dtype: str) -> Callable[[], list]:
    data = problems.mlp_data(dtype)
    params = [Variable(p) for p in data.fresh_params()]

    def step() -> list:
        loss = problems.mlp_loss(data.x, data.t, params, LAYERS)
        for p in params:
            p.cleargrad()
        loss.backward()
        for p in params:
            p.data -= problems.LEARNING_RATE * p.grad.data
        return [loss, *(p.grad for p in params)]

    return step


def matmul_step() -> Callable[[], list]:
    a, b = (Variable(m) for m in problems.matmul_inputs())

    def step() -> list:
        y = F.matmul(a, b)
        a.cleargrad()
        b.cleargrad()
        y.backward()
        return [a.grad, b.grad]

    return step
