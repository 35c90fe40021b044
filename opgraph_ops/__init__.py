"""The built-in ops of opgraph, shipped as an ordinary plugin (entry point ``builtin`` in the
``opgraph`` group) — they reach the registry exactly the way a third party's ops do."""

from __future__ import annotations

from collections.abc import Iterable

from opgraph import OpSpec, hookimpl


@hookimpl
def opgraph_ops() -> Iterable[OpSpec]:
    from opgraph_ops import arithmetic, elementwise, tensor

    return [*arithmetic.SPECS, *elementwise.SPECS, *tensor.SPECS]
