"""Installed distributions and their entry points, read straight from the ``*.dist-info`` and
``*.egg-info`` directories on ``sys.path``: what `importlib.metadata` finds there, without its
import (email, zipfile, csv: ~25 ms that every first ``opgraph.ops`` would pay).

Only the metadata files that are needed are read, each once: ``entry_points.txt`` of every
distribution, the ``METADATA`` (or ``PKG-INFO``) headers of those with entry points. Zip
archives on ``sys.path`` are not searched. A file that is not UTF-8 or a malformed
``entry_points.txt`` raises `ValueError` (`UnicodeDecodeError` is one) for the caller to skip
that one distribution.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

_METADATA_SUFFIXES = (".dist-info", ".egg-info")
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class Distribution:
    """One installed distribution's metadata directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._headers: dict[str, list[str]] | None = None

    def read_text(self, filename: str) -> str | None:
        """A metadata file's text; None when the distribution has no such file."""
        try:
            with open(os.path.join(self.path, filename), encoding="utf-8") as file:
                return file.read()
        except _MISSING:
            return None

    @property
    def headers(self) -> dict[str, list[str]]:
        """The ``METADATA`` (``PKG-INFO`` for an egg) header fields by lowercase name."""
        if self._headers is None:
            text = self.read_text("METADATA") or self.read_text("PKG-INFO") or ""
            self._headers = parse_headers(text)
        return self._headers

    def header(self, name: str) -> str | None:
        """The first value of a header field (``Name``, ``Version``), None if absent."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def name(self) -> str | None:
        return self.header("Name")

    @property
    def version(self) -> str | None:
        return self.header("Version")

    @property
    def requires(self) -> list[str]:
        """Its requirements as PEP 508 strings: ``Requires-Dist`` fields, or an egg's
        ``requires.txt`` with its sections turned into markers."""
        if listed := self.headers.get("requires-dist"):
            return listed
        return list(egg_requirements(self.read_text("requires.txt") or ""))

    @property
    def entry_points(self) -> list[EntryPoint]:
        """Every entry point of every group in ``entry_points.txt``."""
        return [
            EntryPoint(name, value, group, self)
            for group, name, value in parse_entry_points(self.read_text("entry_points.txt") or "")
        ]

    def __repr__(self) -> str:
        return f"<distribution at {self.path}>"


class EntryPoint:
    """``name = value`` in group ``group`` of the distribution ``dist``."""

    __slots__ = ("dist", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, dist: Distribution) -> None:
        self.name, self.value, self.group, self.dist = name, value, group, dist

    def load(self) -> Any:
        """Import the module the value names and return it, or the attribute after ``:``."""
        module, attrs = object_reference(self.value)
        loaded = importlib.import_module(module)
        for attr in attrs:
            loaded = getattr(loaded, attr)
        return loaded

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def distributions(path: Iterable[Any] | None = None) -> Iterator[Distribution]:
    """The metadata directories in the directories of ``path`` (``sys.path`` by default), in
    path order; entries that are not readable directories are passed over."""
    for entry in sys.path if path is None else path:
        if not isinstance(entry, str):
            continue
        try:
            children = os.listdir(entry or ".")
        except (OSError, ValueError):  # a zip archive, a hook's marker, a vanished directory
            continue
        for child in children:
            if child.lower().endswith(_METADATA_SUFFIXES):
                yield Distribution(os.path.join(entry, child))


def installed_version(name: str) -> str | None:
    """The version of the first distribution on ``sys.path`` named ``name`` (compared in PEP
    503 normal form) whose metadata can be read; None when none is installed."""
    wanted = canonical_name(name)
    for dist in distributions():
        try:
            if canonical_name(dist.name or "") == wanted:
                return dist.version
        except ValueError:  # another distribution's unreadable METADATA is not this one
            continue
    return None


_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A plugin or distribution name in PEP 503 normal form (``My_Ops`` is ``my-ops``), as
    ``packaging.utils.canonicalize_name`` gives it; written out because importing that module
    imports ``packaging.tags`` too, milliseconds that every first ``opgraph.ops`` would pay."""
    return _SEPARATORS.sub("-", name).lower()


def object_reference(value: str) -> tuple[str, list[str]]:
    """The module and attribute path of an entry point's value: ``pkg.mod``, ``pkg.mod:obj``
    or ``pkg.mod:obj.attr``, optionally followed by a (deprecated, ignored) ``[extras]`` list,
    as the entry points specification writes it. Anything else is a `ValueError`."""
    reference, bracket, extras = value.partition("[")
    module, colon, attr = (part.strip() for part in reference.partition(":"))
    dotted = [*module.split("."), *(attr.split(".") if colon else ())]
    if not all(name.isidentifier() for name in dotted) or (bracket and extras.strip()[-1:] != "]"):
        raise ValueError(
            f"entry point value {value!r} is not an object reference like 'package.module' or "
            "'package.module:attribute'"
        )
    return module, attr.split(".") if attr else []


def parse_headers(text: str) -> dict[str, list[str]]:
    """Email-style header fields up to the first blank line, each folded continuation line
    joined to its field; a line that is no ``Key: value`` ends the headers (as email does)."""
    headers: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if not line:  # the blank line before the body (a line of spaces is a folded one)
            break
        if line[0] in " \t":
            if last and line.strip():
                last[-1] += " " + line.strip()
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            break
        last = headers.setdefault(key.strip().lower(), [])
        last.append(value.strip())
    return headers


def parse_entry_points(text: str) -> Iterator[tuple[str, str, str]]:
    """(group, name, value) of each ``name = value`` line under a ``[group]`` header; blank
    lines and ``#`` comments are skipped, lines before the first header ignored."""
    group = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
        elif group is not None:
            name, equals, value = line.partition("=")
            if not equals:
                raise ValueError(f"entry_points.txt line {number}: {line!r} is no 'name = value'")
            yield group, name.strip(), value.strip()


def egg_requirements(text: str) -> Iterator[str]:
    """The lines of an egg's ``requires.txt`` as PEP 508 strings: a ``[extra:marker]`` section
    header becomes ``; extra == "extra" and (marker)`` on each of its lines."""
    conditions = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, marker = line[1:-1].partition(":")
            parts = [f'extra == "{extra.strip()}"'] if extra.strip() else []
            parts += [f"({marker.strip()})"] if marker.strip() else []
            conditions = f"; {' and '.join(parts)}" if parts else ""
        else:
            yield line + conditions
