"""PyTorch, CPU eager mode: the fast reference for per-op overhead."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import problems
import torch

NAME = "torch"
VERSION = torch.__version__
torch.set_num_threads(1)


LAYERS = {
    "linear": problems.linear,
    "sigmoid": torch.sigmoid,
    "mean_squared_error": problems.mean_squared_error,
}


def to_numpy(value: torch.Tensor) -> np.ndarray:
    return value.detach().numpy()


def describe() -> str:
    return f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def _leaf(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).requires_grad_(True)


def sin_step() -> Callable[[], list]:
    x = _leaf(problems.sin_input())

    def step() -> list:
        y = torch.sin(x)
        x.grad = None
        y.backward(torch.ones_like(y))
        return [x.grad]

    return step


def chain_step() -> Callable[[], list]:
    x = _leaf(problems.chain_input())

    def step() -> list:
        y = problems.chain(x, torch.sin, torch.tanh).sum()
        x.grad = None
        y.backward()
        return [x.grad]

    return step


def chain_forward_step() -> Callable[[], list]:
    x = _leaf(problems.chain_input())
    return lambda: [problems.chain(x, torch.sin, torch.tanh).sum()]


def sin_kernel_step() -> Callable[[], list]:
    x = torch.from_numpy(problems.sin_input())  # no requires_grad: nothing is recorded
    return lambda: problems.sin_by_hand(x, torch.sin, torch.cos, torch.ones_like)


def chain_kernel_step() -> Callable[[], list]:
    x = torch.from_numpy(problems.chain_input())
    return lambda: problems.chain_by_hand(x, torch.sin, torch.tanh, torch.cos, torch.ones_like)


def mlp_step(dtype: str) -> Callable[[], list]:
    data = problems.mlp_data(dtype)
    x, t = torch.from_numpy(data.x), torch.from_numpy(data.t)
    params = [_leaf(p) for p in data.fresh_params()]

    def step() -> list:
        loss = problems.mlp_loss(x, t, params, LAYERS)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for param in params:
                param.sub_(problems.LEARNING_RATE * param.grad)
        return [loss, *(p.grad for p in params)]

    return step


def matmul_step() -> Callable[[], list]:
    a, b = (_leaf(m) for m in problems.matmul_inputs())

    def step() -> list:
        y = a @ b
        a.grad = b.grad = None
        y.backward(torch.ones_like(y))
        return [a.grad, b.grad]

    return step
