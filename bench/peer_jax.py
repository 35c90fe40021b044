"""JAX on CPU in eager mode (no ``jit``): ``grad``/``vjp`` trace the Python function on every
call. Optional (``pip install jax jaxlib``, ~600 MB); float64 enabled, one XLA thread."""

from __future__ import annotations

import os
from collections.abc import Callable

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")  # before jax loads

import jax
import jax.numpy as jnp
import numpy as np
import problems

jax.config.update("jax_enable_x64", True)  # the workloads are float64 (mlp32 excepted)
jax.config.update("jax_platforms", "cpu")

NAME = "jax"
VERSION = jax.__version__

LAYERS = {
    "linear": problems.linear,
    "sigmoid": jax.nn.sigmoid,
    "mean_squared_error": problems.mean_squared_error,
}


def to_numpy(value: jax.Array) -> np.ndarray:
    return np.asarray(value)


def describe() -> str:
    return f"jax {jax.__version__} eager on {jax.devices()[0].platform}, x64"


def sin_step() -> Callable[[], list]:
    x = jnp.asarray(problems.sin_input())

    def step() -> list:
        y, pullback = jax.vjp(jnp.sin, x)
        return list(pullback(jnp.ones_like(y)))

    return step


def chain_step() -> Callable[[], list]:
    x = jnp.asarray(problems.chain_input())
    d_chain = jax.grad(lambda v: jnp.sum(problems.chain(v, jnp.sin, jnp.tanh)))

    def step() -> list:
        return [d_chain(x)]

    return step


def mlp_step(dtype: str) -> Callable[[], list]:
    data = problems.mlp_data(dtype)
    x, t = jnp.asarray(data.x), jnp.asarray(data.t)
    params = [jnp.asarray(p) for p in data.fresh_params()]
    value_and_grads = jax.value_and_grad(lambda ps: problems.mlp_loss(x, t, ps, LAYERS))

    def step() -> list:
        loss, grads = value_and_grads(params)
        params[:] = [p - problems.LEARNING_RATE * g for p, g in zip(params, grads, strict=True)]
        return [loss, *grads]

    return step


def matmul_step() -> Callable[[], list]:
    a, b = (jnp.asarray(m) for m in problems.matmul_inputs())
    d_ab = jax.grad(lambda ab: jnp.sum(ab[0] @ ab[1]))

    def step() -> list:
        return list(d_ab((a, b)))

    return step
