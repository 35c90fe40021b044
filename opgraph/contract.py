"""The op contract: what an op package declares for each op, as frozen dataclasses (records).

An op is *data*: an `OpSpec` names the op, its inputs and attributes, and gives three functions:

- ``forward(*arrays, **attrs) -> array | tuple[array, ...]`` — numpy in, numpy out;
- ``backward(ctx, *grads) -> grad | tuple[grad | None, ...]`` — one gradient (a `Variable`)
  per input, built with opgraph ops so that it can itself be differentiated. ``ctx`` gives
  ``inputs``, ``outputs`` (Variables), ``attrs``, ``state`` (see ``saves_state``), ``ops`` (the
  op set this op lives in, limited to the ops it ``requires`` plus the essential ones) and
  ``needs_input_grad`` (False for constants, whose gradient may be returned as None);
- ``shape_rule(*shapes, **attrs) -> shape | tuple[shape, ...]`` — works without any data and
  raises `opgraph.ShapeError` naming the op and the shapes it cannot accept.

Everything else is optional and feeds the conformance harness (sample generation, domains,
tolerances, expected errors, a ``reference`` the forward is compared with). The host validates
every spec at one choke point (`opgraph.registry`) and attaches provenance; plugins never touch
the registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field, fields
from typing import Any, Literal

import numpy as np

from opgraph.records import datarecord

Shape = tuple[int, ...]
Kind = Literal["elementwise", "broadcast", "reduction", "shape", "custom"]
KINDS: tuple[str, ...] = ("elementwise", "broadcast", "reduction", "shape", "custom")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of an `Attr` that the caller must always pass."""


@datarecord
class Provenance:
    """Which plugin provided an op: shown in listings, reports and every error message."""

    plugin: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None

    def __str__(self) -> str:
        if self.distribution:
            return f"plugin {self.plugin!r} from {self.distribution} {self.version}"
        if self.entry_point:  # a module checked without installing (opgraph check --module)
            return f"plugin {self.plugin!r} from module {self.entry_point} (not installed)"
        return f"plugin {self.plugin!r} (not installed)"


@datarecord
class Attr:
    """A named, validated attribute of an op (``axis``, ``shape``, ``slope`` ...).

    ``check`` normalises a value (e.g. a list of ints into a tuple) and raises TypeError or
    ValueError with a short reason for an invalid one — the caller gets an
    `opgraph.OpArgumentError`, which is both; it runs on every call that passes the attribute,
    so keep it cheap. A typed attribute from `opgraph.attrs` (``Permutation()``, ``Axis()``,
    ``BroadcastTarget()`` ...) as ``check`` also tells the conformance harness valid and invalid
    values for given input shapes; ``examples`` adds valid values no type can say.
    """

    name: str
    default: Any = REQUIRED
    check: Callable[[Any], Any] | None = None
    examples: Callable[[tuple[Shape, ...]], Iterable[Any]] | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@datarecord
class Domain:
    """Where an input's values may be sampled: inside [low, high], at least ``margin`` away from
    every point of ``avoid`` (kinks such as relu's 0, poles such as 1/x's 0)."""

    low: float = -2.0
    high: float = 2.0
    avoid: tuple[float, ...] = ()
    margin: float = 0.05


@datarecord
class Tolerance:
    """Gradient-check tolerance for one dtype; overriding the default needs a reason."""

    rtol: float
    atol: float
    reason: str = ""


@datarecord
class Sample:
    """One concrete call of an op: input arrays plus attributes, with a short description."""

    inputs: tuple[np.ndarray, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@datarecord
class ErrorInput:
    """A call the op must reject with ``error`` (and a message matching ``match``, a regex)."""

    inputs: tuple[np.ndarray, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    error: type[BaseException] = ValueError
    match: str | None = None
    note: str = ""


@datarecord
class OpSpec:
    """The declaration of one op. See the module docstring for the three functions.

    ``inputs`` names the inputs in call order: ``"b?"`` is optional (omitted when not passed or
    None), ``"*xs"`` is a variadic sequence (``concat([a, b])``). Attributes follow the inputs
    in the call signature. ``nondiff`` names inputs that get no gradient (labels, conditions).
    ``kind`` tells the harness how to generate samples: ``elementwise`` (any shape),
    ``broadcast`` (inputs broadcast together), ``reduction`` (``axis``/``keepdims`` grid),
    ``shape`` (any shape, attributes from their ``examples``) or ``custom`` (only
    ``sample_inputs``).

    ``reference(*arrays, **attrs)`` is an independent plain numpy/scipy/Python computation of
    the forward (float inputs arrive as float64): the harness compares the forward with it on
    every sample, under ``reference_tolerances`` per sample dtype (each with a reason), so a
    wrong forward with a matching backward is caught.
    """

    name: str
    forward: Callable[..., Any]
    shape_rule: Callable[..., Any]
    backward: Callable[..., Any] | None
    inputs: tuple[str, ...] = ("x",)
    attrs: tuple[Attr, ...] = ()
    nondiff: tuple[str, ...] = ()
    n_outputs: int = 1
    backward_differentiable: bool = True
    saves_state: bool = False
    stochastic: bool = False
    traceable: bool | None = None
    """True: `opgraph.trace` can replay this op (the conformance check ``trace`` fails if it
    cannot); False: it cannot (the check skips); None: undeclared (the check skips with the
    reason when recording is refused)."""
    requires: tuple[str, ...] = ()
    kind: Kind = "elementwise"
    domain: Domain | tuple[Domain | None, ...] = Domain()
    dtypes: tuple[str, ...] = ("float64", "float32")
    dtype_rule: Callable[..., Any] | None = None
    sample_inputs: Callable[[np.random.Generator, np.dtype], Iterable[Sample]] | None = None
    error_inputs: Callable[[], Iterable[ErrorInput]] | None = None
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    reference: Callable[..., Any] | None = None
    reference_tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    doc: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> OpSpec:
        """Refuse a misspelt keyword naming the op and the closest field: the dataclass's own
        TypeError (``__init__() got an unexpected keyword argument``) names neither."""
        known = [f.name for f in fields(cls)]
        if unknown := [k for k in kwargs if k not in known]:
            import difflib

            name = kwargs.get("name", args[0] if args else None)
            problems = []
            for key in unknown:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"unknown field {key!r}{hint}")
            raise TypeError(f"OpSpec {name!r}: {', '.join(problems)} (fields: {', '.join(known)})")
        return super().__new__(cls)

    @property
    def input_names(self) -> tuple[str, ...]:
        """Input names without the ``?`` / ``*`` markers."""
        return tuple(n.strip("?*") for n in self.inputs)

    @property
    def variadic(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].startswith("*")

    @property
    def n_required_inputs(self) -> int:
        return sum(not n.endswith("?") for n in self.inputs)

    def input_domain(self, k: int) -> Domain | None:
        """The declared domain of input ``k`` (None: not a float input, e.g. labels)."""
        if isinstance(self.domain, Domain):
            return self.domain
        return self.domain[min(k, len(self.domain) - 1)]

    def differentiable(self, k: int) -> bool:
        return self.input_names[min(k, len(self.inputs) - 1)] not in self.nondiff
