"""The choke point between plugins and users: validate specs, resolve conflicts and
dependencies, and build `OpSet`s whose attributes are ready-to-call `Op`s."""

from __future__ import annotations

import difflib
import fnmatch
import keyword
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from opgraph import engine
from opgraph.contract import KINDS, NAME_RE, Attr, Domain, OpSpec, Tolerance
from opgraph.errors import ConfigError, OpDeclarationError, PluginError
from opgraph.op import Op, Provenance
from opgraph.plugins import PluginRecord, Selection, load_all, trace
from opgraph.versions import canonical_name

if TYPE_CHECKING:
    from opgraph.config import Config

ESSENTIAL = (
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "pow",
    "matmul",
    "reshape",
    "transpose",
    "sum",
    "broadcast_to",
    "sum_to",
    "astype",
    "get_item",
)
"""Ops the engine itself dispatches to (Variable operators and methods, `unbroadcast`): always
in every op set, hidden when a config does not show them, and their plugin is never disabled."""


class StrictPluginError(PluginError):
    """Strict plugin loading found a broken plugin or a rejected declaration (exit code 3)."""


class OpSet:
    """Ops by attribute (``ops.sin(x)``), iteration (``for op in ops``: each op once, aliases
    included only as names) and ``name in ops``."""

    def __init__(
        self,
        ops: Mapping[str, Op],
        label: str = "op set",
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self.__dict__.update(ops)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_unavailable", dict(unavailable or {}))

    def __getattr__(self, name: str) -> Any:  # only called for names that are not ops
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._unavailable:
            raise AttributeError(f"no op {name!r} in {self._label}: {self._unavailable[name]}")
        close = difflib.get_close_matches(name, list(self._names()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(f"no op {name!r} in {self._label}{hint}")

    def _names(self) -> Iterator[str]:
        return (k for k in self.__dict__ if not k.startswith("_"))

    def __iter__(self) -> Iterator[Op]:
        seen: set[int] = set()
        for name in sorted(self._names()):
            op = self.__dict__[name]
            if id(op) not in seen:
                seen.add(id(op))
                yield op

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith("_") and name in self.__dict__

    def __getitem__(self, name: str) -> Op:
        if name not in self:
            return getattr(self, name)  # raises with suggestions
        return self.__dict__[name]

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __dir__(self) -> list[str]:
        return sorted(self._names())

    def __repr__(self) -> str:
        return f"<{self._label}: {len(self)} ops>"


def _function_problems(spec: OpSpec) -> Iterator[str]:
    for fn in ("forward", "shape_rule"):
        if not callable(getattr(spec, fn)):
            yield f"{fn} must be callable, got {getattr(spec, fn)!r}"
    if spec.backward is None:
        if set(spec.input_names) - set(spec.nondiff):
            yield "backward is None but some inputs are differentiable (list them in nondiff)"
    elif not callable(spec.backward):
        yield f"backward must be callable or None, got {spec.backward!r}"


def _harness_problems(spec: OpSpec) -> Iterator[str]:
    """The conformance hints must be usable: real dtypes, one domain per input, and a reason
    for every tolerance the op loosens."""
    for name in spec.dtypes:
        try:
            np.dtype(name)
        except TypeError:
            yield f"dtypes names {name!r}, which is not a numpy dtype"
    if not isinstance(spec.domain, Domain):
        if not isinstance(spec.domain, tuple) or not all(
            d is None or isinstance(d, Domain) for d in spec.domain
        ):
            yield f"domain must be a Domain or a tuple of Domain/None, got {spec.domain!r}"
        elif not spec.variadic and len(spec.domain) != len(spec.inputs):
            yield f"domain gives {len(spec.domain)} domains for {len(spec.inputs)} inputs"
    for dtype, tol in spec.tolerances.items():
        if not isinstance(tol, Tolerance) or not tol.reason.strip():
            yield (
                f"tolerances[{dtype!r}] must be a Tolerance with a reason "
                "(say why this op needs a looser gradient check)"
            )


def _default_problems(spec: OpSpec) -> Iterator[str]:
    """Each attribute default must pass its own check (the op stores the checked form)."""
    for a in spec.attrs:
        if a.check is not None and not a.required:
            try:
                a.check(a.default)
            except (TypeError, ValueError) as exc:
                yield f"the default {a.name}={a.default!r} fails its own check: {exc}"


def _signature_problems(spec: OpSpec) -> Iterator[str]:
    if not isinstance(spec.name, str) or not NAME_RE.match(spec.name):
        yield f"name {spec.name!r} is not a lowercase identifier"
    if not isinstance(spec.inputs, tuple) or not all(isinstance(n, str) for n in spec.inputs):
        yield f"inputs must be a tuple of names, got {spec.inputs!r}"
        return
    names = spec.input_names
    if not names or any(not n.isidentifier() or keyword.iskeyword(n) for n in names):
        yield f"inputs {spec.inputs!r} must be Python identifiers (W as in DeZero is fine)"
    if any(n.startswith("*") for n in spec.inputs) and not spec.variadic:
        yield "a variadic input (*xs) must be the only input"
    if unknown := set(spec.nondiff) - set(names):
        yield f"nondiff names unknown inputs {sorted(unknown)}"
    if not all(isinstance(a, Attr) for a in spec.attrs):
        yield f"attrs must be Attr objects, got {spec.attrs!r}"
        return
    yield from _default_problems(spec)
    attr_names = [a.name for a in spec.attrs]
    if len(set(attr_names + list(names))) != len(attr_names) + len(names):
        yield "input and attribute names must be distinct"
    if spec.kind not in KINDS:
        yield f"kind {spec.kind!r} is not one of {', '.join(KINDS)}"
    if not isinstance(spec.n_outputs, int) or spec.n_outputs < 1:
        yield f"n_outputs must be a positive int, got {spec.n_outputs!r}"


def validate_spec(spec: Any, prov: Provenance) -> OpSpec:
    """Return ``spec`` if it honours the contract, else raise one error listing every problem."""
    if not isinstance(spec, OpSpec):
        raise OpDeclarationError(
            f"{prov} returned a {type(spec).__name__} from opgraph_ops; return OpSpec objects"
        )
    if problems := [
        *_signature_problems(spec),
        *_function_problems(spec),
        *_harness_problems(spec),
    ]:
        raise OpDeclarationError(f"op {spec.name!r} from {prov} is invalid: " + "; ".join(problems))
    return spec


def load_records(selection: Selection) -> list[PluginRecord]:
    """Every discovered plugin under ``selection``, its declarations validated once (the
    rejected ones warned about once; the plugin's valid ops still load)."""
    records = load_all(selection)
    for record in records:
        if record.status == "active" and not record.validated:
            _validate(record)
    return records


def _validate(record: PluginRecord) -> None:
    """Keep the plugin's valid declarations (the first of a name); warn about the others."""
    valid: dict[str, OpSpec] = {}
    for spec in record.specs:
        try:
            validate_spec(spec, record.provenance)
            if spec.name in valid:
                raise OpDeclarationError(
                    f"op {spec.name!r} from {record.provenance} is declared twice "
                    "(the first declaration is kept)"
                )
            valid[spec.name] = spec
        except OpDeclarationError as exc:
            record.rejected.append(str(exc))
            print(
                f"opgraph: warning: {exc}; this declaration was skipped, "
                "the plugin's other ops loaded",
                file=sys.stderr,
            )
    record.specs, record.validated = list(valid.values()), True


def raise_if_strict(records: Iterable[PluginRecord], selection: Selection) -> None:
    """In strict mode any broken plugin or rejected declaration is one `StrictPluginError`."""
    if not selection.strict:
        return
    problems = [f"{r.provenance} is {r.status}: {r.reason}" for r in records if r.broken]
    _raise_strict(problems + [message for r in records for message in r.rejected])


def _raise_strict(problems: list[str]) -> None:
    if problems:
        raise StrictPluginError(
            "strict plugin loading (OPGRAPH_STRICT_PLUGINS, --strict-plugins or "
            "`plugins: {strict: true}`) found problems:\n  " + "\n  ".join(problems)
        )


def collect(records: Iterable[PluginRecord]) -> dict[str, list[Op]]:
    """Fresh `Op`s of the active plugins by name, every provider kept (in plugin order)."""
    providers: dict[str, list[Op]] = {}
    for record in records:
        if record.status == "active":
            for spec in record.specs:
                providers.setdefault(spec.name, []).append(Op(spec, record.provenance))
    return providers


@dataclass(frozen=True)
class OpChoice:
    """Which ops an op set shows, under which names, and which provider wins a conflict."""

    include: tuple[str, ...] = ("*",)
    """Glob patterns (`fnmatch`) of the op names to show."""
    exclude: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Extra name -> op name; the op is shown under both."""
    providers: Mapping[str, str] = field(default_factory=dict)
    """Op name -> plugin or distribution name that provides it."""
    label: str = "op set"
    source: str = "your op-set config"
    """What to edit to resolve a conflict (a config path, in messages)."""
    strict: bool = False
    """Strict plugin loading: an op dropped for a missing dependency is an error, not a warning."""

    def shows(self, name: str) -> bool:
        def hit(patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(name, p) for p in patterns)

        return hit(self.include) and not hit(self.exclude)


def provider_key(op: Op, rivals: Iterable[Op] = ()) -> str:
    """The name a config uses for ``op``'s provider: the plugin name, or the distribution name
    when two rivals share the plugin name (compared as `provided_by` compares them)."""
    prov = op.provenance
    same = [r for r in rivals if canonical_name(r.provenance.plugin) == canonical_name(prov.plugin)]
    return canonical_name(prov.distribution) if len(same) > 1 and prov.distribution else prov.plugin


def provided_by(op: Op, key: str) -> bool:
    """Whether a config's ``providers`` value names ``op``'s plugin or distribution (either
    works, in PEP 503 normal form, as `provider_key` may suggest either)."""
    prov = op.provenance
    return canonical_name(key) in {
        canonical_name(prov.plugin),
        canonical_name(prov.distribution or prov.plugin),
    }


def _pick(name: str, ops: list[Op], choice: OpChoice) -> Op | None:
    """The one provider of ``name``; None for an unresolved conflict."""
    wanted = choice.providers.get(name)
    if wanted is None:
        return ops[0] if len(ops) == 1 else None
    match = [op for op in ops if provided_by(op, wanted)]
    if len(match) != 1:
        who = ", ".join(f"{provider_key(op, ops)} ({op.provenance})" for op in ops)
        raise PluginError(
            f"{choice.source} says op {name!r} comes from {wanted!r}, which "
            + ("matches several providers" if match else "does not provide it")
            + f"; providers of {name!r}: {who}"
        )
    trace(f"op {name!r}: {match[0].provenance} chosen by {choice.source}")
    return match[0]


def _conflict_message(conflicts: Mapping[str, list[Op]], choice: OpChoice) -> str:
    lines = [
        "several plugins provide the same op, and opgraph never picks one silently; "
        f"add one of these lines under `providers:` in {choice.source}:"
    ]
    for name, ops in sorted(conflicts.items()):
        lines.append(
            f"  op {name!r} is provided by " + " and by ".join(str(o.provenance) for o in ops)
        )
        lines += [f"      {name}: {provider_key(op, ops)}" for op in ops]
    lines.append("(or hide the op with `ops: {exclude: [...]}`; see docs/config.md)")
    return "\n".join(lines)


def _resolve(
    providers: Mapping[str, list[Op]], wanted: Iterable[str], choice: OpChoice
) -> tuple[dict[str, Op], dict[str, str], dict[str, list[Op]]]:
    """The chosen provider of every wanted op and of its dependencies, transitively; the ops
    that had to be dropped (why); the unresolved conflicts."""
    chosen: dict[str, Op] = {}
    dropped: dict[str, str] = {}
    conflicts: dict[str, list[Op]] = {}
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in chosen or name in dropped or name in conflicts:
            continue
        if name not in providers:
            dropped[name] = "no active plugin provides it"
            continue
        op = _pick(name, providers[name], choice)
        if op is None:
            conflicts[name] = providers[name]
            continue
        chosen[name] = op
        todo.extend(op.spec.requires)
    unmet = True
    while unmet:  # an op whose dependency is missing cannot be differentiated: drop it
        unmet = False
        for name, op in list(chosen.items()):
            if missing := [r for r in op.spec.requires if r in dropped]:
                dep = missing[0]
                why = (
                    f"was skipped ({dropped[dep]})"
                    if dep in providers
                    else "no active plugin provides it"
                )
                dropped[name] = f"its backward requires {dep!r}, which {why}"
                del chosen[name]
                unmet = True
    return chosen, dropped, conflicts


def build_opset(providers: Mapping[str, list[Op]], choice: OpChoice = OpChoice()) -> OpSet:
    """The op set ``choice`` selects from ``providers``, closed under backward: every op's
    dependencies (its ``requires`` + `ESSENTIAL`) are pulled in as hidden members of its
    ``ctx.ops`` even when the set does not show them. An op whose dependency no plugin
    provides is dropped with a warning (`StrictPluginError` when ``choice.strict``); a conflict
    among needed ops is one `PluginError`."""
    shown = [n for n in sorted(providers) if choice.shows(n)]
    wanted = [*ESSENTIAL, *shown, *choice.aliases.values()]
    chosen, dropped, conflicts = _resolve(providers, wanted, choice)
    if conflicts:
        raise PluginError(_conflict_message(conflicts, choice))
    if missing := [n for n in ESSENTIAL if n not in chosen]:
        raise PluginError(
            f"essential ops {missing} are unavailable ({dropped[missing[0]]}); the built-in "
            "plugin 'builtin' of the opgraph distribution must load"
        )
    targets = {**{name: name for name in shown}, **choice.aliases}  # shown name -> op name
    skipped = {
        op: f"op {op!r} from {providers[op][0].provenance} was skipped: {dropped[op]}"
        for op in sorted(set(targets.values()) & dropped.keys())
    }
    if choice.strict:
        _raise_strict(list(skipped.values()))
    for message in skipped.values():
        print(f"opgraph: warning: {message}", file=sys.stderr)
    unavailable = {
        name: f"{choice.source} does not select it (ops.include / ops.exclude)"
        for name in providers
        if name not in shown
    }
    unavailable.update((name, skipped[op]) for name, op in targets.items() if op in skipped)
    for op in chosen.values():
        deps = {n: chosen[n] for n in (*ESSENTIAL, *op.spec.requires)}
        op.deps = OpSet(
            deps,
            label=f"ctx.ops of {op.name!r} (only its requires= and the essential ops: "
            "declare every op its backward uses in requires=)",
        )
    visible = {name: chosen[op] for name, op in targets.items() if op in chosen}
    opset = OpSet(visible, label=choice.label, unavailable=unavailable)
    essential = OpSet(
        {n: chosen[n] for n in ESSENTIAL}, label=f"the essential ops of {choice.label}"
    )
    object.__setattr__(opset, "_essential", essential)
    return opset


_default: OpSet | None = None


def plugin_records() -> list[PluginRecord]:
    """Every discovered plugin under the default op set's selection (its config and the
    ``OPGRAPH_*_PLUGINS`` variables)."""
    return load_records(default_config().selection())


def default_config() -> Config:
    """The config of the default op set: ``OPGRAPH_CONFIG``, else the packaged default.yaml."""
    from opgraph import config

    path = os.environ.get("OPGRAPH_CONFIG")
    if not path:
        return config.default_config()
    try:
        return config.load_config(path)
    except ConfigError as exc:  # say where the path came from: no --config named it
        raise ConfigError(f"{exc}\n(named by OPGRAPH_CONFIG: fix the file or unset it)") from None


def config_for(path: str | os.PathLike[str] | None) -> Config:
    """The config a command runs with: the file ``path`` names, else `default_config` (so
    ``OPGRAPH_CONFIG`` applies to every command that takes no ``--config``)."""
    from opgraph import config

    return config.load_config(path) if path else default_config()


def default_opset() -> OpSet:
    """The op set of `default_config`, built on first use (`opgraph.ops`); Variable
    operators dispatch to its essential ops (shown or not)."""
    global _default
    if _default is None:
        _default = default_config().build_opset(label="the default op set")
        engine._set_default_ops(_default._essential)
    return _default
