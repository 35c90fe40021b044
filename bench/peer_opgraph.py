"""opgraph: the engine under test, with the ops of its default op set."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import problems
from define_by_run import DefineByRun

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


def frozen(array: np.ndarray) -> Variable:
    """A Variable that gets no gradient and costs nothing in the backward."""
    return Variable(array, requires_grad=False)


_ENGINE = DefineByRun(Variable, ops.sin, ops.tanh, ops.sum, ops.matmul, mlp_ops(), frozen)
sin_step, chain_step = _ENGINE.sin_step, _ENGINE.chain_step
chain_forward_step = _ENGINE.chain_forward_step
mlp_step, matmul_step = _ENGINE.mlp_step, _ENGINE.matmul_step
mlp_frozen_step = _ENGINE.mlp_frozen_step
