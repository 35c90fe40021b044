"""Piecewise-constant gradient factors: comparison masks, tie shares, dropout masks.

A backward of a piecewise op (relu, abs, max, clip ...) multiplies its output gradient by such a
factor. The factor is a graph leaf, so the backward stays differentiable: its derivative with
respect to the op's input is zero everywhere except at the kinks, which conformance domains avoid.
"""

from __future__ import annotations

import numpy as np

from opgraph import Variable


def constant(values: np.ndarray, like: Variable) -> Variable:
    """``values`` as a constant Variable in the dtype of ``like`` (keeps float32 float32)."""
    return Variable(np.asarray(values, dtype=like.dtype))
