"""The plugin API of opgraph. These hookspecs and their docstrings are its documentation.

A plugin is a module (or object) named by an entry point in the ``opgraph`` group::

    # pyproject.toml of your distribution
    [project.entry-points.opgraph]
    myops = "myops.plugin"

whose hook implementations are marked with `opgraph.hookimpl`. The host imports it lazily, the
first time ops are needed, and each plugin in isolation: a plugin that fails to import or whose
hook raises is reported and skipped, and the others still load. A hook implementation whose name
or arguments match no hookspec below makes the plugin *incompatible* (also skipped). Loading,
disabling and strict mode are described in docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from opgraph.contract import OpSpec

PROJECT = "opgraph"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def opgraph_ops() -> Iterable[OpSpec]:
    """Return (or yield) the `OpSpec` of every op this plugin provides.

    Called once per process per plugin. Each spec is validated by the host, which attaches the
    plugin's provenance (entry point name, distribution, version); an invalid spec is rejected
    with a message naming the plugin and the op, and the plugin's other ops still load. Two
    plugins providing one op name is an error until a config says which one wins.

    Example::

        import numpy as np
        from opgraph import OpSpec, hookimpl

        def _sin_backward(ctx, gy):
            (x,) = ctx.inputs
            return gy * ctx.ops.cos(x)

        @hookimpl
        def opgraph_ops():
            yield OpSpec(
                name="sin",
                forward=np.sin,
                backward=_sin_backward,
                shape_rule=lambda x: x,
                requires=("cos",),
            )
    """
    raise NotImplementedError  # pragma: no cover - a spec, never called


HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, value in sorted(globals().items()) if hasattr(value, f"{PROJECT}_spec")
)
"""Every hookspec of this module (what a plugin may implement)."""
