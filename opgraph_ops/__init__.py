"""The built-in ops of opgraph, shipped as an ordinary plugin (entry point ``builtin`` in the
``opgraph`` group) — they reach the registry exactly the way a third party's ops do."""

from __future__ import annotations

from collections.abc import Iterable

from opgraph import OpSpec, hookimpl


@hookimpl
def opgraph_ops() -> Iterable[OpSpec]:
    from opgraph_ops import (
        activations,
        arithmetic,
        compare,
        dims,
        elementwise,
        indexing,
        joining,
        layers,
        losses,
        powers,
        reductions,
        tensor,
    )

    core = (arithmetic, elementwise, tensor)
    library = (powers, compare, indexing, dims, joining, reductions, activations, layers, losses)
    return [spec for module in (*core, *library) for spec in module.SPECS]
