"""opgraph.trace: replays equal eager runs, and whatever a replay could get wrong is refused."""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest

import opgraph
from opgraph import Variable, engine
from opgraph.op import Op
from opgraph.trace import Replayed, TraceError, trace

ops = opgraph.ops
RNG = np.random.default_rng(0)


def chain(x: np.ndarray) -> list:
    """A small forward+backward with constants, fan-in and a reduction."""
    v = Variable(x)
    y = v
    for _ in range(3):
        y = ops.tanh(ops.sin(y) * v) + v
        y = y * 0.5
    s = ops.sum(y)
    s.backward()
    return [s, v.grad]


def assert_same(a, b) -> None:
    """Equal values and dtypes, element for element (the same numpy calls run)."""
    a, b = (
        np.asarray(a.data if isinstance(a, Variable) else a),
        np.asarray(b.data if isinstance(b, Variable) else b),
    )
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b)


def test_replay_equals_eager_exactly_and_records_once_per_signature():
    engine.set_default_ops(None)  # the default op set is built by the first call: same signature
    traced = trace(chain)
    x = RNG.standard_normal(50)
    for values in (x, x + 1.0, x * 3.0):
        for got, want in zip(traced(values), chain(values), strict=True):
            assert_same(got, want)
    assert traced.recordings == 1
    traced(x.astype(np.float32))
    traced(RNG.standard_normal(7))
    assert traced.recordings == 3
    assert "3 of at most 8 signatures" in repr(traced)


def test_the_cache_is_bounded_least_recently_used_first():
    traced = trace(chain, max_signatures=2)
    for n in (3, 4, 3, 5, 3):
        traced(np.ones(n))
    assert traced.recordings == 3  # (3) stayed: it was used last each time
    traced(np.ones(4))
    assert traced.recordings == 4
    assert "2 of at most 2" in repr(traced)


def test_a_shape_dependent_number_retraces_instead_of_being_baked():
    w = Variable(np.ones(3))

    @trace
    def mean_loss(x):
        loss = ops.sum(ops.matmul(Variable(x), w)) * (1.0 / len(x))
        w.cleargrad()
        loss.backward()
        return loss

    for n in (100, 50):
        x = np.ones((n, 3))
        got = mean_loss(x)
        want = ops.sum(ops.matmul(Variable(x), w)) * (1.0 / len(x))
        assert_same(got, want)
    assert mean_loss.recordings == 2


def test_parameters_are_read_fresh_and_gradients_accumulate_as_in_eager():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    start = [rng.standard_normal((4, 2)), np.zeros(2)]

    def run(step_fn, clear: bool):
        params = [Variable(p.copy()) for p in start]

        def step(x, t):
            loss = ops.mean_squared_error(ops.linear(x, *params), t)
            loss.backward()
            return loss

        step = step_fn(step)
        history = []
        for _ in range(4):
            if clear:
                for p in params:
                    p.cleargrad()
            loss = step(x, t)
            for p in params:
                p.data -= 0.1 * p.grad.data  # the optimizer step, outside the traced function
            history.append((loss.data, *(p.grad.data for p in params), *(p.data for p in params)))
        return history

    for clear in (True, False):  # with an existing .grad, the replay adds to it like eager
        for got, want in zip(run(trace, clear), run(lambda f: f, clear), strict=True):
            for a, b in zip(got, want, strict=True):
                assert_same(a, b)


def test_a_closure_scalar_is_part_of_the_signature():
    scale = 2.0

    @trace
    def scaled(x):
        return ops.sin(Variable(x)) * scale

    x = np.ones(3)
    first = scaled(x)
    scale = 3.0
    assert_same(scaled(x), np.sin(x) * 3.0)
    assert_same(first, np.sin(x) * 2.0)
    assert scaled.recordings == 2


def test_grad_and_test_mode_are_part_of_the_signature():
    @trace
    def f(x):
        return ops.dropout(Variable(x), 0.5)

    x = np.ones(1000)
    opgraph.seed(0)
    train = f(x)
    with opgraph.test_mode():
        assert_same(f(x), x)  # dropout passes x through in test mode: not the baked mask
    with opgraph.no_grad():
        f(x)
    assert f.recordings == 3
    assert (train.data == 0).any()


def test_stochastic_ops_replay_the_engine_generator_stream():
    def f(x):
        v = Variable(x)
        y = ops.sum(ops.dropout(v, 0.5) * v)
        y.backward()
        return [y, v.grad]

    traced = trace(f)
    x = np.arange(1.0, 101.0)
    results = []
    for run in (f, traced, traced, f):
        opgraph.seed(7)
        results.append(run(x) + run(x))  # two draws in a row: the stream continues
    for got in results[1:]:
        for a, b in zip(got, results[0], strict=True):
            assert_same(a, b)
    assert not np.array_equal(results[0][0].data, results[0][2].data)


def test_a_value_dependent_branch_is_refused_whichever_side_is_traced():
    def relu_ish(x):
        v = Variable(x)
        if v.data.sum() > 0:  # a branch on values
            return ops.sin(v)
        return ops.cos(v)

    for first, second in ((np.ones(3), -np.ones(3)), (-np.ones(3), np.ones(3))):
        traced = trace(relu_ish)
        for x in (first, second):
            with pytest.raises(TraceError, match=r"reads Variable\.data.*test_trace\.py:\d+"):
                traced(x)
        assert traced.recordings == 0


@pytest.mark.parametrize(
    "body",
    [
        lambda v, x: ops.sin(v) * float(v.data.sum()),
        lambda v, x: ops.sin(v) * v.data.max().item(),
        lambda v, x: ops.sin(v) if bool((v.data > 0).all()) else v,
        lambda v, x: ops.sin(Variable(v.data * 2.0)),
    ],
    ids=["float", "item", "bool", "numpy-on-data"],
)
def test_python_values_of_variable_data_are_refused(body):
    traced = trace(lambda x: body(Variable(x), x))
    with pytest.raises(TraceError, match=r"reads Variable\.data"):
        traced(np.ones(3))


@pytest.mark.parametrize(
    "body",
    [
        lambda x: ops.sin(Variable(x)) if x.sum() > 0 else ops.cos(Variable(x)),
        lambda x: ops.sin(Variable(x)) * float(x[0]),
        lambda x: ops.sin(Variable(np.exp(x))),
        lambda x: ops.sin(Variable(x)) * (x > 0),
        lambda x: ops.sin(Variable(x)) * float(np.mean(x)),
    ],
    ids=["branch", "float", "numpy-function", "mask", "python-level-numpy"],
)
def test_numpy_on_array_arguments_outside_ops_is_refused(body):
    with pytest.raises(TraceError, match=r"on an array argument outside ops at .*test_trace\.py"):
        trace(body)(np.ones(3))


def test_arrays_no_recorded_op_computed_are_refused():
    table = np.arange(3.0)

    def f(x):
        return ops.sin(Variable(x)) + table

    with pytest.raises(TraceError, match=r"array of shape \(3,\) that no recorded op computed"):
        trace(f)(np.ones(3))
    constant = Variable(table, requires_grad=False)  # wrapped outside fn: read fresh instead
    traced = trace(lambda x: ops.sin(Variable(x)) + constant)
    traced(np.ones(3))
    constant.data = table * 2
    assert_same(traced(np.ones(3)), np.sin(np.ones(3)) + table * 2)


def test_changes_to_parameters_or_arguments_inside_fn_are_refused_and_undone():
    p = Variable(np.ones(3))
    p.grad = Variable(np.full(3, 5.0))

    def assigns(x):
        y = ops.sum(ops.sin(p))
        y.backward()
        p.data = p.data - 1.0
        return y

    with pytest.raises(TraceError, match=r"reads Variable\.data"):
        trace(assigns)(np.ones(3))
    assert_same(p.grad, np.full(3, 5.0))  # the backward's accumulation was undone

    def writes_argument(x):
        x[0] = 9.0
        return ops.sin(Variable(x))

    with pytest.raises(TraceError, match="changed array argument 0 in place"):
        trace(writes_argument)(np.ones(3))


def test_numpy_global_random_state_and_seeding_inside_fn_are_refused():
    def draws(x):
        return ops.sin(Variable(x)) * np.random.rand()

    with pytest.raises(TraceError, match="numpy's global random state"):
        trace(draws)(np.ones(3))

    def seeds(x):
        opgraph.seed(1)
        return ops.dropout(Variable(x), 0.5)

    with pytest.raises(TraceError, match="seeds the op generator"):
        trace(seeds)(np.ones(3))


def test_a_returned_graph_refuses_backward_instead_of_reaching_nothing():
    traced = trace(lambda x: ops.sum(ops.sin(Variable(x))))
    traced(np.ones(3))
    out = traced(np.ones(3))
    assert isinstance(out, Replayed)
    with pytest.raises(TraceError, match="call backward"):
        out.backward()


def test_intermediate_gradients_and_returned_arguments_are_replayed():
    def f(x, w):
        h = ops.sin(w) * x
        y = ops.sum(h)
        y.backward(retain_grad=True)
        return h, w, x

    w = Variable(np.arange(3.0))
    traced = trace(f)
    traced(np.ones(3), w)
    w.cleargrad()
    h, w_out, x_out = traced(np.full(3, 2.0), w)
    assert w_out is w
    assert_same(x_out, np.full(3, 2.0))
    assert_same(h.grad, np.ones(3))
    assert_same(w.grad, np.cos(np.arange(3.0)) * 2.0)


def test_recording_restores_the_fast_path_and_other_threads_are_not_recorded():
    from opgraph import op as op_module

    general = Op.__call__
    seen = []

    def other_thread():
        seen.append(ops.cos(Variable(np.ones(2))).data)

    def f(x):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        return ops.sin(Variable(x))

    traced = trace(f)
    traced(np.ones(2))
    assert Op.__call__ is general and not op_module._hooked
    assert Variable.__dict__["data"].__class__.__name__ == "member_descriptor"
    assert_same(seen[0], np.cos(np.ones(2)))
    alone = trace(lambda x: ops.sin(Variable(x)))
    alone(np.ones(2))
    (recorded,) = traced._cache.values()
    (expected,) = alone._cache.values()
    assert recorded.source == expected.source  # the other thread's cos was not recorded


def test_reused_buffers_never_clobber_a_live_view_a_parameter_or_a_result():
    w = Variable(np.arange(1.0, 7.0))

    def f(x):
        h = ops.sin(Variable(x) * w)  # h dies in the next ufunc, but its reshape lives on
        view = ops.reshape(h, (2, 3))
        same = ops.astype(w, "float64")  # returns w's own array
        y = ops.sum(h * 2.0) + ops.sum(same * 3.0)
        y.backward()
        return view, y

    traced = trace(f)
    for x in (np.ones(6), np.full(6, 0.5)):
        for got, want in zip(traced(x), f(x), strict=True):
            assert_same(got, want)
    assert_same(w, np.arange(1.0, 7.0))
    (replay,) = traced._cache.values()
    assert "out=" in replay.source  # the mechanism under test did act


@pytest.mark.parametrize("name", ["spiral", "cnn"])
def test_the_examples_training_loops_replay_exactly(name, monkeypatch):
    from tests.test_examples import load_example

    example = load_example(name, monkeypatch)
    sgd = importlib.import_module("sgd")  # the examples' shared loop, on the path now
    x, t = example.make_spiral() if name == "spiral" else example.make_bars_and_crosses(n=40)

    def train(step_fn):
        rng = np.random.default_rng(0)
        model = example.TwoLayerNet(10, 3, rng) if name == "spiral" else example.SmallCNN(rng)

        def step(xb, tb):
            loss = ops.softmax_cross_entropy(model(xb), tb)
            loss.backward()
            return loss

        step = step_fn(step)
        losses = []
        for _ in range(2):
            for idx in sgd.minibatches(len(x), 20, rng):
                losses.append(step(x[idx], t[idx]).data)
                sgd.sgd_step(model.params, 0.5)
        return losses, [p.data for p in model.params], step

    (eager, eager_params, _), (replayed, params, traced) = train(lambda f: f), train(trace)
    for a, b in zip([*eager, *eager_params], [*replayed, *params], strict=True):
        assert_same(a, b)
    assert traced.recordings == 1  # every batch has the same shape


def test_the_trace_check_passes_for_every_op_of_the_repository():
    """Every op replays (no skip either) on the samples the check records (`TRACED_SAMPLES`);
    the default `opgraph check` run of tests/test_output.py runs it too, where a failure fails
    it."""
    from opgraph.conformance.replay import TRACED_SAMPLES
    from opgraph.conformance.runner import run
    from opgraph.conformance.settings import ConformanceSettings

    settings = ConformanceSettings(checks=("trace",), max_samples=TRACED_SAMPLES)
    results = run(list(ops), settings).results
    assert {r.op for r in results} == set(dir(ops))
    assert [(r.op, r.message) for r in results if r.status != "pass"] == []


def test_the_trace_check_skips_undeclared_and_fails_declared_ops_it_cannot_replay(fake_site):
    from opgraph.conformance.runner import run
    from opgraph.conformance.settings import ConformanceSettings
    from tests.test_conformance import faulty_ops, install_faulty

    _, opset = install_faulty(fake_site)
    results = run(faulty_ops(opset), ConformanceSettings(checks=("trace",))).results
    for name, status in (
        ("faulty_declared_traceable", "fail"),  # traceable=True
        ("faulty_not_differentiable", "skip"),  # undeclared
    ):
        found = [r for r in results if r.op == name and "samples of each op" not in r.message]
        assert found and all(r.status == status for r in found), name
        assert all("reads Variable.data" in r.message for r in found)


def test_traceable_must_be_a_bool_or_none():
    from opgraph import OpDeclarationError, OpSpec
    from opgraph.contract import Provenance
    from opgraph.registry import validate_spec

    spec = OpSpec("probe", np.sin, lambda x: x, None, nondiff=("x",), traceable="yes")
    with pytest.raises(OpDeclarationError, match="traceable must be True, False or None"):
        validate_spec(spec, Provenance("p"))


def test_a_traced_function_called_while_recording_is_recorded_as_part_of_the_caller():
    inner = trace(lambda v: ops.sin(v) * 2.0)

    @trace
    def outer(x):
        v = Variable(x)
        y = ops.sum(inner(v))
        y.backward()
        return v.grad

    for x in (np.ones(3), np.arange(3.0)):
        assert_same(outer(x), np.cos(x) * 2.0)
    assert (outer.recordings, inner.recordings) == (1, 0)


def test_the_recording_call_hands_back_the_arguments_themselves():
    def f(x):
        v = Variable(x)
        ops.sum(ops.sin(v)).backward()
        return x, v

    x = np.ones(3)
    returned, v = trace(f)(x)
    assert returned is x and v.data is x and type(v.data) is np.ndarray
