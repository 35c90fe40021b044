"""Finding and loading op plugins: entry points in the ``opgraph`` group, each loaded alone.

A plugin that fails to import, or whose hook raises, is recorded as *failed* with a short
reason and a warning on stderr; every other plugin still loads. Entry points are scanned once
per process.
"""

from __future__ import annotations

import functools
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Literal

from opgraph.contract import OpSpec
from opgraph.op import Provenance

GROUP = "opgraph"
Status = Literal["active", "disabled", "failed"]


@dataclass
class PluginRecord:
    """What happened to one plugin: its provenance, status, ops, and why it failed."""

    provenance: Provenance
    status: Status
    specs: list[OpSpec] = field(default_factory=list)
    reason: str | None = None

    @property
    def name(self) -> str:
        return self.provenance.plugin


@functools.lru_cache(maxsize=1)
def discover() -> tuple[EntryPoint, ...]:
    """Every entry point of the group, sorted by name (so loading never depends on order)."""
    return tuple(sorted(entry_points(group=GROUP), key=lambda ep: ep.name))


def provenance_of(ep: EntryPoint) -> Provenance:
    dist = ep.dist
    return Provenance(
        plugin=ep.name,
        distribution=dist.name if dist is not None else None,
        version=dist.version if dist is not None else None,
        entry_point=ep.value,
    )


def _short_reason(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def load_plugin(ep: EntryPoint) -> PluginRecord:
    """Import one plugin and call its hook; any exception marks it failed instead of raising."""
    import pluggy

    from opgraph import hookspecs

    prov = provenance_of(ep)
    try:
        module = ep.load()
    except Exception as exc:
        return PluginRecord(prov, "failed", reason=f"import failed: {_short_reason(exc)}")
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(module, name=ep.name)
        specs: list[OpSpec] = []
        for impl in pm.hook.opgraph_ops.get_hookimpls():
            specs.extend(impl.function() or ())
    except Exception as exc:
        return PluginRecord(prov, "failed", reason=f"hook opgraph_ops raised: {_short_reason(exc)}")
    return PluginRecord(prov, "active", specs=specs)


def warn_failed(record: PluginRecord) -> None:
    """One line on stderr: which plugin, from which distribution, why, and how to disable it."""
    print(
        f"opgraph: warning: {record.provenance} failed and was skipped: {record.reason}\n"
        f"  (disable it with OPGRAPH_DISABLE_PLUGINS={record.name})",
        file=sys.stderr,
    )
