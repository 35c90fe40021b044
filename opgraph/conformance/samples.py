"""Sample calls of an op, generated from its declaration alone (plus its optional hints).

Every sample is deterministic given the run's seed and the op's name, so a sample index names
the same call in every run: that is what makes the replay command exact. Arrays are kept as
contiguous values plus a *layout* and rebuilt fresh for every use, so a check never sees
another check's mutation and non-contiguous views stay non-contiguous.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.contract import REQUIRED, Domain, OpSpec, Sample, Shape
from opgraph.errors import ShapeError

LAYOUTS = ("contiguous", "transposed", "sliced", "reversed")
"""How an input array is laid out in memory: C order, F order (a transposed view), every other
element of a wider array, or negative strides along the first axis."""

_ELEMENTWISE_SHAPES: tuple[Shape, ...] = ((), (5,), (2, 3), (2, 1, 3), (0, 3))
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
    ((5,), "contiguous", -1),
    ((0, 3), "contiguous", 1),
    ((3, 4), "transposed", 0),
    ((2, 3), "sliced", -1),
    ((4, 2), "reversed", (0, 1)),
)
_MAX_ATTR_COMBINATIONS = 6
_VARIADIC_COUNT = 3
_BAD_INPUT_STREAM = 2**31 - 1
"""Keeps the random values of bad inputs apart from those of the samples."""
_DERIVED_BAD = 2
"""Bad-input samples derived from the shape rule per op (the declared error inputs come on top)."""
_DERIVED_BAD_SOURCES = 8
"""How many of the first valid samples bad shapes are derived from."""


@dataclass(frozen=True)
class Case:
    """One call of an op: input values with their layouts, attributes and a description."""

    index: int
    dtype: str
    values: tuple[np.ndarray, ...]
    layouts: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

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
        return text + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class BadCase:
    """A call the op must reject: shapes its rule rejects, or one of its declared error inputs."""

    index: int
    values: tuple[np.ndarray, ...]
    attrs: Mapping[str, Any]
    error: type[BaseException]
    match: str | None
    note: str
    derived: bool = False
    """True for shapes derived from the shape rule (the message must name op and shapes)."""

    def describe(self) -> str:
        shapes = ", ".join(str(v.shape) for v in self.values)
        attrs = " ".join(f"{k}={v!r}" for k, v in self.attrs.items())
        return f"shapes {shapes}" + (f"; {attrs}" if attrs else "") + f" ({self.note})"


def materialize(values: np.ndarray, layout: str) -> np.ndarray:
    """A new array equal to ``values`` with the given memory layout."""
    if layout == "transposed" and values.ndim >= 2:
        return np.asfortranarray(values)
    if layout == "sliced" and values.ndim >= 1:
        wide = np.empty((*values.shape[:-1], 2 * values.shape[-1]), dtype=values.dtype)
        wide[..., ::2] = values
        return wide[..., ::2]
    if layout == "reversed" and values.ndim >= 1:
        return np.ascontiguousarray(values[::-1])[::-1]
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


def _rule_accepts(spec: OpSpec, shapes: Iterable[Shape], attrs: Mapping[str, Any]) -> bool:
    """False when the shape rule rejects the call; any other error is the rule's own bug, which
    the shape_rule check reports, so such calls are kept."""
    try:
        spec.shape_rule(*shapes, **resolved_attrs(spec, attrs))
    except ShapeError:
        return False
    except Exception:
        return True
    return True


def _attr_grid(
    spec: OpSpec, shapes: tuple[Shape, ...], fixed: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Attribute combinations: defaults and declared examples, fixed ones as given."""
    choices: list[list[tuple[str, Any]]] = []
    for attr in spec.attrs:
        if attr.name in fixed:
            choices.append([(attr.name, fixed[attr.name])])
            continue
        values = [] if attr.default is REQUIRED else [attr.default]
        if attr.examples is not None:
            values += [v for v in attr.examples(shapes) if not any(_same(v, w) for w in values)]
        if not values:
            return []
        choices.append([(attr.name, v) for v in values])
    combos = itertools.islice(itertools.product(*choices), _MAX_ATTR_COMBINATIONS)
    return [dict(c) for c in combos]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and repr(a) == repr(b)


def _input_count(spec: OpSpec) -> int:
    return _VARIADIC_COUNT if spec.variadic else len(spec.inputs)


def _layouts_for(spec: OpSpec) -> Iterator[tuple[tuple[Shape, ...], tuple[str, ...], dict]]:
    """(shapes, layouts, fixed attributes) per generated call, by the op's ``kind``."""
    n = _input_count(spec)
    if spec.kind in ("elementwise", "shape"):
        for shape in _ELEMENTWISE_SHAPES:
            yield (shape,) * n, ("contiguous",) * n, {}
        for shape, layout in _VIEWS:
            yield (shape,) * n, (layout,) * n, {}
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


def generate_cases(
    spec: OpSpec, seed: int, dtypes: Iterable[str] | None = None, limit: int | None = None
) -> list[Case]:
    """Every sample call of ``spec`` for a run: generated ones first, then the package's own."""
    cases: list[Case] = []
    rng = op_rng(seed, spec.name)
    for dtype in run_dtypes(spec, dtypes):
        for shapes, layouts, fixed in _layouts_for(spec):
            for attrs in _attr_grid(spec, shapes, fixed):
                if not _rule_accepts(spec, shapes, attrs):
                    continue
                values = tuple(
                    random_values(rng, s, dtype, spec.input_domain(k)) for k, s in enumerate(shapes)
                )
                cases.append(Case(len(cases), dtype, values, layouts, attrs))
        if spec.sample_inputs is not None:
            for sample in spec.sample_inputs(op_rng(seed, spec.name, len(cases)), np.dtype(dtype)):
                cases.append(_from_sample(len(cases), dtype, sample))
    return cases[:limit]


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


def _wrong_shapes(shape: Shape) -> Iterator[Shape]:
    """Shapes that differ from ``shape`` in the ways shape rules usually check."""
    if shape and shape[-1] > 0:
        yield (*shape[:-1], shape[-1] + 1)
    yield (7,)
    yield (2, 5, 4)


def _rejected_reshapes(spec: OpSpec, cases: list[Case]) -> Iterator[tuple[Case, int, Shape]]:
    """(case, k, shape): input ``k`` of a valid case reshaped to the first wrong shape the rule
    rejects, repeats skipped."""
    seen: set[tuple] = set()
    for case in cases[:_DERIVED_BAD_SOURCES]:
        shapes = tuple(v.shape for v in case.values)
        for k, shape in enumerate(shapes):
            changed = next(
                (
                    s
                    for s in _wrong_shapes(shape)
                    if not _rule_accepts(spec, (*shapes[:k], s, *shapes[k + 1 :]), case.attrs)
                ),
                None,
            )
            key = (k, changed, repr(dict(case.attrs)))
            if changed is not None and key not in seen:
                seen.add(key)
                yield case, k, changed


def generate_bad_cases(
    spec: OpSpec, cases: list[Case], seed: int, limit: int | None = None
) -> list[BadCase]:
    """Calls to reject: at most ``_DERIVED_BAD`` with shapes the rule rejects (derived from
    valid cases), then the declared ``error_inputs``."""
    bad: list[BadCase] = []
    rng = op_rng(seed, spec.name, _BAD_INPUT_STREAM)
    for case, k, changed in itertools.islice(_rejected_reshapes(spec, cases), _DERIVED_BAD):
        shapes = [v.shape for v in case.values]
        shapes[k] = changed
        values = tuple(
            random_values(rng, s, case.dtype, spec.input_domain(j)) for j, s in enumerate(shapes)
        )
        note = f"input {k} reshaped to {changed}, which the shape rule rejects"
        bad.append(BadCase(len(bad), values, dict(case.attrs), ShapeError, None, note, True))
    if spec.error_inputs is not None:
        for err in spec.error_inputs():
            values = tuple(np.asarray(a) for a in err.inputs)
            note = err.note or "declared error input"
            bad.append(BadCase(len(bad), values, dict(err.attrs), err.error, err.match, note))
    return bad[:limit]
