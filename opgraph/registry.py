"""The choke point between plugins and users: validate specs, resolve conflicts and
dependencies, and build `OpSet`s whose attributes are ready-to-call `Op`s."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opgraph import engine
from opgraph.contract import KINDS, NAME_RE, Attr, OpSpec
from opgraph.errors import OpDeclarationError, PluginError
from opgraph.op import Op, Provenance
from opgraph.plugins import PluginRecord, discover, load_plugin, warn_failed

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
)
"""Ops the engine itself dispatches to (Variable operators and methods, `unbroadcast`)."""


class OpSet:
    """Ops by attribute (``ops.sin(x)``), iteration (``for op in ops``) and ``name in ops``."""

    def __init__(self, ops: Mapping[str, Op], label: str = "op set") -> None:
        self.__dict__.update(ops)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str) -> Any:  # only called for names that are not ops
        if name.startswith("__"):
            raise AttributeError(name)
        close = difflib.get_close_matches(name, list(self._names()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(f"no op {name!r} in {self._label}{hint}")

    def _names(self) -> Iterator[str]:
        return (k for k in self.__dict__ if not k.startswith("_"))

    def __iter__(self) -> Iterator[Op]:
        return (self.__dict__[k] for k in sorted(self._names()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith("_") and name in self.__dict__

    def __getitem__(self, name: str) -> Op:
        if name not in self:
            return getattr(self, name)  # raises with suggestions
        return self.__dict__[name]

    def __len__(self) -> int:
        return sum(1 for _ in self._names())

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


def _signature_problems(spec: OpSpec) -> Iterator[str]:
    if not isinstance(spec.name, str) or not NAME_RE.match(spec.name):
        yield f"name {spec.name!r} is not a lowercase identifier"
    if not isinstance(spec.inputs, tuple) or not all(isinstance(n, str) for n in spec.inputs):
        yield f"inputs must be a tuple of names, got {spec.inputs!r}"
        return
    names = spec.input_names
    if not names or any(not NAME_RE.match(n) for n in names):
        yield f"inputs {spec.inputs!r} must be non-empty identifiers"
    if any(n.startswith("*") for n in spec.inputs) and not spec.variadic:
        yield "a variadic input (*xs) must be the only input"
    if unknown := set(spec.nondiff) - set(names):
        yield f"nondiff names unknown inputs {sorted(unknown)}"
    if not all(isinstance(a, Attr) for a in spec.attrs):
        yield f"attrs must be Attr objects, got {spec.attrs!r}"
        return
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
    if problems := [*_signature_problems(spec), *_function_problems(spec)]:
        raise OpDeclarationError(f"op {spec.name!r} from {prov} is invalid: " + "; ".join(problems))
    return spec


def collect(records: Iterable[PluginRecord]) -> tuple[dict[str, list[Op]], list[str]]:
    """Valid ops of the active plugins by name (all providers kept), and rejected declarations."""
    providers: dict[str, list[Op]] = {}
    rejected: list[str] = []
    for record in records:
        if record.status != "active":
            continue
        for spec in record.specs:
            try:
                op = Op(validate_spec(spec, record.provenance), record.provenance)
            except OpDeclarationError as exc:
                rejected.append(str(exc))
                continue
            providers.setdefault(op.name, []).append(op)
    return providers, rejected


def _conflict_message(conflicts: dict[str, list[Op]]) -> str:
    lines = ["several plugins provide the same op; choose one per op in your config:"]
    for name, ops in sorted(conflicts.items()):
        who = "; ".join(str(op.provenance) for op in ops)
        lines.append(f"  {name}: provided by {who}")
        lines.append(
            f"    resolve with the config line `prefer: {{{name}: {ops[0].provenance.plugin}}}`"
        )
    return "\n".join(lines)


def build_opset(
    providers: Mapping[str, list[Op]],
    select: Iterable[str] | None = None,
    prefer: Mapping[str, str] | None = None,
    label: str = "op set",
) -> OpSet:
    """An OpSet of the ``select``ed op names (all when None), each op's backward dependencies
    (``requires`` + `ESSENTIAL`) resolved from ``providers`` as hidden members."""
    prefer = prefer or {}
    chosen: dict[str, Op] = {}
    conflicts: dict[str, list[Op]] = {}
    for name, ops in providers.items():
        if len(ops) == 1:
            chosen[name] = ops[0]
        elif name in prefer:
            match = [op for op in ops if op.provenance.plugin == prefer[name]]
            if not match:
                raise PluginError(
                    f"config prefers plugin {prefer[name]!r} for op {name!r}, "
                    "but it is provided only by "
                    + ", ".join(repr(op.provenance.plugin) for op in ops)
                )
            chosen[name] = match[0]
        else:
            conflicts[name] = ops
    if conflicts:
        raise PluginError(_conflict_message(conflicts))
    if missing := [n for n in ESSENTIAL if n not in chosen]:
        raise PluginError(
            f"essential ops {missing} are provided by no active plugin; the built-in plugin "
            "'builtin' (distribution opgraph) must stay enabled"
        )
    names = sorted(chosen) if select is None else list(select)
    visible = {n: chosen[n] for n in names}
    for op in chosen.values():
        deps = {n: chosen[n] for n in (*ESSENTIAL, *op.spec.requires) if n in chosen}
        if missing := [n for n in op.spec.requires if n not in chosen]:
            raise PluginError(
                f"op {op.name!r} from {op.provenance} requires ops {missing} that no active "
                "plugin provides"
            )
        op.deps = OpSet(deps, label=f"the declared dependencies of {op.name!r} (requires=...)")
    return OpSet(visible, label=label)


_default: OpSet | None = None
_records: list[PluginRecord] | None = None


def plugin_records() -> list[PluginRecord]:
    """Load every discovered plugin once per process; warn about the failed ones."""
    global _records
    if _records is None:
        _records = [load_plugin(ep) for ep in discover()]
        for record in _records:
            if record.status == "failed":
                warn_failed(record)
    return _records


def default_opset() -> OpSet:
    """The op set of every installed plugin, built on first use (`opgraph.ops`)."""
    global _default
    if _default is None:
        providers, rejected = collect(plugin_records())
        for message in rejected:
            print(f"opgraph: warning: {message}", file=sys.stderr)
        _default = build_opset(providers, label="the default op set")
        engine._set_default_ops(_default)
    return _default
