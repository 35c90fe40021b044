"""Results that share memory with the caller's arrays, made read-only.

A view (reshape, transpose, basic indexing) costs nothing and numpy returns one; but an op that
hands out *writeable* memory of its input, or of the output gradient it was given, lets the
caller's next in-place update (``p.data -= lr * p.grad.data``) silently change the other array.
So such results are read-only views: writing through them raises instead (the conformance
``aliasing`` check holds every op to this; `opgraph.unbroadcast` does the same for a gradient
that needs no reduction).
"""

from __future__ import annotations

import numpy as np


def readonly_view(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y``, as a read-only view when it is (a view of) ``x``'s memory."""
    if not np.may_share_memory(y, x):
        return y
    if y is x:
        y = x.view()
    y.flags.writeable = False
    return y
