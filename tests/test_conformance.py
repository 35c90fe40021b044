"""The conformance harness: sample generation, the checks on a deliberately faulty plugin, and
every registered op passing every check."""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from opgraph import Domain, OpSpec, Tolerance, opsets
from opgraph.conformance import numeric, report
from opgraph.conformance.runner import FAILING, run
from opgraph.conformance.samples import LAYOUTS, generate_cases, materialize, random_values
from opgraph.conformance.settings import CHECKS, ConformanceSettings, ExpectedFailure, settings_for
from tests.specs import pair_spec


def settings_of(cfg):
    """The conformance settings of ``cfg``, checked against its op set."""
    return settings_for(cfg, (op.name for op in opsets.build(cfg)))


FAULTY_SOURCE = (Path(__file__).parent / "faulty" / "faulty_ops.py").read_text()


def install_faulty(fake_site):
    """The faulty plugin through a fake distribution; returns (its module, the op set)."""
    from opgraph.opsets import default_config

    fake_site.add_plugin(
        "opgraph-faulty", FAULTY_SOURCE, module="opgraph_faulty", entry_point="faulty"
    )
    opset = opsets.build(default_config())
    return importlib.import_module("opgraph_faulty"), opset


def faulty_ops(opset):
    return [op for op in opset if op.provenance.plugin == "faulty"]


def failing_checks(results, op):
    return {r.check for r in results if r.op == op and r.status in FAILING}


# --- samples ---
def _unary(name="probe", **kw):
    return OpSpec(name, np.sin, lambda x: x, None, nondiff=("x",), **kw)


def test_samples_are_deterministic_per_seed():
    spec = _unary()
    first, again = generate_cases(spec, 0), generate_cases(spec, 0)
    other = generate_cases(spec, 1)
    assert [c.describe() for c in first] == [c.describe() for c in again]
    assert all(
        np.array_equal(a, b)
        for c, d in zip(first, again, strict=True)
        for a, b in zip(c.values, d.values, strict=True)
    )
    assert not all(
        np.array_equal(a, b)
        for c, d in zip(first, other, strict=True)
        for a, b in zip(c.values, d.values, strict=True)
    )


def test_elementwise_samples_cover_ranks_zero_size_layouts_and_dtypes():
    cases = generate_cases(_unary(dtypes=("float64", "float32")), 0)
    shapes = {c.values[0].shape for c in cases}
    assert {(), (5,), (2, 3), (0, 3)} <= shapes
    assert any(1 in s for s in shapes)  # a size-1 dimension
    assert {c.layouts[0] for c in cases} == set(LAYOUTS)
    assert {c.dtype for c in cases} == {"float64", "float32"}
    for case in cases:
        for array, layout in zip(case.inputs(), case.layouts, strict=True):
            assert array.dtype == np.dtype(case.dtype)
            if layout != "contiguous" and array.ndim > 1:
                assert not array.flags.c_contiguous


def test_materialize_keeps_values_and_makes_views():
    values = np.arange(12.0).reshape(3, 4)
    for layout in LAYOUTS:
        array = materialize(values, layout)
        np.testing.assert_array_equal(array, values)
        assert array is not values
    assert materialize(values, "reversed").strides[0] < 0
    assert materialize(values, "sliced").base is not None


def test_broadcast_samples_pair_ranks_in_both_directions():
    spec = pair_spec()
    pairs = {tuple(v.shape for v in c.values) for c in generate_cases(spec, 0)}
    assert ((3,), (2, 3)) in pairs and ((2, 3), (3,)) in pairs
    assert ((), (2, 3)) in pairs and ((2, 3), ()) in pairs
    assert any(0 in s for pair in pairs for s in pair)


def test_reduction_samples_grid_negative_and_tuple_axes_with_keepdims():
    from opgraph import Attr, attrs
    from opgraph.shapes import reduce_shape

    spec = OpSpec(
        "total",
        lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
        lambda x, axis, keepdims: reduce_shape("total", x, axis, keepdims),
        None,
        nondiff=("x",),
        kind="reduction",
        attrs=(Attr("axis", None, attrs.axis), Attr("keepdims", False, attrs.flag)),
    )
    grid = {(repr(c.attrs["axis"]), c.attrs.get("keepdims")) for c in generate_cases(spec, 0)}
    assert ("-1", True) in grid and ("-1", False) in grid
    assert ("(0, 2)", True) in grid and ("(-1, 0)", False) in grid
    assert ("None", False) in grid


def test_values_respect_the_domain_and_avoid_kinks():
    rng = np.random.default_rng(0)
    values = random_values(rng, (2000,), "float64", Domain(-1.0, 1.0, avoid=(0.0,), margin=0.1))
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert np.abs(values).min() >= 0.1
    positive = random_values(rng, (2000,), "float32", Domain(0.2, 3.0))
    assert positive.dtype == np.float32 and positive.min() >= np.float32(0.2)


def test_declared_samples_are_added_after_generated_ones():
    from opgraph import Sample

    def samples(rng, dtype):
        yield Sample((np.ones((2, 2), dtype=dtype),), note="mine")

    cases = generate_cases(_unary(sample_inputs=samples, dtypes=("float64",)), 0)
    assert cases[-1].note == "mine" and cases[-1].values[0].shape == (2, 2)
    assert [c.index for c in cases] == list(range(len(cases)))


# --- numerics ---
def test_projection_and_jacobian_of_a_known_function():
    def f(xs):
        return (xs[0] ** 2, np.sin(xs[0]))

    x = np.array([0.3, -1.2, 2.0])
    u = np.array([1.0, 0.5, -2.0])
    deriv = numeric.directional(f, [x], 0, u, numeric.EPS_FLOAT64)
    np.testing.assert_allclose(deriv[0], 2 * x * u, rtol=1e-7)
    np.testing.assert_allclose(deriv[1], np.cos(x) * u, rtol=1e-7)
    jac = numeric.numerical_jacobian(f, [x], 0, numeric.EPS_FLOAT64)
    np.testing.assert_allclose(jac, np.vstack([np.diag(2 * x), np.diag(np.cos(x))]), atol=1e-8)
    empty = numeric.numerical_jacobian(lambda xs: (np.full(2, xs[0].sum()),), [x[:0]], 0, 1e-6)
    assert empty.shape == (2, 0)  # one row per output element, no input element
    tol = Tolerance(1e-5, 1e-7)
    wrong = jac.copy()
    wrong[4, 1] += 0.5
    worst = numeric.worst_element(wrong, jac, tol)
    assert worst.where == (4, 1) and not worst.ok and worst.abs_err == pytest.approx(0.5)


def test_close_scales_with_the_summed_terms_not_their_cancelled_sum():
    tol = Tolerance(1e-3, 1e-5)
    assert numeric.close(1e-4, 0.0, scale=10.0, tol=tol)  # cancellation of large terms
    assert not numeric.close(1e-4, 0.0, scale=1e-4, tol=tol)
    assert not numeric.close(float("nan"), 0.0, scale=1.0, tol=tol)


# --- the faulty plugin: each defect flagged by its check, and only by it ---
def test_each_faulty_op_is_flagged_by_the_right_check_only(fake_site):
    module, opset = install_faulty(fake_site)
    ops = faulty_ops(opset)
    assert {op.name for op in ops} == set(module.DEFECTS)
    results = run(ops, ConformanceSettings()).results
    for name, check in module.DEFECTS.items():
        assert failing_checks(results, name) == {check}, name


def test_a_defect_is_reported_with_a_useful_message(fake_site):
    _, opset = install_faulty(fake_site)
    results = run(faulty_ops(opset), ConformanceSettings()).results

    def first(op, check):
        return next(r for r in results if r.op == op and r.check == check and r.status in FAILING)

    shape = first("faulty_unbroadcast", "grad_shape")
    assert "did not reduce the gradient of input" in shape.message
    assert shape.plugin == "faulty"
    value = first("faulty_wrong_value", "grad_value")
    assert value.details["max_abs_err"] > 0 and value.tolerance is not None
    assert "analytic" in value.message and "numerical" in value.message
    assert "input 0" in value.details["where"]
    nan = first("faulty_nan_in_domain", "grad_value")
    assert "nan" in nan.message and "declared domain" in nan.message
    vague = first("faulty_vague_shape_error", "bad_input").message
    assert "does not name `faulty_vague_shape_error`, (2, 4), (2, 3)" in vague
    assert (
        "forward modified input 0 in place" in first("faulty_mutates_input", "no_mutation").message
    )
    clobbered = first("faulty_mutates_grad", "no_mutation").message
    assert "backward modified output gradient 0 in place" in clobbered
    assert (
        "build the backward from opgraph ops"
        in first("faulty_not_differentiable", "grad_of_grad").message
    )
    crash = first("faulty_backward_raises", "grad_count")
    assert crash.status == "error" and "RuntimeError" in crash.message


def test_the_run_continues_past_crashes(fake_site):
    _, opset = install_faulty(fake_site)
    ops = faulty_ops(opset)
    names = [op.name for op in ops]
    after = names[names.index("faulty_backward_raises") + 1 :]
    assert after  # ops are checked in name order; some come after the crashing one
    results = run(ops, ConformanceSettings()).results
    for name in after:
        assert {r.check for r in results if r.op == name} == set(CHECKS)


def test_full_jacobian_mode_flags_the_same_defect(fake_site):
    _, opset = install_faulty(fake_site)
    ops = [opset["faulty_wrong_value"], opset["sin"]]
    results = run(ops, ConformanceSettings(full_jacobian=True, checks=("grad_value",))).results
    assert failing_checks(results, "faulty_wrong_value") == {"grad_value"}
    assert failing_checks(results, "sin") == set()


def test_expected_failures_become_xfail_and_stale_ones_xpass(fake_site):
    _, opset = install_faulty(fake_site)
    settings = ConformanceSettings(
        expected_failures=(
            ExpectedFailure("faulty_wrong_value", "grad_value", "known: doubled derivative"),
            ExpectedFailure("sin", None, "stale entry"),
        )
    )
    rep = run([opset["faulty_wrong_value"], opset["sin"]], settings)
    statuses = {(r.op, r.status) for r in rep.results if r.check == "grad_value"}
    assert ("faulty_wrong_value", "xfail") in statuses
    assert ("faulty_wrong_value", "fail") not in statuses
    xpass = [r for r in rep.results if r.status == "xpass"]
    assert xpass and all(r.op == "sin" for r in xpass)
    assert "remove the expected failure" in xpass[0].message
    assert rep.failed  # a stale expectation fails the run


TOLERANT_SOURCE = """
import numpy as np
from opgraph import OpSpec, Tolerance, hookimpl
from opgraph import opsets
from opgraph.conformance.settings import settings_for

LOOSE = Tolerance(10.0, 10.0, "declared by the op")


def _doubled(ctx, gy):
    return gy * ctx.ops.cos(ctx.inputs[0]) * 2.0


@hookimpl
def opgraph_ops():
    return [OpSpec("tolerant_sin", np.sin, lambda x: x, _doubled, requires=("cos",),
                   tolerances={"float64": LOOSE, "float32": LOOSE})]
"""


def test_a_narrowed_run_does_not_call_an_expected_failure_stale(fake_site):
    _, opset = install_faulty(fake_site)
    op = opset["faulty_wrong_value"]
    whole_op = ExpectedFailure(op.name, None, "known: doubled derivative")
    other_check = ConformanceSettings(checks=("shape_rule",), expected_failures=(whole_op,))
    assert {r.status for r in run([op], other_check).results} == {"pass"}
    grad_value = ExpectedFailure(op.name, "grad_value", "known: doubled derivative")
    settings = ConformanceSettings(checks=("grad_value",), expected_failures=(grad_value,))
    statuses = {r.sample: r.status for r in run([op], settings).results}
    passing = next(sample for sample, status in statuses.items() if status == "pass")
    assert "xfail" in statuses.values()  # the whole run does judge the entry
    assert [r.status for r in run([op], settings, sample=passing).results] == ["pass"]


def test_tolerance_overrides_per_op_in_the_config_and_the_spec(fake_site):
    fake_site.add_plugin("opgraph-tolerant", TOLERANT_SOURCE, module="opgraph_tolerant")
    _, opset = install_faulty(fake_site)
    only_grad_value = ConformanceSettings(checks=("grad_value",))
    loose = Tolerance(10.0, 10.0, "config")
    by_config = replace(
        only_grad_value,
        tolerances={"faulty_wrong_value": {"float64": loose, "float32": loose}},
    )
    results = run([opset["faulty_wrong_value"]], by_config).results
    assert failing_checks(results, "faulty_wrong_value") == set()
    assert {r.tolerance for r in results if r.status == "pass"} == {loose}

    tolerant = opset["tolerant_sin"]
    results = run([tolerant], only_grad_value).results
    assert failing_checks(results, "tolerant_sin") == set()
    assert {r.tolerance.reason for r in results if r.status == "pass"} == {"declared by the op"}

    tight = Tolerance(1e-5, 1e-7, "config")
    config_wins = replace(only_grad_value, tolerances={"tolerant_sin": {"float64": tight}})
    results = run([tolerant], config_wins).results
    assert failing_checks(results, "tolerant_sin") == {"grad_value"}
    assert {r.tolerance for r in results if r.status == "fail"} == {tight}


def test_checks_and_dtypes_and_samples_can_be_restricted(fake_site):
    _, opset = install_faulty(fake_site)
    settings = ConformanceSettings(checks=("grad_dtype",), dtypes=("float64",), max_samples=3)
    results = run([opset["faulty_grad_dtype"]], settings).results
    assert {r.check for r in results} == {"grad_dtype"}
    assert len(results) == 3 and all(r.status == "pass" for r in results)  # float64 only: fine


def test_text_report_has_table_details_and_replay(fake_site):
    _, opset = install_faulty(fake_site)
    rep = run([opset["faulty_unbroadcast"]], ConformanceSettings(seed=3))
    text = report.text(rep)
    assert "faulty_unbroadcast" in text.splitlines()[1] and text.splitlines()[1].startswith("!")
    assert "replay: opgraph check --op faulty_unbroadcast --check grad_shape --sample" in text
    assert "--seed 3" in text
    assert "plugin 'faulty'" in text


# --- every registered op passes every check ---
def test_every_registered_op_passes_every_check():
    from opgraph.opsets import default_config

    config = default_config()
    rep = run(opsets.build(config), settings_of(config))
    failures = [r for r in rep.results if r.failed]
    assert not failures, report.text(rep)
    assert rep.ops > 0 and rep.samples > rep.ops
