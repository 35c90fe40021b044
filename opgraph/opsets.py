"""How an op set comes to be, and which one is in use: the one module that decides.

- which config applies: `config_for` (a ``--config`` file), else `default_config`
  (``OPGRAPH_CONFIG``, else the packaged default.yaml);
- building a config's op set against the installed plugins (`build`): its plugin names,
  requirements and op names checked against what is installed, then `opgraph.registry`;
- strict mode, decided here alone (`strict_problems`): a broken plugin, a rejected declaration,
  a dropped op or a conflict is a `StrictPluginError` in strict mode and a warning otherwise;
- the default op set (`default_opset`, built once per process under a lock) and the active one
  (`use_opset`, per thread and asyncio task).

The plugin layer is imported on first need, not at ``import opgraph``: it costs milliseconds
(reading installed metadata, ``pluggy``) that a script which never calls an op should not pay.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opgraph import engine
from opgraph.errors import ConfigError, PluginError, StrictPluginError

if TYPE_CHECKING:
    from opgraph.config import Config
    from opgraph.plugins import PluginRecord, Selection
    from opgraph.registry import OpSet

_default: OpSet | None = None
_default_lock = threading.Lock()


def default_config() -> Config:
    """The config of the default op set: ``OPGRAPH_CONFIG``, else the packaged default.yaml."""
    from opgraph import config

    path = os.environ.get("OPGRAPH_CONFIG")
    if not path:
        return config.packaged_config()
    try:
        return config.load_config(path)
    except ConfigError as exc:  # say where the path came from: no --config named it
        raise ConfigError(f"{exc}\n(named by OPGRAPH_CONFIG: fix the file or unset it)") from None


def config_for(path: str | os.PathLike[str] | None) -> Config:
    """The config a command runs with: the file ``path`` names, else `default_config` (so
    ``OPGRAPH_CONFIG`` applies to every command that takes no ``--config``)."""
    from opgraph import config

    return config.load_config(path) if path else default_config()


def selection(config: Config) -> Selection:
    """Which plugins may load: the environment (``OPGRAPH_*_PLUGINS``) and ``config`` together;
    strict if either says so."""
    from opgraph.plugins import Selection

    return Selection.from_env().extended(
        config.plugin_rules(), strict=config.strict, timeout=config.timeout
    )


def plugin_records(config: Config | None = None) -> list[PluginRecord]:
    """Every discovered plugin under ``config``'s selection (the default config's when None),
    its declarations validated."""
    from opgraph import plugins, registry

    chosen = default_config() if config is None else config
    return [registry.validated(r) for r in plugins.load_all(selection(chosen))]


def build(
    config: Config, label: str | None = None, extra_records: Sequence[PluginRecord] = ()
) -> OpSet:
    """The op set ``config`` selects from the installed plugins (a new one on every call);
    ``extra_records`` (modules checked without installing, `opgraph.modules`) join them.

    Config problems that only the installed plugins reveal raise `ConfigError` (naming the
    line); a missing ``plugins.require`` raises `PluginError`; in strict mode every plugin
    problem raises `StrictPluginError`, otherwise each is warned about once.
    """
    from opgraph import registry
    from opgraph.config import PACKAGED_HINT

    _check_plugin_names(config)
    records = [*plugin_records(config), *(registry.validated(r) for r in extra_records)]
    _check_requires(config, records)
    providers = registry.collect(records)
    _check_op_names(config, providers)
    choice = registry.OpChoice(
        include=tuple(config.include),
        exclude=tuple(config.exclude),
        aliases=dict(config.aliases),
        providers=dict(config.providers),
        label=label or f"the op set of {config.source}",
        source=config.source if config.path else PACKAGED_HINT,
    )
    opset = registry.build_opset(providers, choice)
    _refuse_or_warn(strict_problems(records, opset), selection(config).strict)
    return opset


def strict_problems(records: list[PluginRecord], opset: OpSet) -> list[tuple[type, str]]:
    """Every plugin problem behind ``opset`` as (warning category, message): what strict mode
    refuses and non-strict mode warns about."""
    from opgraph.errors import DeclarationWarning, DroppedOpWarning, PluginWarning
    from opgraph.plugins import broken_message

    problems: list[tuple[type, str]] = [
        (PluginWarning, broken_message(r)) for r in records if r.broken
    ]
    problems += [(DeclarationWarning, m) for r in records for m in r.rejected]
    problems += [(DroppedOpWarning, m) for m in opset.dropped.values()]
    problems += [
        (DroppedOpWarning, _contested_message(name, providers))
        for name, providers in opset.conflicts.items()
    ]
    return problems


def _contested_message(name: str, providers: list) -> str:
    who = " and ".join(str(op.provenance) for op in providers)
    return f"op {name!r} is unavailable: it is provided by {who} (choose one under `providers:`)"


def _refuse_or_warn(problems: list[tuple[type, str]], strict: bool) -> None:
    from opgraph.plugins import warn_once

    if strict and problems:
        raise StrictPluginError(
            "strict plugin loading (OPGRAPH_STRICT_PLUGINS, --strict-plugins or "
            "`plugins: {strict: true}`) found problems:\n  "
            + "\n  ".join(message for _, message in problems)
        )
    for category, message in problems:
        warn_once(message, category)


def _check_plugin_names(config: Config) -> None:
    from opgraph.plugins import canonical_name, installed_names

    known = installed_names()
    for key, names in (
        ("plugins.enable", config.enable or []),
        ("plugins.disable", config.disable),
    ):
        for i, name in enumerate(names):
            if canonical_name(name) not in known:
                config.unknown(f"{key}[{i}]", "plugin", name, known)
    config.raise_problems()


def _check_requires(config: Config, records: list[PluginRecord]) -> None:
    from opgraph.entrypoints import installed_version
    from opgraph.plugins import applies, canonical_name, satisfied

    for required in config.requires:
        req = required.requirement
        if not applies(req):
            continue
        install = f"install it with: pip install '{req}'"
        installed = installed_version(req.name)
        if installed is None:
            raise PluginError(
                f"{required.where}: plugins.require: {req.name} is not installed; {install}"
            )
        if not satisfied(req, installed):
            raise PluginError(
                f"{required.where}: plugins.require: {req} is required but {req.name} "
                f"{installed} is installed; {install}"
            )
        key = canonical_name(req.name)
        own = [r for r in records if canonical_name(r.provenance.distribution or "") == key]
        if bad := [r for r in own if r.status != "active"]:
            raise PluginError(
                f"{required.where}: plugins.require: {req.name} is required, but "
                + "; ".join(f"{r.provenance} is {r.status}: {r.reason}" for r in bad)
            )


def _check_op_names(config: Config, providers: dict[str, list]) -> None:
    import fnmatch

    from opgraph.registry import provided_by, provider_key

    for key, patterns in (("ops.include", config.include), ("ops.exclude", config.exclude)):
        for i, pattern in enumerate(patterns):
            if not any(fnmatch.fnmatchcase(name, pattern) for name in providers):
                config.unknown(f"{key}[{i}]", "op (or pattern matching no op)", pattern, providers)
    for alias, target in config.aliases.items():
        if target not in providers:
            config.unknown(f"ops.aliases.{alias}", "op", target, providers)
        elif alias in providers:
            config.problem(f"ops.aliases.{alias}", f"{alias!r} is already an op's name")
    for op, wanted in config.providers.items():
        if op not in providers:
            config.unknown(f"providers.{op}", "op", op, providers)
        elif not any(provided_by(o, wanted) for o in providers[op]):
            who = ", ".join(provider_key(o, providers[op]) for o in providers[op])
            config.problem(
                f"providers.{op}", f"{wanted!r} does not provide {op!r}; its providers: {who}"
            )
    config.raise_problems()


def default_opset() -> OpSet:
    """The op set of `default_config` (`opgraph.ops`): built once per process, however many
    threads ask at once, and the one operators use wherever no other op set is active."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                opset = build(default_config(), label="the default op set")
                engine.set_default_ops(opset._dispatch)
                _default = opset
                _publish(opset)
    return _default


def reset() -> None:
    """Forget the default op set and the plugins behind it (tests install fake plugins)."""
    global _default
    from opgraph import plugins

    with _default_lock:
        _default = None
        engine.set_default_ops(None)
        _publish(None)
        plugins.reset()


def _publish(opset: OpSet | None) -> None:
    """Make the default op set a plain attribute of the package, so that ``opgraph.ops.sin(x)``
    in a loop costs a dictionary lookup rather than a call of the package's ``__getattr__``
    (about 1 us); None takes it away again, and the next ``opgraph.ops`` builds anew."""
    package = vars(sys.modules["opgraph"])
    if opset is None:
        package.pop("ops", None)
    else:
        package["ops"] = opset


@contextlib.contextmanager
def use_opset(opset: OpSet) -> Iterator[OpSet]:
    """Inside, this thread's (or task's) Variable operators, `opgraph.unbroadcast` and fan-in
    sums use ``opset``'s ops; backwards always run under the op set their op was built in."""
    with engine.switched(ops=opset._dispatch):
        yield opset


def _default_dispatch() -> Any:
    return default_opset()._dispatch


engine.set_default_provider(_default_dispatch)
