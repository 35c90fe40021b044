"""Op-set configs: a YAML file saying which plugins load, which ops an op set shows, which
provider wins a conflict, and how the conformance harness runs. Every key is documented in
docs/config.md.

A `Config` is plain data, validated against `SCHEMA` in one pass (`opgraph.yamlschema`) that
reports every problem with its file, line and key. What depends on the installed plugins (plugin
names, op names) is checked when `opgraph.opsets` builds the op set, and the conformance section
when `opgraph.conformance.settings` reads it, each still pointing at the line that names it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opgraph.contract import NAME_RE
from opgraph.errors import ConfigError
from opgraph.plugins import ESSENTIAL_DISTRIBUTION, ESSENTIAL_PLUGIN, Rule, canonical_name

if TYPE_CHECKING:
    from packaging.requirements import Requirement

from opgraph.records import datarecord
from opgraph.yamlschema import (
    Bool,
    Int,
    ListOf,
    MapOf,
    NonNegativeNumber,
    PositiveNumber,
    Reader,
    Record,
    Str,
    errors_message,
    parse,
    schema_keys,
)

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
                "timeout": PositiveNumber(),
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
                "timeout": PositiveNumber(),
                "tolerances": MapOf(MapOf(TOLERANCE, key="<dtype>"), key="<op>"),
                "expected_failures": ListOf(EXPECTED_FAILURE),
                "cases": ListOf(Str()),
            }
        ),
        "report": Record({"json": Str(), "junit": Str()}),
    }
)
"""Every key a config may have; docs/config.md documents each (a test checks it)."""


def documented_keys() -> Iterable[str]:
    """Every key path a config may have, e.g. ``conformance.tolerances.<op>.<dtype>.rtol``."""
    return schema_keys(SCHEMA)


@datarecord
class Required:
    """A ``plugins.require`` line and where it stands."""

    requirement: Requirement
    where: str


class Config:
    """A validated op-set config: plain data plus where each key stands, for the messages of
    the layers that check it against installed plugins and op sets."""

    def __init__(self, tree: Mapping[str, Any], reader: Reader, path: Path | None) -> None:
        self.path = path
        self.source = reader.source
        self._marks = reader.marks
        self._errors: list[str] = list(reader.errors)  # reported with the checks below
        plugins = tree.get("plugins", {})
        ops = tree.get("ops", {})
        report = tree.get("report", {})
        self.enable: list[str] | None = plugins.get("enable")
        self.disable: list[str] = plugins.get("disable", [])
        self.strict = bool(plugins.get("strict", False))
        self.timeout: float | None = plugins.get("timeout")
        self.requires = [
            Required(req, self.where(f"plugins.require[{i}]"))
            for i, text in valid_items(plugins.get("require", []))
            if (req := self._requirement(text, f"plugins.require[{i}]"))
        ]
        self.include: list[str] = ops.get("include", ["*"])
        self.exclude: list[str] = ops.get("exclude", [])
        self.aliases: dict[str, str] = ops.get("aliases", {})
        self.providers: dict[str, str] = tree.get("providers", {})
        self.conformance_section: dict[str, Any] = tree.get("conformance", {})
        self.json = Path(report["json"]) if "json" in report else None
        self.junit = Path(report["junit"]) if "junit" in report else None
        self._check_static()
        self.raise_problems()

    # -- where keys stand, and problems ---------------------------------------------------

    def where(self, key: str) -> str:
        """``file:line:column`` of ``key`` (the file alone for a key the config lacks)."""
        return self._marks.get(key, self.source)

    def problem(self, key: str, message: str) -> None:
        """Record a problem at ``key``; `raise_problems` reports every recorded one."""
        self._errors.append(f"{self.where(key)}: {key}: {message}")

    def unknown(self, key: str, what: str, name: str, known: Iterable[str]) -> None:
        """Record ``name`` at ``key`` as an unknown ``what``, with the closest known names."""
        import difflib

        close = difflib.get_close_matches(name, sorted(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        self.problem(key, f"unknown {what} {name!r}{hint}")

    def raise_problems(self) -> None:
        """One ConfigError naming every recorded problem in file order, if there is any."""
        if self._errors:
            errors, self._errors = self._errors, []
            raise ConfigError(errors_message(self.source, errors))

    def _requirement(self, text: str, key: str) -> Requirement | None:
        from packaging.requirements import InvalidRequirement, Requirement  # only when needed

        try:
            return Requirement(text)
        except InvalidRequirement as exc:
            why = str(exc).splitlines()[0]  # packaging adds a caret diagram below
            self.problem(key, f"{text!r} is not a requirement like 'opgraph-conv >=0.2, <1': {why}")
            return None

    # -- checks that need no plugin ------------------------------------------------------

    def _check_static(self) -> None:
        for i, name in valid_items(self.disable):
            if canonical_name(name) in (ESSENTIAL_DISTRIBUTION, ESSENTIAL_PLUGIN):
                self.problem(
                    f"plugins.disable[{i}]",
                    f"{name!r} provides the essential ops and cannot be disabled; "
                    "hide its ops with `ops: {exclude: [...]}` instead",
                )
        for alias, target in self.aliases.items():
            if not NAME_RE.match(alias):
                self.problem(f"ops.aliases.{alias}", "an alias must be a lowercase identifier")
            if alias == target:
                self.problem(f"ops.aliases.{alias}", "an alias must differ from the op name")
        section = self.conformance_section
        dtypes = [
            (f"conformance.dtypes[{i}]", d) for i, d in valid_items(section.get("dtypes", []))
        ]
        dtypes += [
            (f"conformance.tolerances.{op}.{dtype}", dtype)
            for op, by_dtype in section.get("tolerances", {}).items()
            for dtype in by_dtype
        ]
        for key, dtype in dtypes:
            if not _is_dtype_name(dtype):
                self.unknown(
                    key, "dtype", dtype, ("float16", "float32", "float64", "int32", "int64")
                )
        if self.json is not None and self.json == self.junit:
            self.problem("report.junit", "the JSON and JUnit reports need different paths")

    def plugin_rules(self) -> list[Rule]:
        """The config's allow and deny lists as plugin-selection rules."""
        rules = []
        if self.enable is not None:
            rules.append(
                Rule(frozenset(self.enable), allow=True, source=self.where("plugins.enable"))
            )
        if self.disable:
            rules.append(
                Rule(frozenset(self.disable), allow=False, source=self.where("plugins.disable"))
            )
        return rules

    def __repr__(self) -> str:
        return f"<opgraph config {self.source}>"


def valid_items(items: list) -> Iterable[tuple[int, Any]]:
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
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read op-set config {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); "
            "save the config as UTF-8"
        ) from None
    return from_text(text, str(path), path)


def from_text(text: str, source: str, path: Path | None = None) -> Config:
    """The config in ``text``; ``source`` names it in messages."""
    tree, reader = parse(text, source, SCHEMA)
    return Config(tree, reader, path)


PACKAGED_HINT = "an op-set config of yours, named by OPGRAPH_CONFIG for the default op set"
"""Where to resolve a conflict met by the packaged default config (it is not for editing)."""


PACKAGED = Path(__file__).parent / "configs" / "default.yaml"
PACKAGED_SOURCE = "default.yaml (packaged)"
PRECOMPILED = PACKAGED.with_suffix(".marshal")
"""The packaged config parsed and schema-checked ahead of time (`precompile`), with the YAML
text it was made from, in `marshal` form (as Python's own bytecode caches): the first
``opgraph.ops`` then needs neither a YAML parser (~15 ms) nor ``json`` (~2 ms)."""
MARSHAL_VERSION = 4
"""The `marshal` format written: readable by every supported Python."""


def precompile(text: str) -> bytes:
    """What `PRECOMPILED` holds for the packaged config ``text``: the text, its tree and where
    each key stands. Regenerate after editing default.yaml (a test says how)."""
    import marshal

    tree, reader = parse(text, PACKAGED_SOURCE, SCHEMA)
    if reader.errors:
        raise ConfigError(errors_message(PACKAGED_SOURCE, reader.errors))
    return marshal.dumps({"yaml": text, "tree": tree, "marks": reader.marks}, MARSHAL_VERSION)


def packaged_config() -> Config:
    """The config shipped in the package (opgraph/configs/default.yaml): every installed plugin.
    Its ``path`` is None: it is package data, not a file to edit. Read from `PRECOMPILED` when
    that was made from this very text, else parsed (the same validation either way)."""
    import marshal

    text = PACKAGED.read_text(encoding="utf-8")
    try:
        compiled = marshal.loads(PRECOMPILED.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):  # missing, or not marshal data
        compiled = None
    if not isinstance(compiled, dict) or compiled.get("yaml") != text:
        return from_text(text, PACKAGED_SOURCE)
    reader = Reader(PACKAGED_SOURCE, loader=None)
    reader.marks = compiled["marks"]
    return Config(compiled["tree"], reader, None)
