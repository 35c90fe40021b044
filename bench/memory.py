"""Memory behaviour of opgraph, measured with tracemalloc (numpy reports its buffers to it):
a training loop must hold steady memory, and ``retain_grad=False`` must free intermediate
gradients during the backward pass rather than after it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import peer_opgraph

import opgraph
from opgraph import Variable

MB = 1024 * 1024


def training_loop_growth(steps: int) -> dict[str, float]:
    """Traced memory after a warm-up and again ``steps`` MLP steps later (float32)."""
    step = peer_opgraph.mlp_step("float32")
    for _ in range(10):
        step()
    tracemalloc.start()
    try:
        step()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            step()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {"steps": steps, "before_mb": before / MB, "after_mb": after / MB}


def backward_peak(retain_grad: bool, n_ops: int = 50, size: int = 100_000) -> float:
    """Extra memory (MB) the backward pass of an ``n_ops`` chain needs at its peak."""
    x = Variable(np.linspace(0.1, 1.0, size))
    y = x
    for _ in range(n_ops):
        y = opgraph.ops.tanh(y)
    loss = y.sum()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loss.backward(retain_grad=retain_grad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - base) / MB


def measure(quick: bool) -> dict[str, object]:
    return {
        "training_loop": training_loop_growth(50 if quick else 300),
        "backward_peak_mb": {
            "retain_grad=False": backward_peak(retain_grad=False),
            "retain_grad=True": backward_peak(retain_grad=True),
        },
    }
