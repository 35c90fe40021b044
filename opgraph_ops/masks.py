"""Piecewise-constant gradient factors: comparison masks, tie shares, dropout masks.

A backward of a piecewise op (relu, abs, max, clip ...) multiplies its output gradient by such a
factor. The factor is a plain numpy array, so ops treat it as a constant: the backward stays
differentiable, and the factor's derivative is zero everywhere except at the kinks, which the
conformance domains avoid.
"""

from __future__ import annotations

import numpy as np

from opgraph import Variable


def constant(values: np.ndarray, like: Variable) -> np.ndarray:
    """``values`` in the dtype of ``like``, so that float32 gradients stay float32."""
    return np.asarray(values, dtype=like.dtype)
