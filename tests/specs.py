"""Small op declarations several test modules build their checks on."""

from __future__ import annotations

from typing import Any

import numpy as np

from opgraph import OpSpec
from opgraph.shapes import broadcast


def pair_spec(**kw: Any) -> OpSpec:
    """A broadcasting binary op without a backward (samples and coverage only)."""
    return OpSpec(
        "pair",
        np.add,
        lambda a, b: broadcast("pair", a, b),
        None,
        inputs=("a", "b"),
        nondiff=("a", "b"),
        kind="broadcast",
        **kw,
    )
