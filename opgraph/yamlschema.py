"""A typed reader for YAML documents: small type descriptors that read a composed YAML node,
build plain data with the safe constructor only, and record every problem with its file, line,
column and key path, so one pass reports all of them.

Generic: it knows no opgraph schema (that is `opgraph.config.SCHEMA`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from opgraph.errors import ConfigError

NULL_TAG = "tag:yaml.org,2002:null"
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

# ---------------------------------------------------------------------------------------------
# The schema: small type descriptors that read a composed YAML node and record every problem.


class Reader:
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


class Type:
    what = "a value"

    def read(self, node: Any, key: str, r: Reader) -> Any:
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

    def convert(self, node: Any, key: str, value: Any, r: Reader) -> Any:
        return value


class Str(Type):
    what = "a non-empty string"

    def accepts(self, node: Any, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())


class Bool(Type):
    what = "true or false"

    def accepts(self, node: Any, value: Any) -> bool:
        return isinstance(value, bool)


class Int(Type):
    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.what = f"an integer >= {minimum}"

    def accepts(self, node: Any, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= self.minimum


class NonNegativeNumber(Type):
    """A number >= 0. PyYAML reads ``1e-6`` (no dot) as a string; such strings are accepted."""

    what = "a number >= 0"

    def accepts(self, node: Any, value: Any) -> bool:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0

    def convert(self, node: Any, key: str, value: Any, r: Reader) -> Any:
        return float(value)


class PositiveNumber(NonNegativeNumber):
    """A finite number > 0 (seconds, sizes)."""

    what = "a number > 0"

    def accepts(self, node: Any, value: Any) -> bool:
        if not super().accepts(node, value):
            return False
        number = float(value)
        return 0 < number < float("inf")


class ListOf(Type):
    def __init__(self, item: Type) -> None:
        self.item = item
        self.what = f"a list of {item.what.removeprefix('a ').removeprefix('an ')}s"

    def accepts(self, node: Any, value: Any) -> bool:
        import yaml

        return isinstance(node, yaml.SequenceNode)

    def convert(self, node: Any, key: str, value: Any, r: Reader) -> Any:
        items = []
        for i, child in enumerate(node.value):
            path = f"{key}[{i}]"
            r.marks[path] = r.where(child)
            items.append(self.item.read(child, path, r))
        return items


def _mapping_entries(node: Any, key: str, r: Reader) -> Iterable[tuple[str, Any, Any]]:
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


class _Mapping(Type):
    what = "a mapping"

    def accepts(self, node: Any, value: Any) -> bool:
        import yaml

        return isinstance(node, yaml.MappingNode)


class MapOf(_Mapping):
    """A mapping with free keys (op names, dtypes, aliases), all values of one type."""

    def __init__(self, value: Type, key: str) -> None:
        self.value = value
        self.key = key
        """Placeholder for the free key in docs, e.g. ``<op>``."""

    def convert(self, node: Any, key: str, value: Any, r: Reader) -> Any:
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

    def __init__(self, fields: Mapping[str, Type], required: Iterable[str] = ()) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)

    def convert(self, node: Any, key: str, value: Any, r: Reader) -> Any:
        out, present = {}, set()
        for name, key_node, value_node in _mapping_entries(node, key, r):
            path = f"{key}.{name}".lstrip(".")
            r.marks[path] = r.where(key_node)
            if name not in self.fields:
                import difflib

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


def schema_keys(schema: Type, prefix: str = "") -> Iterable[str]:
    """Every key path ``schema`` accepts, e.g. ``conformance.tolerances.<op>.<dtype>.rtol``."""
    if isinstance(schema, Record):
        for name, child in schema.fields.items():
            path = f"{prefix}.{name}".lstrip(".")
            yield path
            yield from schema_keys(child, path)
    elif isinstance(schema, MapOf):
        yield from schema_keys(schema.value, f"{prefix}.{schema.key}")
    elif isinstance(schema, ListOf):
        yield from schema_keys(schema.item, f"{prefix}[]")


def parse(text: str, source: str, schema: Type) -> tuple[dict, Reader]:
    """The tree of a config text (invalid values left out) and the reader holding the problems
    and where each key is. Malformed YAML raises ConfigError at once."""
    import yaml

    if (nul := text.find("\0")) >= 0:  # libyaml and PyYAML disagree on NUL: refuse it here
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise ConfigError(f"{source}:{line}:{column}: not valid YAML: a NUL character")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when available
    try:
        node = loader.get_single_node()
        reader = Reader(source, loader)
        tree = {} if node is None else schema.read(node, "", reader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_error(exc, source)) from None
    except yaml.YAMLError as exc:  # e.g. a character YAML does not allow (ReaderError)
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
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


def errors_message(source: str, errors: list[str]) -> str:
    """Every problem, in file order."""

    def position(error: str) -> tuple[int, ...]:
        m = re.match(rf"{re.escape(source)}:(\d+):(\d+):", error)
        return (int(m[1]), int(m[2])) if m else (0, 0)

    head = f"invalid op-set config {source} ({len(errors)} problem{'s' * (len(errors) > 1)}):"
    lines = [head, *sorted(errors, key=position)]
    return "\n  ".join(lines) + "\n(every key is described in docs/config.md)"
