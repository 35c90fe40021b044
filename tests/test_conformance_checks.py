"""The harness's sample generation by rule (typed attributes, special values, constants, unused
outputs, variadic counts), its value checks (reference, differential, dtypes) and the absence of
false alarms: OpArgumentError for bad attributes, float32 gradients on every seed."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from opgraph import Attr, Domain, ErrorInput, OpArgumentError, OpSpec, ShapeError, attrs
from opgraph.cli import main
from opgraph.conformance import report
from opgraph.conformance.checks import REGISTRY, SCOPES
from opgraph.conformance.runner import run
from opgraph.conformance.samples import generate_bad_cases, generate_cases, special_values
from opgraph.conformance.settings import CHECKS, ConformanceSettings
from opgraph.op import Op, Provenance
from opgraph.shapes import broadcast, fmt_shapes, normalize_axes
from tests.specs import pair_spec

ROOT = Path(__file__).parent.parent


def _op(spec: OpSpec) -> Op:
    return Op(spec, Provenance("test"))


def _transpose_spec(**kw) -> OpSpec:
    def rule(x, axes):
        perm = tuple(range(len(x)))[::-1] if axes is None else axes
        if len(perm) != len(x) or len(normalize_axes("perm", perm, len(x), x)) != len(x):
            raise ShapeError(f"perm: axes {axes} do not permute shape {x}")
        return tuple(x[a] for a in perm)

    return OpSpec(
        "perm",
        lambda x, axes: np.transpose(x, axes).copy(),
        rule,
        None,
        nondiff=("x",),
        attrs=(Attr("axes", None, attrs.Permutation()),),
        kind="shape",
        **kw,
    )


# --- typed attributes ---
def test_typed_attributes_validate_like_checks_and_generate_valid_and_invalid_values():
    perm = attrs.Permutation()
    assert set(itertools.permutations(range(3))) <= set(perm.valid([(2, 1, 3)]))
    assert perm([1, 0]) == (1, 0) and perm(None) is None
    with pytest.raises(TypeError):
        perm("ab")
    bad_perms = {repr(b.value) for b in perm.invalid([(2, 1, 3)])}
    assert {"(0, 1, 2, 3)", "(0, 0, 0)"} <= bad_perms

    target = attrs.BroadcastTarget()
    assert {(2, 3), (2, 2, 1), (2, 2, 3)} <= set(target.valid([(2, 1)]))  # stretch and prepend
    assert {(3, 1), (1,)} <= {b.value for b in target.invalid([(2, 1)])}
    with pytest.raises(ValueError):
        target((2, -1))

    index = attrs.IndexArray()
    arrays = index.valid([(4, 2)])
    assert any(len(set(a.ravel().tolist())) < a.size for a in arrays)  # repeats
    assert any((a < 0).any() for a in arrays)  # negatives
    assert [b.value.tolist() for b in index.invalid([(4, 2)])] == [[0, 4], [-5]]

    assert attrs.Axis(new=1).valid([(2, 3)]) == [0, -1, 1]
    assert {b.value for b in attrs.Axis().invalid([(2, 3)])} >= {2, -3}
    assert attrs.IntRange(1, 3).valid([]) == [1, 3, 2]
    with pytest.raises(ValueError):
        attrs.IntRange(1, 3)(5)
    ratio = attrs.FloatRange(0.0, 1.0, open=("high",))
    assert 1.0 not in ratio.valid([]) and 1.0 in {b.value for b in ratio.invalid([])}
    with pytest.raises(ValueError):
        ratio(1.0)
    assert attrs.Choice(("none", "tanh"))("tanh") == "tanh"
    with pytest.raises(ValueError, match="expected one of"):
        attrs.Choice(("none", "tanh"))("fast")


def test_samples_take_every_permutation_and_bad_values_from_a_typed_attribute():
    spec = _transpose_spec()
    cases = generate_cases(spec, 0)
    rank3 = {c.attrs["axes"] for c in cases if c.values[0].ndim == 3}
    assert set(itertools.permutations(range(3))) <= rank3
    bad = generate_bad_cases(spec, cases, 0)
    notes = [b.note for b in bad if "axes=" in b.note]
    assert len(notes) >= 3 and all(issubclass(b.error, (ValueError, TypeError)) for b in bad)
    results = run([_op(spec)], ConformanceSettings(checks=("bad_input",))).results
    assert {r.status for r in results} == {"pass"}  # the rule rejects each: a ShapeError


# --- values by rule ---
def test_special_values_come_from_the_domain_by_rule():
    found = special_values(Domain(-2.0, 2.0, avoid=(0.5,), margin=0.1), "float64")
    assert {0.0, 1.0, -1.0} <= set(found)
    assert any(abs(v - 1.96) < 1e-9 for v in found) and any(abs(v + 1.96) < 1e-9 for v in found)
    assert any(abs(v - 0.35) < 1e-9 for v in found) and any(abs(v - 0.65) < 1e-9 for v in found)
    assert all(abs(v - 0.5) >= 0.1 for v in found)
    assert 0.0 not in special_values(Domain(0.2, 3.0), "float64")
    spec = OpSpec("probe", np.sin, lambda x: x, None, nondiff=("x",))
    values = np.concatenate([c.values[0].ravel() for c in generate_cases(spec, 0)])
    assert (values == 0.0).any() and (values == -1.0).any()  # exactly, not by luck


def test_variants_with_constant_inputs_numbers_and_unused_outputs():
    pair = pair_spec()
    cases = generate_cases(pair, 0)
    assert {(c.constants, c.numbers) for c in cases} >= {
        ((), False),
        ((0,), False),
        ((1,), False),
        ((0,), True),
        ((1,), True),
    }
    numbered = next(c for c in cases if c.numbers)
    assert numbered.values[numbered.constants[0]].ndim == 0
    assert "a constant number" in numbered.describe()
    from opgraph import Sample

    def samples(rng, dtype):
        yield Sample((np.ones((3, 4), dtype), np.ones(4, dtype)))

    custom = pair_spec("shift", kind="custom", sample_inputs=samples, dtypes=("float64",))
    shifted = [c for c in generate_cases(custom, 0) if c.numbers]
    assert {c.constants for c in shifted} == {(0,), (1,)}  # cut to one value: the rule takes it
    assert all(c.values[c.constants[0]].ndim == 0 for c in shifted)
    two = OpSpec("two", lambda x: (x, 2 * x), lambda x: (x, x), None, nondiff=("x",), n_outputs=2)
    dropped = [c for c in generate_cases(two, 0) if c.dropped]
    assert {c.dropped for c in dropped} == {(0,), (1,)}
    assert "output 1 unused" in next(c for c in dropped if c.dropped == (1,)).describe()


def test_variadic_ops_get_one_two_and_three_inputs_of_unequal_sizes():
    def rule(*shapes, axis):
        if any(len(s) != len(shapes[0]) for s in shapes) or not shapes[0]:
            raise ShapeError(f"join: shapes {fmt_shapes(shapes)}")
        ax = axis % len(shapes[0])
        if any(s[:ax] + s[ax + 1 :] != shapes[0][:ax] + shapes[0][ax + 1 :] for s in shapes):
            raise ShapeError(f"join: shapes {fmt_shapes(shapes)}")
        return (*shapes[0][:ax], sum(s[ax] for s in shapes), *shapes[0][ax + 1 :])

    spec = OpSpec(
        "join",
        lambda *xs, axis: np.concatenate(xs, axis),
        rule,
        None,
        inputs=("*xs",),
        nondiff=("xs",),
        attrs=(Attr("axis", 0, attrs.Axis()),),
        kind="shape",
    )
    cases = generate_cases(spec, 0)
    assert {len(c.values) for c in cases} == {1, 2, 3}
    unequal = [c for c in cases if len({v.shape for v in c.values}) > 1]
    assert unequal and all(rule(*(v.shape for v in c.values), **c.attrs) for c in unequal)


# --- the false alarm: an invalid attribute is a ValueError as the Attr docs say ---
def test_an_attribute_check_raising_value_error_satisfies_an_error_input_of_value_error():
    def positive(value):
        if value <= 0:
            raise ValueError("expected a positive number")
        return float(value)

    spec = OpSpec(
        "scale",
        lambda x, factor: x * factor,
        lambda x, factor: x,
        None,
        nondiff=("x",),
        attrs=(Attr("factor", 1.0, positive),),
        error_inputs=lambda: [ErrorInput((np.ones(3),), {"factor": -1.0}, ValueError, "factor")],
    )
    op = _op(spec)
    with pytest.raises(OpArgumentError) as raised:
        op(np.ones(2), factor=0.0)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, TypeError)
    results = run([op], ConformanceSettings(checks=("bad_input",))).results
    assert [r.status for r in results] == ["pass"]


# --- value checks ---
def test_an_undeclared_dtype_that_works_is_a_hint_not_a_failure():
    spec = OpSpec("only64", np.sin, lambda x: x, None, nondiff=("x",), dtypes=("float64",))
    rep = run([_op(spec)], ConformanceSettings(checks=("dtypes",)))
    hints = {r.sample_desc.split()[0] for r in rep.results if r.status == "hint"}
    assert "float32" in hints and not rep.failed
    assert "HINT dtypes" in report.text(rep) and "only64 float32" in report.text(rep)


RIVAL_SOURCE = (Path(__file__).parent / "faulty" / "rival_ops.py").read_text()


def test_differential_reports_where_two_providers_of_an_op_disagree(fake_site, tmp_path, capsys):
    fake_site.add_plugin("opgraph-rival", RIVAL_SOURCE, module="opgraph_rival", entry_point="rival")
    config = tmp_path / "pick.yaml"
    config.write_text("providers:\n  sin: builtin\n")
    assert main(["check", "--config", str(config), "--op", "sin", "--op", "cos"]) == 1
    text = capsys.readouterr().out
    failed = [line for line in text.splitlines() if line.startswith("FAIL")]
    assert failed and all(" sin · differential · " in line for line in failed)
    assert "plugin 'rival'" in text and "disagree on this sample" in text
    assert "replay: opgraph check --op sin --check differential --sample" in text


def test_the_pytest_suite_compares_rival_providers_too(fake_site, tmp_path):
    from opgraph.testing import ConformanceSuite

    fake_site.add_plugin("opgraph-rival", RIVAL_SOURCE, module="opgraph_rival", entry_point="rival")
    config = tmp_path / "pick.yaml"
    config.write_text("providers:\n  sin: builtin\n")
    suite = ConformanceSuite(str(config), ops=("sin",))
    assert [p for p in suite.params() if p[1] == "differential"] == [("sin", "differential")]
    results = suite.results("sin", "differential")
    assert results and all(r.sample is not None for r in results)
    assert any(r.status == "fail" for r in results)


def test_a_declared_reference_is_compared_on_every_sample():
    spec = OpSpec(
        "cube", lambda x: x**3, lambda x: x, None, nondiff=("x",), reference=lambda x: x * x * x
    )
    results = run([_op(spec)], ConformanceSettings(checks=("reference",))).results
    assert len(results) == len(generate_cases(spec, 0)) and {r.status for r in results} == {"pass"}
    wrong = OpSpec("cube", lambda x: x**3, lambda x: x, None, nondiff=("x",), reference=np.square)
    results = run([_op(wrong)], ConformanceSettings(checks=("reference",))).results
    assert any(r.status == "fail" and "declared reference" in r.message for r in results)


# --- no false alarm on any seed ---
FLOAT32_PRONE = ("astype", "sum", "logsumexp", "softmax", "mean_squared_error")


def test_float32_gradients_of_correct_ops_pass_on_every_seed():
    """Seeds stand for renamed copies of the ops (samples are seeded by op name): the float32
    tolerance must hold for all of them, including astype's rounded float64 evaluation."""
    from opgraph import opsets

    opset = opsets.build(opsets.default_config())
    ops = [opset[name] for name in FLOAT32_PRONE]
    failures = []
    for seed in range(50):
        settings = ConformanceSettings(
            seed=seed, dtypes=("float32",), checks=("grad_value",), max_samples=12
        )
        failures += [
            f"seed {seed}: {r.op} {r.message}" for r in run(ops, settings).results if r.failed
        ]
    assert not failures, "\n".join(failures[:5])


# --- the registry and the docs ---
def test_the_registry_orders_every_check_after_what_it_needs():
    for check in REGISTRY.values():
        assert check.scope in SCOPES and callable(check.function())
        assert all(CHECKS.index(n) < CHECKS.index(check.name) for n in check.needs)


@pytest.mark.parametrize("doc", ["README.md", "docs/conformance.md"])
def test_the_check_tables_list_every_check(doc):
    text = (ROOT / doc).read_text()
    missing = [c for c in CHECKS if f"| `{c}` " not in text]
    assert not missing, f"{doc} does not list {missing}"


def test_a_readme_style_add_passes_aliasing_and_gets_read_only_gradients():
    """``unbroadcast(gy, x)`` with nothing to reduce is a read-only view of gy, not gy: a
    correct op written as the README says is no false alarm, and no leaf's gradient is
    another's writeable memory."""
    from opgraph import Variable, unbroadcast

    def backward(ctx, gy):
        x0, x1 = ctx.inputs
        return unbroadcast(gy, x0), unbroadcast(gy, x1)

    spec = OpSpec(
        "plus",
        np.add,
        lambda a, b: broadcast("plus", a, b),
        backward,
        inputs=("a", "b"),
        kind="broadcast",
    )
    op = _op(spec)
    rep = run([op], ConformanceSettings(checks=("aliasing", "grad_value", "grad_of_grad")))
    assert not rep.failed, report.text(rep)
    a, b = Variable(np.ones(3)), Variable(np.ones(3))
    op(a, b).backward(retain_grad=True)
    assert not a.grad.data.flags.writeable and a.grad is not b.grad
    with pytest.raises(ValueError, match="read-only"):
        a.grad.data *= 2.0


def test_the_registry_rejects_a_reference_that_cannot_be_used():
    from opgraph import OpDeclarationError, Tolerance
    from opgraph.registry import validate_spec

    base = {"name": "ref", "forward": np.sin, "shape_rule": lambda x: x, "backward": None}
    base["nondiff"] = ("x",)
    with pytest.raises(OpDeclarationError, match="reference must be callable"):
        validate_spec(OpSpec(**base, reference=3), Provenance("test"))
    loose = {"float32": Tolerance(1.0, 1.0)}
    with pytest.raises(OpDeclarationError, match=r"reference_tolerances\['float32'\].*reason"):
        validate_spec(OpSpec(**base, reference_tolerances=loose), Provenance("test"))
