"""Op-set configs: a YAML file saying which plugins load, which ops an op set shows, which
provider wins a conflict, and how the conformance harness runs. Every key is documented in
docs/config.md.

Files are read with PyYAML's safe loader (plain data; no tag may build a Python object) and
validated against `SCHEMA` in one pass that reports every problem with its file, line and key.
What depends on the installed plugins (plugin names, op names) is checked when the op set is
built, still pointing at the line that names it.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opgraph.contract import NAME_RE, Tolerance
from opgraph.errors import ConfigError, PluginError
from opgraph.versions import Requirement, canonical_name

if TYPE_CHECKING:  # imported lazily at run time: a config is read before any plugin loads
    from opgraph.conformance.settings import ConformanceSettings
    from opgraph.op import Op
    from opgraph.plugins import PluginRecord, Rule, Selection
    from opgraph.registry import OpSet

NULL_TAG = "tag:yaml.org,2002:null"
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

# ---------------------------------------------------------------------------------------------
# The schema: small type descriptors that read a composed YAML node and record every problem.


class _Reader:
    """State of one validation pass: the YAML constructor, problems, and where each key is."""

    def __init__(self, source: str, loader: Any) -> None:
        self.source = source
        self.loader = loader
        self.errors: list[str] = []
        self.marks: dict[str, str] = {}

    def where(self, node: Any) -> str:
        mark = node.start_mark
        return f"{self.source}:{mark.line + 1}:{mark.column + 1}"

    def error(self, node: Any, key: str, message: str) -> None:
        self.errors.append(f"{self.where(node)}: {key or '(top level)'}: {message}")

    def scalar(self, node: Any, key: str) -> tuple[bool, Any]:
        """(ok, value) of a scalar node, built with the safe constructor only."""
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            if node.tag in PLAIN_TAGS:
                return True, node
            self.error(node, key, f"tag {node.tag!r} is not allowed: a config is plain data")
            return False, None
        try:
            return True, self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.error(node, key, f"not plain data ({getattr(exc, 'problem', exc)})")
            return False, None


def _describe(node: Any, value: Any) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if value is None:
        return "null"
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return f"{kinds.get(type(value), type(value).__name__)} ({node.value!r})"


class _Type:
    what = "a value"

    def read(self, node: Any, key: str, r: _Reader) -> Any:
        """The Python value of ``node``, or None after recording an error in ``r``."""
        ok, value = r.scalar(node, key)
        if not ok:
            return None
        if not self.accepts(node, value):
            r.error(node, key, f"expected {self.what}, got {_describe(node, value)}")
            return None
        return self.convert(node, key, value, r)

    def accepts(self, node: Any, value: Any) -> bool:
        raise NotImplementedError

    def convert(self, node: Any, key: str, value: Any, r: _Reader) -> Any:
        return value


class Str(_Type):
    what = "a string"

    def accepts(self, node: Any, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())


class Bool(_Type):
    what = "true or false"

    def accepts(self, node: Any, value: Any) -> bool:
        return isinstance(value, bool)


class Int(_Type):
    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.what = f"an integer >= {minimum}"

    def accepts(self, node: Any, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= self.minimum


class NonNegativeNumber(_Type):
    """A number >= 0. PyYAML reads ``1e-6`` (no dot) as a string; such strings are accepted."""

    what = "a number >= 0"

    def accepts(self, node: Any, value: Any) -> bool:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0

    def convert(self, node: Any, key: str, value: Any, r: _Reader) -> Any:
        return float(value)


class ListOf(_Type):
    def __init__(self, item: _Type) -> None:
        self.item = item
        self.what = f"a list of {item.what.removeprefix('a ').removeprefix('an ')}s"

    def accepts(self, node: Any, value: Any) -> bool:
        import yaml

        return isinstance(node, yaml.SequenceNode)

    def convert(self, node: Any, key: str, value: Any, r: _Reader) -> Any:
        items = []
        for i, child in enumerate(node.value):
            path = f"{key}[{i}]"
            r.marks[path] = r.where(child)
            items.append(self.item.read(child, path, r))
        return items


def _mapping_entries(node: Any, key: str, r: _Reader) -> Iterable[tuple[str, Any, Any]]:
    """(name, key node, value node) of a mapping node; duplicate and non-string keys are errors."""
    r.loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
    seen: dict[str, Any] = {}
    for key_node, value_node in node.value:
        ok, name = r.scalar(key_node, key)
        if not ok:
            continue
        if not isinstance(name, str):
            r.error(key_node, key, f"keys must be strings, got {_describe(key_node, name)}")
            continue
        if name in seen:
            r.error(
                key_node,
                f"{key}.{name}".lstrip("."),
                f"duplicate key (first at line {seen[name].start_mark.line + 1})",
            )
            continue
        seen[name] = key_node
        yield name, key_node, value_node


class _Mapping(_Type):
    what = "a mapping"

    def accepts(self, node: Any, value: Any) -> bool:
        import yaml

        return isinstance(node, yaml.MappingNode)


class MapOf(_Mapping):
    """A mapping with free keys (op names, dtypes, aliases), all values of one type."""

    def __init__(self, value: _Type, key: str) -> None:
        self.value = value
        self.key = key
        """Placeholder for the free key in docs, e.g. ``<op>``."""

    def convert(self, node: Any, key: str, value: Any, r: _Reader) -> Any:
        out = {}
        for name, key_node, value_node in _mapping_entries(node, key, r):
            path = f"{key}.{name}"
            r.marks[path] = r.where(key_node)
            if (item := self.value.read(value_node, path, r)) is not None:
                out[name] = item
        return out


class Record(_Mapping):
    """A mapping with fixed keys; an unknown key is an error with the closest valid one.
    A key set to null counts as absent; an invalid value is reported and left out."""

    def __init__(self, fields: Mapping[str, _Type], required: Iterable[str] = ()) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)

    def convert(self, node: Any, key: str, value: Any, r: _Reader) -> Any:
        out, present = {}, set()
        for name, key_node, value_node in _mapping_entries(node, key, r):
            path = f"{key}.{name}".lstrip(".")
            r.marks[path] = r.where(key_node)
            if name not in self.fields:
                close = difflib.get_close_matches(name, list(self.fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                r.error(key_node, path, f"unknown key{hint} (valid: {', '.join(self.fields)})")
            elif value_node.tag != NULL_TAG:
                present.add(name)
                if (item := self.fields[name].read(value_node, path, r)) is not None:
                    out[name] = item
        for name in self.required:
            if name not in present:
                r.error(node, key, f"missing required key {name!r}")
        return out


TOLERANCE = Record(
    {"rtol": NonNegativeNumber(), "atol": NonNegativeNumber(), "reason": Str()},
    required=("rtol", "atol", "reason"),
)
EXPECTED_FAILURE = Record({"op": Str(), "check": Str(), "reason": Str()}, required=("op", "reason"))

SCHEMA = Record(
    {
        "plugins": Record(
            {
                "enable": ListOf(Str()),
                "disable": ListOf(Str()),
                "require": ListOf(Str()),
                "strict": Bool(),
            }
        ),
        "ops": Record(
            {
                "include": ListOf(Str()),
                "exclude": ListOf(Str()),
                "aliases": MapOf(Str(), key="<alias>"),
            }
        ),
        "providers": MapOf(Str(), key="<op>"),
        "conformance": Record(
            {
                "seed": Int(minimum=0),
                "dtypes": ListOf(Str()),
                "checks": ListOf(Str()),
                "max_samples": Int(minimum=1),
                "full_jacobian": Bool(),
                "tolerances": MapOf(MapOf(TOLERANCE, key="<dtype>"), key="<op>"),
                "expected_failures": ListOf(EXPECTED_FAILURE),
            }
        ),
        "report": Record({"json": Str(), "junit": Str()}),
    }
)
"""Every key a config may have; docs/config.md documents each (a test checks it)."""


def schema_keys(schema: _Type = SCHEMA, prefix: str = "") -> Iterable[str]:
    """Every documented key path, e.g. ``conformance.tolerances.<op>.<dtype>.rtol``."""
    if isinstance(schema, Record):
        for name, child in schema.fields.items():
            path = f"{prefix}.{name}".lstrip(".")
            yield path
            yield from schema_keys(child, path)
    elif isinstance(schema, MapOf):
        yield from schema_keys(schema.value, f"{prefix}.{schema.key}")
    elif isinstance(schema, ListOf):
        yield from schema_keys(schema.item, f"{prefix}[]")


def _parse(text: str, source: str) -> tuple[dict, _Reader]:
    """The tree of a config text (invalid values left out) and the reader holding the problems
    and where each key is. Malformed YAML raises ConfigError at once."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when available
    try:
        node = loader.get_single_node()
        reader = _Reader(source, loader)
        tree = {} if node is None else SCHEMA.read(node, "", reader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_error(exc, source)) from None
    finally:
        loader.dispose()
    return tree or {}, reader


def _yaml_error(exc: Any, source: str) -> str:
    def at(mark: Any) -> str:
        return f"{source}:{mark.line + 1}:{mark.column + 1}"

    mark = exc.problem_mark or exc.context_mark
    message = f"{at(mark) if mark else source}: not valid YAML: {exc.problem or exc}"
    if exc.context and exc.context_mark:
        message += f" ({exc.context} at {at(exc.context_mark)})"
    return message


def _errors_message(source: str, errors: list[str]) -> str:
    """Every problem, in file order."""

    def position(error: str) -> tuple[int, ...]:
        m = re.match(rf"{re.escape(source)}:(\d+):(\d+):", error)
        return (int(m[1]), int(m[2])) if m else (0, 0)

    head = f"invalid op-set config {source} ({len(errors)} problem{'s' * (len(errors) > 1)}):"
    lines = [head, *sorted(errors, key=position)]
    return "\n  ".join(lines) + "\n(every key is described in docs/config.md)"


# ---------------------------------------------------------------------------------------------
# The validated config.


@dataclass(frozen=True)
class _Required:
    requirement: Requirement
    where: str


class Config:
    """A validated op-set config. ``build_opset()`` loads the plugins it allows and builds its
    op set once; ``conformance`` is checked against that op set."""

    def __init__(self, tree: Mapping[str, Any], reader: _Reader, path: Path | None) -> None:
        self.path = path
        self.source = reader.source
        self._tree = tree
        self._marks = reader.marks
        self._errors: list[str] = list(reader.errors)  # reported with the checks below
        plugins = tree.get("plugins", {})
        ops = tree.get("ops", {})
        report = tree.get("report", {})
        self.enable: list[str] | None = plugins.get("enable")
        self.disable: list[str] = plugins.get("disable", [])
        self.strict = bool(plugins.get("strict", False))
        self.requires = [
            _Required(req, self._at(f"plugins.require[{i}]"))
            for i, text in _valid(plugins.get("require", []))
            if (req := self._requirement(text, f"plugins.require[{i}]"))
        ]
        self.include: list[str] = ops.get("include", ["*"])
        self.exclude: list[str] = ops.get("exclude", [])
        self.aliases: dict[str, str] = ops.get("aliases", {})
        self.providers: dict[str, str] = tree.get("providers", {})
        self.json = Path(report["json"]) if "json" in report else None
        self.junit = Path(report["junit"]) if "junit" in report else None
        self._check_static()
        self._raise_errors()
        self._opset: OpSet | None = None
        self._conformance: ConformanceSettings | None = None

    # -- helpers for messages ----------------------------------------------------------------

    def _at(self, key: str) -> str:
        return self._marks.get(key, self.source)

    def _problem(self, key: str, message: str) -> None:
        self._errors.append(f"{self._at(key)}: {key}: {message}")

    def _raise_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise ConfigError(_errors_message(self.source, errors))

    def _unknown(self, key: str, what: str, name: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(name, sorted(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        self._problem(key, f"unknown {what} {name!r}{hint}")

    def _requirement(self, text: str, key: str) -> Requirement | None:
        try:
            return Requirement.parse(text)
        except ValueError as exc:
            self._problem(key, str(exc))
            return None

    # -- checks that need no plugin ----------------------------------------------------------

    def _check_static(self) -> None:
        from opgraph.conformance.settings import CHECKS
        from opgraph.plugins import ESSENTIAL_DISTRIBUTION, ESSENTIAL_PLUGIN

        for i, name in _valid(self.disable):
            if canonical_name(name) in (ESSENTIAL_DISTRIBUTION, ESSENTIAL_PLUGIN):
                self._problem(
                    f"plugins.disable[{i}]",
                    f"{name!r} provides the essential ops and cannot be disabled; "
                    "hide its ops with `ops: {exclude: [...]}` instead",
                )
        for alias, target in self.aliases.items():
            if not NAME_RE.match(alias):
                self._problem(f"ops.aliases.{alias}", "an alias must be a lowercase identifier")
            if alias == target:
                self._problem(f"ops.aliases.{alias}", "an alias must differ from the op name")
        conformance = self._tree.get("conformance", {})
        for i, check in _valid(conformance.get("checks", [])):
            if check not in CHECKS:
                self._unknown(f"conformance.checks[{i}]", "check", check, CHECKS)
        for i, entry in _valid(conformance.get("expected_failures", [])):
            if entry.get("check") is not None and entry["check"] not in CHECKS:
                self._unknown(
                    f"conformance.expected_failures[{i}].check", "check", entry["check"], CHECKS
                )
        dtypes = [(f"conformance.dtypes[{i}]", d) for i, d in _valid(conformance.get("dtypes", []))]
        dtypes += [
            (f"conformance.tolerances.{op}.{dtype}", dtype)
            for op, by_dtype in conformance.get("tolerances", {}).items()
            for dtype in by_dtype
        ]
        for key, dtype in dtypes:
            if not _is_dtype_name(dtype):
                self._unknown(
                    key, "dtype", dtype, ("float16", "float32", "float64", "int32", "int64")
                )
        if self.json is not None and self.json == self.junit:
            self._problem("report.junit", "the JSON and JUnit reports need different paths")

    # -- checks against the installed plugins -----------------------------------------------

    def plugin_rules(self) -> list[Rule]:
        """The config's allow and deny lists as plugin-selection rules."""
        from opgraph.plugins import Rule

        rules = []
        if self.enable is not None:
            rules.append(
                Rule(frozenset(self.enable), allow=True, source=self._at("plugins.enable"))
            )
        if self.disable:
            rules.append(
                Rule(frozenset(self.disable), allow=False, source=self._at("plugins.disable"))
            )
        return rules

    def selection(self) -> Selection:
        """The plugin selection: environment (``OPGRAPH_*_PLUGINS``) and this config together."""
        from opgraph.plugins import Selection

        return Selection.from_env().extended(self.plugin_rules(), strict=self.strict)

    @property
    def strict_plugins(self) -> bool:
        """Strict plugin loading: by this config, ``OPGRAPH_STRICT_PLUGINS`` or --strict-plugins."""
        return self.selection().strict

    def _check_plugin_names(self) -> None:
        from opgraph.plugins import installed_names

        known = installed_names()
        for key, names in (
            ("plugins.enable", self.enable or []),
            ("plugins.disable", self.disable),
        ):
            for i, name in enumerate(names):
                if canonical_name(name) not in known:
                    self._unknown(f"{key}[{i}]", "plugin", name, known)
        self._raise_errors()

    def _check_requires(self, records: list[PluginRecord]) -> None:
        from importlib.metadata import PackageNotFoundError, version

        for required in self.requires:
            req = required.requirement
            install = f"install it with: pip install '{req}'"
            try:
                installed = version(req.name)
            except PackageNotFoundError:
                raise PluginError(
                    f"{required.where}: plugins.require: {req.name} is not installed; {install}"
                ) from None
            if not req.allows(installed):
                raise PluginError(
                    f"{required.where}: plugins.require: {req} is required but {req.name} "
                    f"{installed} is installed; {install}"
                )
            own = [r for r in records if canonical_name(r.provenance.distribution or "") == req.key]
            if bad := [r for r in own if r.status != "active"]:
                raise PluginError(
                    f"{required.where}: plugins.require: {req.name} is required, but "
                    + "; ".join(f"{r.provenance} is {r.status}: {r.reason}" for r in bad)
                )

    def _check_op_names(self, providers: Mapping[str, list[Op]]) -> None:
        from opgraph.registry import provided_by, provider_key

        for key, patterns in (("ops.include", self.include), ("ops.exclude", self.exclude)):
            for i, pattern in enumerate(patterns):
                if not any(fnmatch.fnmatchcase(name, pattern) for name in providers):
                    self._unknown(
                        f"{key}[{i}]", "op (or pattern matching no op)", pattern, providers
                    )
        for alias, target in self.aliases.items():
            if target not in providers:
                self._unknown(f"ops.aliases.{alias}", "op", target, providers)
            elif alias in providers:
                self._problem(f"ops.aliases.{alias}", f"{alias!r} is already an op's name")
        for op, wanted in self.providers.items():
            if op not in providers:
                self._unknown(f"providers.{op}", "op", op, providers)
            elif not any(provided_by(o, wanted) for o in providers[op]):
                who = ", ".join(provider_key(o, providers[op]) for o in providers[op])
                self._problem(
                    f"providers.{op}", f"{wanted!r} does not provide {op!r}; its providers: {who}"
                )
        self._raise_errors()

    def build_opset(self, label: str | None = None) -> OpSet:
        """The op set this config selects (an `opgraph.registry.OpSet`), built once."""
        from opgraph import registry

        if self._opset is None:
            selection = self.selection()
            self._check_plugin_names()
            records = registry.load_records(selection)
            registry.raise_if_strict(records, selection)
            self._check_requires(records)
            providers = registry.collect(records)
            self._check_op_names(providers)
            choice = registry.OpChoice(
                include=tuple(self.include),
                exclude=tuple(self.exclude),
                aliases=dict(self.aliases),
                providers=dict(self.providers),
                label=label or f"the op set of {self.source}",
                source=self.source if self.path else PACKAGED_HINT,
                strict=selection.strict,
            )
            self._opset = registry.build_opset(providers, choice)
        return self._opset

    # -- conformance settings ----------------------------------------------------------------

    @property
    def conformance(self) -> ConformanceSettings:
        """The `ConformanceSettings` of this config, its op names checked against the op set."""
        if self._conformance is None:
            self._conformance = self._conformance_settings()
        return self._conformance

    def _conformance_settings(self) -> ConformanceSettings:
        from opgraph.conformance.settings import ConformanceSettings, ExpectedFailure

        section = self._tree.get("conformance", {})
        op_names = {op.name for op in self.build_opset()}
        tolerances = section.get("tolerances", {})
        failures = section.get("expected_failures", [])
        for op in tolerances:
            if op not in op_names:
                self._unknown(
                    f"conformance.tolerances.{op}", "op (not in this op set)", op, op_names
                )
        seen: dict[tuple[str, str | None], int] = {}
        for i, entry in enumerate(failures):
            key = f"conformance.expected_failures[{i}]"
            if entry["op"] not in op_names:
                self._unknown(f"{key}.op", "op (not in this op set)", entry["op"], op_names)
            ident = (entry["op"], entry.get("check"))
            if ident in seen:
                self._problem(key, f"repeats expected_failures[{seen[ident]}]")
            seen.setdefault(ident, i)
        self._raise_errors()
        dtypes = section.get("dtypes")
        checks = section.get("checks")
        return ConformanceSettings(
            seed=section.get("seed", 0),
            dtypes=None if dtypes is None else tuple(dtypes),
            checks=None if checks is None else tuple(checks),
            max_samples=section.get("max_samples"),
            full_jacobian=section.get("full_jacobian", False),
            tolerances={
                op: {dtype: Tolerance(**t) for dtype, t in by_dtype.items()}
                for op, by_dtype in tolerances.items()
            },
            expected_failures=tuple(
                ExpectedFailure(op=e["op"], check=e.get("check"), reason=e["reason"])
                for e in failures
            ),
        )

    def __repr__(self) -> str:
        return f"<opgraph config {self.source}>"


def _valid(items: list) -> Iterable[tuple[int, Any]]:
    """(index, item) of the list items that passed the schema (invalid ones are None)."""
    return ((i, item) for i, item in enumerate(items) if item is not None)


def _is_dtype_name(name: str) -> bool:
    import numpy as np

    try:
        return np.dtype(name).name == name
    except TypeError:
        return False


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config at ``path``; ConfigError names every problem and its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read op-set config {path}: {exc.strerror}") from None
    return _from_text(text, str(path), path)


def _from_text(text: str, source: str, path: Path | None) -> Config:
    tree, reader = _parse(text, source)
    return Config(tree, reader, path)


PACKAGED_HINT = "an op-set config of yours, named by OPGRAPH_CONFIG for the default op set"
"""Where to resolve a conflict met by the packaged default config (it is not for editing)."""


def default_config() -> Config:
    """The config shipped in the package (opgraph/configs/default.yaml): every installed plugin.
    Its ``path`` is None: it is package data, not a file to edit."""
    text = (Path(__file__).parent / "configs" / "default.yaml").read_text(encoding="utf-8")
    return _from_text(text, "default.yaml (packaged)", None)
