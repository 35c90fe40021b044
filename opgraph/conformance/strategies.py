"""Hypothesis strategies for the calls of one op, from its declaration alone.

Where the grid (`opgraph.conformance.samples`) tries fixed shapes, these draw them: any rank
up to `MAX_DIMS` and size up to `MAX_SIDE` (elementwise, shape and reduction ops), mutually
broadcastable shapes (broadcast ops), or the op's own grid samples with their sizes changed
consistently (every op: a matmul keeps its inner sizes equal); attribute values over the whole
range their type allows; each input's layout; constants (arrays or Python numbers) and unused
outputs. The shape rule decides what is valid, so nothing here knows any op.

Values are drawn from a seed (random values in each input's domain, optionally with the
domain's special values mixed in, as the grid makes them) rather than element by element:
values Hypothesis shrinks towards ties and zeros would put every ``max`` and ``abs`` on its
kink. Hypothesis shrinks everything else towards the simplest call: lowest rank, fewest
elements, contiguous layouts, default attributes, the first declared dtype.

Imported only by ``--explore``: Hypothesis is an optional extra (``opgraph[explore]``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from opgraph.attrs import (
    AttrType,
    Axes,
    Axis,
    BroadcastTarget,
    Choice,
    FloatRange,
    IndexArray,
    IntRange,
    Permutation,
)
from opgraph.conformance.samples import (
    Case,
    mix_special_values,
    random_values,
    rule_verdict,
)
from opgraph.contract import REQUIRED, Attr, OpSpec, Shape
from opgraph.errors import ShapeError

MAX_DIMS = 4
MAX_SIDE = 4
EXPLORED = 1 << 30
"""`Case.index` of every explored call: its random streams depend on the run's seed and the
op only, never on the order in which Hypothesis generated it."""
_MAX_VARIADIC = 3
_UNIFORM = 256
_SPAN = 6
"""Width of the range drawn on an unbounded side of an `IntRange` / `FloatRange`."""
_LAYOUTS_BY_RANK = {0: ("contiguous",), 1: ("contiguous", "sliced", "reversed")}
_ALL_LAYOUTS = ("contiguous", "transposed", "sliced", "reversed")


def _rank(shapes: Sequence[Shape], k: int) -> int | None:
    return len(shapes[k]) if k < len(shapes) else None


def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers of [low, high], uniform where the range is small: Hypothesis's own integers
    favour the ends, which the grid already takes."""
    if high - low <= _UNIFORM:
        return st.sampled_from(range(low, high + 1))
    return st.integers(low, high)


def _negative_spelling(axes: tuple[int, ...], rank: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*(st.sampled_from((a, a - rank)) for a in axes))


Strategy = st.SearchStrategy[Any] | None


def _axis(check: Axis, shapes: Sequence[Shape]) -> Strategy:
    rank = _rank(shapes, check.input)
    n = None if rank is None else rank + check.new
    choices = [st.none()] if check.none else []
    if n:
        choices.append(_ints(-n, n - 1))
    return st.one_of(choices) if choices else None


def _axes(check: Axes, shapes: Sequence[Shape]) -> Strategy:
    rank = _rank(shapes, check.input)
    choices = [st.none()] if check.none else []
    if rank:
        tuples = hnp.valid_tuple_axes(rank).flatmap(lambda a: _negative_spelling(a, rank))
        choices += [_ints(-rank, rank - 1), tuples]
    return st.one_of(choices) if choices else None


def _permutation(check: Permutation, shapes: Sequence[Shape]) -> Strategy:
    rank = _rank(shapes, check.input)
    choices = [st.none()] if check.none else []
    if rank is not None:
        perms = st.permutations(range(rank)).map(tuple)
        choices.append(perms.flatmap(lambda p: _negative_spelling(p, rank)))
    return st.one_of(choices) if choices else None


def _broadcast_target(check: BroadcastTarget, shapes: Sequence[Shape]) -> Strategy:
    """The input's shape with size-1 axes stretched (to any size, 0 included) and up to two
    axes prepended."""
    if _rank(shapes, check.input) is None:
        return None
    sizes = [st.just(d) if d != 1 else st.integers(0, MAX_SIDE) for d in shapes[check.input]]
    lead = st.lists(st.integers(0, MAX_SIDE), max_size=2).map(tuple)
    return st.tuples(lead, st.tuples(*sizes)).map(lambda p: (*p[0], *p[1]))


def _index_array(check: IndexArray, shapes: Sequence[Shape]) -> Strategy:
    rank = _rank(shapes, check.input)
    if rank is None or rank <= check.axis or not shapes[check.input][check.axis]:
        return None
    n = shapes[check.input][check.axis]
    positions = st.lists(st.integers(-n, n - 1), max_size=MAX_SIDE + 1)
    return positions.map(lambda p: np.array(p, dtype=np.intp))


def _int_range(check: IntRange, shapes: Sequence[Shape]) -> Strategy:
    low = check.low if check.low is not None else (check.high or 0) - _SPAN
    high = check.high if check.high is not None else low + _SPAN
    return _ints(low, high)


def _float_range(check: FloatRange, shapes: Sequence[Shape]) -> Strategy:
    """Numbers of the range rounded to 3 decimals: simple values to read in a report, and no
    subnormal ``eps`` (the attribute's check rejects a rounding that leaves the range)."""
    low = check.low if math.isfinite(check.low) else min(-2.0, check.high - _SPAN)
    high = check.high if math.isfinite(check.high) else max(2.0, low + _SPAN)
    return st.floats(low, high).map(lambda v: round(v, 3))


def _choice(check: Choice, shapes: Sequence[Shape]) -> Strategy:
    return st.sampled_from(check.options)


_BY_TYPE: dict[type, Any] = {
    Axis: _axis,
    Axes: _axes,
    Permutation: _permutation,
    BroadcastTarget: _broadcast_target,
    IndexArray: _index_array,
    IntRange: _int_range,
    FloatRange: _float_range,
    Choice: _choice,
}


def typed_values(check: AttrType, shapes: Sequence[Shape]) -> Strategy:
    """Every value ``check`` allows for inputs of ``shapes``; None for a type without a
    strategy here (`opgraph.attrs.TargetShape`, a plugin's own), or with none for them."""
    for kind in type(check).__mro__:
        if kind in _BY_TYPE:
            return _BY_TYPE[kind](check, shapes)
    return None


def attr_values(attr: Attr, shapes: Sequence[Shape]) -> st.SearchStrategy[tuple[Any, bool]] | None:
    """(value, drawn by the type) for one attribute. A type with a strategy here draws from
    its whole range, uniformly where it is small (the grid has the default and the ends
    already); otherwise the default, the declared examples and what the type says is valid,
    each as likely, or both truth values of a flag. None when nothing gives a value."""
    check = attr.check
    typed = typed_values(check, shapes) if isinstance(check, AttrType) else None
    if typed is None and isinstance(attr.default, bool) and not isinstance(check, AttrType):
        typed = st.booleans()
    if typed is not None:
        return typed.map(lambda v: (v, True))
    declared = [] if attr.default is REQUIRED else [(attr.default, False)]
    if attr.examples is not None:
        declared += [(v, False) for v in attr.examples(tuple(shapes))]
    if isinstance(check, AttrType):
        declared += [(v, True) for v in check.valid(shapes)]
    unique = [d for i, d in enumerate(declared) if not _known(d[0], [e for e, _ in declared[:i]])]
    return st.sampled_from(unique) if unique else None


def _known(value: Any, among: list[Any]) -> bool:
    return any(type(value) is type(v) and repr(value) == repr(v) for v in among)


def _kind_shapes(spec: OpSpec, n: int) -> st.SearchStrategy[tuple[Shape, ...]] | None:
    if spec.kind == "broadcast":
        found = hnp.mutually_broadcastable_shapes(
            num_shapes=n, min_dims=0, max_dims=MAX_DIMS, max_side=MAX_SIDE
        )
        return found.map(lambda s: tuple(s.input_shapes))
    if spec.kind in ("elementwise", "shape", "reduction"):
        one = hnp.array_shapes(min_dims=0, max_dims=MAX_DIMS, min_side=0, max_side=MAX_SIDE)
        return one.map(lambda s: (s,) * n)
    return None


@functools.cache  # building a strategy is a large part of a draw's cost
def _size_near(d: int) -> st.SearchStrategy[int]:
    """A size other than ``d`` about as often as ``d`` itself, shrinking towards 0."""
    branches = [st.integers(0, d - 1)] if d > 0 else []
    return st.one_of(*branches, st.just(d), st.integers(d + 1, max(d + 1, MAX_SIDE + 1)))


@st.composite
def _resized(draw: Any, spec: OpSpec, case: Case) -> tuple[tuple[Shape, ...], dict[str, Any]]:
    """A grid sample's shapes with each distinct size (other than 1) changed to another,
    the same everywhere it occurs; kept as they are when an input has no domain (labels,
    indices: their values are tied to the sizes)."""
    shapes = tuple(v.shape for v in case.values)
    if any(spec.input_domain(k) is None for k in range(len(shapes))):
        return shapes, dict(case.attrs)
    sizes = sorted({d for s in shapes for d in s if d != 1})
    new = {d: draw(_size_near(d)) for d in sizes}
    return tuple(tuple(new.get(d, d) for d in s) for s in shapes), dict(case.attrs)


def calls(spec: OpSpec, grid: Sequence[Case], dtypes: Sequence[str]) -> st.SearchStrategy[Case]:
    """Valid calls of ``spec``: drawn by its kind, or resized from its ``grid`` samples."""
    bases = [c for c in grid if not c.constants and not c.dropped]
    return _calls(spec, tuple(bases), tuple(dtypes), {})


@st.composite
def _calls(
    draw: Any, spec: OpSpec, grid: tuple[Case, ...], dtypes: tuple[str, ...], memo: dict
) -> Case:
    """``memo``: each attribute's strategy per input shapes, built once per search (building
    a strategy is a large part of a draw's cost)."""
    n = draw(st.integers(1, _MAX_VARIADIC)) if spec.variadic else len(spec.inputs)
    routes = [s for s in [_kind_shapes(spec, n)] if s is not None]
    routes = [r.map(lambda shapes: (shapes, {}, None)) for r in routes]
    if grid:
        base = st.sampled_from(range(len(grid))).map(lambda i: grid[i])  # a short repr
        routes.append(base.flatmap(lambda c: _resized(spec, c).map(lambda s: (*s, c))))
    assume(routes)
    shapes, fixed, base = draw(st.one_of(routes))
    attrs, typed = _draw_attrs(draw, spec, shapes, fixed, memo)
    verdict = rule_verdict(spec, shapes, attrs)
    assume(not isinstance(verdict, ShapeError))
    assume(not (typed and isinstance(verdict, Exception)))  # a value the op never claimed
    dtype = draw(st.sampled_from(dtypes))
    values = _values(draw, spec, shapes, dtype, base)
    layouts = tuple(
        draw(st.sampled_from(_LAYOUTS_BY_RANK.get(v.ndim, _ALL_LAYOUTS))) for v in values
    )
    constants, numbers = _constants(draw, values)
    dropped = _dropped(draw, spec.n_outputs)
    return Case(
        EXPLORED,
        dtype,
        values,
        layouts,
        attrs,
        constants=constants,
        numbers=numbers,
        dropped=dropped,
        thorough=True,
    )


def _draw_attrs(
    draw: Any, spec: OpSpec, shapes: tuple[Shape, ...], fixed: dict[str, Any], memo: dict
) -> tuple[dict[str, Any], bool]:
    """Every attribute (a grid sample's own values kept a quarter of the time, else
    redrawn), and whether any value came from a type rather than the declaration."""
    attrs: dict[str, Any] = {}
    typed = False
    for k, attr in enumerate(spec.attrs):
        if (k, shapes) not in memo:
            memo[k, shapes] = attr_values(attr, shapes)
        values = memo[k, shapes]
        keep = attr.name in fixed and (values is None or draw(st.integers(0, 3)) == 0)
        if keep:
            attrs[attr.name] = fixed[attr.name]
            continue
        assume(values is not None)
        value, by_type = draw(values)
        if by_type and attr.check is not None:
            try:
                attr.check(value)
            except (TypeError, ValueError):
                assume(False)
        attrs[attr.name] = value
        typed = typed or by_type
    return attrs, typed


def _values(
    draw: Any, spec: OpSpec, shapes: tuple[Shape, ...], dtype: str, base: Case | None
) -> tuple[np.ndarray, ...]:
    """Input values from a drawn seed, in each input's domain; one drawn input (or none) also
    holds its domain's special values, as in the grid: two inputs given the same special
    value would tie, a kink of ``maximum``. A resized grid sample keeps the values of its
    inputs without a domain."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    with_domain = [k for k in range(len(shapes)) if spec.input_domain(k) is not None]
    special = draw(st.sampled_from([None, *with_domain]))
    values = []
    for k, shape in enumerate(shapes):
        domain = spec.input_domain(k)
        if base is not None and domain is None:
            values.append(np.array(base.values[k], copy=True))
            continue
        array = random_values(rng, shape, dtype, domain)
        if k == special:
            array = mix_special_values(rng, array, domain, draw(st.integers(0, 7)))
        values.append(array)
    return tuple(values)


def _constants(draw: Any, values: tuple[np.ndarray, ...]) -> tuple[tuple[int, ...], bool]:
    """Inputs passed as plain arrays (or, when all are 0-d, as Python numbers); at least one
    input stays a Variable."""
    if len(values) < 2:
        return (), False
    flags = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    constants = tuple(k for k, flag in enumerate(flags) if flag)
    assume(len(constants) < len(values))
    scalar = bool(constants) and all(values[k].ndim == 0 for k in constants)
    return constants, scalar and draw(st.booleans())


def _dropped(draw: Any, n_outputs: int) -> tuple[int, ...]:
    if n_outputs < 2:
        return ()
    flags = draw(st.lists(st.booleans(), min_size=n_outputs, max_size=n_outputs))
    dropped = tuple(m for m, flag in enumerate(flags) if flag)
    assume(len(dropped) < n_outputs)
    return dropped
