"""Finding and loading op plugins: entry points in the ``opgraph`` group, each loaded alone.

Which plugins may load is decided from names and metadata only, *before* anything is imported
(`Selection`): a disabled or incompatible plugin costs nothing. A plugin that fails to import,
or whose hook raises, is recorded as *failed* with a short reason and one `PluginWarning`;
every other plugin still loads. Entry points are scanned once per process and each plugin is
imported at most once, even when several threads ask at the same time.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Literal

from opgraph.contract import OpSpec, Provenance
from opgraph.entrypoints import EntryPoint, canonical_name, distributions
from opgraph.errors import ConfigError, OpgraphWarning, PluginWarning
from opgraph.records import datarecord

if TYPE_CHECKING:
    from packaging.requirements import Requirement

GROUP = "opgraph"
ESSENTIAL_DISTRIBUTION = "opgraph"
ESSENTIAL_PLUGIN = "builtin"
"""opgraph's own plugin (of `ESSENTIAL_DISTRIBUTION`): it provides the ops the engine needs and
is never disabled."""

Status = Literal["active", "disabled", "failed", "incompatible"]
DEFAULT_TIMEOUT = 30.0
"""Seconds a plugin may take to import and return its declarations before it counts as hung."""
MAX_DECLARATIONS = 100_000
"""Ops one plugin may declare: generous, and a hook that yields forever cannot eat memory."""
TRUE_WORDS = ("1", "true", "yes", "on")


@datarecord(frozen=False)
class PluginRecord:
    """What happened to one plugin: its provenance, status, ops, and why it failed."""

    provenance: Provenance
    status: Status
    specs: list[OpSpec] = field(default_factory=list)
    reason: str | None = None
    rejected: list[str] = field(default_factory=list)
    """Messages for the declarations the registry rejected (the plugin's other ops load)."""
    validated: bool = False

    @property
    def name(self) -> str:
        return self.provenance.plugin

    @property
    def broken(self) -> bool:
        """Failed or incompatible: what warnings, ``opgraph list`` and strict mode report."""
        return self.status in ("failed", "incompatible")


def env_seconds(name: str, environ: Mapping[str, str] = os.environ) -> float | None:
    """A positive number of seconds from the environment; None when unset."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{name}={text!r}: expected a number of seconds > 0")
    return seconds


_LEADING_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*")


def env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """An on/off environment variable: any of `TRUE_WORDS`, in any case; else off."""
    return environ.get(name, "").strip().lower() in TRUE_WORDS


def trace(message: str) -> None:
    """With ``OPGRAPH_TRACE_PLUGINS=1``: one line on stderr about what the plugin layer did."""
    if env_flag("OPGRAPH_TRACE_PLUGINS"):
        print(f"opgraph: trace: {message}", file=sys.stderr)


@functools.lru_cache(maxsize=1)
def discover() -> tuple[EntryPoint, ...]:
    """Every entry point of the group, sorted by name then distribution (so nothing ever
    depends on the order of ``sys.path``)."""
    found = tuple(
        sorted(_group_entry_points(), key=lambda ep: (ep.name, distribution_of(ep) or ""))
    )
    trace(
        f"found {len(found)} entry points in group {GROUP!r}: {', '.join(ep.name for ep in found)}"
    )
    return found


def _group_entry_points() -> Iterator[EntryPoint]:
    """The group's entry points, distribution by distribution: one whose metadata cannot be
    read (not UTF-8, malformed) is warned about and skipped instead of hiding every plugin."""
    seen: set[str] = set()
    for dist in distributions():
        try:
            found = [ep for ep in dist.entry_points if ep.group == GROUP]
            name = canonical_name(dist.name or "") if found else ""
        except Exception as exc:
            warn_once(f"cannot read the metadata of {dist.path}: {_short_reason(exc)}; skipped")
            continue
        if found and name not in seen:  # the first on sys.path wins, as in importlib.metadata
            seen.add(name)
            yield from found


def distribution_of(ep: EntryPoint) -> str | None:
    return ep.dist.name


def provenance_of(ep: EntryPoint) -> Provenance:
    dist = ep.dist
    return Provenance(
        plugin=ep.name, distribution=dist.name, version=dist.version, entry_point=ep.value
    )


def is_essential(ep: EntryPoint) -> bool:
    """Judged by distribution, so a third-party plugin that is also named ``builtin`` gets no
    exemption from allow and deny lists."""
    dist = distribution_of(ep)
    return dist is not None and canonical_name(dist) == ESSENTIAL_DISTRIBUTION


def names_of(ep: EntryPoint) -> set[str]:
    """The names a plugin answers to in allow/deny lists: its entry point and distribution
    names, compared in PEP 503 normal form (``My_Ops`` == ``my-ops``)."""
    dist = distribution_of(ep)
    return {canonical_name(ep.name)} | ({canonical_name(dist)} if dist else set())


@functools.lru_cache(maxsize=1)
def installed_names() -> frozenset[str]:
    """Every name an allow or deny list can match: `names_of` each discovered plugin."""
    return frozenset(name for ep in discover() for name in names_of(ep))


@datarecord
class Rule:
    """An allowlist (``allow=True``) or a denylist of plugin or distribution names."""

    names: frozenset[str]
    allow: bool
    source: str
    """Where the rule comes from, e.g. ``OPGRAPH_DISABLE_PLUGINS`` or ``ci.yaml:4``."""

    def matches(self, ep: EntryPoint) -> bool:
        return bool(names_of(ep) & {canonical_name(n) for n in self.names})


@datarecord
class Selection:
    """Which plugins may be imported, and whether a broken plugin is an error (strict)."""

    rules: tuple[Rule, ...] = ()
    strict: bool = False
    timeout: float | None = None
    """Seconds one plugin may take to import and declare its ops (None: `DEFAULT_TIMEOUT`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Selection:
        """``OPGRAPH_LOAD_PLUGINS`` (allowlist; set but empty: no third-party plugin),
        ``OPGRAPH_DISABLE_PLUGINS`` (denylist), ``OPGRAPH_STRICT_PLUGINS``,
        ``OPGRAPH_PLUGIN_TIMEOUT`` (seconds)."""
        rules = []
        if "OPGRAPH_LOAD_PLUGINS" in environ:
            names = split_names(environ["OPGRAPH_LOAD_PLUGINS"])
            rules.append(Rule(names, allow=True, source="OPGRAPH_LOAD_PLUGINS"))
        if names := split_names(environ.get("OPGRAPH_DISABLE_PLUGINS", "")):
            rules.append(Rule(names, allow=False, source="OPGRAPH_DISABLE_PLUGINS"))
        return cls(
            tuple(rules),
            strict=env_flag("OPGRAPH_STRICT_PLUGINS", environ),
            timeout=env_seconds("OPGRAPH_PLUGIN_TIMEOUT", environ),
        )

    def extended(
        self, rules: Iterable[Rule], strict: bool = False, timeout: float | None = None
    ) -> Selection:
        """Add a config's rules: a plugin must then pass every rule, and either side may
        turn strict mode on (neither can turn the other's off). The environment's time limit
        wins over a config's."""
        return Selection(
            (*self.rules, *rules),
            strict=self.strict or strict,
            timeout=self.timeout if self.timeout is not None else timeout,
        )

    def skip_reason(self, ep: EntryPoint) -> str | None:
        """Why ``ep`` must not be imported, or None. The essential plugin always loads."""
        if is_essential(ep):
            for rule in self.rules:
                if not rule.allow and rule.matches(ep):
                    warn_once(
                        f"{rule.source} names {ep.name!r}, which provides the essential ops; "
                        "it stays enabled (hide its ops with `ops: {exclude: [...]}`)"
                    )
            return None
        for rule in self.rules:
            if rule.allow and not rule.matches(ep):
                return f"not enabled by {rule.source}"
            if not rule.allow and rule.matches(ep):
                return f"disabled by {rule.source}"
        return None


def split_names(text: str) -> frozenset[str]:
    """The names of a comma-separated variable, blanks dropped (``a, b,`` is ``{a, b}``)."""
    return frozenset(n.strip() for n in text.split(",") if n.strip())


def applies(req: Requirement) -> bool:
    """Whether a requirement's environment marker holds here, as pip evaluates it (a
    requirement of an extra, ``; extra == "x"``, does not apply to a plain install)."""
    return req.marker is None or req.marker.evaluate({"extra": ""})


def satisfied(req: Requirement, version: str) -> bool:
    """Whether an installed ``version`` meets ``req`` as pip judges installed distributions
    (pre-releases count; an invalid version meets no specifier but the empty one)."""
    return req.specifier.contains(version, prereleases=True)


def incompatibility(ep: EntryPoint) -> str | None:
    """The plugin distribution's own ``Requires-Dist: opgraph ...`` that this opgraph fails."""
    from opgraph import __version__

    for line in ep.dist.requires:
        named = _LEADING_NAME.match(line)  # PEP 508: the name comes first
        if named is None or canonical_name(named[1]) != ESSENTIAL_DISTRIBUTION:
            continue  # another distribution: no need to parse it
        if named.end() == len(line):
            continue  # a bare `opgraph`: any version will do
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if (
            canonical_name(req.name) == ESSENTIAL_DISTRIBUTION
            and applies(req)
            and not satisfied(req, __version__)
        ):
            return f"needs {req} but opgraph {__version__} is installed"
    return None


_Key = tuple[str, str, "str | None"]
_loaded: dict[_Key, PluginRecord] = {}
_skipped: dict[tuple[_Key, str], PluginRecord] = {}
_lock = threading.RLock()  # one import and one hook call per plugin, whatever the threads do


def reset() -> None:
    """Forget scanned entry points and loaded plugins (tests install fake distributions)."""
    with _lock:
        discover.cache_clear()
        installed_names.cache_clear()
        _loaded.clear()
        _skipped.clear()
        _warned.clear()


def load_all(selection: Selection) -> list[PluginRecord]:
    """The record of every discovered plugin under ``selection``; a name in an allow or deny
    list that matches no installed plugin is warned about (a typo would otherwise do nothing)."""
    with _lock:
        known = installed_names()
        records = [record_for(ep, selection) for ep in discover()]
    for rule in selection.rules:
        for name in sorted(rule.names):
            if canonical_name(name) not in known:
                import difflib

                close = difflib.get_close_matches(canonical_name(name), sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                warn_once(f"{rule.source} names {name!r}, which is no installed plugin{hint}")
    for record in records:
        if record.broken:
            warn_once(broken_message(record))
    return records


def record_for(ep: EntryPoint, selection: Selection) -> PluginRecord:
    """The plugin's record under ``selection``: imported on first need, then cached."""
    key = (ep.name, ep.value, distribution_of(ep))
    if reason := selection.skip_reason(ep):
        if (key, reason) not in _skipped:
            trace(f"{provenance_of(ep)} not imported: {reason}")
            _skipped[key, reason] = PluginRecord(provenance_of(ep), "disabled", reason=reason)
        return _skipped[key, reason]
    with _lock:
        if key not in _loaded:
            reason = incompatibility(ep)
            _loaded[key] = (
                PluginRecord(provenance_of(ep), "incompatible", reason=reason)
                if reason
                else load_within(ep, selection.timeout or DEFAULT_TIMEOUT)
            )
        return _loaded[key]


def load_within(ep: EntryPoint, seconds: float) -> PluginRecord:
    """`load_plugin` with a time limit: a plugin that hangs at import or in its hook is
    recorded as failed, with where it was stuck, and the others still load. (Its thread cannot
    be stopped; it is a daemon, so it never keeps the process alive.)"""
    done: list[PluginRecord] = []
    worker = threading.Thread(
        target=lambda: done.append(load_plugin(ep)), name=f"opgraph-load-{ep.name}", daemon=True
    )
    worker.start()
    worker.join(seconds)
    if done:
        return done[0]
    return PluginRecord(
        provenance_of(ep),
        "failed",
        reason=f"did not finish loading within {seconds:g} s (OPGRAPH_PLUGIN_TIMEOUT or "
        f"`plugins: {{timeout: ...}}` sets the limit); stuck at {_where(worker)}",
    )


def _where(thread: threading.Thread) -> str:
    """Where a running thread is, as ``file:line in function: source``: the innermost frame
    of the plugin's own code (not importlib's or opgraph's), else the innermost one."""
    import traceback

    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return "an unknown place (the thread is gone)"
    stack = traceback.extract_stack(frame)
    here = os.path.dirname(__file__)
    own = [f for f in stack if not f.filename.startswith(("<frozen", here))]
    last = (own or stack)[-1]
    return f"{last.filename}:{last.lineno} in {last.name}: {(last.line or '').strip()}"


def _short_reason(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]


def failure_reason(exc: BaseException, prov: Provenance) -> str:
    """``Type: message (at file:line: source)``: the exception and where in the plugin's own
    code it was raised."""
    from opgraph.locations import plugin_location, plugin_roots

    where = plugin_location(exc, plugin_roots(prov.entry_point))
    return _short_reason(exc) + (f" (at {where})" if where else "")


def _explain_invalid(exc: Exception) -> str:
    """pluggy's validation message on one line, with the likely hook name for a typo."""
    import difflib

    from opgraph import hookspecs

    message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if m := re.search(r"unknown hook '(\w+)'", message):
        close = difflib.get_close_matches(m[1], hookspecs.HOOK_NAMES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        known = ", ".join(hookspecs.HOOK_NAMES)
        return f"implements unknown hook {m[1]!r}{hint}; known hooks: {known}"
    return message


def load_plugin(ep: EntryPoint) -> PluginRecord:
    """Import one plugin and call its hook; any exception marks it failed instead of raising."""
    prov = provenance_of(ep)
    start = time.perf_counter()
    try:
        module = ep.load()
    except BaseException as exc:  # a plugin never ends the process, whatever it raises
        if isinstance(exc, KeyboardInterrupt):
            raise
        return PluginRecord(prov, "failed", reason=f"import failed: {failure_reason(exc, prov)}")
    return plugin_from_module(module, prov, start)


def plugin_from_module(
    module: object, prov: Provenance, start: float | None = None
) -> PluginRecord:
    """Register an imported plugin module and call its ``opgraph_ops`` hook: the record of an
    installed plugin and of a module checked without installing (`opgraph.modules`) alike.
    Any exception of the hook marks the plugin failed instead of raising."""
    import pluggy

    from opgraph import hookspecs

    start = time.perf_counter() if start is None else start
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(module, name=prov.plugin)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        return PluginRecord(prov, "incompatible", reason=_explain_invalid(exc))
    impls = pm.hook.opgraph_ops.get_hookimpls()
    if not impls:
        return PluginRecord(
            prov, "failed", reason=f"{prov.entry_point} defines no @opgraph.hookimpl opgraph_ops()"
        )
    specs, failure = _declarations(impls, prov)
    if failure is not None:
        return PluginRecord(prov, "failed", reason=failure)
    names = ", ".join(str(getattr(s, "name", "?")) for s in specs[:50])
    trace(
        f"{prov} loaded in {1000 * (time.perf_counter() - start):.1f} ms; "
        f"opgraph_ops() returned {len(specs)} declarations: {names}"
    )
    return PluginRecord(prov, "active", specs=specs)


def _declarations(impls: list, prov: Provenance) -> tuple[list[OpSpec], str | None]:
    """What the plugin's hook implementations return, or why that failed."""
    specs: list[OpSpec] = []
    try:
        for impl in impls:
            returned = impl.function()
            if returned is not None and not isinstance(returned, Iterable):
                return specs, (
                    f"opgraph_ops() returned a single {type(returned).__name__}; "
                    "return a list of OpSpecs (or yield each)"
                )
            room = MAX_DECLARATIONS - len(specs)
            specs.extend(itertools.islice(returned or (), room + 1))  # a generator may not end
            if len(specs) > MAX_DECLARATIONS:
                return specs, (
                    f"opgraph_ops() declared more than {MAX_DECLARATIONS} ops (stopped reading "
                    "there: does the hook yield forever?)"
                )
    except BaseException as exc:  # as at import: a plugin never ends the process
        if isinstance(exc, KeyboardInterrupt):
            raise
        return specs, f"hook opgraph_ops raised {failure_reason(exc, prov)}"
    return specs, None


def disable_hint(name: str) -> str:
    return f"disable it with OPGRAPH_DISABLE_PLUGINS={name} or `plugins: {{disable: [{name}]}}`"


_warned: set[tuple[type[Warning], str]] = set()


def warn_once(message: str, category: type[OpgraphWarning] = PluginWarning) -> None:
    """Warn once per process: op sets are rebuilt per config, their warnings are not. A
    ``-W error::opgraph.PluginWarning`` filter turns it into an exception here."""
    with _lock:
        if (category, message) in _warned:
            return
        _warned.add((category, message))
    warnings.warn(message, category, stacklevel=2)


def broken_message(record: PluginRecord) -> str:
    """Which plugin, from which distribution, why it was skipped, and how to disable it."""
    return (
        f"{record.provenance} is {record.status} and was skipped: {record.reason}\n"
        f"  ({disable_hint(record.name)})"
    )
