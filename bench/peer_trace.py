"""opgraph.trace: the opgraph steps recorded once, then replayed as generated numpy code."""

from __future__ import annotations

from collections.abc import Callable

import peer_opgraph
import problems

import opgraph
from opgraph.trace import trace

NAME = "trace"
VERSION = opgraph.__version__
to_numpy = peer_opgraph.to_numpy
_ENGINE = peer_opgraph._ENGINE


def describe() -> str:
    return "opgraph.trace replays of the opgraph steps; " + peer_opgraph.describe()


def sin_step() -> Callable[[], list]:
    return trace(_ENGINE.sin_step())


def chain_step() -> Callable[[], list]:
    return trace(_ENGINE.chain_step())


def matmul_step() -> Callable[[], list]:
    return trace(_ENGINE.matmul_step())


def mlp_step(dtype: str) -> Callable[[], list]:
    """Forward and backward traced, the batch passed as arrays; the SGD update stays outside
    (a replay reads the updated parameters fresh)."""
    data = problems.mlp_data(dtype)
    params = [opgraph.Variable(p) for p in data.fresh_params()]
    layers = peer_opgraph.mlp_ops()

    @trace
    def loss_and_grads(x, t) -> list:
        loss = problems.mlp_loss(x, t, params, layers)
        for p in params:
            p.cleargrad()
        loss.backward()
        return [loss, *(p.grad for p in params)]

    def step() -> list:
        result = loss_and_grads(data.x, data.t)
        for p in params:
            p.data -= problems.LEARNING_RATE * p.grad.data
        return result

    return step
