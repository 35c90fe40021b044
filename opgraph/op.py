"""`Op`: an `OpSpec` made callable on Variables, with its provenance and its dependencies.

Everything that can be decided once (parameter names, defaults, arity) is decided when the
registry builds the op, so a call costs argument binding, one forward and one `Node`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from opgraph import engine
from opgraph.contract import OpSpec, Provenance
from opgraph.engine import Variable, _to_array, record_single
from opgraph.errors import OpArgumentError, ShapeError
from opgraph.shapes import fmt_shapes

_wrap = Variable._wrap
_ACCEPTED_PER_OP = 4096
_engine_state = engine._state.get  # with engine._default: this thread's `engine.State`
_NO_DEFAULT = object()


def as_inputs(values: Any) -> tuple[Variable, ...]:
    """The inputs as Variables: arrays and numbers become constants (``requires_grad=False``).

    Python numbers take the dtype numpy's promotion gives them next to the other inputs, so
    ``float32_var * 2.0`` stays float32.
    """
    ref = _reference_dtype(values)
    return tuple([v if isinstance(v, Variable) else _wrap(_constant(v, ref)) for v in values])


def _reference_dtype(values: Any) -> np.dtype | None:
    """The dtype Python numbers adapt to: the promoted dtype of the array inputs, masks left
    out (``where(mask, x32, 0.0)`` stays float32)."""
    dtypes = [
        v.data.dtype if isinstance(v, Variable) else v.dtype
        for v in values
        if isinstance(v, (Variable, np.ndarray))
    ]
    if len(dtypes) <= 1:  # the common `x * 2.0`: no promotion to compute
        return dtypes[0] if dtypes else None
    numeric = [d for d in dtypes if d.kind != "b"] or dtypes
    return np.result_type(*numeric)


def _constant(value: Any, ref: np.dtype | None) -> np.ndarray:
    if ref is None or type(value) not in (int, float):  # numpy scalars keep their own dtype
        return _to_array(value)
    # numpy's promotion of a Python number, short-cut for the common float-array case
    dtype = ref if ref.kind in "fc" else np.result_type(ref, value)
    return np.asarray(value, dtype)


def _arrays_and_shapes(xs: tuple) -> tuple[list, tuple]:
    """The inputs' arrays and shapes, spelled out for one and two inputs (the hot path: a list
    comprehension costs more than the rest of the shape-rule lookup)."""
    n = len(xs)
    if n == 1:
        a = xs[0].data
        return [a], (a.shape,)
    if n == 2:
        a, b = xs[0].data, xs[1].data
        return [a, b], (a.shape, b.shape)
    arrays = [x.data for x in xs]
    return arrays, tuple([a.shape for a in arrays])


def _is_integer_dtype(name: Any) -> bool:
    try:
        return np.dtype(name).kind in "biu"
    except TypeError:  # not a dtype: the registry rejects such a declaration
        return False


def _convertible(value: Any) -> bool:
    if isinstance(value, Variable):
        return True
    try:
        as_inputs((value,))
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    return f"a {type(value).__name__}"


class Op:
    """A callable op: ``op(*inputs, *attrs, **attrs) -> Variable | tuple[Variable, ...]``."""

    __slots__ = (
        "__dict__",
        "_accepted",
        "_checks",
        "_defaults",
        "_differentiable",
        "_fast_arity",
        "_n_inputs",
        "_n_outputs",
        "_optional",
        "_params",
        "_plain_output",
        "_positional_attrs",
        "_saves_state",
        "_stochastic",
        "backward",
        "deps",
        "dispatch",
        "forward",
        "name",
        "provenance",
        "spec",
    )

    def __init__(self, spec: OpSpec, provenance: Provenance) -> None:
        self.name = spec.name
        self.spec = spec
        self.provenance = provenance
        # set by the registry when it builds the op's op set: the ops its backward may use
        # (``ctx.ops``), and the op set's dispatch table, active while its backward runs
        self.deps: Any = None
        self.dispatch: Any = None
        self.forward = spec.forward
        self.backward = spec.backward
        self._n_inputs = 1 if spec.variadic else len(spec.inputs)
        self._optional = tuple(n.endswith("?") for n in spec.inputs)
        self._params = spec.input_names + tuple(a.name for a in spec.attrs)
        self._checks = {a.name: a.check for a in spec.attrs if a.check is not None}
        # defaults in the form their check gives (stride=1 -> (1, 1)); the registry has
        # validated that each default passes its check
        self._accepted: set = set()  # calls the shape rule accepted: (shapes, *attrs)
        self._defaults = {
            a.name: a.default if a.check is None else a.check(a.default)
            for a in spec.attrs
            if not a.required
        }
        self._n_outputs = spec.n_outputs
        self._plain_output = spec.n_outputs == 1 and not spec.saves_state
        self._saves_state = spec.saves_state
        self._stochastic = spec.stochastic
        self._differentiable = spec.backward is not None  # else its results are constants
        # an op declaring no integer dtype has float gradients only: see `_refuse_integers`
        self._float_only = not any(_is_integer_dtype(d) for d in spec.dtypes)
        fixed_inputs = not any(self._optional) and not spec.variadic
        all_default = len(self._defaults) == len(spec.attrs)
        # calls that need no binding: the inputs alone, every attribute at its default
        self._fast_arity = self._n_inputs if fixed_inputs and all_default else -1
        # calls bound by position alone: the inputs, then attributes in declaration order
        self._positional_attrs = tuple(a.name for a in spec.attrs) if fixed_inputs else None
        self.__doc__ = spec.doc or f"The `{spec.name}` op ({provenance})."

    @property
    def origin(self) -> str:
        return str(self.provenance)

    def __repr__(self) -> str:
        return f"<op {self.name}({', '.join(self._params)}) from {self.provenance}>"

    def _bind(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Map positional and keyword arguments onto inputs and validated attributes."""
        bound = None if kwargs else self._bind_positional(args)
        return bound or self._bind_general(args, kwargs)

    def _bind_general(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if len(args) > len(self._params):
            raise OpArgumentError(
                f"{self.name}() takes at most {len(self._params)} arguments "
                f"({', '.join(self._params)}), got {len(args)}"
            )
        bound = dict(zip(self._params, args, strict=False))
        for key, value in kwargs.items():
            if key not in self._params:
                import difflib

                close = difflib.get_close_matches(key, self._params, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise OpArgumentError(
                    f"{self.name}() got an unexpected argument {key!r}{hint} "
                    f"(it takes {', '.join(self._params)})"
                )
            if key in bound:
                raise OpArgumentError(f"{self.name}() got multiple values for {key!r}")
            bound[key] = value
        inputs = []
        for name, optional in zip(self.spec.input_names, self._optional, strict=True):
            value = bound.get(name)
            if value is None and not optional:
                raise OpArgumentError(f"{self.name}() missing required input {name!r}")
            if value is not None:
                inputs.append(value)
        if self.spec.variadic:
            if not isinstance(inputs[0], (list, tuple)) or not inputs[0]:
                raise OpArgumentError(
                    f"{self.name}() takes a non-empty list of inputs, got {inputs[0]!r}"
                )
            inputs = list(inputs[0])
        attrs = dict(self._defaults)
        for a in self.spec.attrs:
            if a.name in bound:
                attrs[a.name] = self._check_attr(a.name, bound[a.name])
            elif a.required:
                raise OpArgumentError(f"{self.name}() missing required attribute {a.name!r}")
        return tuple(inputs), attrs

    def _bind_positional(self, args: tuple) -> tuple[tuple, dict] | None:
        """The common call ``op(x, attr1, attr2)``; None sends anything else (and every
        error) through the general binding."""
        n = self._n_inputs
        names = self._positional_attrs
        if names is None or not n <= len(args) <= n + len(names):
            return None
        for v in args[:n]:  # a loop: a generator costs more than the rest of the binding
            if v is None:  # reported by the general binding
                return None
        defaults = self._defaults
        attrs = dict(defaults)
        for name, value in zip(names, args[n:], strict=False):
            if value is not defaults.get(name, _NO_DEFAULT):  # defaults need no check
                attrs[name] = self._check_attr(name, value)
        if len(attrs) < len(names):  # a required attribute is missing
            return None
        return args[:n], attrs

    def _check_attr(self, name: str, value: Any) -> Any:
        check = self._checks.get(name)
        if check is None:
            return value
        try:
            return check(value)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ShapeError):
                raise
            raise OpArgumentError(f"{self.name}: invalid {name}={value!r}: {exc}") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != self._fast_arity:
            args, attrs = self._bind(args, kwargs)
        else:
            attrs = self._defaults
        xs = args
        for x in args:  # not a call per op: most calls get Variables only
            if not isinstance(x, Variable):
                xs = self._inputs(args)
                break
        arrays, shapes = _arrays_and_shapes(xs)
        try:  # the shape rule's memo first: a repeated call costs a set lookup
            known = (shapes if attrs is self._defaults else (shapes, *attrs.values())) in (
                self._accepted
            )
        except TypeError:  # an unhashable attribute value (an index array)
            known = False
        if not known:
            self._admit(shapes, attrs)
        try:
            if self._stochastic:
                result = self.forward(*arrays, rng=engine.random_generator(), **attrs)
            else:
                result = self.forward(*arrays, **attrs)
        except ShapeError:
            raise
        except Exception as exc:
            self._explain_failure(arrays, attrs, exc)
            raise
        if self._plain_output:  # the common case: one array, no state
            y = _wrap(result if type(result) is np.ndarray else np.asarray(result))
            if self._differentiable and _engine_state(engine._default).grad_enabled:
                self._record(xs, attrs, (y,), None)
            return y
        return self._outputs(xs, attrs, result)

    def _outputs(self, xs: tuple, attrs: dict, result: Any) -> Any:
        """The general case: several outputs, or saved state."""
        state = None
        if self._saves_state:
            result, state = result
        outputs = (
            (_wrap(np.asarray(result)),)
            if self._n_outputs == 1
            else tuple([_wrap(np.asarray(r)) for r in result])
        )
        if self._differentiable and _engine_state(engine._default).grad_enabled:
            self._record(xs, attrs, outputs, state)
        return outputs[0] if self._n_outputs == 1 else outputs

    def _admit(self, shapes: tuple, attrs: dict) -> None:
        """The shape rule, before every forward: an op never runs on what its rule rejects.
        An acceptance is remembered per input shapes and attributes (hashable ones)."""
        try:
            key = shapes if attrs is self._defaults else (shapes, *attrs.values())
            hash(key)
        except TypeError:
            key = None
        try:
            self.spec.shape_rule(*shapes, **attrs)
        except ShapeError:
            raise
        except Exception:  # a crashing rule decides nothing (the `shape_rule` check reports it)
            return
        if key is not None:
            if len(self._accepted) >= _ACCEPTED_PER_OP:  # bounded: shapes may vary without end
                self._accepted.clear()
            self._accepted.add(key)

    def _record(self, xs: tuple, attrs: dict, outputs: tuple, state: Any) -> None:
        """Make the outputs part of the graph, unless every input is a constant (so are they)."""
        needs = tuple([x.requires_grad for x in xs])
        if True in needs:
            if self._float_only:
                self._refuse_integers(xs)
            for y in outputs:
                y.requires_grad = True
            engine.record(self, xs, attrs, outputs, needs, state=state)

    def _refuse_integers(self, xs: tuple) -> None:
        """The integer policy: an integer (or bool) Variable that requires a gradient may only
        meet ops that declare an integer dtype (add, sum, reshape ...: their gradients are
        integers too). A float-valued op (sin, exp ...) would owe it a float gradient, so it
        refuses the call instead of failing in the backward. Nondiff inputs (labels, masks)
        get no gradient and may be anything."""
        for k, x in enumerate(xs):
            if x.requires_grad and x.data.dtype.kind in "biu" and self.spec.differentiable(k):
                names = self.spec.input_names
                name = names[0] if self.spec.variadic else names[min(k, len(names) - 1)]
                raise OpArgumentError(
                    f"{self.name}: input {name!r} is a Variable of dtype {x.data.dtype} that "
                    f"requires a gradient, but {self.name} ({self.origin}) declares only "
                    f"{', '.join(self.spec.dtypes)}: its gradient could not be {x.data.dtype}; "
                    "cast it (x.astype('float64')) or make it a constant "
                    "(Variable(data, requires_grad=False))"
                )

    def _inputs(self, args: tuple) -> tuple[Variable, ...]:
        """`as_inputs`, its refusals naming this op and the input."""
        try:
            return as_inputs(args)
        except (TypeError, ValueError, OverflowError) as exc:
            names = self.spec.input_names
            k = next(i for i, v in enumerate(args) if not _convertible(v))
            name = names[0] if self.spec.variadic else names[min(k, len(names) - 1)]
            why = f" ({exc})" if isinstance(exc, OverflowError) else ""
            raise OpArgumentError(
                f"{self.name}: input {name!r} (argument {k}) must be a Variable, a numeric numpy "
                f"array or a number, got {_describe(args[k])}{why}"
            ) from None

    def _explain_failure(self, arrays: list, attrs: dict, exc: Exception) -> None:
        """Annotate a forward failure with the op, its plugin and the call."""
        shapes = [a.shape for a in arrays]
        add_note = getattr(exc, "add_note", None)  # Python >= 3.11
        if add_note is not None:
            add_note(
                f"in op `{self.name}` ({self.origin}) with input shapes {fmt_shapes(shapes)}"
                + (f" and attributes {attrs}" if attrs else "")
            )


_new_variable = Variable.__new__
_numbers: dict[np.dtype, dict[int | float, Variable]] = {}  # per float dtype: its constants
_NUMBERS_KEPT = 256


def _with_constant(x: Any, z: Any) -> tuple[Variable, Variable] | None:
    """``(x, z)`` with the number beside a float Variable made the constant Variable
    `as_inputs` would make (the array's dtype), shared and read-only; None for any other
    pair (the general path decides). The number is a Python int or float, or a numpy scalar
    of the array's own dtype (``x.mean()`` gives one): numpy promotes neither beyond it."""
    if type(x) is Variable:
        value, like = z, x.data
    elif type(z) is Variable:
        value, like = x, z.data
    else:
        return None
    kind = type(value)
    if (kind is not float and kind is not int and kind is not like.dtype.type) or not value:
        return None  # zeros too: 0.0 == -0.0 as keys, but x * -0.0 keeps the sign
    constants = _numbers.get(like.dtype)
    constant = None if constants is None else constants.get(value)
    if constant is None and (constant := _new_constant(value, like.dtype)) is None:
        return None
    return (x, constant) if value is z else (constant, z)


def _new_constant(value: float, dtype: np.dtype) -> Variable | None:
    """The shared constant of ``value`` in a float or complex ``dtype`` (an int equal to a float
    gives the same array); None where numpy's promotion may differ or the value overflows."""
    if dtype.kind not in "fc":
        return None
    constants = _numbers.setdefault(dtype, {})
    if len(constants) >= _NUMBERS_KEPT:  # bounded: a loop over many numbers
        constants.clear()
    try:
        data = np.asarray(value, dtype)
    except OverflowError:  # an int too large for the dtype: the general path says so
        return None
    data.flags.writeable = False
    constants[value] = constant = _wrap(data)
    return constant


_NO_INPUT = object()


def _given(*args: Any) -> tuple:
    """The positional arguments a fast path received (its parameters default to _NO_INPUT)."""
    return tuple([a for a in args if a is not _NO_INPUT])


_ndarray = np.ndarray
_BOTH, _FIRST, _SECOND = (True, True), (True, False), (False, True)

_hooked = False
"""True while `opgraph.trace` records: the fast calls then go through ``Op.__call__``, which
it swaps for its recording version."""


class PlainOp(Op):
    """An op of one or two inputs and one output, without attributes, state or randomness.

    Its calls with Variables (and numbers, see `_with_constant`) take `fast_call`, a function
    made for the op that skips binding, constant wrapping and the general output handling.
    `make_op` gives each PlainOp a class of its own whose ``__call__`` is that function, and the
    engine's dispatch tables hold it too, so neither a call of the op nor a Variable operator
    pays a method call. Anything else (keywords, a first-seen shape, any error) takes the
    general path of `Op.__call__`, which decides and reports exactly as for every op.
    ``OPGRAPH_FAST_PATH=0`` builds every op as a plain `Op` (the conformance suite runs both
    ways in the tests)."""

    __slots__ = ("fast",)

    def __init__(self, spec: OpSpec, provenance: Provenance) -> None:
        super().__init__(spec, provenance)
        self.fast = fast_call(self)


def fast_call(op: PlainOp) -> Callable[..., Any]:
    """``op``'s fast path: a function taking any call, fast for its inputs given positionally.

    Everything it reads is bound here once. It still consults the shape rule on every call
    (the op's memo of accepted shapes, checked against the last accepted shapes first) and
    records the same `Node` as the general path; it hands anything unusual to `Op.__call__`.
    """

    def general(*args: Any, **kwargs: Any) -> Any:
        return Op.__call__(op, *args, **kwargs)  # looked up now: `opgraph.trace` may swap it

    return (_fast_unary if op._n_inputs == 1 else _fast_binary)(op, general)


def _fast_unary(op: PlainOp, general: Callable[..., Any]) -> Callable[..., Any]:
    forward, accepted, differentiable = op.forward, op._accepted, op._differentiable
    float_only = op._float_only
    last = None  # the shape of the last accepted call

    def call(x: Any = _NO_INPUT, /, *more: Any, **kwargs: Any) -> Any:
        nonlocal last
        if more or kwargs or type(x) is not Variable or _hooked:
            return general(*_given(x), *more, **kwargs)
        a = x.data
        shape = a.shape
        if shape != last:
            if (shape,) not in accepted:
                return general(x)
            last = shape
        try:
            result = forward(a)
        except Exception:
            return general(x)  # raises, annotated as on the general path
        y = _new_variable(Variable)
        y.data = result if type(result) is _ndarray else np.asarray(result)
        y.grad = y.name = None
        if x.requires_grad and differentiable and _engine_state(engine._default).grad_enabled:
            if float_only and a.dtype.kind in "biu":
                op._refuse_integers((x,))
            y.requires_grad = True
            record_single(op, (x,), y, (True,))  # sets y.creator
        else:
            y.requires_grad = False
            y.creator = None
        return y

    return call


def _fast_binary(op: PlainOp, general: Callable[..., Any]) -> Callable[..., Any]:
    forward, accepted, differentiable = op.forward, op._accepted, op._differentiable
    float_only = op._float_only
    last = (None, None)  # the shapes of the last accepted call, as one tuple: a thread always
    # compares with a pair that was checked, never with one shape from each of two calls

    def call(x: Any = _NO_INPUT, z: Any = _NO_INPUT, /, *more: Any, **kwargs: Any) -> Any:
        nonlocal last
        if more or kwargs or z is _NO_INPUT or _hooked:
            return general(*_given(x, z), *more, **kwargs)
        if type(x) is not Variable or type(z) is not Variable:
            pair = _with_constant(x, z)  # x * 0.5: the common constant, cached
            if pair is None:
                return general(x, z)
            x, z = pair
        a, b = x.data, z.data
        shapes = (a.shape, b.shape)
        if shapes != last:
            if shapes not in accepted:
                return general(x, z)
            last = shapes
        try:
            result = forward(a, b)
        except Exception:
            return general(x, z)
        y = _new_variable(Variable)
        y.data = result if type(result) is _ndarray else np.asarray(result)
        y.grad = y.name = None
        needs = (  # needs_input_grad: one of three shared tuples, none built per call
            (_BOTH if z.requires_grad else _FIRST)
            if x.requires_grad
            else (_SECOND if z.requires_grad else None)
        )
        if needs is not None and differentiable and _engine_state(engine._default).grad_enabled:
            if float_only and (a.dtype.kind in "biu" or b.dtype.kind in "biu"):
                op._refuse_integers((x, z))
            y.requires_grad = True
            record_single(op, (x, z), y, needs)  # sets y.creator
        else:
            y.requires_grad = False
            y.creator = None
        return y

    return call


def make_op(spec: OpSpec, provenance: Provenance) -> Op:
    """The callable op of ``spec``: a `PlainOp` where the fast path applies (unless
    ``OPGRAPH_FAST_PATH=0``), else an `Op`."""
    plain = (
        not spec.attrs
        and spec.n_outputs == 1
        and not spec.saves_state
        and not spec.stochastic
        and not spec.variadic
        and len(spec.inputs) in (1, 2)
        and not any(n.endswith("?") for n in spec.inputs)
    )
    if not plain or os.environ.get("OPGRAPH_FAST_PATH", "1").strip() == "0":
        return Op(spec, provenance)
    # a class of its own, whose ``__call__`` is the op's fast path itself: ``ops.sin(x)`` then
    # costs one Python call, not two (`PlainOp.__call__` delegating to it)
    own = type("PlainOp", (PlainOp,), {"__slots__": ()})
    op = own(spec, provenance)
    own.__call__ = staticmethod(op.fast)
    return op
