"""opgraph-activations: activation and normalisation ops for opgraph.

A plugin like any third party's (entry point ``activations``, public op contract only), plus
`BatchNorm`, the small object that owns batch normalisation's running statistics.
"""

from __future__ import annotations

from collections.abc import Iterable

from opgraph import OpSpec, hookimpl
from opgraph_activations.batchnorm import BatchNorm

__all__ = ["BatchNorm"]


@hookimpl
def opgraph_ops() -> Iterable[OpSpec]:
    from opgraph_activations import normalization, piecewise, smooth

    return [*smooth.SPECS, *piecewise.SPECS, *normalization.SPECS]
