"""opgraph: the engine under test, with the ops of its default op set."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import problems

import opgraph
from opgraph import Variable

NAME = "opgraph"
VERSION = opgraph.__version__
ops = opgraph.ops


def to_numpy(value: Variable) -> np.ndarray:
    return value.data


def mlp_ops() -> dict[str, Callable]:
    """The MLP's layer ops: built-in ops when the op set has them, else composed ones."""
    composed = {
        "linear": problems.linear,
        "sigmoid": problems.sigmoid_with(ops.exp),
        "mean_squared_error": problems.mean_squared_error,
    }
    return {name: ops[name] if name in ops else fn for name, fn in composed.items()}  # noqa: SIM401 - an OpSet has no .get


def describe() -> str:
    built_in = [name for name in ("linear", "sigmoid", "mean_squared_error") if name in ops]
    return "built-in ops: " + (", ".join(built_in) if built_in else "none (composed)")


def sin_step() -> Callable[[], list]:
    x = Variable(problems.sin_input())

    def step() -> list:
        y = ops.sin(x)
        x.cleargrad()
        y.backward()
        return [x.grad]

    return step


def chain_step() -> Callable[[], list]:
    x = Variable(problems.chain_input())

    def step() -> list:
        y = problems.chain(x, ops.sin, ops.tanh).sum()
        x.cleargrad()
        y.backward()
        return [x.grad]

    return step


def mlp_step(dtype: str) -> Callable[[], list]:
    data = problems.mlp_data(dtype)
    params = [Variable(p) for p in data.fresh_params()]
    layers = mlp_ops()

    def step() -> list:
        loss = problems.mlp_loss(data.x, data.t, params, layers)
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
        y = a @ b
        a.cleargrad()
        b.cleargrad()
        y.backward()
        return [a.grad, b.grad]

    return step
