"""Small op declarations several test modules build their checks on."""

from __future__ import annotations

from typing import Any

import numpy as np

from opgraph import OpSpec
from opgraph.shapes import broadcast


def pair_spec(name: str = "pair", **kw: Any) -> OpSpec:
    """A broadcasting binary op without a backward (samples and coverage only); ``kw``
    overrides or adds OpSpec fields (``kind``, ``sample_inputs`` ...)."""
    fields = {"inputs": ("a", "b"), "nondiff": ("a", "b"), "kind": "broadcast", **kw}
    return OpSpec(name, np.add, lambda a, b: broadcast(name, a, b), None, **fields)
