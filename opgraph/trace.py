"""`opgraph.trace`: record a function's numpy calls once per signature, replay them as code.

An op is a numpy forward plus a backward written with ops, so one eager run of a training step
is, underneath, a list of numpy calls: every op's forward (the backward's ops included), the
fan-in sums and the seed of the backward pass. `trace` records that list during one eager call
and compiles it into one Python function (one line per numpy call); later calls with the same
signature run that function, without any Variable, Node or dispatch.

Never silently wrong: while recording, anything whose replay could differ from eager is refused
with a `TraceError` naming the line (see docs/trace.md): reading or assigning ``Variable.data``
outside the engine (so ``float(v.data)``, ``if (v.data > 0).any()``, a backward computing a mask
in numpy), numpy computation on array arguments outside ops, arrays that no recorded call
produced, in-place changes to an argument or a parameter, numpy's global random state, seeding
inside the function, gradients of intermediates (``retain_grad``). Shapes, dtypes, grad mode,
test mode, the op set and the Python scalars the function reads from its closure and globals
are the signature: a new one records again.

Recording swaps recording versions of the op call, of ``Variable.data``/``.grad`` and of the
backward pass's numpy calls into the classes and the engine module, and swaps them back after:
calls that are not being recorded pay nothing, and other threads see the same behaviour (ops
take their general call path, which the fast path matches exactly).
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from opgraph import engine
from opgraph import op as op_module
from opgraph.engine import Variable
from opgraph.errors import OpgraphError
from opgraph.op import Op, as_inputs

DEFAULT_MAX_SIGNATURES = 8
_SCALARS = (int, float, bool, complex, str, bytes, type(None))
_ENGINE_MODULES = frozenset({"opgraph.engine", "opgraph.op", __name__})
"""Modules whose reads of ``Variable.data`` are the engine's own (shapes, forwards' inputs)."""

_DATA = Variable.__dict__["data"]  # the slot descriptors, used directly while recording
_GRAD = Variable.__dict__["grad"]
_recorder: ContextVar[_Recorder | None] = ContextVar("opgraph_trace_recorder", default=None)
_TOKEN = re.compile(r"\b[A-Za-z]\d+\b")  # a name in the generated code: v12, p3, s4 ...
_MISS = object()  # what a replay returns when a parameter no longer matches its recording


class TraceError(OpgraphError, RuntimeError):
    """A traced function does something a replay could not repeat exactly (see docs/trace.md).

    Raised while recording, before anything is cached; the gradients the function had already
    accumulated are restored, so nothing changed."""


class Replayed(Variable):
    """A Variable a replay returns where eager returned one with a graph: it has none, so
    calling its backward raises instead of silently reaching no parameter."""

    __slots__ = ()

    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        raise TraceError(
            "this Variable comes from a replay of an opgraph.trace function and has no graph; "
            "call backward() inside the traced function"
        )


def trace(
    fn: Callable[..., Any] | None = None, *, max_signatures: int = DEFAULT_MAX_SIGNATURES
) -> Any:
    """``trace(fn)`` (or ``@trace``, ``@trace(max_signatures=4)``): a callable like ``fn`` that
    records ``fn`` once per signature and replays the recording on later calls."""
    if fn is None:
        return functools.partial(trace, max_signatures=max_signatures)
    if not callable(fn):
        raise TypeError(f"opgraph.trace takes a function, not {type(fn).__name__}")
    if type(max_signatures) is not int or max_signatures < 1:
        raise ValueError(f"max_signatures must be a positive int, got {max_signatures!r}")
    return Traced(fn, max_signatures)


class Traced:
    """The callable `trace` returns: a bounded LRU cache of recordings, one per signature."""

    def __init__(self, fn: Callable[..., Any], max_signatures: int) -> None:
        self.fn = fn
        self.max_signatures = max_signatures
        self.recordings = 0  # how often fn ran eagerly to record (a retrace counts)
        self._cache: OrderedDict[tuple, Callable] = OrderedDict()
        code = getattr(fn, "__code__", None)
        self._cells = tuple(getattr(fn, "__closure__", None) or ())
        self._globals = getattr(fn, "__globals__", {})
        # the globals fn names that hold numbers or strings now (co_names also has attributes)
        names = code.co_names if code is not None else ()
        self._global_names = tuple(
            n for n in names if type(self._globals.get(n, _MISS)) in _SCALARS
        )
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return (
            f"<opgraph.trace of {name}: {len(self._cache)} of at most {self.max_signatures} "
            f"signatures cached, recorded {self.recordings} time(s)>"
        )

    def clear(self) -> None:
        """Forget every recording: the next call records again."""
        self._cache.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _recorder.get() is not None:  # inside another recording: part of that one
            return self.fn(*args, **kwargs)
        key, found = self._signature(args, kwargs)
        replay = self._cache.get(key)
        if replay is not None:
            result = replay(found)
            if result is not _MISS:
                self._cache.move_to_end(key)
                return result
        result, replay = _record(self.fn, args, kwargs, found)
        self.recordings += 1
        self._cache[key] = replay
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_signatures:
            self._cache.popitem(last=False)
        return result

    def _signature(self, args: tuple, kwargs: dict) -> tuple[tuple, list]:
        """The cache key (arguments' structure, shapes, dtypes and scalars; the engine's
        modes; the closure and global scalars ``fn`` reads) and the argument arrays."""
        sig: list = []
        found: list = []
        if args:
            _walk(args, sig, found)
        if kwargs:
            _walk(kwargs, sig, found)
        for cell in self._cells:
            try:
                value = cell.cell_contents
            except ValueError:  # an unfilled cell
                value = _MISS
            sig.append(value if type(value) in _SCALARS else id(value))
        g = self._globals
        for name in self._global_names:
            value = g.get(name, _MISS)
            sig.append(value if type(value) in _SCALARS else id(value))
        state = engine._state.get(engine._default)
        ops = state.ops
        if type(ops) is engine._Lazy:  # the default op set, built on first use: build it now
            ops = engine._default_provider()
        sig.append((state.grad_enabled, state.training, id(ops)))
        return tuple(sig), found


def _walk(value: Any, sig: list, found: list) -> None:
    """Flatten arguments: arrays and Variables into ``found``, their description into ``sig``."""
    t = type(value)
    if isinstance(value, Variable):
        a = _DATA.__get__(value)
        found.append(value)
        sig.append((t, a.shape, a.dtype.str, value.requires_grad, value.creator is None))
    elif isinstance(value, np.ndarray):
        found.append(value)
        sig.append((t, value.shape, value.dtype.str))
    elif t is tuple or t is list:
        sig.append((t, len(value)))
        for v in value:
            _walk(v, sig, found)
    elif t is dict:
        sig.append((t, tuple(value)))
        for v in value.values():
            _walk(v, sig, found)
    elif t in _SCALARS or isinstance(value, np.generic):
        sig.append((t, value))
    else:  # any other object (a model, a function): by identity
        sig.append((t, id(value)))


# --- recording ---------------------------------------------------------------------------


class _Guarded(np.ndarray):
    """A view of an array argument while recording: numpy computation on it outside an op
    (``x.sum() > 0``, ``float(x[0])``) could not be replayed, so it is refused."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _check_numpy(f"numpy.{ufunc.__name__}")
        inputs = tuple(_plain(x) for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(x) for x in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        _check_numpy(f"numpy.{func.__name__}")
        return np.ndarray.__array_function__(self, func, types, _map_tree(args, _plain), kwargs)


def _refusing(name: str) -> Callable:
    base = getattr(np.ndarray, name)

    def method(self: _Guarded, *args: Any, **kwargs: Any) -> Any:
        _check_numpy("indexing" if name == "__getitem__" else f"ndarray.{name}")
        return base(self.view(np.ndarray), *args, **kwargs)

    return method


for _name in (
    "__getitem__",
    "__bool__",
    "__float__",
    "__int__",
    "__index__",
    "__complex__",
    "__iter__",
    "item",
    "tolist",
    "tobytes",
):
    setattr(_Guarded, _name, _refusing(_name))


def _plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, _Guarded) else x


def _map_tree(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn`` applied to every leaf of nested tuples, lists and dicts."""
    if type(value) in (tuple, list):
        return type(value)(_map_tree(v, fn) for v in value)
    if type(value) is dict:
        return {k: _map_tree(v, fn) for k, v in value.items()}
    return fn(value)


def _check_numpy(what: str) -> None:
    rec = _recorder.get()
    if rec is not None and rec.in_op == 0:
        rec.refuse(
            f"computes {what} on an array argument outside ops",
            "compute it with opgraph ops on a Variable, or outside the traced function",
        )


def _internal(module: str) -> bool:
    """Frames a refusal's location skips: this module's and numpy's own."""
    return module in (__name__, "numpy") or module.startswith("numpy.")


class _Recorder:
    """What one eager run of a traced function did, as lines of code over named arrays."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.in_op = 0  # > 0 while an op call (its forward) runs
        self.lines: list[str] = []
        self.names: dict[int, str] = {}  # id(array) -> the expression that yields it
        self.keep: list = []  # keeps every named array (and Variable) alive: ids stay unique
        self.namespace: dict[str, Any] = {"W": Variable._wrap, "R": _replayed, "MISS": _MISS}
        self.born: dict[int, Variable] = {}  # Variables created while recording
        self.holders: dict[int, str] = {}  # id(Variable from outside fn) -> its name
        self.holder_vars: list[tuple[str, Variable]] = []
        self.prelude: list[str] = []  # argument and parameter reads, after the guards
        self.guards: list[str] = []
        self.grads: dict[int, tuple[Variable, Any, bool]] = {}  # first touch: (v, grad, read?)
        self.checked: list[tuple[str, np.ndarray, np.ndarray]] = []  # (what, array, copy)
        self.ufunc_calls: list[tuple[int, str, str, list[str], np.ndarray]] = []
        self.views: list[tuple[int, str, str]] = []  # read-only views: (line, name, of)
        self.counter = 0

    # names
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, value: Any) -> str:
        name = self.fresh("K")
        self.namespace[name] = value
        return name

    def name_array(self, array: Any, expr: str) -> None:
        self.names[id(array)] = expr
        self.keep.append(array)

    # refusals
    def refuse(self, what: str, fix: str) -> None:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        raise TraceError(
            f"opgraph.trace: {name} {what} at {self.where()}: a replay could not repeat it; {fix}"
        )

    def where(self) -> str:
        """``file:line`` of the offending code, the line of ``fn`` it was called from, and the
        op whose backward it is in."""
        frame = sys._getframe(1)
        while frame is not None and _internal(frame.f_globals.get("__name__", "")):
            frame = frame.f_back
        if frame is None:
            return "?"
        text = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        op = None
        f = frame
        code = getattr(self.fn, "__code__", None)
        while f is not None and f.f_code is not code:
            if f.f_code is engine._sweep.__code__ and op is None:
                op = getattr(getattr(f.f_locals.get("node"), "op", None), "name", None)
            f = f.f_back
        notes = []
        if f is not None and f is not frame:
            notes.append(f"called from line {f.f_lineno} of the traced function")
        if op is not None:
            notes.append(f"in the backward of op `{op}`")
        return text + (f" ({', '.join(notes)})" if notes else "")

    # sources
    def holder(self, v: Variable) -> str:
        """The name of a Variable from outside ``fn`` (an argument or a captured parameter)."""
        name = self.holders.get(id(v))
        if name is None:
            name = self.fresh("h")
            self.holders[id(v)] = name
            self.holder_vars.append((name, v))
            self.keep.append(v)
            self.namespace[name] = v
        return name

    def read_data(self, v: Variable) -> str:
        """The name of a parameter's array, read fresh by every replay (and guarded)."""
        a = _DATA.__get__(v)
        expr = self.names.get(id(a))
        if expr is not None:
            return expr
        if v.creator is not None:
            self.refuse(
                "uses a Variable that has a graph from outside the traced function",
                "pass its array (or a Variable without a creator) instead",
            )
        h = self.holder(v)
        expr = self.fresh("p")
        # built-in dtypes are singletons: `is not` is cheap, and another dtype object of the
        # same type (a byte order) only costs a new recording
        self.guards.append(
            f"{h}.data.shape != {self.constant(a.shape)} or {h}.data.dtype is not "
            f"{self.constant(a.dtype)} or {h}.requires_grad is not {v.requires_grad!r}"
        )
        self.prelude.append(f"{expr} = {h}.data")
        self.name_array(a, expr)
        self.checked.append((f"the data of a Variable of shape {a.shape}", a, a.copy()))
        return expr

    def array(self, a: Any, variable: Variable | None = None) -> str:
        """The expression of an array entering a recorded call."""
        expr = self.names.get(id(a))
        if expr is not None:
            return expr
        if variable is not None and id(variable) not in self.born:
            return self.read_data(variable)
        self.refuse(
            f"passes an array of shape {getattr(a, 'shape', '?')} that no recorded op computed "
            "(numpy on .data, or an array made inside the function)",
            "compute it with ops, or pass it as an argument",
        )
        raise AssertionError("unreachable")

    def value(self, v: Any) -> str:
        """The expression of an attribute value: arrays by name, everything else a constant."""
        if isinstance(v, np.ndarray):
            return self.array(v)
        if isinstance(v, (tuple, list)) and any(isinstance(x, np.ndarray) for x in v):
            inner = ", ".join(self.value(x) for x in v)
            return f"({inner},)" if isinstance(v, tuple) else f"[{inner}]"
        return self.constant(v)

    # events
    def call(
        self,
        fn: Callable,
        args: list[str],
        kwargs: dict[str, str],
        outputs: Any,
        *,
        saves_state: bool = False,
        state: Any = None,
        as_array: bool = True,
    ) -> None:
        """One numpy-level call: ``outputs = fn(*args, **kwargs)`` (``(outputs, state)`` for a
        forward that saves state: the state's arrays get names too, for the backward).
        ``as_array``: numpy scalars become 0-d arrays, as the op call path makes them."""
        call = (
            f"{self.constant(fn)}({', '.join([*args, *(f'{k}={e}' for k, e in kwargs.items())])})"
        )
        if saves_state:
            result, st = self.fresh("r"), self.fresh("s")
            self.lines.append(f"{result}, {st} = {call}")
            call = result
        single = not isinstance(outputs, (tuple, list))
        arrays = [outputs] if single else list(outputs)
        names = [self.fresh("v") for _ in arrays]
        self.lines.append(f"{names[0] if single else '(' + ', '.join(names) + ',)'} = {call}")
        if single and isinstance(fn, np.ufunc) and not kwargs and id(outputs) not in self.names:
            self.ufunc_calls.append((len(self.lines) - 1, call, names[0], args, outputs))
        if fn is _ENGINE_CALLS["_readonly_view"]:
            self.views.append((len(self.lines) - 1, names[0], args[0]))
        for name, a in zip(names, arrays, strict=True):
            if as_array and a.ndim == 0:  # a numpy scalar from the forward, made an array
                self.lines.append(f"{name} = AS({name})")
                self.namespace["AS"] = np.asarray
            self.name_array(a, name)
        if saves_state:
            self._name_state(state, st)

    def op_call(self, op: Op, args: tuple, kwargs: dict) -> Any:
        """Run one op call eagerly (the general call path), then record its forward."""
        self.in_op += 1
        try:
            out = _ORIGINAL_CALL(op, *args, **kwargs)
        finally:
            self.in_op -= 1
        if self.in_op:  # an op called by a forward: the outer call is what replays
            return out
        if kwargs or len(args) != op._fast_arity:
            inputs, attrs = op._bind(args, kwargs)
        else:
            inputs, attrs = args, op._defaults
        outputs = out if isinstance(out, tuple) else (out,)
        node = outputs[0].creator
        fresh = node is not None and node.op is op and node.outputs[0] is outputs[0]
        # the Variables the call made of numbers live on in its node: a backward may use them
        xs = node.inputs if fresh else as_inputs(inputs)
        exprs = []
        for x, v in zip(inputs, xs, strict=True):
            a = _DATA.__get__(v)
            if isinstance(x, (Variable, np.ndarray)):
                exprs.append(self.array(a, x if x is v else None))
            elif type(x) in _SCALARS:  # a literal of the code: the same on every call
                name = self.constant(a)
                self.name_array(a, name)
                exprs.append(name)
            else:
                self.refuse(
                    f"passes a {type(x).__name__} to op `{op.name}` (a numpy scalar may come "
                    "from array values)",
                    "pass a Python number or a Variable",
                )
        kw = {k: self.value(v) for k, v in attrs.items()}
        if op._stochastic:  # the engine's generator, drawn from in the same order as eager
            kw["rng"] = self.constant(engine.random_generator) + "()"
        arrays = [_DATA.__get__(y) for y in outputs]
        state = node.state if fresh else None
        self.call(
            op.forward,
            exprs,
            kw,
            arrays[0] if op._n_outputs == 1 else arrays,
            saves_state=op._saves_state,
            state=state,
        )
        return out

    def _name_state(self, state: Any, expr: str) -> None:
        if isinstance(state, np.ndarray):
            self.name_array(state, expr)
        elif isinstance(state, (tuple, list)):
            for k, s in enumerate(state):
                self._name_state(s, f"{expr}[{k}]")
        elif isinstance(state, dict):
            for k, s in state.items():
                self._name_state(s, f"{expr}[{k!r}]")

    def engine_call(self, fn: Callable, arrays: tuple, constants: tuple, out: np.ndarray) -> None:
        args = [self.array(a) for a in arrays] + [self.constant(c) for c in constants]
        self.call(fn, args, {}, out, as_array=False)

    def data_read(self, v: Variable, caller: Any) -> None:
        if caller.f_globals.get("__name__") not in _ENGINE_MODULES:
            self.refuse(
                "reads Variable.data",
                "Python code on array values is not replayed: use ops (x.shape, len(x) are "
                "fine), or return the Variable and read .data after the call",
            )

    def data_write(self, v: Variable, caller: Any) -> None:
        if caller.f_globals.get("__name__") not in _ENGINE_MODULES:
            self.refuse(
                "assigns Variable.data",
                "change parameters outside the traced function (an optimizer step after it)",
            )
        self.born[id(v)] = v

    def grad_touch(self, v: Variable, reading: bool) -> None:
        """The first touch of a parameter's ``.grad`` sees its value at the call: a read makes
        the replay depend on it (guarded; an existing gradient is read fresh and added to)."""
        if id(v) in self.grads or id(v) in self.born:
            return
        before = _GRAD.__get__(v)
        self.grads[id(v)] = (v, before, reading)
        if not reading:
            return
        h = self.holder(v)
        self.guards.append(f"({h}.grad is None) is not {before is None!r}")
        if before is not None:
            g = _DATA.__get__(before)
            self.guards.append(
                f"{h}.grad.data.shape != {self.constant(g.shape)} or "
                f"{h}.grad.data.dtype is not {self.constant(g.dtype)}"
            )
            expr = self.fresh("g")
            self.prelude.append(f"{expr} = {h}.grad.data")
            self.name_array(g, expr)

    # the result
    def compile(self, result: Any, found: list) -> Callable:
        """The replay function: guards, reads, the calls, gradients, the return value."""
        for what, a, copy in self.checked:
            same = a.shape == copy.shape and np.array_equal(a, copy, equal_nan=a.dtype.kind in "fc")
            if not same:
                self.refuse(f"changed {what} in place", "change it outside the traced function")
        exposed: dict[int, str] = {}
        tail: list[str] = []

        def expose(v: Variable) -> str:
            if id(v) in exposed:
                return exposed[id(v)]
            if id(v) not in self.born:
                name = self.holder(v)
            else:
                a = _DATA.__get__(v)
                expr = self.names.get(id(a))
                if expr is None:
                    self.refuse(
                        f"returns a Variable of shape {a.shape} that no recorded op computed",
                        "compute it with ops",
                    )
                name = self.fresh("o")
                tail.append(f"{name} = {'R' if v.creator is not None else 'W'}({expr})")
            exposed[id(v)] = name
            return name

        grad_lines = []
        for v, before, _ in self.grads.values():
            after = _GRAD.__get__(v)
            if after is before:
                continue
            h = self.holder(v)
            grad_lines.append(f"{h}.grad = {'None' if after is None else expose(after)}")
        returned = self.template(result, expose)
        for key in list(exposed):  # Variables made in fn and returned keep their gradients
            v = self.born.get(key)
            g = None if v is None else _GRAD.__get__(v)
            if g is not None:
                grad_lines.append(f"{exposed[key]}.grad = {expose(g)}")
        self._reuse_buffers([*tail, *grad_lines, returned])
        self._drop_internal_views([*tail, *grad_lines, returned])
        guards = " or ".join(f"({g})" for g in self.guards) or "False"
        args = [f"{name} = f[{k}]" for k, name in self._argument_names(found)]
        body = [
            *args,
            f"if {guards}:",
            "    return MISS",
            *self.prelude,
            *self.lines,
            *tail,
            *grad_lines,
            f"return {returned}",
        ]
        source = "def replay(f):\n" + "".join(f"    {line}\n" for line in body)
        code = compile(
            source, f"<opgraph.trace of {getattr(self.fn, '__qualname__', '?')}>", "exec"
        )
        exec(code, self.namespace)
        replay = self.namespace["replay"]
        replay.source = source
        return replay

    def _reuse_buffers(self, epilogue: list[str]) -> None:
        """Let a ufunc write into an input that dies there (``out=``), as hand-written numpy
        would: same kernel, same values, one allocation less. Only an array a recorded call
        made, that owns its memory and has no view in use later, is reused."""
        last_use: dict[str, float] = {}
        for i, line in enumerate(self.lines):
            for token in _TOKEN.findall(line.partition(" = ")[2]):
                last_use[token] = i
        for line in epilogue:
            for token in _TOKEN.findall(line):
                last_use[token] = float("inf")
        arrays = {
            name: a
            for a in self.keep
            if isinstance(a, np.ndarray)
            for name in [self.names.get(id(a))]
            if name is not None
        }
        roots: dict[int, list[str]] = {}
        for name, a in arrays.items():
            root = a
            while isinstance(root.base, np.ndarray):
                root = root.base
            roots.setdefault(id(root), []).append(_TOKEN.match(name).group())
        for i, call, out, args, result in self.ufunc_calls:
            for arg in args:
                a = arrays.get(arg)
                if (
                    a is None
                    or not arg.startswith("v")
                    or a.base is not None
                    or a.shape != result.shape
                    or a.dtype != result.dtype
                    or a.ndim == 0
                    or not a.flags.writeable
                    or any(last_use.get(t, -1) > i for t in roots.get(id(a), ()))
                ):
                    continue
                self.lines[i] = f"{out} = {call[:-1]}, out={arg})"
                break

    def _drop_internal_views(self, epilogue: list[str]) -> None:
        """A read-only view that never leaves the replay (unbroadcast's, of a gradient that is
        summed on) is its array: later lines use the array itself, one call less each. Runs
        after `_reuse_buffers`, which kept the array alive wherever its view was."""
        exposed = {t for line in epilogue for t in _TOKEN.findall(line)}
        renamed: dict[str, str] = {}
        dropped = set()
        for i, name, of in self.views:
            if name not in exposed:
                renamed[name] = renamed.get(of, of)
                dropped.add(i)
        if not renamed:
            return

        def rename(match: re.Match) -> str:
            return renamed.get(match.group(), match.group())

        self.lines = [
            _TOKEN.sub(rename, line) for i, line in enumerate(self.lines) if i not in dropped
        ]

    def _argument_names(self, found: list) -> list[tuple[int, str]]:
        pairs = []
        for k, v in enumerate(found):
            name = self.holders.get(id(v))
            if name is not None:
                self.namespace.pop(name, None)  # read from the call's arguments, not the recording
                pairs.append((k, name))
        return pairs

    def template(self, value: Any, expose: Callable[[Variable], str]) -> str:
        if isinstance(value, Variable):
            return expose(value)
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, (tuple, list)):
            inner = ", ".join(self.template(v, expose) for v in value)
            if type(value) is list:
                return f"[{inner}]"
            return (
                f"({inner},)"
                if type(value) is tuple
                else self.constant(type(value)) + f"(({inner},))"
            )
        if isinstance(value, dict):
            items = ", ".join(
                f"{self.constant(k)}: {self.template(v, expose)}" for k, v in value.items()
            )
            return "{" + items + "}"
        if type(value) in _SCALARS:
            return self.constant(value)
        self.refuse(
            f"returns a {type(value).__name__}",
            "return Variables, arrays, numbers or containers of them",
        )
        raise AssertionError("unreachable")


def _replayed(array: np.ndarray) -> Replayed:
    v = Replayed.__new__(Replayed)
    _DATA.__set__(v, array)
    _GRAD.__set__(v, None)
    v.name = v.creator = None
    v.requires_grad = False
    return v


# --- the recording versions, swapped in while any thread records -------------------------

_ORIGINAL_CALL = Op.__call__
_ENGINE_CALLS = {
    name: getattr(engine, name)
    for name in ("_add_arrays", "_zeros", "_ones_like", "_readonly_view")
}
_ORIGINAL_APPLY = engine._apply


def _recording_call(self: Op, *args: Any, **kwargs: Any) -> Any:
    rec = _recorder.get()
    if rec is None:
        return _ORIGINAL_CALL(self, *args, **kwargs)
    return rec.op_call(self, args, kwargs)


def _get_data(v: Variable) -> np.ndarray:
    rec = _recorder.get()
    if rec is not None:
        rec.data_read(v, sys._getframe(1))
    return _DATA.__get__(v)


def _set_data(v: Variable, value: Any) -> None:
    rec = _recorder.get()
    if rec is not None:
        rec.data_write(v, sys._getframe(1))
    _DATA.__set__(v, value)


def _get_grad(v: Variable) -> Any:
    rec = _recorder.get()
    if rec is not None:
        rec.grad_touch(v, reading=True)
    return _GRAD.__get__(v)


def _set_grad(v: Variable, value: Any) -> None:
    rec = _recorder.get()
    if rec is not None:
        rec.grad_touch(v, reading=False)
    _GRAD.__set__(v, value)


def _recording_numpy(name: str) -> Callable:
    original = _ENGINE_CALLS[name]

    def call(*args: Any) -> np.ndarray:
        out = original(*args)
        rec = _recorder.get()
        if rec is not None:
            arrays = tuple(a for a in args if isinstance(a, (np.ndarray, np.generic)))
            constants = tuple(a for a in args if not isinstance(a, (np.ndarray, np.generic)))
            rec.engine_call(original, arrays, constants, out)
        return out

    return call


def _recording_apply(fn: Callable, *arrays: Any) -> Any:
    rec = _recorder.get()
    if rec is None:
        return fn(*arrays)
    rec.in_op += 1  # like a forward: numpy on array arguments is what it is for
    try:
        out = np.asarray(fn(*arrays))
    finally:
        rec.in_op -= 1
    rec.call(lambda *a: np.asarray(fn(*a)), [rec.array(a) for a in arrays], {}, out)
    return out


_SWAPS: list[tuple[Any, str, Any]] = [
    (Op, "__call__", _recording_call),
    (Variable, "data", property(_get_data, _set_data)),
    (Variable, "grad", property(_get_grad, _set_grad)),
    (engine, "_apply", _recording_apply),
    *((engine, name, _recording_numpy(name)) for name in _ENGINE_CALLS),
]
_ORIGINALS = [(owner, name, owner.__dict__[name]) for owner, name, _ in _SWAPS]
_lock = threading.Lock()
_active = 0  # recordings under way in all threads


def _install(on: bool) -> None:
    global _active
    with _lock:
        _active += 1 if on else -1
        if _active == (1 if on else 0):
            for owner, name, value in _SWAPS if on else _ORIGINALS:
                setattr(owner, name, value)
            op_module._hooked = on  # the ops' fast paths then call the swapped __call__


def _numpy_random_state() -> Any:
    random = sys.modules.get("numpy.random")
    if random is None:
        return None
    state = random.get_state()
    return state[1].tobytes(), state[2:]


def _record(fn: Callable, args: tuple, kwargs: dict, found: list) -> tuple[Any, Callable]:
    """Run ``fn`` eagerly while recording; its result and the compiled replay."""
    rec = _Recorder(fn)
    generator = engine.random_generator()  # made now, so a seed() inside fn is seen
    numpy_random = _numpy_random_state()
    views: dict[int, np.ndarray] = {}  # id(argument array) -> the view fn gets
    for k, v in enumerate(found):
        if isinstance(v, Variable):
            rec.holder(v)
        else:
            views[id(v)] = guarded = v.view(_Guarded)
            rec.name_array(guarded, f"a{k}")
            rec.prelude.insert(0, f"a{k} = f[{k}]")
            rec.checked.append((f"array argument {k}", v, v.copy()))
    originals = {id(views[id(v)]): v for v in found if id(v) in views}
    call_args = _map_tree(args, lambda x: views.get(id(x), x))
    call_kwargs = _map_tree(kwargs, lambda x: views.get(id(x), x))
    _install(True)
    token = _recorder.set(rec)
    try:
        try:
            result = fn(*call_args, **call_kwargs)
            if engine._rng[0] is not generator:
                rec.refuse("seeds the op generator", "call opgraph.seed outside the function")
            if _numpy_random_state() != numpy_random:
                rec.refuse(
                    "draws from numpy's global random state",
                    "use a stochastic op (it receives the engine's generator as rng)",
                )
            replay = rec.compile(result, found)
            for v in rec.born.values():  # Variables fn made of an argument hold the argument
                data = _DATA.__get__(v)
                if isinstance(data, _Guarded):
                    _DATA.__set__(v, originals.get(id(data), _plain(data)))
            result = _map_tree(result, lambda x: originals.get(id(x), x))
        finally:
            _recorder.reset(token)
            _install(False)
    except TraceError:
        for v, before, _ in rec.grads.values():
            _GRAD.__set__(v, before)  # what the function changed is undone
        raise
    return result, replay


class _CallableModule(type(sys)):
    """``opgraph.trace`` is this module once imported: calling it is calling `trace`."""

    def __call__(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        return trace(fn, **options)


sys.modules[__name__].__class__ = _CallableModule
