"""Engine behaviour: Variable, backward, higher order, no_grad, graph lifetime, dtype policy."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import opgraph
from opgraph import Variable, engine, no_grad

ops = opgraph.ops


# --- Variable ---
@pytest.mark.parametrize(
    ("data", "shape", "dtype"),
    [
        (np.array([1.0, 2.0]), (2,), np.float64),
        (3, (), np.int64),
        (2.5, (), np.float64),
        (np.float32(1.5), (), np.float32),
        (True, (), np.bool_),
    ],
)
def test_variable_wraps_arrays_and_numbers(data, shape, dtype):
    v = Variable(data, name="v")
    assert isinstance(v.data, np.ndarray)
    assert (v.shape, v.dtype, v.name) == (shape, dtype, "v")
    assert v.grad is None and v.creator is None


@pytest.mark.parametrize("bad", ["abc", None, object(), [1, 2], np.array(["a"])])
def test_variable_rejects_non_numeric_data_naming_the_type(bad):
    with pytest.raises(TypeError, match="Variable data must be"):
        Variable(bad)


def test_variable_properties_and_repr():
    v = Variable(np.array([[1, 2], [3, 4]]))
    assert (v.ndim, v.size, len(v)) == (2, 4, 2)
    assert repr(v) == "variable([[1 2]\n          [3 4]])"
    assert str(Variable(np.array(1.5))) == "variable(1.5)"


# --- backward ---
def test_backward_diamond_visits_each_node_once():
    x = Variable(np.array(3.0))
    a = x * x
    y = a + a  # both paths through `a`
    y.backward()
    assert x.grad.data == pytest.approx(12.0)


def _random_graph(rng: np.random.Generator, x: Variable, n: int) -> Variable:
    """``n`` ops, each on one or two values picked from everything computed so far: a graph
    whose values are consumed at many depths, by nodes made in any order."""
    values = [x]
    for _ in range(n):
        a, b = (values[k] for k in rng.integers(0, len(values), 2))
        pick = rng.integers(0, 4)
        values.append([a + b, a * 0.5 * b, ops.sin(a), ops.tanh(a) - b][pick])
    return ops.sum(values[-1] + values[len(values) // 2])


@pytest.mark.parametrize("seed", range(8))
def test_backward_of_a_branching_graph_runs_each_node_once_after_its_consumers(seed, monkeypatch):
    # the sweep runs the highest-numbered node owed a gradient next; a node run before one of
    # its consumers would run again for that consumer's gradient (the sums would still agree)
    point = np.random.default_rng(seed).uniform(-1, 1, 3)
    x = Variable(point.copy())
    y = _random_graph(np.random.default_rng(seed), x, 40)
    nodes, stack = {}, [y.creator]
    while stack:  # every node the output depends on
        node = stack.pop()
        nodes[id(node)] = node
        stack += [v.creator for v in node.inputs if v.creator and id(v.creator) not in nodes]
    runs = []
    for op in {id(node.op): node.op for node in nodes.values()}.values():  # the ops it ran

        def counted(ctx, *gys, backward=op.backward):
            runs.append(ctx)
            return backward(ctx, *gys)

        monkeypatch.setattr(op, "backward", counted)
    y.backward()
    assert sorted(map(id, runs)) == sorted(nodes)  # each once, none missed
    for k, node in enumerate(runs):  # every consumer of a node's output ran before it
        assert all(id(v.creator) not in map(id, runs[:k]) for v in node.inputs)
    monkeypatch.undo()
    h, want = 1e-6, np.empty(3)
    for k in range(3):
        up, down = point.copy(), point.copy()
        up[k] += h
        down[k] -= h
        graph = _random_graph
        f_up, f_down = (graph(np.random.default_rng(seed), Variable(p), 40) for p in (up, down))
        want[k] = (f_up.data - f_down.data) / (2 * h)
    np.testing.assert_allclose(x.grad.data, want, rtol=1e-5, atol=1e-7)


def test_backward_accumulates_until_cleargrad():
    x = Variable(np.array(2.0))
    (x * 3.0).backward()
    (x * 3.0).backward()
    assert x.grad.data == 6.0
    x.cleargrad()
    (x * 3.0).backward()
    assert x.grad.data == 3.0


def test_retain_grad_false_frees_intermediate_gradients():
    x = Variable(np.array(2.0))
    a = ops.exp(x)
    y = a * 2.0
    y.backward()
    assert a.grad is None and y.grad is None and x.grad is not None
    x.cleargrad()
    y = (a := ops.exp(x)) * 2.0
    y.backward(retain_grad=True)
    assert a.grad.data == pytest.approx(2.0) and y.grad.data == 1.0


def test_retained_gradient_of_earlier_pass_does_not_leak_into_the_next():
    x = Variable(np.array(2.0))
    a = x * 1.0
    y = a * 3.0
    y.backward(retain_grad=True)
    x.cleargrad()
    y.backward()  # a.grad is still 3 from the first pass; it must not be propagated again
    assert x.grad.data == 3.0


def test_backward_of_a_leaf_seeds_ones():
    x = Variable(np.ones((2, 2), dtype=np.float32))
    x.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 2)))
    assert x.grad.dtype == np.float32


def test_long_chain_needs_no_recursion():
    x = Variable(np.array(1.0))
    y = x
    for _ in range(20_000):
        y = y + 1.0
    y.backward()
    assert x.grad.data == 1.0


def test_fourth_derivative_of_sin():
    x = Variable(np.array(1.0))
    ops.sin(x).backward(create_graph=True)
    expected = [-np.sin(1.0), -np.cos(1.0), np.sin(1.0)]
    for want in expected:
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
        assert x.grad.data == pytest.approx(want)


def test_newton_method_on_quartic_uses_second_derivative():
    x = Variable(np.array(2.0))
    for _ in range(10):
        y = x**4 - 2 * x**2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        x.data = x.data - gx.data / x.grad.data
    assert x.data == pytest.approx(1.0)


def test_create_graph_false_records_no_graph_for_gradients():
    x = Variable(np.array(1.0))
    ops.sin(x).backward()
    assert x.grad.creator is None


# --- no_grad and graph lifetime ---
def test_no_grad_records_nothing_and_restores():
    x = Variable(np.array(1.0))
    with no_grad():
        assert not opgraph.is_grad_enabled()
        y = x * 2.0
    assert y.creator is None and opgraph.is_grad_enabled()
    assert (x * 2.0).creator is not None


def test_dropping_the_output_frees_its_graph_without_gc():
    gc.disable()
    try:
        x = Variable(np.ones(3))
        y = ops.sin(x) * 2.0
        intermediate = weakref.ref(y.creator.inputs[0])  # sin's output, held only by the graph
        assert intermediate() is not None
        del y
        assert intermediate() is None  # freed by reference counting alone: no cycles
    finally:
        gc.enable()


# --- operators ---
@pytest.mark.parametrize(
    ("expr", "want"),
    [
        (lambda v: v + 1.0, 3.0),
        (lambda v: 1.0 + v, 3.0),
        (lambda v: v - 1.0, 1.0),
        (lambda v: 1.0 - v, -1.0),
        (lambda v: v * 3.0, 6.0),
        (lambda v: 3.0 * v, 6.0),
        (lambda v: v / 4.0, 0.5),
        (lambda v: 4.0 / v, 2.0),
        (lambda v: v**3, 8.0),
        (lambda v: 2.0**v, 4.0),
        (lambda v: -v, -2.0),
        (lambda v: np.array(1.0) + v, 3.0),
        (lambda v: np.float64(3.0) * v, 6.0),
        (lambda v: v + Variable(np.array(1.0)), 3.0),
    ],
)
def test_operators_with_scalars_arrays_and_variables_on_either_side(expr, want):
    out = expr(Variable(np.array(2.0)))
    assert isinstance(out, Variable)
    assert out.data == pytest.approx(want)


def test_matmul_operator_both_sides():
    a = Variable(np.ones((2, 3)))
    assert (a @ np.ones((3, 4))).shape == (2, 4)
    assert (np.ones((4, 2)) @ a).shape == (4, 3)


def test_pow_gradient_in_both_operands():
    x = Variable(np.array(2.0))
    c = Variable(np.array(3.0))
    (x**c).backward()
    assert x.grad.data == pytest.approx(12.0)
    assert c.grad.data == pytest.approx(8.0 * np.log(2.0))


def test_constant_exponent_of_negative_base_gives_no_warning():
    x = Variable(np.array([-2.0, 3.0]))
    with np.errstate(all="raise"):
        (x**2).sum().backward()
    np.testing.assert_allclose(x.grad.data, [-4.0, 6.0])


# --- methods ---
@pytest.mark.parametrize("args", [((3, 2),), ([3, 2],), (3, 2)])
def test_reshape_accepts_tuple_list_or_sizes(args):
    assert Variable(np.ones((2, 3))).reshape(*args).shape == (3, 2)


@pytest.mark.parametrize(
    ("args", "shape"),
    [
        ((), (4, 3, 2)),
        (((1, 0, 2),), (3, 2, 4)),
        (([2, 0, 1],), (4, 2, 3)),
        ((-1, 0, 1), (4, 2, 3)),
    ],
)
def test_transpose_forms(args, shape):
    x = Variable(np.ones((2, 3, 4)))
    y = x.transpose(*args)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == (2, 3, 4)


def test_T_property():
    assert Variable(np.ones((2, 5))).T.shape == (5, 2)


@pytest.mark.parametrize(
    ("axis", "keepdims", "shape"),
    [(None, False, ()), (0, False, (3, 4)), (-1, True, (2, 3, 1)), ((0, -1), False, (3,))],
)
def test_sum_method_axes(axis, keepdims, shape):
    x = Variable(np.arange(24.0).reshape(2, 3, 4))
    y = x.sum(axis=axis, keepdims=keepdims)
    assert y.shape == shape
    np.testing.assert_allclose(y.data, np.sum(x.data, axis=axis, keepdims=keepdims))
    y.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3, 4)))


# --- dtype policy ---
def test_float32_stays_float32_with_python_scalars():
    x = Variable(np.ones(3, dtype=np.float32))
    y = ((x * 2.0 + 1) / 3.0 - 0.5) ** 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_inputs_get_integer_gradients():
    x = Variable(np.array([1, 2, 3]))
    (x + 2).sum().backward()
    assert x.grad.dtype == x.dtype
    np.testing.assert_array_equal(x.grad.data, [1, 1, 1])


def test_mixed_dtypes_give_each_gradient_its_input_dtype():
    a = Variable(np.ones(3, dtype=np.float32))
    b = Variable(np.ones(3, dtype=np.float64))
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert (a.grad.dtype, b.grad.dtype) == (np.float32, np.float64)


def test_a_value_used_by_a_later_op_and_by_that_ops_input_gets_every_gradient_first():
    # a feeds both mul and cos(a): a's backward must wait for both contributions
    x = Variable(np.array(0.7))
    a = ops.sin(x)
    y = a * ops.cos(a)
    y.backward()
    s = np.sin(0.7)
    assert x.grad.data == pytest.approx((np.cos(s) - s * np.sin(s)) * np.cos(0.7))


def test_numbers_that_compare_equal_keep_their_own_value():
    """Python numbers next to a Variable become cached constants: 0.0 and -0.0 (equal as keys)
    must still give their own signed zeros, and 1 and 1.0 their own promotion."""
    x = Variable(np.array([1.0, 2.0]))
    assert not np.signbit((x * 0.0).data).any()
    assert np.signbit((x * -0.0).data).all()
    assert not np.signbit((x * 0.0).data).any()
    n = Variable(np.array([1, 2]))
    assert (n * 1).dtype == n.dtype
    assert (n * 1.0).dtype == np.float64


@pytest.mark.parametrize("array_dtype", ["float16", "float32", "float64", "complex128", "int64"])
@pytest.mark.parametrize("number", [0.5, 3, np.float32(0.5), np.float64(-1.5), np.int64(2)])
def test_numbers_and_numpy_scalars_beside_a_variable_match_the_general_path(array_dtype, number):
    """The fast path's cached constants (Python numbers, numpy scalars of the array's dtype)
    give exactly the general path's value, dtype and gradient (or error), on either side of
    every arithmetic op; other numpy scalars (promoting further) take the general path."""
    from opgraph.op import Op

    def outcome(call, swap):
        x = Variable(np.array([1.0, 2.0, 4.0]).astype(array_dtype))
        try:
            y = call(number, x) if swap else call(x, number)
        except opgraph.OpArgumentError as exc:
            return str(exc)
        ops.sum(y).backward()
        grad = x.grad.data
        return y.data.dtype, y.data.tolist(), grad.dtype, grad.tolist()

    for name in ("add", "sub", "mul", "div"):
        op = getattr(opgraph.ops, name)
        for swap in (False, True):
            fast = outcome(op, swap)
            assert fast == outcome(lambda *a, op=op: Op.__call__(op, *a), swap), (name, swap)


def test_python_numbers_adapt_to_the_array_inputs_not_to_a_mask():
    x = Variable(np.ones(2, dtype=np.float32))
    assert ops.where(np.array([True, False]), x, 0.0).dtype == np.float32
    assert ops.where(np.array([True, False]), 0.0, x).dtype == np.float32


def test_an_op_never_runs_on_shapes_its_rule_rejects(fake_site):
    """The engine asks the shape rule before every forward, so a forward that would silently
    recycle values (np.resize) never sees shapes the rule rejects."""
    fake_site.add_plugin(
        "recycling-ops",
        """
        import numpy as np
        from opgraph import OpSpec, hookimpl
        from opgraph.shapes import broadcast

        RAN = []

        def _recycling_add(a, b):
            RAN.append((a.shape, b.shape))
            return a + np.resize(b, a.shape)

        @hookimpl
        def opgraph_ops():
            return [OpSpec("recycling_add", _recycling_add,
                           lambda a, b: broadcast("recycling_add", a, b),
                           lambda ctx, gy: (gy, None), inputs=("a", "b"), nondiff=("b",),
                           kind="broadcast")]
        """,
    )
    ops = opgraph.ops
    x = Variable(np.ones((2, 3)))
    for _ in range(2):  # the second time from the memo of the rule's answers
        with pytest.raises(opgraph.ShapeError, match=r"recycling_add: shapes \(2, 3\) and \(2,\)"):
            ops.recycling_add(x, np.ones(2))
    ops.recycling_add(x, np.ones(3))
    ops.recycling_add(x, np.ones(3))
    assert sys.modules["recycling_ops"].RAN == [((2, 3), (3,))] * 2


def test_values_that_are_not_numbers_name_the_op_and_the_input():
    x = Variable(np.ones(2))
    for bad, what in [
        ("text", "a str"),
        (np.array(["a"]), "an array of dtype <U1"),
        (np.zeros(2, dtype=object), "an array of dtype object"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "an array of dtype datetime64[D]"),
        (np.zeros(2, dtype=[("a", "f8")]), "an array of dtype [('a', '<f8')]"),
    ]:
        with pytest.raises(opgraph.OpArgumentError) as info:
            opgraph.ops.add(x, bad)
        assert "add: input 'x1' (argument 1) must be a Variable" in str(info.value)
        assert what in str(info.value)


def test_the_fast_call_path_gives_the_general_paths_conformance_results(tmp_path):
    """Every op checked with the fast path on and off: the same result for every op x check x
    sample, so the second call path is proven equal to the general one."""
    import json
    import os
    import subprocess

    reports = {}
    for flag in ("1", "0"):
        path = tmp_path / f"fast{flag}.json"
        subprocess.run(
            [sys.executable, "-m", "opgraph", "check", "--json", str(path)],
            env={**os.environ, "OPGRAPH_FAST_PATH": flag},
            capture_output=True,
            check=True,
        )
        results = json.loads(path.read_text())["results"]
        reports[flag] = {(r["op"], r["check"], r["sample"]): r["status"] for r in results}
    assert len(reports["1"]) > 10_000
    assert reports["1"] == reports["0"]


_ODD_NUMBERS = [0.5, 2, -0.0, 0, True, 1e300, 10**20, 10**400, float("nan"), 3 + 1j]
_NUMPY_SCALARS = [np.float64(0.5), np.float32(2.5), np.float16(1.5), np.int64(3), np.bool_(1)]
_NOT_NUMBERS = [None, "x", [1.0, 2.0], object()]


def _odd_operands(n: int, dtype: str, shape: tuple):
    """``n`` operands of anything a call may get: mostly Variables (needing a gradient or not)
    of the call's ``dtype`` and ``shape``, else of other dtypes, shapes and layouts; arrays,
    numbers at the edges of promotion, numpy scalars, non-numbers."""
    from hypothesis import strategies as st

    dtypes = st.sampled_from(["float64", "float32", "float16", "complex128", "int64", "bool"])
    shapes = st.sampled_from([(), (1,), (3,), (2, 3), (3, 1), (0,)])
    arrays = st.builds(
        lambda shape, dtype, scale, seed, flip: _layout(
            (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype), flip
        ),
        st.one_of(st.just(shape), st.just(shape), shapes),
        st.one_of(st.just(dtype), st.just(dtype), dtypes),
        st.sampled_from([1.0, 1e-3, 300.0]),
        st.integers(0, 9),
        st.booleans(),
    )
    variables = st.tuples(st.just("variable"), arrays, st.booleans())
    operand = st.one_of(  # mostly Variables: the fast path's own ground
        variables,
        variables,
        variables,
        st.tuples(st.just("array"), arrays),
        st.tuples(st.just("value"), st.sampled_from(_ODD_NUMBERS + _NUMPY_SCALARS)),
        st.tuples(st.just("value"), st.sampled_from(_NOT_NUMBERS)),
    )
    return st.lists(operand, min_size=n, max_size=n)


def _layout(a: np.ndarray, flip: bool) -> np.ndarray:
    return a.T if flip and a.ndim == 2 else a  # a transposed (non-contiguous) array


def _fresh(operand):
    if operand[0] == "variable":
        return Variable(operand[1].copy(), requires_grad=operand[2])
    return operand[1].copy() if operand[0] == "array" else operand[1]


def _call_outcome(call, operands, record: bool):
    """What a call gives: its value, dtype, graph and gradients, or its error's type and text."""
    import warnings

    args = [_fresh(o) for o in operands]
    try:
        with warnings.catch_warnings(), engine.enable_grad(record):
            warnings.simplefilter("ignore")  # overflow in float16 and the like: both paths
            y = call(*args)
            if y.requires_grad and y.data.dtype.kind in "fc":
                ops.sum(y).backward()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    grads = [_exactly(a.grad.data) for a in args if isinstance(a, Variable) and a.grad is not None]
    return _exactly(y.data), y.requires_grad, y.creator is None, grads


def _exactly(a: np.ndarray) -> tuple:
    """An array as a comparable value: nan equal to nan, -0.0 apart from 0.0, the dtype kept."""
    return a.dtype, a.shape, a.astype(str).tolist()


def test_every_plain_ops_fast_path_matches_the_general_path_on_any_call():
    """A fuzzed differential check of the second call path, call by call: every plain op, any
    operands (see `_odd_operands`), with and without recording, each call made twice (the
    second through the memo of accepted shapes). The fast path and `Op.__call__` give the same
    value, dtype, graph and gradients, or the same error."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from opgraph.op import Op, PlainOp

    plain = sorted(op.name for op in opgraph.ops if isinstance(op, PlainOp))
    assert {"add", "mul", "sin", "tanh_grad"} <= set(plain)

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(plain), st.data(), st.booleans())
    def check(name, data, record):
        op = getattr(opgraph.ops, name)
        arity = len(op.spec.inputs)  # most calls right, some with an input too few or many
        n = data.draw(st.sampled_from([arity] * 4 + [arity - 1, arity + 1]), label="inputs")
        dtype = data.draw(st.sampled_from(["float64", "float32", "int64"]), label="dtype")
        shape = data.draw(st.sampled_from([(3,), (2, 3), ()]), label="shape")
        operands = data.draw(_odd_operands(n, dtype, shape), label="operands")
        for _ in range(2):
            fast = _call_outcome(op, operands, record)
            general = _call_outcome(lambda *a: Op.__call__(op, *a), operands, record)
            assert fast == general, (name, operands, record)

    check()


_GRAPH_OPS = {1: ["sin", "tanh", "exp", "square", "neg"], 2: ["add", "mul", "sub"]}


def _build(program, xs: list, general: bool) -> Variable:
    """The graph of ``program`` (op name, input indices) over ``xs``, every value feeding the
    final sum: chains, fan-out and fan-in (the sweep's heap, not only its chain)."""
    from opgraph.op import Op

    values = list(xs)
    for name, picks in program:
        op = getattr(opgraph.ops, name)
        args = [values[k % len(values)] for k in picks]
        values.append(Op.__call__(op, *args) if general else op(*args))
    total = values[len(xs)]
    for v in values[len(xs) + 1 :]:
        total = total + v
    return ops.sum(total)


def _gradients(program, leaves, general: bool, retain: bool, create_graph: bool) -> list:
    xs = [Variable(a.copy()) for a in leaves]
    _build(program, xs, general).backward(retain_grad=retain, create_graph=create_graph)
    return [None if x.grad is None else x.grad.data for x in xs]  # None: a leaf left unused


def _comparable(grads: list) -> list:
    return [None if g is None else _exactly(g) for g in grads]


def _value(program, arrays) -> np.ndarray:
    with no_grad():
        return _build(program, [Variable(a) for a in arrays], general=True).data


def _numerical_gradients(program, leaves) -> list:
    """The harness's central differences of the program's value: a reference no sweep shares."""
    from opgraph.conformance import numeric

    def f(arrays):  # the harness's Function: arrays in, outputs out
        return (_value(program, arrays),)

    return [
        numeric.numerical_jacobian(f, leaves, k, numeric.EPS_FLOAT64)[0].reshape(leaf.shape)
        for k, leaf in enumerate(leaves)
    ]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # exp(exp(...))
def test_every_way_through_the_backward_pass_gives_the_same_gradients():
    """Fuzzed graphs (chains, fan-out, fan-in, constants) built with the fast path or the
    general one, swept with and without ``retain_grad`` and ``create_graph``: the sweep's
    spelled-out single-output case and its general case, the chain and the heap, give the
    same gradients bit for bit, and they match central differences."""
    from hypothesis import assume, given, settings
    from hypothesis import strategies as st

    def step(arity):
        picks = st.lists(st.integers(0, 9), min_size=arity, max_size=arity)
        return st.tuples(st.sampled_from(_GRAPH_OPS[arity]), picks)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.one_of(step(1), step(2)), min_size=1, max_size=8), st.integers(1, 3))
    def check(program, n_leaves):
        rng = np.random.default_rng(len(program))
        leaves = [rng.uniform(0.5, 1.5, 3) for _ in range(n_leaves)]
        want = _gradients(program, leaves, general=True, retain=False, create_graph=False)
        used = [np.zeros(3) if g is None else g for g in want]
        value = _value(program, leaves)  # exp(exp(...)) grows beyond what differences resolve
        assume(abs(value) < 1e3 and all(np.abs(g).max() < 1e3 for g in used))
        for g, numerical in zip(used, _numerical_gradients(program, leaves), strict=True):
            np.testing.assert_allclose(g, numerical, rtol=1e-4, atol=1e-6)
        ways = [
            (False, False, False),
            (False, True, False),
            (True, True, True),
            (False, False, True),
        ]
        for general, retain, create_graph in ways:
            got = _gradients(program, leaves, general, retain, create_graph)
            assert _comparable(got) == _comparable(want), (program, general, retain, create_graph)

    check()


def test_fast_path_ops_are_plain_ops_and_the_switch_builds_general_ones(monkeypatch):
    from opgraph.op import Op, PlainOp, make_op

    assert isinstance(opgraph.ops.sin, PlainOp) and type(opgraph.ops.sum) is Op
    monkeypatch.setenv("OPGRAPH_FAST_PATH", "0")
    assert type(make_op(opgraph.ops.sin.spec, opgraph.ops.sin.provenance)) is Op


def test_the_fast_functions_in_dispatch_tables_take_every_call_the_op_takes():
    """Variable operators and ``ctx.ops`` reach a plain op through its fast function: keywords,
    numbers, missing or extra arguments behave (and fail) exactly as calling the op."""
    from opgraph.op import Op

    mul, sin = engine.active_ops().mul, opgraph.ops.sin
    assert mul is opgraph.ops.mul.fast and sin.deps.sin_grad is opgraph.ops.sin_grad.fast
    x, w = Variable(np.array([1.0, 2.0])), Variable(np.array([3.0, 4.0]))
    assert mul(x0=x, x1=w).data.tolist() == [3.0, 8.0]
    assert mul(x, x1=w).data.tolist() == [3.0, 8.0]
    assert mul(2.0, w).data.tolist() == [6.0, 8.0]
    assert mul(x, w).creator.op is opgraph.ops.mul
    op = opgraph.ops.mul
    for args, kwargs in [((x,), {}), ((), {}), ((x, w, x), {}), ((x,), {"y": w})]:
        with pytest.raises(opgraph.OpArgumentError) as fast:
            mul(*args, **kwargs)
        with pytest.raises(opgraph.OpArgumentError) as general:
            Op.__call__(op, *args, **kwargs)
        assert str(fast.value) == str(general.value) and "mul()" in str(fast.value)


def test_a_variable_subclass_with_its_own_equality_gets_exact_gradients():
    """The sweep keys gradients by Variable: a subclass that compares elementwise (and so is
    unhashable) must still work, as a leaf and through every op."""

    class Parameter(Variable):
        __slots__ = ()

        def __eq__(self, other):
            return ops.sub(self, other)

        __hash__ = None  # as Python makes it for a class defining __eq__ alone

    p, q = Parameter(np.array([1.0, 2.0])), Parameter(np.array([3.0, 4.0]))
    ops.sum(ops.sin(p) * q + p * p).backward()
    np.testing.assert_allclose(p.grad.data, np.cos([1.0, 2.0]) * [3.0, 4.0] + [2.0, 4.0])
    np.testing.assert_allclose(q.grad.data, np.sin([1.0, 2.0]))


def test_a_frozen_variable_gets_no_gradient_and_no_graph():
    batch = Variable(np.ones((4, 3)), requires_grad=False)
    w = Variable(np.full((3, 2), 0.5))
    y = opgraph.ops.sum(batch @ w)
    y.backward()
    assert batch.grad is None and w.grad is not None
    frozen = opgraph.ops.sin(batch)
    assert frozen.creator is None and not frozen.requires_grad
    w.requires_grad = False  # settable: a frozen parameter
    assert opgraph.ops.sum(batch @ w).creator is None


def test_the_integer_policy_integer_gradients_or_a_clear_refusal():
    x = Variable(np.array([1, 2, 3]))
    opgraph.ops.sum(x * 3 + 2 - x).backward()  # ops that declare int64: integer gradients
    assert x.grad.data.tolist() == [2, 2, 2] and x.grad.dtype == np.int64
    with pytest.raises(
        opgraph.OpArgumentError, match=r"sin: input 'x' is a Variable of dtype int64"
    ):
        opgraph.ops.sin(x)  # a float gradient for an int input: refused before recording
    with pytest.raises(TypeError, match=r"x.astype\('float64'\)"):
        opgraph.ops.exp(x)
    constant = Variable(np.array([1, 2]), requires_grad=False)
    assert np.allclose(opgraph.ops.sin(constant).data, np.sin([1, 2]))  # no gradient owed
    with opgraph.no_grad():
        assert np.allclose(opgraph.ops.sin(x).data, np.sin([1, 2, 3]))
    flt = x.astype("float64")
    opgraph.ops.sum(opgraph.ops.sin(flt)).backward()
    assert x.grad.dtype == np.int64  # the cast's backward casts back
