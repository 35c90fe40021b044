"""The workloads written once for engines with DeZero's API (``Variable``, ``cleargrad``,
``backward``, ``.grad``): DeZero and opgraph differ only in where their functions live."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import problems


@dataclass(frozen=True)
class DefineByRun:
    """One engine's functions; its methods are the step factories `problems.steps` calls."""

    variable: Callable[[Any], Any]
    sin: Callable[[Any], Any]
    tanh: Callable[[Any], Any]
    total: Callable[[Any], Any]  # sum of every element
    matmul: Callable[[Any, Any], Any]
    layers: Mapping[str, Callable]  # linear, sigmoid, mean_squared_error
    constant: Callable[[Any], Any] | None = None  # a Variable that gets no gradient

    def sin_step(self) -> Callable[[], list]:
        x = self.variable(problems.sin_input())

        def step() -> list:
            y = self.sin(x)
            x.cleargrad()
            y.backward()
            return [x.grad]

        return step

    def chain_step(self) -> Callable[[], list]:
        x = self.variable(problems.chain_input())

        def step() -> list:
            y = self.total(problems.chain(x, self.sin, self.tanh))
            x.cleargrad()
            y.backward()
            return [x.grad]

        return step

    def chain_forward_step(self) -> Callable[[], list]:
        """`chain_step`'s forward alone, its graph recorded and freed: the two together split
        an engine's overhead into forward and backward (`floor.py`)."""
        x = self.variable(problems.chain_input())
        return lambda: [self.total(problems.chain(x, self.sin, self.tanh))]

    def mlp_step(self, dtype: str) -> Callable[[], list]:
        return self._mlp(dtype, frozen=False)

    def mlp_frozen_step(self) -> Callable[[], list]:
        """The float64 step with the batch and targets wrapped by ``constant``."""
        if self.constant is None:
            raise TypeError("this engine has no Variables without gradient")
        return self._mlp("float64", frozen=True)

    def _mlp(self, dtype: str, frozen: bool) -> Callable[[], list]:
        data = problems.mlp_data(dtype)
        params = [self.variable(p) for p in data.fresh_params()]
        x, t = (self.constant(a) for a in (data.x, data.t)) if frozen else (data.x, data.t)

        def step() -> list:
            loss = problems.mlp_loss(x, t, params, self.layers)
            for p in params:
                p.cleargrad()
            loss.backward()
            for p in params:
                p.data -= problems.LEARNING_RATE * p.grad.data
            return [loss, *(p.grad for p in params)]

        return step

    def matmul_step(self) -> Callable[[], list]:
        a, b = (self.variable(m) for m in problems.matmul_inputs())

        def step() -> list:
            y = self.matmul(a, b)
            a.cleargrad()
            b.cleargrad()
            y.backward()
            return [a.grad, b.grad]

        return step
