"""The choke point between plugins and users: validate specs, collect every provider, resolve
conflicts and dependencies, and build `OpSet`s whose attributes are ready-to-call `Op`s.

Pure: it holds no global state, reads no config and prints nothing. What it found (rejected
declarations, dropped ops, conflicts) is returned as data for the op-set layer
(`opgraph.opsets`) to warn about, or to refuse in strict mode.
"""

from __future__ import annotations

import fnmatch
import keyword
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from typing import Any

import numpy as np

from opgraph.contract import KINDS, NAME_RE, Attr, Domain, OpSpec, Provenance, Tolerance
from opgraph.errors import OpConflictError, OpDeclarationError, PluginError
from opgraph.op import Op, make_op
from opgraph.plugins import PluginRecord, canonical_name
from opgraph.records import datarecord

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
"""Ops the engine itself dispatches to (Variable operators and methods, `unbroadcast`): in
every op set's dispatch table and every ``ctx.ops``, whether or not a config shows them."""


class OpSet:
    """Ops by attribute (``ops.sin(x)``), iteration (``for op in ops``: each op once, aliases
    included only as names) and ``name in ops``.

    ``conflicts`` (op name -> every provider) and ``dropped`` (op name -> why) say what the
    op set lacks; accessing such an op raises with the reason. Op names can never clash with
    these two: the registry rejects op names in `RESERVED`.
    """

    def __init__(
        self,
        ops: Mapping[str, Op],
        label: str = "op set",
        unavailable: Mapping[str, str] | None = None,
        *,
        contested: Mapping[str, str] | None = None,
        conflicts: Mapping[str, list[Op]] | None = None,
        dropped: Mapping[str, str] | None = None,
        dispatch: OpSet | None = None,
    ) -> None:
        """``contested``: name -> the conflict message raised on access; ``dispatch``: the
        table the engine uses while this op set is active (`opgraph.use_opset`)."""
        self.__dict__.update(ops)
        self.__dict__.update(
            _label=label,
            _unavailable=dict(unavailable or {}),
            _contested=dict(contested or {}),
            _conflicts=dict(conflicts or {}),
            _dropped=dict(dropped or {}),
            _dispatch=dispatch,
        )

    @property
    def conflicts(self) -> dict[str, list[Op]]:
        """Ops that several plugins provide and nothing chose between: op name -> providers."""
        return dict(self._conflicts)

    @property
    def dropped(self) -> dict[str, str]:
        """Ops left out because a dependency is missing: op name -> why."""
        return dict(self._dropped)

    def __getattr__(self, name: str) -> Any:  # only called for names that are not ops
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._contested:
            raise OpConflictError(self._contested[name])
        if name in self._unavailable:
            raise AttributeError(f"no op {name!r} in {self._label}: {self._unavailable[name]}")
        import difflib

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


RESERVED = frozenset(n for n in vars(OpSet) if not n.startswith("_"))
"""Names no op may have: they are the `OpSet` API."""


def safe_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for messages about untrusted plugin objects: never raises, one line,
    at most ``limit`` characters."""
    try:
        text = repr(value)
    except Exception as exc:  # a plugin object whose __repr__ raises
        text = f"<{type(value).__name__} object (repr raised {type(exc).__name__})>"
    text = text.encode("unicode_escape").decode("ascii")  # newlines, escapes: one safe line
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TUPLES_OF_STR = ("inputs", "nondiff", "requires", "dtypes")
_FLAGS = ("backward_differentiable", "saves_state", "stochastic")
_OPTIONAL_CALLABLES = ("dtype_rule", "sample_inputs", "error_inputs", "reference")


def _type_problems(spec: OpSpec) -> Iterator[str]:
    """Every field has the type the contract names (a plugin may put anything anywhere); the
    other checks run only when this one finds nothing."""
    for name in _TUPLES_OF_STR:
        value = getattr(spec, name)
        if not isinstance(value, tuple) or not all(isinstance(n, str) for n in value):
            yield f"{name} must be a tuple of strings, got {safe_repr(value)}"
    for name in _FLAGS:
        if not isinstance(getattr(spec, name), bool):
            yield f"{name} must be True or False, got {safe_repr(getattr(spec, name))}"
    if spec.traceable is not None and not isinstance(spec.traceable, bool):
        yield f"traceable must be True, False or None, got {safe_repr(spec.traceable)}"
    for name in _OPTIONAL_CALLABLES:
        value = getattr(spec, name)
        if value is not None and not callable(value):
            yield f"{name} must be callable or None, got {safe_repr(value)}"
    if not isinstance(spec.doc, str):
        yield f"doc must be a string, got {safe_repr(spec.doc)}"
    for name in ("tolerances", "reference_tolerances"):
        value = getattr(spec, name)
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            yield f"{name} must map dtype names to Tolerance, got {safe_repr(value)}"
    yield from _attr_type_problems(spec.attrs)


def _attr_type_problems(attrs: Any) -> Iterator[str]:
    if not isinstance(attrs, tuple) or not all(isinstance(a, Attr) for a in attrs):
        yield f"attrs must be a tuple of Attr objects, got {safe_repr(attrs)}"
        return
    for a in attrs:
        if not isinstance(a.name, str) or not a.name.isidentifier() or keyword.iskeyword(a.name):
            yield f"an attribute's name must be a Python identifier, got {safe_repr(a.name)}"
        for fn in ("check", "examples"):
            if getattr(a, fn) is not None and not callable(getattr(a, fn)):
                yield f"Attr {safe_repr(a.name)}: {fn} must be callable or None"


DTYPES = tuple(sorted({np.dtype(c).name for c in np.typecodes["All"] if c not in "OSUVMm"}))
"""The numpy dtype names a declaration may use, for suggestions."""


def did_you_mean(value: object, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for a misspelt name, or nothing."""
    if not isinstance(value, str):
        return ""
    import difflib

    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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
            yield f"dtypes names {name!r}, which is not a numpy dtype{did_you_mean(name, DTYPES)}"
    if not isinstance(spec.domain, Domain):
        if not isinstance(spec.domain, tuple) or not all(
            d is None or isinstance(d, Domain) for d in spec.domain
        ):
            yield f"domain must be a Domain or a tuple of Domain/None, got {spec.domain!r}"
        elif not spec.variadic and len(spec.domain) != len(spec.inputs):
            yield f"domain gives {len(spec.domain)} domains for {len(spec.inputs)} inputs"
    for name in ("tolerances", "reference_tolerances"):
        for dtype, tol in getattr(spec, name).items():
            if not isinstance(tol, Tolerance) or not tol.reason.strip():
                yield (
                    f"{name}[{dtype!r}] must be a Tolerance with a reason "
                    "(say why this op needs a looser check)"
                )


def _default_problems(spec: OpSpec) -> Iterator[str]:
    """Each attribute default must pass its own check (the op stores the checked form)."""
    for a in spec.attrs:
        if a.check is not None and not a.required:
            try:
                a.check(a.default)
            except (TypeError, ValueError) as exc:
                yield f"the default {a.name}={safe_repr(a.default)} fails its own check: {exc}"
            except Exception as exc:  # a broken check: the op could never be called
                yield (
                    f"the check of attribute {a.name!r} raised {type(exc).__name__} on its "
                    f"default {safe_repr(a.default)}; a check raises TypeError or ValueError"
                )


def _signature_problems(spec: OpSpec) -> Iterator[str]:
    if not isinstance(spec.name, str) or not NAME_RE.match(spec.name):
        yield f"name {safe_repr(spec.name)} is not a lowercase identifier"
    elif spec.name in RESERVED:
        yield f"name {spec.name!r} is reserved for the op-set API ({', '.join(sorted(RESERVED))})"
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
        hint = did_you_mean(spec.kind, KINDS)
        yield f"kind {spec.kind!r} is not one of {', '.join(KINDS)}{hint}"
    if not isinstance(spec.n_outputs, int) or spec.n_outputs < 1:
        yield f"n_outputs must be a positive int, got {spec.n_outputs!r}"


def validate_spec(spec: Any, prov: Provenance) -> OpSpec:
    """Return ``spec`` if it honours the contract, else raise one error listing every problem."""
    if not isinstance(spec, OpSpec):
        raise OpDeclarationError(
            f"{prov} returned a {type(spec).__name__} from opgraph_ops; return OpSpec objects"
        )
    try:
        problems = list(_type_problems(spec)) or [
            *_signature_problems(spec),
            *_function_problems(spec),
            *_harness_problems(spec),
        ]
    except Exception as exc:  # e.g. a field whose __eq__ or __iter__ raises: still a rejection
        problems = [f"validating it raised {type(exc).__name__}: {safe_repr(str(exc))}"]
    if problems:
        raise OpDeclarationError(
            f"op {safe_repr(spec.name)} from {prov} is invalid: " + "; ".join(problems)
        )
    return spec


def validated(record: PluginRecord) -> PluginRecord:
    """``record`` with only its valid declarations (the first of a name) in ``specs`` and a
    message per rejected one in ``rejected``; done once per record, as records are cached."""
    if record.status != "active" or record.validated:
        return record
    valid: dict[str, OpSpec] = {}
    rejected = []
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
            rejected.append(f"{exc}; this declaration was skipped, the plugin's other ops loaded")
    record.specs, record.rejected, record.validated = list(valid.values()), rejected, True
    return record


def collect(records: Iterable[PluginRecord]) -> dict[str, list[Op]]:
    """Fresh `Op`s of the active plugins by name, every provider kept (in plugin order)."""
    providers: dict[str, list[Op]] = {}
    for record in records:
        if record.status == "active":
            for spec in record.specs:
                providers.setdefault(spec.name, []).append(make_op(spec, record.provenance))
    return providers


@datarecord
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

    def shows(self, name: str) -> bool:
        def hit(patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(name, p) for p in patterns)

        return hit(self.include) and not hit(self.exclude)


def provider_key(op: Op, rivals: Iterable[Op] = ()) -> str:
    """The name a config uses for ``op``'s provider: the plugin name, or the distribution name
    when two rivals share the plugin name (compared as `provided_by` compares them)."""
    prov = op.provenance
    same = [r for r in rivals if canonical_name(r.provenance.plugin) == canonical_name(prov.plugin)]
    if len(same) > 1 and prov.distribution:
        return canonical_name(prov.distribution)
    return prov.plugin


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
    return match[0]


def conflict_message(conflicts: Mapping[str, list[Op]], choice: OpChoice) -> str:
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
                    else "no active plugin provides"
                    + (
                        did_you_mean(dep, providers)
                        or f" (fix the name in requires=, or install a plugin providing {dep!r})"
                    )
                )
                dropped[name] = f"its backward requires {dep!r}, which {why}"
                del chosen[name]
                unmet = True
    return chosen, dropped, conflicts


def build_opset(providers: Mapping[str, list[Op]], choice: OpChoice | None = None) -> OpSet:
    """The op set ``choice`` selects from ``providers``, closed under backward: every op's
    dependencies (its ``requires`` + `ESSENTIAL`) are pulled in as hidden members of its
    ``ctx.ops`` even when the set does not show them.

    What cannot be had is confined to itself: an op whose dependency no plugin provides is
    dropped (`OpSet.dropped`), and an op several plugins provide with no choice made is
    contested (`OpSet.conflicts`); using either raises the reason, everything else works.
    Without ``choice``: every op, under its own name."""
    choice = OpChoice() if choice is None else choice
    shown = [n for n in sorted(providers) if choice.shows(n)]
    wanted = [*ESSENTIAL, *shown, *choice.aliases.values()]
    chosen, dropped, conflicts = _resolve(providers, wanted, choice)
    if missing := [n for n in ESSENTIAL if n not in chosen and n not in conflicts]:
        raise PluginError(
            f"essential ops {missing} are unavailable ({dropped[missing[0]]}); the built-in "
            "plugin 'builtin' of the opgraph distribution must load"
        )
    targets = {**{name: name for name in shown}, **choice.aliases}  # shown name -> op name
    skipped = {
        op: f"op {op!r} from {providers[op][0].provenance} was skipped: {dropped[op]}"
        for op in sorted(set(targets.values()) & dropped.keys())
    }
    conflict_messages = {
        name: conflict_message({name: ops}, choice) for name, ops in conflicts.items()
    }
    unavailable = {
        name: f"{choice.source} does not select it (ops.include / ops.exclude)"
        for name in providers
        if name not in shown
    }
    unavailable.update((name, skipped[op]) for name, op in targets.items() if op in skipped)

    def table(names: Mapping[str, str], label: str, fast: bool = False, **extra: Any) -> OpSet:
        """The op set of ``names`` (shown name -> op name), contested names raising; with
        ``fast``, each op's fast path where it has one (`PlainOp.fast`)."""
        return OpSet(
            {
                n: getattr(chosen[op], "fast", chosen[op]) if fast else chosen[op]
                for n, op in names.items()
                if op in chosen
            },
            label,
            contested={n: conflict_messages[op] for n, op in names.items() if op in conflicts},
            **extra,
        )

    # the engine's dispatch table: Variable operators call these positionally
    dispatch = table({n: n for n in ESSENTIAL}, f"the essential ops of {choice.label}", fast=True)
    for op in chosen.values():
        op.deps = table(
            {n: n for n in (*ESSENTIAL, *op.spec.requires)},
            f"ctx.ops of {op.name!r} (only its requires= and the essential ops: "
            "declare every op its backward uses in requires=)",
            fast=True,
        )
        op.dispatch = dispatch
    return table(
        targets,
        choice.label,
        unavailable=unavailable,
        conflicts={name: conflicts[op] for name, op in targets.items() if op in conflicts},
        dropped=skipped,
        dispatch=dispatch,
    )
