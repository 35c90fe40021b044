"""`BatchNorm`: gamma, beta and the running statistics of batch normalisation.

The ``batch_norm`` op is pure (it returns the batch statistics); this object folds them into
its running mean and variance in training mode and normalises with them in test mode
(`opgraph.test_mode()`), so nothing but training steps ever moves the statistics.
"""

from __future__ import annotations

import numpy as np

import opgraph
from opgraph import Variable


class BatchNorm:
    """Batch normalisation over axis 1 of (N, C) or (N, C, H, W) inputs.

    ``decay`` weighs the old running statistics against each batch's (DeZero's default 0.9);
    the running variance uses the unbiased batch variance.
    """

    def __init__(
        self, channels: int, decay: float = 0.9, eps: float = 1e-5, dtype: str = "float64"
    ) -> None:
        self.gamma = Variable(np.ones(channels, dtype), name="gamma")
        self.beta = Variable(np.zeros(channels, dtype), name="beta")
        self.running_mean = np.zeros(channels, dtype)
        self.running_var = np.ones(channels, dtype)
        self.decay = decay
        self.eps = eps

    @property
    def params(self) -> tuple[Variable, Variable]:
        return self.gamma, self.beta

    def __call__(self, x: Variable | np.ndarray) -> Variable:
        ops = opgraph.ops
        if opgraph.is_training():
            y, mean, var = ops.batch_norm(x, self.gamma, self.beta, eps=self.eps)
            count = x.size // self.gamma.size
            unbiased = var.data * (count / max(count - 1, 1))
            self.running_mean = self.decay * self.running_mean + (1 - self.decay) * mean.data
            self.running_var = self.decay * self.running_var + (1 - self.decay) * unbiased
            return y
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = ops.reshape(self.gamma, shape) / np.sqrt(self.running_var + self.eps).reshape(shape)
        return (x - self.running_mean.reshape(shape)) * scale + ops.reshape(self.beta, shape)
