"""Sample calls of an op, generated from its declaration alone (plus its optional hints).

Every sample is deterministic given the run's seed and the op's name, so a sample index names
the same call in every run: that is what makes the replay command exact. Arrays are kept as
contiguous values plus a *layout* and rebuilt fresh for every use, so a check never sees
another check's mutation and non-contiguous views stay non-contiguous.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from opgraph.attrs import AttrType, Invalid
from opgraph.contract import REQUIRED, Attr, Domain, OpSpec, Sample, Shape
from opgraph.errors import OpArgumentError, ShapeError

LAYOUTS = ("contiguous", "transposed", "sliced", "reversed")
"""How an input array is laid out in memory: C order, F order (a transposed view), every other
element of a wider array, or negative strides along the first axis."""

_ELEMENTWISE_SHAPES: tuple[Shape, ...] = ((), (1,), (5,), (2, 3), (2, 1, 3), (0, 3))
_VIEWS: tuple[tuple[Shape, str], ...] = (
    ((3, 4), "transposed"),
    ((2, 3), "sliced"),
    ((4,), "reversed"),
)
_BROADCAST_PAIRS: tuple[tuple[Shape, Shape], ...] = (
    ((2, 3), (2, 3)),
    ((), (2, 3)),
    ((3,), (2, 3)),
    ((2, 1), (1, 3)),
    ((4, 1, 3), (2, 1)),
    ((1,), (2, 1, 3)),
    ((0, 3), (3,)),
)
_REDUCTION_SHAPE: Shape = (2, 3, 4)
_REDUCTION_AXES: tuple[Any, ...] = (None, 0, 1, -1, (0, 2), (-1, 0))
_REDUCTION_EXTRA: tuple[tuple[Shape, str, Any], ...] = (
    ((), "contiguous", None),
    ((1,), "contiguous", 0),
    ((5,), "contiguous", -1),
    ((0, 3), "contiguous", 1),
    ((3, 4), "transposed", 0),
    ((2, 3), "sliced", -1),
    ((4, 2), "reversed", (0, 1)),
)
_MAX_ATTR_COMBINATIONS = 6
"""Attribute combinations per shape when the full product is larger: then every value of every
attribute still comes up once (see `_attr_grid`)."""
_VARIADIC_COUNT = 3
_VARIADIC_FEW = (1, 2)
"""The input counts a variadic op also gets, on `_VARIADIC_SHAPES`."""
_VARIADIC_SHAPES: tuple[Shape, ...] = ((5,), (2, 1, 3))
"""Shapes of the extra variadic samples: fewer inputs, and sizes that differ along an axis."""
_BAD_INPUT_STREAM = 2**31 - 1
"""Keeps the random values of bad inputs apart from those of the samples."""
_VARIANT_STREAM = 2**31 - 2
"""Keeps the random values of constant-input variants apart from those of the samples."""
_DERIVED_BAD = 8
"""Bad-input samples derived from the shape rule per op (the declared error inputs come on top)."""
DERIVED_SOURCES = 8
"""How many of the first valid samples wrong shapes (and invalid attribute values) are derived
from, for bad inputs and for the shape rule's own probe."""
_BAD_ATTRS_PER_TYPE = 3
"""Rejected values per typed attribute (`opgraph.attrs.AttrType.invalid`)."""
_VARIANT_SOURCES = 1
"""Valid samples per dtype that constant-input and dropped-output variants are derived from."""
_EDGE_INSET = 0.01
"""Domain edges are sampled this fraction of the domain's width inside it."""


@dataclass(frozen=True)
class Case:
    """One call of an op: input values with their layouts, attributes and a description."""

    index: int
    dtype: str
    values: tuple[np.ndarray, ...]
    layouts: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    constants: tuple[int, ...] = ()
    """Inputs passed as plain arrays (or numbers, with ``numbers``) instead of Variables, so
    ``ctx.needs_input_grad`` is False for them."""
    numbers: bool = False
    """Pass the ``constants`` as Python numbers (they are 0-d)."""
    dropped: tuple[int, ...] = ()
    """Outputs of a multi-output op nobody uses: dead before backward, zero cotangent."""
    stream: tuple[int, int] | None = None
    """(seed, index) the checks' random streams (cotangents, projections) derive from; None:
    the run's seed and ``index``. A saved case keeps those it was found with, so it replays
    bit for bit under any seed and at any position."""
    source: str | None = None
    """The case file (or ``--case`` JSON) this call was read from: what replays it."""
    thorough: bool = False
    """Run on it the checks that otherwise take only an op's first samples (``trace``, the
    shape rule's derived probes): explored and saved cases are each worth the full cost."""

    def inputs(self) -> tuple[np.ndarray, ...]:
        """Fresh arrays for one use (never shared between checks)."""
        return tuple(materialize(v, lay) for v, lay in zip(self.values, self.layouts, strict=True))

    def describe(self) -> str:
        """``float32 (2, 3) sliced, float32 (3,); axis=-1`` — enough to rebuild the call by
        hand."""
        parts = [
            f"{v.dtype} {v.shape}" + ("" if lay == "contiguous" else f" {lay}")
            for v, lay in zip(self.values, self.layouts, strict=True)
        ]
        text = ", ".join(parts)
        if self.attrs:
            text += "; " + " ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        notes = [self.note] if self.note else []
        if self.constants:
            kind = "number" if self.numbers else "array"
            notes.append(f"input {_listed(self.constants)} a constant {kind}")
        if self.dropped:
            notes.append(f"output {_listed(self.dropped)} unused")
        return text + (f" ({'; '.join(notes)})" if notes else "")


def _listed(indices: tuple[int, ...]) -> str:
    return ", ".join(map(str, indices))


@dataclass(frozen=True)
class BadCase:
    """A call the op must reject: shapes its rule rejects, or one of its declared error inputs."""

    index: int
    values: tuple[np.ndarray, ...]
    attrs: Mapping[str, Any]
    error: type[BaseException]
    match: str | None
    note: str
    must_name: tuple[str, ...] = ()
    """What the error message must contain (derived cases: the op and every input shape)."""

    def describe(self) -> str:
        shapes = ", ".join(str(v.shape) for v in self.values)
        attrs = " ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"shapes {shapes}" + (f"; {attrs}" if attrs else "") + f" ({self.note})"


def materialize(values: np.ndarray, layout: str) -> np.ndarray:
    """A new array equal to ``values`` with the given memory layout."""
    if layout == "transposed" and values.ndim >= 2:  # a copy even where C and F order agree
        return np.array(values, order="F", copy=True)
    if layout == "sliced" and values.ndim >= 1:
        wide = np.empty((*values.shape[:-1], 2 * values.shape[-1]), dtype=values.dtype)
        wide[..., ::2] = values
        return wide[..., ::2]
    if layout == "reversed" and values.ndim >= 1:
        return np.array(values[::-1], copy=True)[::-1]
    return np.array(values, copy=True)


def layout_of(array: np.ndarray) -> str:
    """The layout closest to a given array's (for package-provided samples)."""
    if array.flags.c_contiguous:
        return "contiguous"
    if array.flags.f_contiguous:
        return "transposed"
    if any(s < 0 for s in array.strides):
        return "reversed"
    return "sliced"


def op_rng(seed: int, op: str, *more: int) -> np.random.Generator:
    """A generator that depends only on the seed, the op name and ``more`` (never on which
    other ops or samples run), so selections replay the same numbers."""
    return np.random.default_rng([seed, zlib.crc32(op.encode()), *more])


def random_values(
    rng: np.random.Generator, shape: Shape, dtype: str, domain: Domain | None
) -> np.ndarray:
    """Values inside ``domain`` and at least ``margin`` from each of its ``avoid`` points.

    Inputs without a domain (labels, indices) get small non-negative integers.
    """
    if domain is None:
        return rng.integers(0, 3, size=shape).astype(np.int64)
    if np.dtype(dtype).kind in "iu":
        low, high = int(np.ceil(domain.low)), int(np.floor(domain.high))
        values = rng.integers(low, high + 1, size=shape)
        values = np.where(_too_close(values, domain), high, values)
        return values.astype(dtype)
    values = rng.uniform(domain.low, domain.high, size=shape)
    for _ in range(100):
        bad = _too_close(values, domain)
        if not bad.any():
            break
        values[bad] = rng.uniform(domain.low, domain.high, size=int(bad.sum()))
    return values.astype(dtype)


def special_values(domain: Domain, dtype: str) -> list[float]:
    """The values where implementations break, by rule from the domain: exact zero, +-1, both
    edges (a hair inside: the edge itself may be a pole, as 0 is for log) and the points next
    to each declared kink or pole, each kept when it lies strictly inside the domain and outside
    every ``avoid`` margin; rounded and deduplicated for integer dtypes."""
    inset = _EDGE_INSET * (domain.high - domain.low)
    kinks = [p + s * 1.5 * domain.margin for p in domain.avoid for s in (-1, 1)]
    candidates = [0.0, 1.0, -1.0, domain.low + inset, domain.high - inset, *kinks]
    if np.dtype(dtype).kind in "iu":
        candidates = [float(round(c)) for c in candidates]
    found = []
    for c in candidates:
        inside = domain.low < c < domain.high
        if inside and not _too_close(np.array(c), domain) and c not in found:
            found.append(c)
    return found


def mix_special_values(
    rng: np.random.Generator, values: np.ndarray, domain: Domain, rotation: int
) -> np.ndarray:
    """``values`` with the domain's special values written at distinct random positions, each
    once (so reductions see no ties); a 0-d array takes one of them, by ``rotation``."""
    specials = special_values(domain, str(values.dtype))
    if not specials or not values.size:
        return values
    out = values.copy()
    flat = out.reshape(-1)
    if flat.size == 1:
        flat[0] = specials[rotation % len(specials)]
        return out
    count = min(len(specials), flat.size - 1)  # keep one random value
    where = rng.choice(flat.size, size=count, replace=False)
    flat[where] = np.asarray(specials[:count], dtype=out.dtype)
    return out


def _too_close(values: np.ndarray, domain: Domain) -> np.ndarray:
    bad = np.zeros(values.shape, dtype=bool)
    for point in domain.avoid:
        bad |= np.abs(values - point) < domain.margin
    return bad


def resolved_attrs(spec: OpSpec, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Every attribute as forward and the shape rule receive it: defaults filled in, values
    normalised by their ``check``."""
    full = {a.name: a.default for a in spec.attrs if a.default is not REQUIRED}
    full.update(attrs)
    checks = {a.name: a.check for a in spec.attrs if a.check is not None}
    return {k: checks[k](v) if k in checks else v for k, v in full.items()}


def rule_verdict(spec: OpSpec, shapes: Iterable[Shape], attrs: Mapping[str, Any]) -> Any:
    """What the shape rule says about a call: its output shape(s), the `ShapeError` it raised
    (a rejection), or any other exception it raised (its own bug), returned, not raised."""
    try:
        return spec.shape_rule(*shapes, **resolved_attrs(spec, attrs))
    except Exception as exc:
        return exc


def _rule_accepts(spec: OpSpec, shapes: Iterable[Shape], attrs: Mapping[str, Any]) -> bool:
    """False when the shape rule rejects the call; any other error is the rule's own bug, which
    the shape_rule check reports, so such calls are kept."""
    return not isinstance(rule_verdict(spec, shapes, attrs), ShapeError)


def _typed_values(attr: Attr, shapes: tuple[Shape, ...], examples: list[Any]) -> list[Any]:
    """What the attribute's type generates, and a repeated position added to each integer
    index array among the examples: a gradient must accumulate repeats, which examples
    written without one never show."""
    found = attr.check.valid(shapes) if isinstance(attr.check, AttrType) else []
    for example in examples:
        if _distinct_positions(example):
            found.append(np.concatenate([example, example[:1]]))
    return found


def _distinct_positions(value: Any) -> bool:
    return (
        isinstance(value, np.ndarray)
        and value.dtype.kind in "iu"
        and value.ndim == 1
        and value.size > 0
        and len(set(value.tolist())) == value.size
    )


def _attr_grid(
    spec: OpSpec, shapes: tuple[Shape, ...], fixed: Mapping[str, Any]
) -> list[tuple[dict[str, Any], bool]]:
    """Attribute combinations, each with whether it holds a value only an attribute's type
    generated: defaults, declared examples and the values a typed attribute generates, fixed
    ones as given. The full product when it is small, else a cover in which every value of
    every attribute occurs (so no permutation is cut off)."""
    choices: list[list[tuple[str, Any, bool]]] = []
    for attr in spec.attrs:
        if attr.name in fixed:
            choices.append([(attr.name, fixed[attr.name], False)])
            continue
        values = [] if attr.default is REQUIRED else [(attr.default, False)]
        generated = list(attr.examples(shapes)) if attr.examples is not None else []
        typed = _typed_values(attr, shapes, generated)
        for v, by_type in [*((v, False) for v in generated), *((v, True) for v in typed)]:
            if not any(_same(v, w) for w, _ in values):
                values.append((v, by_type))
        if not values:
            return []
        choices.append([(attr.name, v, by_type) for v, by_type in values])
    if math.prod(len(c) for c in choices) <= _MAX_ATTR_COMBINATIONS:
        combos = list(itertools.product(*choices))
    else:
        longest = max(len(c) for c in choices)
        combos = [tuple(c[i % len(c)] for c in choices) for i in range(longest)]
    return [({n: v for n, v, _ in combo}, any(t for *_, t in combo)) for combo in combos]


def _keeps(spec: OpSpec, shapes: tuple[Shape, ...], attrs: Mapping[str, Any], typed: bool) -> bool:
    """Whether a generated call becomes a sample: not when the shape rule rejects it; a rule
    that crashes keeps a declared call (shape_rule reports the crash) but not one holding a
    value only a type generated (the op never claimed to take it)."""
    verdict = rule_verdict(spec, shapes, attrs)
    return not isinstance(verdict, ShapeError) and not (typed and isinstance(verdict, Exception))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and repr(a) == repr(b)


def _input_count(spec: OpSpec) -> int:
    return _VARIADIC_COUNT if spec.variadic else len(spec.inputs)


def _variadic_shapes(spec: OpSpec) -> Iterator[tuple[tuple[Shape, ...], tuple[str, ...], dict]]:
    """Fewer inputs, and inputs whose sizes differ along one axis (the rule keeps those that
    differ along the join axis)."""
    for n in _VARIADIC_FEW:
        for shape in _VARIADIC_SHAPES:
            yield (shape,) * n, ("contiguous",) * n, {}
    for shape in _VARIADIC_SHAPES:
        for a in range(len(shape)):
            sizes = (shape[a], 1, shape[a] + 1)
            shapes = tuple((*shape[:a], d, *shape[a + 1 :]) for d in sizes)
            yield shapes, ("contiguous",) * len(shapes), {}


def _layouts_for(spec: OpSpec) -> Iterator[tuple[tuple[Shape, ...], tuple[str, ...], dict]]:
    """(shapes, layouts, fixed attributes) per generated call, by the op's ``kind``."""
    n = _input_count(spec)
    if spec.kind in ("elementwise", "shape"):
        for shape in _ELEMENTWISE_SHAPES:
            yield (shape,) * n, ("contiguous",) * n, {}
        for shape, layout in _VIEWS:
            yield (shape,) * n, (layout,) * n, {}
        if spec.variadic:
            yield from _variadic_shapes(spec)
    elif spec.kind == "broadcast":
        for a, b in _BROADCAST_PAIRS:
            for first, rest in dict.fromkeys(((a, b), (b, a))):
                yield (first,) + (rest,) * (n - 1), ("contiguous",) * n, {}
        for shape, layout in _VIEWS:
            yield (shape,) * n, (layout,) + ("contiguous",) * (n - 1), {}
    elif spec.kind == "reduction":
        names = {a.name for a in spec.attrs}
        keepdims = (False, True) if "keepdims" in names else (None,)
        for axis, keep in itertools.product(_REDUCTION_AXES, keepdims):
            yield (_REDUCTION_SHAPE,) * n, ("contiguous",) * n, _reduction_attrs(names, axis, keep)
        for shape, layout, axis in _REDUCTION_EXTRA:
            yield (shape,) * n, (layout,) * n, _reduction_attrs(names, axis, None)


def _reduction_attrs(names: set[str], axis: Any, keepdims: bool | None) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    if "axis" in names:
        fixed["axis"] = axis
    if "keepdims" in names and keepdims is not None:
        fixed["keepdims"] = keepdims
    return fixed


def run_dtypes(spec: OpSpec, restrict: Iterable[str] | None) -> tuple[str, ...]:
    """The op's declared dtypes, intersected with the run's restriction."""
    if restrict is None:
        return tuple(spec.dtypes)
    allowed = set(restrict)
    return tuple(d for d in spec.dtypes if d in allowed)


def _generated_values(
    rng: np.random.Generator, spec: OpSpec, shapes: tuple[Shape, ...], dtype: str, index: int
) -> tuple[np.ndarray, ...]:
    """Random values in each input's domain; one input (in turn, by sample ``index``) also
    holds the domain's special values."""
    values = []
    with_domain = [k for k in range(len(shapes)) if spec.input_domain(k) is not None]
    special = with_domain[index % len(with_domain)] if with_domain else None
    for k, shape in enumerate(shapes):
        domain = spec.input_domain(k)
        array = random_values(rng, shape, dtype, domain)
        if k == special:
            array = mix_special_values(rng, array, domain, index // len(with_domain))
        values.append(array)
    return tuple(values)


def generate_cases(
    spec: OpSpec, seed: int, dtypes: Iterable[str] | None = None, limit: int | None = None
) -> list[Case]:
    """Every sample call of ``spec`` for a run: generated ones first, then the package's own,
    then variants of the first of them with constant inputs or unused outputs."""
    cases: list[Case] = []
    rng = op_rng(seed, spec.name)
    for dtype in run_dtypes(spec, dtypes):
        first = len(cases)
        for shapes, layouts, fixed in _layouts_for(spec):
            if limit is not None and len(cases) >= limit:
                break
            for attrs, typed in _attr_grid(spec, shapes, fixed):
                if not _keeps(spec, shapes, attrs, typed):
                    continue
                values = _generated_values(rng, spec, shapes, dtype, len(cases))
                cases.append(Case(len(cases), dtype, values, layouts, attrs))
        if spec.sample_inputs is not None:
            for sample in spec.sample_inputs(op_rng(seed, spec.name, len(cases)), np.dtype(dtype)):
                cases.append(_from_sample(len(cases), dtype, sample))
        for variant in _variants(spec, _variant_sources(cases[first:]), cases[first:]):
            cases.append(replace(variant, index=len(cases)))
    return cases[:limit]


def _variant_sources(pool: list[Case]) -> list[Case]:
    """The first samples with no empty input, those whose inputs differ in shape (broadcasting,
    joins) first."""
    full = [c for c in pool if all(v.size for v in c.values)]
    mixed = [c for c in full if len({v.shape for v in c.values}) > 1]
    return list({id(c): c for c in [*mixed, *full]}.values())[:_VARIANT_SOURCES]


def _variants(spec: OpSpec, sources: list[Case], pool: list[Case]) -> Iterator[Case]:
    """Each input in turn a constant array, all inputs but one constant (from ``sources``),
    each input in turn a Python number (`_number_variant`), and each output of a multi-output
    op in turn unused."""
    n = len(pool[0].values) if pool else 0
    for case in sources:
        n = len(case.values)
        if n > 1:
            for k in range(n):
                yield replace(case, constants=(k,))
        if n > 2:
            for k in range(n):
                yield replace(case, constants=tuple(j for j in range(n) if j != k))
        for m in range(spec.n_outputs if spec.n_outputs > 1 else 0):
            yield replace(case, dropped=(m,))
    for k in range(n if n > 1 else 0):
        variant = _number_variant(spec, k, pool)
        if variant is not None:
            yield variant


def _number_variant(spec: OpSpec, k: int, pool: list[Case]) -> Case | None:
    """Input ``k`` as a Python number: from the first case of ``pool`` where it is 0-d, else
    the first case's input ``k`` cut to its first value, when the shape rule takes a 0-d
    input there (as for a scale factor); None when neither exists."""
    for case in pool:
        if len(case.values) > k and case.values[k].ndim == 0:
            return replace(case, constants=(k,), numbers=True)
    full = [c for c in pool if len(c.values) > k and c.values[k].size]
    if not full:
        return None
    case = full[0]
    values = (*case.values[:k], case.values[k].reshape(-1)[:1].reshape(()), *case.values[k + 1 :])
    if isinstance(rule_verdict(spec, [v.shape for v in values], case.attrs), Exception):
        return None
    layouts = (*case.layouts[:k], "contiguous", *case.layouts[k + 1 :])
    return replace(case, values=values, layouts=layouts, constants=(k,), numbers=True)


def _from_sample(index: int, dtype: str, sample: Sample) -> Case:
    arrays = tuple(np.asarray(a) for a in sample.inputs)
    return Case(
        index,
        dtype,
        tuple(np.ascontiguousarray(a) for a in arrays),
        tuple(layout_of(a) for a in arrays),
        dict(sample.attrs),
        sample.note or "declared sample",
    )


def wrong_shapes(shape: Shape) -> Iterator[Shape]:
    """Shapes that differ from ``shape`` in the ways shape rules usually check: sizes numpy
    cannot broadcast against it, and sizes it can (a forward that broadcasts what its rule
    rejects gives wrong values silently)."""
    if shape and shape[-1] > 0:
        yield (*shape[:-1], shape[-1] + 1)
    yield (7,)
    yield (2, 5, 4)
    if shape:
        yield shape[1:]
        if shape[0] != 1:
            yield (1, *shape[1:])
    yield (1, *shape)


def reshaped(shapes: tuple[Shape, ...], k: int, shape: Shape) -> tuple[Shape, ...]:
    return (*shapes[:k], shape, *shapes[k + 1 :])


def _rejected_reshapes(spec: OpSpec, cases: list[Case]) -> Iterator[tuple[Case, int, Shape]]:
    """(case, k, shape): input ``k`` of a valid case reshaped to a wrong shape the rule
    rejects, every input and every such shape, repeats skipped."""
    seen: set[tuple] = set()
    for case in cases[:DERIVED_SOURCES]:
        shapes = tuple(v.shape for v in case.values)
        for k, shape in enumerate(shapes):
            for changed in wrong_shapes(shape):
                key = (k, changed, repr(dict(case.attrs)))
                if key in seen or _rule_accepts(spec, reshaped(shapes, k, changed), case.attrs):
                    continue
                seen.add(key)
                yield case, k, changed


def _interleaved(groups: list[list[Any]]) -> Iterator[Any]:
    """The first of every group, then the second of every group, ...: a cap keeps variety."""
    for row in itertools.zip_longest(*groups):
        yield from (item for item in row if item is not None)


def _rejected_attrs(spec: OpSpec, cases: list[Case]) -> Iterator[tuple[Case, str, Invalid, type]]:
    """(case, attribute, invalid value, error the op must raise) for the invalid values of each
    typed attribute, on the valid case of highest rank: one its check rejects
    gives `OpArgumentError`, one the shape rule rejects `ShapeError`; one both accept must still
    raise a ValueError when the type is ``strict``, and is dropped otherwise."""
    if not cases:
        return
    case = max(cases, key=lambda c: sum(v.ndim for v in c.values))
    shapes = tuple(v.shape for v in case.values)
    for attr in spec.attrs:
        if not isinstance(attr.check, AttrType):
            continue
        for bad in attr.check.invalid(shapes)[:_BAD_ATTRS_PER_TYPE]:
            try:
                attr.check(bad.value)
            except (TypeError, ValueError):
                yield case, attr.name, bad, OpArgumentError
                continue
            verdict = rule_verdict(spec, shapes, {**case.attrs, attr.name: bad.value})
            if isinstance(verdict, ShapeError):
                yield case, attr.name, bad, ShapeError
            elif attr.check.strict and not isinstance(verdict, Exception):
                yield case, attr.name, bad, ValueError


def generate_bad_cases(
    spec: OpSpec, cases: list[Case], seed: int, limit: int | None = None
) -> list[BadCase]:
    """Calls to reject: up to ``_DERIVED_BAD`` with shapes the rule rejects (derived from
    valid cases, every input in turn), every invalid value of each typed attribute, then the
    declared ``error_inputs``."""
    bad: list[BadCase] = []
    rng = op_rng(seed, spec.name, _BAD_INPUT_STREAM)
    by_input: dict[int, list] = {}
    for found in _rejected_reshapes(spec, cases):
        by_input.setdefault(found[1], []).append(found)
    for case, k, changed in itertools.islice(_interleaved(list(by_input.values())), _DERIVED_BAD):
        shapes = reshaped(tuple(v.shape for v in case.values), k, changed)
        values = tuple(
            random_values(rng, s, case.dtype, spec.input_domain(j)) for j, s in enumerate(shapes)
        )
        note = f"input {k} reshaped to {changed}, which the shape rule rejects"
        names = (spec.name, *(str(tuple(s)) for s in shapes))
        bad.append(BadCase(len(bad), values, dict(case.attrs), ShapeError, None, note, names))
    for case, name, invalid, error in _rejected_attrs(spec, cases):
        attrs = {**case.attrs, name: invalid.value}
        note = f"{name}={invalid.value!r}: {invalid.why}"
        values = case.inputs()
        bad.append(BadCase(len(bad), values, attrs, error, None, note, (spec.name,)))
    if spec.error_inputs is not None:
        for err in spec.error_inputs():
            values = tuple(np.asarray(a) for a in err.inputs)
            note = err.note or "declared error input"
            bad.append(BadCase(len(bad), values, dict(err.attrs), err.error, err.match, note))
    return bad[:limit]
