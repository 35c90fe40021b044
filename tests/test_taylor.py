"""The Taylor-remainder verdict: the order of convergence on known lines, and through the
conformance run, a narrowly wrong gradient told from an ill-conditioned correct one."""

from __future__ import annotations

import io
import json
import textwrap

import numpy as np
import pytest

from opgraph.cli import main
from opgraph.conformance import report, taylor
from opgraph.conformance.runner import run
from opgraph.conformance.settings import ConformanceSettings
from opgraph.conformance.target import resolve_target


def scalar_line(phi):
    """A `taylor.Line` of a scalar function of h, with its float64 rounding."""
    return lambda h: taylor.Point(phi(h), float(np.spacing(abs(phi(h)))), np.array([phi(h)]))


X = 0.7


# --- the order on known lines ---
def test_a_right_slope_leaves_a_second_order_remainder():
    found = taylor.verdict(scalar_line(lambda h: np.sin(X + h)), np.cos(X), 1e-7, 1.0)
    assert found.kind == "right" and found.order == pytest.approx(2.0, abs=0.1)
    assert found.error < 1e-7


def test_a_slope_off_by_a_little_leaves_a_first_order_remainder():
    slope = np.cos(X) * (1 + 1e-4)
    found = taylor.verdict(scalar_line(lambda h: np.sin(X + h)), slope, 1e-6, 1.0)
    assert found.kind == "wrong" and found.order == pytest.approx(1.0, abs=0.1)
    assert found.error == pytest.approx(1e-4 * np.cos(X), rel=0.1)  # the error, measured
    assert "wrong gradient" in found.describe() and "shrinks as h, not h^2" in found.describe()


def test_a_vanishing_curvature_gives_order_three_and_is_right():
    found = taylor.verdict(scalar_line(np.sin), 1.0, 1e-7, 1.0)  # at 0: sin(h) = h - h^3 / 6
    assert found.kind == "right" and found.order >= taylor.SECOND_ORDER


def test_pure_noise_has_no_clean_order():
    rng = np.random.default_rng(0)
    noise = {}

    def phi(h):
        return noise.setdefault(h, 1.0 + 1e-6 * rng.standard_normal())

    found = taylor.verdict(lambda h: taylor.Point(phi(h), 1e-16, np.array([phi(h)])), 0.0, 1e-6, 1)
    assert found.kind == "no_order" and found.order is None
    assert "no clean order" in found.describe()


@pytest.mark.parametrize("order", [1.0, 2.0, 3.0])
def test_the_fit_finds_a_power_law_down_to_the_floor(order):
    hs = taylor.steps(1.0)
    rs = 0.3 * hs**order
    floor = float(rs[-8])  # the last steps are rounding: they must not bend the fit
    rs[-7:] = floor * np.random.default_rng(1).uniform(0.1, 1.0, 7)
    fit = taylor.fit_order(hs, rs, floor)
    assert fit.clean and fit.order == pytest.approx(order, abs=1e-9)
    assert fit.window[1] == len(hs) - 8  # the smallest steps above the floor


def test_a_kink_far_out_is_not_a_wrong_slope():
    """|x + h| crossed at h = 0.02 gives r ~ h out there and exactly 0 closer in: the
    expansion is exact where it matters, so the slope is right."""
    found = taylor.verdict(scalar_line(lambda h: abs(-0.02 + h)), -1.0, 1e-6, 1.0)
    assert found.kind == "right"


def test_a_forward_below_its_resolution_is_noise_not_a_first_order_error():
    """``(x + 1e8) - 1e8`` does not move for steps below its ulp (1.5e-8): ``r = h * slope``
    there must not read as a first-order error."""

    def point(h):
        value = (X + h + 1e8) - 1e8
        return taylor.Point(value, 1e-16, np.array([value]))

    rs, _ = taylor.remainders(point, 1.0, taylor.steps(1.0))
    assert np.isnan(rs[-1]) and np.isfinite(rs[0])
    assert taylor.verdict(point, 1.0, 1e-9, 1.0).kind != "wrong"


def test_verdict_details_are_strict_json():
    found = taylor.verdict(scalar_line(lambda h: np.sin(X + h)), np.cos(X), 1e-7, 1.0)
    data = json.loads(json.dumps(found.details(), allow_nan=False))
    assert data["verdict"] == "right" and len(data["steps"]) == len(data["remainders"]) > 0


# --- through the conformance run ---
PLUGIN = """
import numpy as np
from opgraph import OpSpec, Tolerance, hookimpl

K = 1e4  # central differences at the 1e-6 step are off by K^2 eps^2 / 6, about 1.7e-5
TIGHT = {"float64": Tolerance(1e-5, 1e-7, "the tolerance of the test")}


def _steep_backward(ctx, gy):
    return gy * ctx.ops.cos(ctx.inputs[0] * K) * K


def _off_backward(ctx, gy):
    return gy * ctx.ops.exp(ctx.inputs[0]) * (1 + 3e-5)  # off by 3x the tolerance only


def _coarse(x):
    return x.astype(np.float32).astype(x.dtype)  # float64 out, float32 resolution


def _identity_backward(ctx, gy):
    return gy * 1.0


@hookimpl
def opgraph_ops():
    return [
        OpSpec("steep_sine", lambda x: np.sin(K * x), lambda x: x, _steep_backward,
               requires=("cos",), dtypes=("float64",), tolerances=TIGHT),
        OpSpec("slightly_off_exp", np.exp, lambda x: x, _off_backward, requires=("exp",),
               dtypes=("float64",), tolerances=TIGHT),
        OpSpec("coarse_copy", _coarse, lambda x: x, _identity_backward, dtypes=("float64",),
               tolerances={"float64": Tolerance(1e-3, 1e-5, "float32 inside")}),
    ]
"""


@pytest.fixture
def plugin_ops(tmp_path, fake_site, isolated_imports):
    path = tmp_path / "taylor_ops.py"
    path.write_text(textwrap.dedent(PLUGIN))
    return path, {op.name: op for op in resolve_target(modules=[str(path)]).ops}


def _results(op, check="grad_value", **settings):
    return run([op], ConformanceSettings(checks=(check,), **settings)).results


def _verdicts(result):
    return result.details.get("taylor", [])


@pytest.mark.parametrize(
    ("check", "full_jacobian"),
    [("grad_value", False), ("grad_value", True), ("grad_of_grad", False)],
)
def test_an_ill_conditioned_correct_gradient_passes_with_the_verdict(
    plugin_ops, check, full_jacobian
):
    _, ops = plugin_ops
    results = _results(ops["steep_sine"], check, full_jacobian=full_jacobian)
    assert results and not [r.message for r in results if r.status != "pass"]
    saved = [r for r in results if _verdicts(r)]
    assert saved, "central differences never missed: the test does not test the backstop"
    for r in saved:
        assert "central differences missed the tolerance" in r.message
        assert "the analytic gradient is right" in r.message
        assert all(v["verdict"] == "right" and v["order"] >= 1.7 for v in _verdicts(r))


@pytest.mark.parametrize("full_jacobian", [False, True])
def test_a_narrowly_wrong_gradient_fails_as_wrong_with_its_order(plugin_ops, full_jacobian):
    _, ops = plugin_ops
    failed = [
        r
        for r in _results(ops["slightly_off_exp"], full_jacobian=full_jacobian)
        if r.status == "fail"
    ]
    assert failed
    for r in failed:
        found = _verdicts(r)[-1]  # the failing verdict comes last
        assert found["verdict"] == "wrong" and found["order"] == pytest.approx(1.0, abs=0.1)
        assert "wrong gradient" in r.message and "shrinks as h, not h^2" in r.message
        assert found["gradient_error"] > found["allowed"] and found["remainders"]


def test_a_forward_with_no_clean_order_fails_naming_the_tolerance_to_widen(plugin_ops):
    _, ops = plugin_ops
    failed = [r for r in _results(ops["coarse_copy"]) if r.status == "fail"]
    narrow = [r for r in failed if "taylor" in r.details]  # a wide miss gets no verdict
    assert narrow
    for r in narrow:
        assert "numerical noise: no clean order" in r.message
        assert "conformance.tolerances.coarse_copy.float64" in r.message
        assert "widen the tolerance with a reason" in r.message


def test_verdicts_reach_the_json_report_and_the_text_report(plugin_ops, capsys):
    path, ops = plugin_ops
    rep = run(list(ops.values()), ConformanceSettings(checks=("grad_value",)))
    out = io.StringIO()
    report.write_json(rep, out)
    rows = json.loads(out.getvalue())["results"]
    judged = [r for r in rows if r["status"] == "fail" and "taylor" in r["details"]]
    kinds = {r["details"]["taylor"][-1]["verdict"] for r in judged}
    assert kinds == {"wrong", "no_order"}
    assert main(["check", "--module", str(path), "--check", "grad_value"]) == 1
    text = capsys.readouterr().out
    assert "wrong gradient" in text and "steep_sine" in text
