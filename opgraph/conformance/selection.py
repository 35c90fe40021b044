"""Which ops of an op set a run checks (``--op`` / ``--plugin``), shared by the CLI and the
pytest plugin so both reject unknown names the same way."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from opgraph.errors import ConfigError
from opgraph.op import Op
from opgraph.registry import OpSet


def select_ops(
    opset: Iterable[Op], names: Sequence[str] | None = None, plugins: Sequence[str] | None = None
) -> list[Op]:
    """The ops to check: both filters apply, so with both given every named op must come from
    one of the plugins. An unknown name, or a named op the plugin filter would silently drop,
    is a usage error saying what to pass instead. A contested op is no error here: see
    `select_contested`."""
    ops = list(opset)
    by_name = {op.name: op for op in ops}
    contested = opset.conflicts if isinstance(opset, OpSet) else {}
    for name in names or ():
        if name in contested:
            continue
        if name not in by_name:
            close = difflib.get_close_matches(name, sorted(by_name), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"--op {name}: no such op in the op set{hint}")
        plugin = by_name[name].provenance.plugin
        if plugins and plugin not in plugins:
            raise ConfigError(
                f"--op {name}: it comes from plugin {plugin!r}, which --plugin "
                f"{', '.join(plugins)} leaves out; add --plugin {plugin} or drop --op {name}"
            )
    plugin_names = {op.provenance.plugin for op in ops}
    plugin_names |= {op.provenance.plugin for rivals in contested.values() for op in rivals}
    for plugin in plugins or ():
        if plugin not in plugin_names:
            raise ConfigError(
                f"--plugin {plugin}: no op of the op set comes from it "
                f"(plugins: {', '.join(sorted(plugin_names))})"
            )
    return [
        op
        for op in ops
        if (not names or op.name in names) and (not plugins or op.provenance.plugin in plugins)
    ]


def select_contested(
    opset: OpSet, names: Sequence[str] | None = None, plugins: Sequence[str] | None = None
) -> dict[str, list[Op]]:
    """The contested ops (op name -> every provider) that the same filters select: a run
    reports each as an error, so a conflict fails CI instead of hiding an op."""
    return {
        name: rivals
        for name, rivals in sorted(opset.conflicts.items())
        if (not names or name in names)
        and (not plugins or any(op.provenance.plugin in plugins for op in rivals))
    }
