"""Coverage: which edge classes of each op a conformance run exercised, and which ones the
op's declaration makes possible but no sample reached.

An *edge class* is a string ``family:detail`` (the families are listed in `FAMILIES`, their
meaning in docs/conformance.md): ``0-d:x`` (input ``x`` was 0-d), ``broadcast:y`` (input ``y``
was stretched against the others), ``layout:sliced``, ``dtype:float32``, ``number:y`` (input
``y`` passed as a Python number), ``dropped:1`` (output 1 unused), ``special:x`` (input ``x``
held one of its domain's special values), ``attr:axis=negative int``, ``check:bad_input`` (the
check ran on at least one item). Inputs are named, so every input of a variadic op is the same
input.

`edge_classes` reads one `samples.Case` (from the grid or from any other generator);
`applicable_classes` derives the possible classes from the declaration, probing the shape
rule on shapes derived from a few base calls; `Coverage` accumulates both per op over a run,
with the results of the checks.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from opgraph.attrs import AttrType, Choice
from opgraph.conformance.checks import REGISTRY
from opgraph.conformance.guard import ends_run
from opgraph.conformance.samples import (
    DERIVED_SOURCES,
    LAYOUTS,
    Case,
    layout_of,
    materialize,
    rule_verdict,
    special_values,
)
from opgraph.contract import REQUIRED, Attr, OpSpec, Shape
from opgraph.registry import safe_repr

FAMILIES = (
    "0-d",
    "size-0",
    "size-1",
    "broadcast",
    "layout",
    "dtype",
    "constant",
    "number",
    "dropped",
    "special",
    "attr",
    "check",
)
"""The families of edge classes, in the order reports list them."""

_BASE_SHAPES: tuple[Shape, ...] = ((5,), (2, 3), (2, 3, 4))
"""Shapes every input of a base call gets, for probing the shape rule without any sample."""
_MAX_ATTR_VALUES = 32
"""Values of one attribute's ``examples`` or type looked at per base call."""
Call = tuple[tuple[Shape, ...], Mapping[str, Any]]
"""The shapes and attributes of one call: what the shape rule sees."""


def _input_name(spec: OpSpec, k: int) -> str:
    names = spec.input_names
    return names[min(k, len(names) - 1)]


def _attempt(function: Any, *args: Any) -> Any:
    """``function(*args)``, or the exception plugin code in it raised, returned (a broken rule,
    ``examples`` or check must not stop a report; SystemExit included); a real Ctrl-C or the
    op's time limit still propagates."""
    try:
        return function(*args)
    except BaseException as exc:
        if ends_run(exc):
            raise
        return exc


def _guarded(function: Any, *args: Any) -> Any:
    """``function(*args)``, or None when it raises."""
    result = _attempt(function, *args)
    return None if isinstance(result, BaseException) else result


# --- classes of one call ---
def _output_shapes(verdict: Any) -> list[tuple]:
    """The shape rule's answer as a list of output shapes (empty for anything else)."""
    if _is_shape(verdict):
        return [tuple(verdict)]
    if isinstance(verdict, (tuple, list)):
        return [tuple(s) for s in verdict if _is_shape(s)]
    return []


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in value
    )


def _broadcast_shape(shapes: tuple[Shape, ...]) -> tuple | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except (ValueError, TypeError):
        return None


def shape_classes(spec: OpSpec, shapes: tuple[Shape, ...], verdict: Any) -> set[str]:
    """0-d, size-0 and size-1 inputs, and each input the op stretched against the others: one
    whose shape differs from the inputs' broadcast shape, when that is an output's shape (a
    join of unequal sizes or a matmul is no broadcast)."""
    found = set()
    for k, shape in enumerate(shapes):
        name = _input_name(spec, k)
        size = math.prod(shape)
        if not shape:
            found.add(f"0-d:{name}")
        elif size == 0:
            found.add(f"size-0:{name}")
        elif size == 1:
            found.add(f"size-1:{name}")
    if len(shapes) > 1:
        joint = _broadcast_shape(shapes)
        if joint is not None and joint in _output_shapes(verdict):
            found |= {
                f"broadcast:{_input_name(spec, k)}" for k, s in enumerate(shapes) if s != joint
            }
    return found


def effective_layout(shape: Shape, layout: str) -> str:
    """The layout an input of ``shape`` really has when laid out as ``layout``: a 1-d array
    cannot be transposed, and a one-element one is contiguous whichever way it is cut."""
    if layout not in LAYOUTS or layout == "contiguous":
        return "contiguous"
    return _small_layout(tuple(min(d, 2) for d in shape), layout)


@lru_cache(maxsize=1024)
def _small_layout(shape: Shape, layout: str) -> str:
    """`effective_layout` on a shape of sizes 0, 1 and 2 only: whether an axis is empty, of
    size 1 or longer is all that contiguity depends on, so no large array is ever built."""
    return layout_of(materialize(np.zeros(shape, dtype=np.int8), layout))


def value_classes(value: Any, check: Any = None) -> set[str]:
    """The classes of one attribute value, derived from its type: None, True/False, negative
    int/zero/positive int, floats by sign, str, (empty) tuples and lists and whether they hold
    a negative, arrays by element kind, rank, negatives and repeats; a `Choice`'s options each
    their own class; any other object its type's name."""
    if isinstance(check, Choice):
        return {safe_repr(value, 40)}
    for kinds, classes in _VALUE_CLASSES:
        if isinstance(value, kinds):
            return classes(value)
    if callable(value):
        return {"callable"}
    return {type(value).__name__.encode("unicode_escape").decode("ascii")[:40]}


def _signed(number: float, word: str, zero: str | None = None) -> str:
    if number < 0:
        return f"negative {word}"
    return (zero or f"zero {word}") if number == 0 else f"positive {word}"


def _float_classes(value: Any) -> set[str]:
    number = float(value)
    return {_signed(number, "float") if math.isfinite(number) else "non-finite float"}


def _sequence_classes(value: tuple | list) -> set[str]:
    kind = type(value).__name__ if type(value) in (tuple, list) else "sequence"
    if not value:
        return {f"empty {kind}"}
    negative = any(isinstance(v, numbers.Real) and v < 0 for v in value)
    return {kind} | ({f"{kind} with a negative"} if negative else set())


def _array_classes(value: np.ndarray) -> set[str]:
    words = {"i": "int", "u": "int", "f": "float", "b": "bool", "c": "complex"}
    kind = f"{words.get(value.dtype.kind, str(value.dtype.kind))} array"
    if not value.size:
        return {f"empty {kind}"}
    found = {kind} if value.ndim == 1 else {f"{value.ndim}-d {kind}"}
    if value.dtype.kind in "iu":
        if (value < 0).any():
            found.add(f"{kind} with a negative")
        if np.unique(value).size < value.size:
            found.add(f"{kind} with a repeat")
    return found


_VALUE_CLASSES: tuple[tuple[Any, Any], ...] = (
    (type(None), lambda v: {"None"}),
    ((bool, np.bool_), lambda v: {str(bool(v))}),  # before int: a bool is an int
    (numbers.Integral, lambda v: {_signed(int(v), "int", "zero")}),
    (numbers.Real, _float_classes),
    (str, lambda v: {"str"}),
    ((tuple, list), _sequence_classes),
    (np.ndarray, _array_classes),
    (np.dtype, lambda v: {"dtype"}),
    (type, lambda v: {"type"}),
)
"""The classes of a value by its type, the first type that matches."""


def _normal(attr: Attr, value: Any) -> Any:
    """The value as the op receives it (the value itself where the check rejects it)."""
    normal = value if attr.check is None else _attempt(attr.check, value)
    return value if isinstance(normal, BaseException) else normal


def attr_classes(attr: Attr, value: Any) -> set[str]:
    """``attr:NAME=default`` or ``attr:NAME=non-default``, and its value's classes."""
    default = attr.default is not REQUIRED and _same(
        _normal(attr, value), _normal(attr, attr.default)
    )
    value_class = _guarded(value_classes, value, attr.check) or {"unclassified"}
    classes = {"default" if default else "non-default", *value_class}
    return {f"attr:{attr.name}={c}" for c in classes}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and safe_repr(a, 10_000) == safe_repr(b, 10_000)


def _special_classes(spec: OpSpec, values: tuple[np.ndarray, ...]) -> set[str]:
    """The inputs holding a special value of their domain (an object array of unhashable
    elements holds none)."""
    found = set()
    for k, array in enumerate(values):
        domain = spec.input_domain(k)
        if domain is None or not array.size:
            continue
        specials = _specials(domain, array.dtype)
        if specials and _guarded(_holds_any, array, specials):
            found.add(f"special:{_input_name(spec, k)}")
    return found


def _holds_any(array: np.ndarray, values: frozenset[float]) -> bool:
    return not values.isdisjoint(array.ravel().tolist())


def _special_set(domain: Any, dtype: Any) -> frozenset[float]:
    """`special_values` as the values an array of ``dtype`` holds (none for a domain or dtype
    that breaks it)."""
    found = _guarded(
        lambda: frozenset(np.asarray(special_values(domain, dtype), dtype=dtype).tolist())
    )
    return found or frozenset()


_cached_specials = lru_cache(maxsize=1024)(_special_set)


def _specials(domain: Any, dtype: Any) -> frozenset[float]:
    """`_special_set`, remembered per domain and dtype."""
    try:
        return _cached_specials(domain, dtype)
    except TypeError:  # a domain that cannot be hashed
        return _special_set(domain, dtype)


def edge_classes(spec: OpSpec, case: Case) -> frozenset[str]:
    """The edge classes one sample call exercises (any `Case`, from the grid or not); the
    ``check:`` classes come from results, not from cases. Never raises on a broken shape
    rule: the rule is asked only whether an output has the inputs' broadcast shape."""
    shapes = tuple(tuple(v.shape) for v in case.values)
    verdict = _attempt(rule_verdict, spec, shapes, case.attrs) if len(shapes) > 1 else None
    found = shape_classes(spec, shapes, verdict)
    found |= {
        f"layout:{effective_layout(s, lay)}" for s, lay in zip(shapes, case.layouts, strict=True)
    }
    found.add(f"dtype:{case.dtype}")
    kind = "number" if case.numbers else "constant"
    found |= {f"{kind}:{_input_name(spec, k)}" for k in case.constants}
    found |= {f"dropped:{m}" for m in case.dropped}
    found |= _special_classes(spec, case.values)
    for attr in spec.attrs:
        value = case.attrs.get(attr.name, attr.default)
        if value is not REQUIRED:
            found |= attr_classes(attr, value)
    return frozenset(found)


# --- what a declaration makes possible ---
def declared_classes(spec: OpSpec) -> set[str]:
    """The classes the declaration alone allows, without calling the shape rule: each declared
    dtype, each attribute's default, each output of a multi-output op unused, special values
    for each input whose domain has some in a declared dtype."""
    found = {f"dtype:{d}" for d in spec.dtypes}
    for attr in spec.attrs:
        if attr.default is not REQUIRED:
            found |= attr_classes(attr, attr.default)
    if spec.n_outputs > 1:
        found |= {f"dropped:{m}" for m in range(spec.n_outputs)}
    for k in range(len(spec.inputs)):
        domain = spec.input_domain(k)
        if domain is not None and any(_specials(domain, d) for d in spec.dtypes):
            found.add(f"special:{_input_name(spec, k)}")
    return found


def _candidate_shapes(shape: Shape) -> Iterator[Shape]:
    """Shapes an input of ``shape`` could take instead, for the classes a shape rule may
    accept: 0-d, empty, one element, fewer axes, and each axis of size 0 or 1."""
    yield from ((), (0,), (1,))
    if shape:
        yield (1,) * len(shape)
        yield shape[1:]
        for i in range(len(shape)):
            yield from ((*shape[:i], 0, *shape[i + 1 :]), (*shape[:i], 1, *shape[i + 1 :]))


def _probes(shapes: tuple[Shape, ...]) -> Iterator[tuple[Shape, ...]]:
    """The call itself, then each input in turn, and all inputs at once, changed to each of
    its candidate shapes (ops that need equal shapes take 0-d inputs only all together)."""
    yield shapes
    for k, shape in enumerate(shapes):
        for changed in _candidate_shapes(shape):
            yield (*shapes[:k], changed, *shapes[k + 1 :])
    if len(shapes) > 1:
        for changed in _candidate_shapes(shapes[0]):
            yield (changed,) * len(shapes)


def _layout_classes(shapes: tuple[Shape, ...]) -> set[str]:
    return {f"layout:{effective_layout(s, lay)}" for s in shapes for lay in LAYOUTS}


def _call_classes(spec: OpSpec, shapes: tuple[Shape, ...], attrs: Mapping[str, Any]) -> set[str]:
    """The shape, layout and constant classes of one call the shape rule accepts (none when it
    raises anything)."""
    verdict = _attempt(rule_verdict, spec, shapes, attrs)
    if isinstance(verdict, BaseException):
        return set()
    found = shape_classes(spec, shapes, verdict) | _layout_classes(shapes)
    if len(shapes) > 1:
        for k, shape in enumerate(shapes):
            found.add(f"constant:{_input_name(spec, k)}")
            if not shape:
                found.add(f"number:{_input_name(spec, k)}")
    return found


def _offered_values(attr: Attr, shapes: tuple[Shape, ...]) -> list[Any]:
    """The default, the ``examples`` and what the attribute's type generates for ``shapes``."""
    offered = [] if attr.default is REQUIRED else [attr.default]
    sources = [attr.examples] if attr.examples is not None else []
    if isinstance(attr.check, AttrType):
        sources.append(attr.check.valid)
    for source in sources:
        values = _guarded(lambda s=source: list(itertools.islice(s(shapes), _MAX_ATTR_VALUES)))
        offered += values or []
    return offered


def _attr_possible(spec: OpSpec, call: Call) -> set[str]:
    """The attribute classes of every offered value the shape rule accepts on ``call``."""
    shapes, attrs = call
    found = set()
    for attr in spec.attrs:
        for value in _offered_values(attr, shapes):
            if not isinstance(
                _attempt(rule_verdict, spec, shapes, {**attrs, attr.name: value}), BaseException
            ):
                found |= attr_classes(attr, value)
    return found


def _probe_universe(spec: OpSpec, n: int) -> set[str]:
    """Every shape, layout and constant class a call with ``n`` inputs could show."""
    found = {f"layout:{lay}" for lay in LAYOUTS}
    for name in dict.fromkeys(_input_name(spec, k) for k in range(n)):
        found |= {f"{family}:{name}" for family in ("0-d", "size-0", "size-1")}
        if n > 1:
            found |= {f"{family}:{name}" for family in ("broadcast", "constant", "number")}
    return found


def probed_classes(
    spec: OpSpec, calls: Iterable[Call], known: frozenset[str] | set[str] = frozenset()
) -> set[str]:
    """The shape, layout, constant and attribute classes the shape rule accepts on shapes
    derived from ``calls`` (the shapes are not probed once every class they could show is in
    ``known`` or found); a rule that raises (even a bug of its own) accepts nothing."""
    found: set[str] = set()
    for shapes, attrs in calls:
        universe = _probe_universe(spec, len(shapes))
        for probe in dict.fromkeys(_probes(shapes)):
            if universe <= found | known:
                break
            found |= _call_classes(spec, probe, attrs)
        found |= _attr_possible(spec, (shapes, attrs))
    return found


def base_calls(spec: OpSpec) -> Iterator[Call]:
    """Calls to probe from without any sample: every input of each `_BASE_SHAPES`, attributes
    at their defaults (a required one at its first example or generated value)."""
    counts = (
        (2,) if spec.variadic else tuple(dict.fromkeys((len(spec.inputs), spec.n_required_inputs)))
    )
    for n, shape in itertools.product(counts, _BASE_SHAPES):
        shapes = (shape,) * n
        attrs: dict[str, Any] = {}
        for attr in spec.attrs:
            if attr.default is not REQUIRED:
                continue
            offered = _offered_values(attr, shapes)
            if not offered:
                break
            attrs[attr.name] = offered[0]
        else:
            yield shapes, attrs


def applicable_classes(spec: OpSpec, cases: Iterable[Case] = ()) -> frozenset[str]:
    """Every class the declaration makes possible: `declared_classes`, and what the shape rule
    accepts on shapes derived from `base_calls` and from the calls of ``cases`` (a ``custom``
    op's shapes come only from its samples). Never raises on a broken declaration."""
    calls = [*base_calls(spec), *((_shapes_of(c), dict(c.attrs)) for c in cases)]
    return frozenset(declared_classes(spec) | probed_classes(spec, calls))


def _shapes_of(case: Case) -> tuple[Shape, ...]:
    return tuple(tuple(v.shape) for v in case.values)


# --- accumulating over a run ---
@dataclass
class OpCoverage:
    """The coverage of one op: how often each class was exercised (samples for a shape, value
    or attribute class, items for a ``check:`` class) and which classes were possible."""

    op: str
    plugin: str
    possible: set[str]
    counts: Counter = field(default_factory=Counter)
    reasons: dict[str, str] = field(default_factory=dict)
    """Why each check that never ran did not (its first skip or error message)."""
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Checks that do not apply to the op at all (no reference, no rival), with the reason:
    not counted."""
    signatures: set[tuple] = field(default_factory=set)
    """Input counts and ranks of the samples the shape rule was probed from."""

    @property
    def classes(self) -> list[str]:
        """Every applicable class, by family: the possible ones and whatever ran."""
        every = (self.possible | set(self.counts)) - set(self.not_applicable)
        return sorted(every, key=_class_order)

    @property
    def missing(self) -> list[str]:
        return [c for c in self.classes if not self.counts[c]]

    @property
    def exercised(self) -> int:
        return sum(bool(self.counts[c]) for c in self.classes)

    @property
    def percent(self) -> float:
        return _percent(self.exercised, len(self.classes))

    def as_dict(self) -> dict[str, Any]:
        """The op's row of the JSON matrix (docs/conformance.md)."""
        return {
            "plugin": self.plugin,
            "percent": self.percent,
            "exercised": self.exercised,
            "applicable": len(self.classes),
            "classes": {c: self.counts[c] for c in self.classes},
            "missing": self.missing,
            "reasons": {c: r for c, r in self.reasons.items() if not self.counts[c]},
            "not_applicable": dict(self.not_applicable),
        }


def _class_order(name: str) -> tuple[int, str]:
    family = name.split(":", 1)[0]
    return (FAMILIES.index(family) if family in FAMILIES else len(FAMILIES), name)


def _percent(part: int, whole: int) -> float:
    """One decimal; 0 when nothing was possible (nothing was checked either)."""
    return round(100.0 * part / whole, 1) if whole else 0.0


class Coverage:
    """Edge classes exercised per op over a run: the runner calls `add_op` per op checked,
    `record` per sample it runs and `record_result` per result; any other generator of
    `Case` objects may feed the same accumulator."""

    def __init__(self) -> None:
        self.ops: dict[str, OpCoverage] = {}

    def add_op(self, spec: OpSpec, plugin: str = "") -> OpCoverage:
        """The op's entry, made on first sight with the classes its declaration allows."""
        if spec.name not in self.ops:
            self.ops[spec.name] = OpCoverage(spec.name, plugin, set(applicable_classes(spec)))
        return self.ops[spec.name]

    def record(self, spec: OpSpec, case: Case, plugin: str = "") -> None:
        """One sample call that ran; the first sample of each input count and ranks (up to
        `DERIVED_SOURCES` of them) is also probed for the classes its shapes allow."""
        entry = self.add_op(spec, plugin)
        entry.counts.update(edge_classes(spec, case))
        shapes = _shapes_of(case)
        signature = tuple(len(s) for s in shapes)
        if signature not in entry.signatures and len(entry.signatures) < DERIVED_SOURCES:
            entry.signatures.add(signature)
            entry.possible |= probed_classes(spec, [(shapes, dict(case.attrs))], entry.possible)

    def record_result(self, result: Any) -> None:
        """One check result (an `opgraph.conformance.runner.Result`) of an added op: the check
        ran when the result is about a call (it describes one: a sample, a bad input, an
        explored call) and is not a skip; an op-wide result (no call) that is a skip other
        than the check's empty-scope one means the check does not apply to the op, and an
        op-wide error (samples that could not be generated, a time-out) that it never ran."""
        entry = self.ops.get(result.op)
        if entry is None:  # a contested op: nobody was checked
            return
        name = f"check:{result.check}"
        check = REGISTRY.get(result.check)
        if result.status != "skip" and result.sample_desc:
            entry.counts[name] += 1
        elif (
            result.status == "skip"
            and result.sample is None
            and check is not None
            and (result.message != check.when_empty)
        ):
            entry.not_applicable[name] = result.message
        else:
            entry.possible.add(name)
            entry.reasons.setdefault(name, result.message)

    def record_results(self, results: Iterable[Any]) -> None:
        for result in results:
            self.record_result(result)

    @property
    def exercised(self) -> int:
        return sum(e.exercised for e in self.ops.values())

    @property
    def applicable(self) -> int:
        return sum(len(e.classes) for e in self.ops.values())

    @property
    def percent(self) -> float:
        """Exercised classes over applicable classes, summed over the ops."""
        return _percent(self.exercised, self.applicable)

    def summary(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "exercised": self.exercised,
            "applicable": self.applicable,
            "ops": len(self.ops),
        }

    def as_dict(self) -> dict[str, Any]:
        """The whole matrix, JSON-serialisable: `summary` plus one row per op."""
        return {**self.summary(), "matrix": {op: e.as_dict() for op, e in self.ops.items()}}
