"""The define-by-run graph: `Variable`, the `Node` an op call records, and `backward()`.

The engine knows no op: every operator and method of `Variable` dispatches to the *active* op
set of the calling thread or task (`State.ops`, the default op set unless `opgraph.use_opset`
says otherwise), and `backward()` runs each node's backward under the op set its op was built
in. Recording and test mode are per thread and per asyncio task too (`contextvars`).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import operator
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from opgraph.errors import GradientError

if TYPE_CHECKING:
    from opgraph.op import Op

NUMERIC_KINDS = "biufc"


class State(NamedTuple):
    """The engine's switches for one thread or asyncio task (a `contextvars` value).

    ``ops`` is the dispatch table of the active op set: the ops Variable operators, `unbroadcast`
    and fan-in sums call (None until the default op set is first needed).
    """

    grad_enabled: bool = True
    training: bool = True
    ops: Any = None


class _Lazy:
    """The default state's ``ops`` until the default op set exists: the first operator asks the
    provider that `set_default_provider` installed, which builds it once and installs it."""

    def __getattr__(self, name: str) -> Any:
        if _default_provider is None:
            raise RuntimeError("no op set: import opgraph (it installs the default op set)")
        return getattr(_default_provider(), name)


_new_state = functools.partial(tuple.__new__, State)  # a State without NamedTuple's slow paths
_default_provider: Callable[[], Any] | None = None
_default = State(ops=_Lazy())
"""What a thread or task sees before it changes anything; replaced (not mutated) once the
default op set is built, so every thread shares it without locks."""
_state: ContextVar[State] = ContextVar("opgraph_engine_state")
_rng: list[np.random.Generator] = []  # made on first use: numpy.random is slow to import


def set_default_provider(provider: Callable[[], Any]) -> None:
    """Install the function that builds the default op set and returns its dispatch table.

    The op-set layer calls this at import time: the engine never imports the layers above it.
    """
    global _default_provider
    _default_provider = provider


def set_default_ops(ops: Any) -> None:
    """Make ``ops`` (a dispatch table) what threads use when no op set is active; None forgets
    it, so the next operator asks the provider again."""
    global _default
    _default = State(ops=_Lazy() if ops is None else ops)


def state() -> State:
    """This thread's (or task's) engine state."""
    return _state.get(_default)


def is_grad_enabled() -> bool:
    return _state.get(_default).grad_enabled


def is_training() -> bool:
    """True unless inside `test_mode()`; stochastic ops such as dropout read it."""
    return _state.get(_default).training


def random_generator() -> np.random.Generator:
    """The generator that stochastic ops receive as ``rng`` (see `seed`)."""
    if not _rng:
        _rng.append(np.random.default_rng())
    return _rng[0]


def seed(value: int | None) -> None:
    """Reseed the generator behind stochastic ops (the conformance harness uses this)."""
    _rng[:] = [np.random.default_rng(value)]


@contextlib.contextmanager
def switched(**changes: Any) -> Iterator[None]:
    """Inside, this thread's state has ``changes``; afterwards exactly what it was before."""
    token = _state.set(_state.get(_default)._replace(**changes))
    try:
        yield
    finally:
        _state.reset(token)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Inside, op calls in this thread record no graph (results have ``creator is None``)."""
    return switched(grad_enabled=False)


def enable_grad(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    return switched(grad_enabled=enabled)


def test_mode() -> contextlib.AbstractContextManager[None]:
    """Inside, `is_training()` is False in this thread (dropout passes its input through)."""
    return switched(training=False)


def active_ops() -> Any:
    """The dispatch table operators use here: the active op set's, else the default one's."""
    return _state.get(_default).ops


def _to_array(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, (int, float, complex, bool, np.generic)):
        arr = np.asarray(data)
    else:
        raise TypeError(
            f"Variable data must be a numpy array or a number, not {type(data).__name__}"
        )
    if arr.dtype.kind not in NUMERIC_KINDS:
        raise TypeError(f"Variable data must be numeric, not an array of dtype {arr.dtype}")
    return arr


class Variable:
    """A numpy array that remembers the op call (`creator`) that produced it."""

    __slots__ = ("__weakref__", "creator", "data", "grad", "name", "requires_grad")
    __array_ufunc__ = None  # numpy defers to our reflected operators: np.array(...) + v

    def __init__(self, data: Any, name: str | None = None, requires_grad: bool = True) -> None:
        """``requires_grad=False`` (also settable later) makes a constant: data batches and
        frozen parameters get no gradient and cost nothing in the backward pass."""
        self.data = _to_array(data)
        self.grad: Variable | None = None
        self.name = name
        self.creator: Node | None = None
        # False for constants: the ones above, the numbers and arrays the engine wraps, and
        # results computed from constants alone (no graph is recorded for them)
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool = False) -> Variable:
        """Fast constructor for arrays the engine already checked."""
        v = cls.__new__(cls)
        v.data = data
        v.grad = v.name = v.creator = None
        v.requires_grad = requires_grad
        return v

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return "variable(" + str(self.data).replace("\n", "\n" + " " * 9) + ")"

    def cleargrad(self) -> None:
        self.grad = None

    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``, seeding with ones.

        ``retain_grad`` keeps the gradients of intermediate variables too; ``create_graph``
        records the backward pass so gradients can be differentiated again.
        """
        seed = Variable._wrap(_ones_like(self.data))
        if self.creator is None:
            _accumulate(self, seed)
            return
        outer = _state.get(_default)
        token = _state.set(_new_state((create_graph, outer.training, outer.ops)))
        try:
            _sweep(self, seed, retain_grad)
        finally:
            _state.reset(token)  # exactly what this thread had, whatever the backwards did

    # --- operators and methods: all dispatch to ops ---
    def __add__(self, other: Any) -> Variable:
        return _state.get(_default).ops.add(self, other)

    def __radd__(self, other: Any) -> Variable:
        return _state.get(_default).ops.add(other, self)

    def __sub__(self, other: Any) -> Variable:
        return _state.get(_default).ops.sub(self, other)

    def __rsub__(self, other: Any) -> Variable:
        return _state.get(_default).ops.sub(other, self)

    def __mul__(self, other: Any) -> Variable:
        return _state.get(_default).ops.mul(self, other)

    def __rmul__(self, other: Any) -> Variable:
        return _state.get(_default).ops.mul(other, self)

    def __truediv__(self, other: Any) -> Variable:
        return _state.get(_default).ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Variable:
        return _state.get(_default).ops.div(other, self)

    def __pow__(self, other: Any) -> Variable:
        return _state.get(_default).ops.pow(self, other)

    def __rpow__(self, other: Any) -> Variable:
        return _state.get(_default).ops.pow(other, self)

    def __matmul__(self, other: Any) -> Variable:
        return _state.get(_default).ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Variable:
        return _state.get(_default).ops.matmul(other, self)

    def __neg__(self) -> Variable:
        return _state.get(_default).ops.neg(self)

    def __getitem__(self, index: Any) -> Variable:
        return _state.get(_default).ops.get_item(self, index)

    def reshape(self, *shape: Any) -> Variable:
        """``reshape(2, 3)``, ``reshape((2, 3))`` or ``reshape([2, 3])``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _state.get(_default).ops.reshape(self, shape)

    def transpose(self, *axes: Any) -> Variable:
        """No argument reverses the axes; else a tuple, a list or separate ints."""
        if not axes or (len(axes) == 1 and axes[0] is None):
            return _state.get(_default).ops.transpose(self)
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _state.get(_default).ops.transpose(self, axes)

    @property
    def T(self) -> Variable:  # noqa: N802 - numpy's and DeZero's name for the transpose
        return _state.get(_default).ops.transpose(self)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Variable:
        ops = _state.get(_default).ops
        if axis is None and keepdims is False:  # the op's own defaults: a call without binding
            return ops.sum(self)
        return ops.sum(self, axis, keepdims)

    def astype(self, dtype: Any) -> Variable:
        return _state.get(_default).ops.astype(self, dtype)


_NO_ATTRS: dict[str, Any] = {}  # shared by every node of an op without attributes: never mutated


class Node:
    """One recorded op call: the backward context (``ctx``) its op's backward receives.

    Made by `record_single` (one output, no attributes or state: the op-call fast path) or
    `record` (any call, a `RichNode`); no ``__init__``, and what a fast-path node never has
    (attributes, state, several outputs) is a class-level default, so that making one costs
    as little as Python allows.
    """

    __slots__ = (
        "__weakref__",  # lets tools and tests watch a graph die
        "_number",
        "_outputs",
        "inputs",
        "needs_input_grad",
        "op",
        "ops",
    )
    attrs: dict[str, Any] = _NO_ATTRS
    state: Any = None
    _output_meta: tuple | None = None  # (shape, dtype) per output when there are several

    @property
    def outputs(self) -> tuple[Variable, ...]:
        """The outputs (None for one that was dropped before backward)."""
        outputs = self._outputs
        if len(outputs) == 1:  # no loop
            return (outputs[0](),)
        return tuple([r() for r in outputs])

    def __repr__(self) -> str:
        return f"<Node {self.op.name} inputs={[x.shape for x in self.inputs]}>"


class RichNode(Node):
    """A `Node` with attributes, saved state or several outputs."""

    __slots__ = ("_output_meta", "attrs", "state")


def record(
    op: Op,
    inputs: tuple[Variable, ...],
    attrs: dict[str, Any],
    outputs: tuple[Variable, ...],
    needs_input_grad: tuple[bool, ...],
    *,
    state: Any = None,
) -> Node:
    """The `Node` of one op call, made the creator of each output."""
    node = record_single(op, inputs, outputs[0], needs_input_grad, RichNode)
    node.attrs = attrs
    node.state = state
    node._output_meta = None
    if len(outputs) > 1:
        node._outputs = tuple([_weak(y) for y in outputs])
        # shapes/dtypes to zero-fill the gradient of an output dropped before backward
        node._output_meta = tuple([(y.data.shape, y.data.dtype) for y in outputs])
        for y in outputs:
            y.creator = node
    return node


_next_number = itertools.count().__next__
_weak = weakref.ref


def record_single(
    op: Op,
    inputs: tuple[Variable, ...],
    y: Variable,
    needs_input_grad: tuple[bool, ...],
    kind: type[Node] = Node,
) -> Node:
    """The `Node` of a one-output call without attributes or state (the op-call fast path)."""
    node = kind()
    node.op = op
    node.ops = op.deps  # the ops its backward may use: its ``requires`` + the essential ops
    node.inputs = inputs
    node.needs_input_grad = needs_input_grad
    node._number = _next_number()  # orders the backward pass (see _sweep)
    # weak: an output owns its creator, not the other way round (no reference cycles)
    node._outputs = (_weak(y),)
    y.creator = node
    return node


def _accumulate(var: Variable, g: Variable) -> None:
    var.grad = g if var.grad is None else _add_grads(var.grad, g)


def _add_grads(a: Variable, b: Variable) -> Variable:
    """Fan-in: gradients sum. Through the ``add`` op when the backward pass is recorded
    (``create_graph``); otherwise in numpy directly, which gives the same array without the
    cost of an op call (no graph is recorded then anyway)."""
    if _state.get(_default).grad_enabled:
        return a + b
    return Variable._wrap(_add_arrays(a.data, b.data))


# The engine's own numpy calls (fan-in sums, the seed, zero-filled gradients, read-only views
# of gradients, `derive`), by module-level names: `opgraph.trace` swaps in recording versions
# while it records.
_add_arrays = np.add
_zeros = np.zeros
_apply = operator.call


def derive(fn: Callable[..., Any], *inputs: Any) -> np.ndarray:
    """``fn`` applied to the arrays of ``inputs`` (Variables or arrays): how a backward computes
    a constant from values in numpy (a mask, a one-hot). Like a forward, ``fn`` must depend on
    those arrays only; `opgraph.trace` records the call and replays it on fresh values, where
    reading ``x.data`` in a backward would be refused."""
    return np.asarray(_apply(fn, *[x.data if isinstance(x, Variable) else x for x in inputs]))


def _readonly_view(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.setflags(False)  # write=False, passed by position: half the cost of the keyword
    return view


def _ones_like(a: np.ndarray) -> np.ndarray:
    """The seed of a backward pass: two C calls, cheaper than np.ones_like."""
    ones = np.empty_like(a)
    ones.fill(1)
    return ones


def _output_grads(
    node: Node, pending: dict[Variable, Variable], retain: bool
) -> Sequence[Variable]:
    """Take the gradients flowing into ``node``'s outputs out of ``pending`` (which frees them
    unless ``retain``); empty when no output received any."""
    if len(node._outputs) == 1:  # the common case, without building lists
        (output,) = node._outputs
        gy = pending.pop(output(), None)
        if gy is not None and retain:
            _accumulate(output(), gy)
        return () if gy is None else (gy,)
    outputs = [r() for r in node._outputs]  # None for an output that was dropped
    gys = [pending.pop(y, None) for y in outputs]
    if None in gys:
        if gys.count(None) == len(gys):
            return ()
        gys = [  # a multi-output node: zero-fill the outputs nobody used
            Variable._wrap(_zeros(*meta)) if g is None else g
            for g, meta in zip(gys, node._output_meta, strict=True)
        ]
    if retain:
        for y, g in zip(outputs, gys, strict=True):
            if y is not None:
                _accumulate(y, g)
    return gys


def _as_tuple(node: Node, gxs: Any) -> tuple[Any, ...]:
    """A backward's result as one gradient per input (a lone Variable or a list allowed)."""
    if type(gxs) is not tuple:
        gxs = tuple(gxs) if isinstance(gxs, list) else (gxs,)
    if len(gxs) != len(node.inputs):
        raise GradientError(
            f"backward of `{node.op.name}` ({node.op.origin}) returned {len(gxs)} gradient(s) "
            f"for {len(node.inputs)} input(s); return exactly one per input (None for none)"
        )
    return gxs


def _data_of(node: Node, k: int, gx: Any) -> np.ndarray:
    """The array of a gradient that is not exactly a Variable: a subclass is one; anything
    else is the backward's bug."""
    if not isinstance(gx, Variable):
        raise GradientError(
            f"backward of `{node.op.name}` ({node.op.origin}) returned a "
            f"{type(gx).__name__} for input {k}; return a Variable built with opgraph ops"
        )
    return gx.data


def _switch(current: State, ops: Any) -> State:
    """This thread's state with ``ops`` active (a backward built in another op set); the
    reset in `Variable.backward` undoes it."""
    current = _new_state((current.grad_enabled, current.training, ops))
    _state.set(current)
    return current


def _mismatch_message(node: Node, k: int, g: np.ndarray, a: np.ndarray) -> str:
    where = f"backward of `{node.op.name}` ({node.op.origin})"
    if g.shape != a.shape:
        return f"{where} did not reduce the gradient of input {k} from {g.shape} to {a.shape}"
    return (
        f"{where} returned a {g.dtype} gradient for {a.dtype} input {k}; "
        "cast it (e.g. opgraph.unbroadcast)"
    )


def _sweep(output: Variable, seed: Variable, retain_grad: bool) -> None:
    """Run every node's backward once, producers after consumers, summing fan-in gradients.

    Nodes are numbered when created, after the nodes that produced their inputs, so the node
    with the highest number among those owed a gradient has no consumer left to wait for: the
    sweep runs it next. A node joins when its first gradient arrives (no search of the graph
    beforehand); in a chain that is always the one node held in ``after``, so the heap of
    numbers is used only where the graph branches.

    Each node's backward (and the fan-in sums of its gradients) runs under the op set its op
    was built in: the active op set switches only where that changes along the graph. Every
    gradient is checked against its input's shape and dtype before it goes anywhere.
    """
    # gradients still flowing, by the Variable they are for: op outputs, which the engine makes
    # as plain Variables (no subclass's __eq__ or __hash__), so a key is its identity
    pending: dict[Variable, Variable] = {output: seed}
    current = _state.get(_default)
    active = current.ops  # the dispatch table of ``current``, read once
    node: Node | None = output.creator
    after: Node | None = None  # the next node, while the graph is a chain
    waiting: dict[int, Node] = {}  # the other nodes owed a gradient, by number
    heap: list[int] = []  # their numbers, negated
    spelled_out = not retain_grad  # one output and nothing retained: no lists
    while node is not None:
        gys = (  # None: one output, nothing retained, so its gradient is popped right here
            None
            if spelled_out and node._output_meta is None
            else _output_grads(node, pending, retain_grad)
        )
        gy = pending.pop(node._outputs[0](), None) if gys is None else gys[0] if gys else None
        if gy is not None:  # else no output received a gradient
            op = node.op
            home = op.dispatch
            if home is not active and home is not None:  # a backward from another op set
                current = _switch(current, home)
                active = home
            gxs = op.backward(node, gy) if gys is None else op.backward(node, *gys)
            inputs = node.inputs
            k, n = 0, len(inputs)
            gxs = (  # one gradient per input; a lone Variable for one input is common
                gxs
                if type(gxs) is tuple and len(gxs) == n
                else (gxs,)
                if type(gxs) is Variable and n == 1
                else _as_tuple(node, gxs)
            )
            needs = node.needs_input_grad
            while k < n:  # a counter by hand: cheaper than zip, enumerate or range here
                gx = gxs[k]
                if gx is not None:
                    g = gx.data if type(gx) is Variable else _data_of(node, k, gx)
                    x = inputs[k]
                    a = x.data
                    if g.shape != a.shape or (g.dtype is not a.dtype and g.dtype != a.dtype):
                        raise GradientError(_mismatch_message(node, k, g, a))
                    if needs[k]:
                        producer = x.creator
                        if producer is None:
                            _accumulate(x, gx)
                        elif (prev := pending.get(x)) is not None:
                            pending[x] = _add_grads(prev, gx)
                        else:  # the first gradient for x: its producer is owed one now
                            pending[x] = gx
                            if after is None and not heap:
                                after = producer
                            else:
                                _queue(producer, after, waiting, heap)
                k += 1
        node, after = _next_queued(after, waiting, heap) if heap else (after, None)


def _next_queued(
    after: Node | None, waiting: dict[int, Node], heap: list[int]
) -> tuple[Node | None, Node | None]:
    """The sweep's next node and its new ``after`` once nodes are queued: the highest number
    of ``after`` and the heap's top."""
    if after is None or -heap[0] > after._number:
        return waiting.pop(-heapq.heappop(heap)), after
    return after, None


def _queue(node: Node, after: Node | None, waiting: dict[int, Node], heap: list[int]) -> None:
    """Queue ``node``, now owed a gradient, beside ``after`` (the sweep's next node), unless
    ``node`` is it or is queued already."""
    if node is not after and node._number not in waiting:
        waiting[node._number] = node
        heapq.heappush(heap, -node._number)


def unbroadcast(g: Variable, like: Variable, *, fresh: bool = False) -> Variable:
    """Reduce gradient ``g`` to the shape and dtype of input ``like``.

    The one helper every broadcasting backward uses: `sum_to` over broadcast axes, then a cast
    if type promotion changed the dtype (``int_x * 2.5``). With nothing to do it returns a
    read-only view of ``g``, never ``g`` itself: a gradient that *is* the output gradient would
    let an in-place update of one (``x.grad.data *= 0.5``) silently change the other.
    ``fresh=True`` says ``g`` was just computed by this backward (``gy * x1``), so it is
    returned as it is.
    """
    a, target = g.data, like.data
    if a.shape == target.shape and (a.dtype is target.dtype or a.dtype == target.dtype):
        if fresh:  # nothing to do: the common case, decided first
            return g
        state = _state.get(_default)
        if state.grad_enabled:  # a recorded backward (create_graph): the view stays in the graph
            return state.ops.reshape(g, a.shape)
        return Variable._wrap(_readonly_view(a))
    ops = _state.get(_default).ops
    out = g if a.shape == target.shape else ops.sum_to(g, target.shape)
    return out if out.data.dtype == target.dtype else ops.astype(out, target.dtype)
