"""Piecewise-constant gradient factors: comparison masks, tie shares, one-hots.

A backward of a piecewise op (relu, abs, max, clip ...) multiplies its output gradient by such a
factor. The factor is a plain numpy array, so ops treat it as a constant: the backward stays
differentiable, and the factor's derivative is zero everywhere except at the kinks, which the
conformance domains avoid. It is computed through `opgraph.derive`, so that `opgraph.trace`
records it and recomputes it from fresh values on every replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from opgraph import Variable, derive


def constant(values_of: Callable[..., Any], like: Variable, *inputs: Any) -> np.ndarray:
    """``values_of(*arrays of inputs)`` in the dtype of ``like``, so that float32 gradients
    stay float32."""
    dtype = like.dtype
    return derive(lambda *arrays: np.asarray(values_of(*arrays), dtype=dtype), *inputs)
