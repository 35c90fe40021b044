"""opgraph-conv: 2-D convolution and pooling ops for opgraph (NCHW, DeZero semantics).

A plugin like any third party's: it reaches opgraph only through the ``opgraph`` entry point
``conv`` and the public op contract (`opgraph.OpSpec`).
"""

from __future__ import annotations

from collections.abc import Iterable

from opgraph import OpSpec, hookimpl


@hookimpl
def opgraph_ops() -> Iterable[OpSpec]:
    from opgraph_conv import columns, conv, pooling

    return [*columns.SPECS, *conv.SPECS, *pooling.SPECS]
