"""What a conformance run checks: the op set of a config plus modules that are not installed,
the ops the filters select, and the problems of the plugins under test.

A plugin under test (named by ``--plugin``, ``--module`` or ``conformance_suite``) is strict:
every declaration the registry rejected, every op of it that had to be dropped and a failure to
load become ``error`` results, so the plugin's CI fails. Other plugins' problems stay warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opgraph.conformance.runner import Result, rival_providers
from opgraph.conformance.selection import select_contested, select_ops
from opgraph.conformance.settings import ConformanceSettings, settings_for
from opgraph.errors import ConfigError
from opgraph.op import Op
from opgraph.plugins import PluginRecord

if TYPE_CHECKING:
    from opgraph.config import Config
    from opgraph.registry import OpSet

LOAD, DECLARATION = "load", "declaration"
"""Check names of the results a plugin under test gets for failing to load, and for a
declaration that was rejected or an op that was dropped."""

_OP_NAMED = re.compile(r"^op '([a-z][a-z0-9_]*)'")


@dataclass
class Target:
    """The config, the ops to check and the plugins under test with their problems."""

    config: Config
    """The config the op set comes from (its report paths)."""
    settings: ConformanceSettings
    ops: list[Op]
    contested: dict[str, list[Op]] = field(default_factory=dict)
    """Selected ops that several plugins provide with no choice made (each an error)."""
    problems: list[Result] = field(default_factory=list)
    broken: list[PluginRecord] = field(default_factory=list)
    """Plugins under test that failed to load (``opgraph check`` exits 3)."""
    rivals: dict[str, list[Op]] = field(default_factory=dict)
    """Per selected op, the other plugins' providers of its name (``differential``)."""


def plugin_problems(record: PluginRecord, opset: OpSet) -> list[Result]:
    """The ``error`` results of one plugin under test, one per op: the plugin failed to load,
    a declaration was rejected (the message names the field, the fix and a close match), or
    one of its ops was dropped from the op set (a missing dependency)."""
    found: dict[tuple[str, str], list[str]] = {}
    if record.status != "active":
        found[record.name, LOAD] = [f"{record.provenance} is {record.status}: {record.reason}"]
    for message in record.rejected:
        named = _OP_NAMED.match(message)
        found.setdefault((named[1] if named else record.name, DECLARATION), []).append(message)
    dropped = opset.dropped
    for spec in record.specs:
        if spec.name in dropped:
            found.setdefault((spec.name, DECLARATION), []).append(dropped[spec.name])
    replay = () if record.provenance.distribution is None else ("--plugin", record.name)
    return [
        Result(op, record.name, check, "error", None, "", "\n".join(messages), replay_args=replay)
        for (op, check), messages in found.items()
    ]


def _module_records(
    modules: Iterable[str], installed: Sequence[PluginRecord]
) -> tuple[list[PluginRecord], list[str]]:
    """Records of the modules, and the names of installed plugins that a module turned out to
    be (``--module pkg`` after ``pip install -e .``: checked as that plugin, not twice)."""
    import sys

    from opgraph.modules import load_module, module_name

    by_module = {
        (r.provenance.entry_point or "").split(":")[0]: r
        for r in installed
        if r.status == "active" and r.provenance.distribution
    }
    records, names = [], []
    for target in modules:
        record = by_module.get(module_name(target))
        loaded = sys.modules.get(module_name(target))
        if record is not None and loaded is not None and _is_target(loaded, target):
            names.append(record.name)
        else:
            records.append(load_module(target))
    return records, names


def _is_target(module: object, target: str) -> bool:
    """Whether ``module`` was imported from the file or package ``target`` names (a dotted
    name is the module itself)."""
    from pathlib import Path

    origin = getattr(module, "__file__", None)
    path = Path(target)
    if not (target.endswith(".py") or path.exists()):
        return True
    if origin is None:
        return False
    origin_path = Path(origin).resolve()
    return origin_path == path.resolve() or origin_path == (path / "__init__.py").resolve()


def resolve_target(
    config_path: str | None = None,
    ops: Sequence[str] | None = None,
    plugins: Sequence[str] | None = None,
    modules: Iterable[str] = (),
) -> Target:
    """Build the op set (installed plugins plus ``modules``) and select the ops to check:
    those of ``ops`` / ``plugins``, and every op of ``modules``; all ops when no filter is
    given. Unknown names are a `ConfigError` with suggestions."""
    from opgraph import opsets, registry
    from opgraph.registry import did_you_mean

    config = opsets.config_for(config_path)
    installed = opsets.plugin_records(config)
    extra, also_installed = _module_records(modules, installed)
    opset = opsets.build(config, extra_records=extra)
    settings = settings_for(config, (op.name for op in opset))
    by_name = {r.name: r for r in [*installed, *extra]}
    for name in plugins or ():
        if name not in by_name:
            raise ConfigError(
                f"--plugin {name}: no such plugin{did_you_mean(name, by_name)} "
                f"(plugins: {', '.join(sorted(by_name))}); is it installed (pip install -e "
                "PROJECT_DIR)? A module that is not installed is checked with --module PATH"
            )
        if by_name[name].status == "disabled":
            raise ConfigError(
                f"--plugin {name}: {by_name[name].provenance} is not loaded: {by_name[name].reason}"
            )
    wanted = list(dict.fromkeys([*(plugins or ()), *also_installed, *(r.name for r in extra)]))
    problems = [p for name in wanted for p in plugin_problems(by_name[name], opset)]
    providing = {op.provenance.plugin for op in opset}
    providing |= {op.provenance.plugin for rivals in opset.conflicts.values() for op in rivals}
    testable = [name for name in wanted if name in providing] or None
    if wanted and testable is None:  # nothing of theirs loaded: their problems are the report
        if ops:
            select_ops(opset, ops, None)  # unknown op names are still a usage error
        chosen, contested = [], {}
    else:
        chosen = select_ops(opset, ops or None, testable)
        contested = select_contested(opset, ops or None, testable)
    broken = [by_name[name] for name in wanted if by_name[name].broken]
    providers = registry.collect(registry.validated(r) for r in [*installed, *extra])
    rivals = rival_providers(chosen, providers)
    return Target(config, settings, chosen, contested, problems, broken, rivals)
