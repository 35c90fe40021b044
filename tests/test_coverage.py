"""Coverage: the edge classes one case exercises, what a declaration makes possible, the
accumulator over a run, the JSON matrix and the text section of `opgraph check --coverage`."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import replace

import numpy as np
import pytest

from opgraph import Attr, Domain, ErrorInput, OpSpec, ShapeError, attrs
from opgraph.cli import main
from opgraph.conformance import report
from opgraph.conformance.checks import REGISTRY
from opgraph.conformance.coverage import (
    Coverage,
    applicable_classes,
    edge_classes,
    value_classes,
)
from opgraph.conformance.runner import run
from opgraph.conformance.samples import Case
from opgraph.conformance.settings import ConformanceSettings
from opgraph.op import Op, Provenance
from tests.specs import pair_spec


def _unary(rule=lambda x: x, **kw) -> OpSpec:
    return OpSpec("unary", np.negative, rule, None, nondiff=("x",), **kw)


def _case(*values, layouts=None, **kw) -> Case:
    arrays = tuple(np.asarray(v, dtype=np.float64) for v in values)
    return Case(0, "float64", arrays, layouts or ("contiguous",) * len(arrays), **kw)


def _run(*specs: OpSpec) -> Coverage:
    coverage = Coverage()
    ops = [Op(spec, Provenance("test")) for spec in specs]
    result = run(ops, ConformanceSettings(), coverage=coverage)
    assert result.coverage is coverage
    return coverage


# --- classes of one case ---
def test_a_case_exercises_its_shape_broadcast_layout_dtype_and_value_classes():
    pair = pair_spec(domain=Domain(-2, 2))
    scalar_first = edge_classes(pair, _case(0.5, np.full((2, 3), 0.7)))
    assert {"0-d:a", "broadcast:a", "layout:contiguous", "dtype:float64"} <= scalar_first
    assert "broadcast:b" not in scalar_first and "special:a" not in scalar_first
    both = edge_classes(pair, _case(np.full((2, 1), 0.3), np.full((1, 3), 0.3)))
    assert {"broadcast:a", "broadcast:b"} <= both and not {"0-d:a", "0-d:b"} & both
    listed = replace(pair, shape_rule=lambda a, b: list(map(np.int64, np.broadcast_shapes(a, b))))
    assert "broadcast:a" in edge_classes(listed, _case(0.5, np.full((2, 3), 0.7)))
    equal = edge_classes(pair, _case(np.full((2, 3), 0.3), np.zeros((2, 3))))
    assert not any(c.startswith("broadcast:") for c in equal)
    assert "special:b" in equal and "special:a" not in equal  # zero is a special value
    narrow = Case(0, "float32", (np.float32([1.96, 0.3]),), ("contiguous",))  # an edge, inset
    assert "special:x" in edge_classes(_unary(domain=Domain(-2, 2)), narrow)
    ragged = np.empty(2, dtype=object)
    ragged[:] = [[0.0], [1.0]]  # unhashable elements: no special value, no crash
    assert "special:x" not in edge_classes(_unary(), Case(0, "float64", (ragged,), ("contiguous",)))
    edges = edge_classes(pair, _case(np.zeros((0, 3)), np.ones((1,))))
    assert {"size-0:a", "size-1:b", "broadcast:b"} <= edges


def test_layouts_count_as_the_layout_an_input_really_has():
    unary = _unary()
    assert "layout:transposed" in edge_classes(
        unary, _case(np.ones((3, 4)), layouts=("transposed",))
    )
    flat = edge_classes(unary, _case(np.ones(4), layouts=("transposed",)))
    assert "layout:transposed" not in flat and "layout:contiguous" in flat  # a 1-d array
    assert "layout:reversed" in edge_classes(unary, _case(np.ones(4), layouts=("reversed",)))
    one = edge_classes(unary, _case(np.ones(1), layouts=("sliced",)))
    assert "layout:sliced" not in one  # one element is contiguous however it is cut
    wide = edge_classes(unary, _case(np.ones((1, 7, 9)), layouts=("transposed",)))
    assert "layout:transposed" in wide
    assert "layout:transposed" not in edge_classes(
        unary, _case(np.ones((1, 9, 1)), layouts=("transposed",))
    )  # one axis longer than 1: C and F order are the same


def test_constants_numbers_and_dropped_outputs_are_classes_of_a_case():
    pair = pair_spec()
    assert "constant:b" in edge_classes(pair, _case(np.ones(3), np.ones(3), constants=(1,)))
    number = edge_classes(pair, _case(np.ones(3), 2.0, constants=(1,), numbers=True))
    assert "number:b" in number and "constant:b" not in number
    two = OpSpec("two", lambda x: (x, x), lambda x: (x, x), None, nondiff=("x",), n_outputs=2)
    assert "dropped:1" in edge_classes(two, _case(np.ones(3), dropped=(1,)))


def test_every_input_of_a_variadic_op_is_the_same_input():
    join = OpSpec("join", lambda xs: xs[0], lambda *s: s[0], None, inputs=("*xs",), kind="shape")
    classes = edge_classes(join, _case(np.ones(()), np.ones(()), np.ones(())))
    assert "0-d:xs" in classes and not any(c.endswith(("0", "1", "2")) for c in classes)


def test_attribute_classes_say_default_or_not_and_the_value_class():
    spec = _unary(
        rule=lambda x, axis, mode: x,
        attrs=(Attr("axis", None, attrs.Axes()), Attr("mode", "a", attrs.Choice(("a", "b")))),
    )
    given = edge_classes(spec, _case(np.ones((2, 3)), attrs={"axis": (0, -1), "mode": "b"}))
    assert {"attr:axis=non-default", "attr:axis=tuple", "attr:axis=tuple with a negative"} <= given
    assert "attr:mode='b'" in given and "attr:mode=non-default" in given
    omitted = edge_classes(spec, _case(np.ones((2, 3))))
    assert {"attr:axis=default", "attr:axis=None", "attr:mode=default", "attr:mode='a'"} <= omitted
    # a value equal to the default after the attribute's check is the default
    listed = _unary(rule=lambda x, shape: x, attrs=(Attr("shape", (2,), attrs.shape),))
    assert "attr:shape=default" in edge_classes(listed, _case(np.ones(2), attrs={"shape": 2}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {"None"}),
        (True, {"True"}),
        (np.bool_(False), {"False"}),
        (-2, {"negative int"}),
        (0, {"zero"}),
        (np.int64(3), {"positive int"}),
        (0.5, {"positive float"}),
        (float("nan"), {"non-finite float"}),
        ("x", {"str"}),
        ((), {"empty tuple"}),
        ([1, -1], {"list", "list with a negative"}),
        (np.array([0, 2, 0]), {"int array", "int array with a repeat"}),
        (np.array([[1, -1]]), {"2-d int array", "int array with a negative"}),
        (np.zeros(0), {"empty float array"}),
        (np.dtype("float32"), {"dtype"}),
        (len, {"callable"}),
        (object(), {"object"}),
    ],
)
def test_value_classes_derive_from_the_type_of_any_value(value, expected):
    assert value_classes(value) == expected


# --- what a declaration makes possible ---
def test_applicable_classes_follow_the_declaration():
    unary = applicable_classes(_unary(dtypes=("float64",)))
    assert {"0-d:x", "size-0:x", "size-1:x", "special:x", "dtype:float64"} <= unary
    assert {f"layout:{lay}" for lay in ("contiguous", "transposed", "sliced", "reversed")} <= unary
    # one input and one output: nothing to broadcast against, hold constant or leave unused
    assert not any(c.split(":")[0] in ("broadcast", "constant", "number", "dropped") for c in unary)
    assert "dtype:float32" not in unary
    pair = applicable_classes(pair_spec())
    assert {"broadcast:a", "broadcast:b", "constant:a", "number:b"} <= pair
    two = applicable_classes(
        OpSpec("two", lambda x: (x, x), lambda x: (x, x), None, nondiff=("x",), n_outputs=2)
    )
    assert {"dropped:0", "dropped:1"} <= two
    labels = applicable_classes(pair_spec(domain=(Domain(), None)))
    assert "special:a" in labels and "special:b" not in labels  # no domain, no special values
    # rounded for int64, no special value lies inside (0.2, 0.8)
    narrow = applicable_classes(_unary(domain=Domain(0.2, 0.8), dtypes=("int64",)))
    assert "special:x" not in narrow and "dtype:int64" in narrow


def test_shape_classes_are_possible_only_where_the_shape_rule_takes_such_shapes():
    def same(a, b):
        if a != b:
            raise ShapeError(f"same: shapes {a} and {b} differ")
        return a

    equal = applicable_classes(OpSpec("same", np.add, same, None, inputs=("a", "b")))
    assert {"0-d:a", "0-d:b", "number:a"} <= equal  # both inputs 0-d at once
    assert not any(c.startswith("broadcast:") for c in equal)

    def matrix(x):
        if len(x) != 2 or 0 in x:
            raise ShapeError(f"matrix: shape {x} is not a non-empty matrix")
        return x

    rank2 = applicable_classes(_unary(rule=matrix))
    assert not {"0-d:x", "size-0:x"} & rank2
    assert {"size-1:x", "layout:transposed"} <= rank2


def _asserts(*shapes, **kw):
    raise AssertionError("broken")


def _exits(*shapes, **kw):
    sys.exit(0)


@pytest.mark.parametrize(
    "rule",
    [_asserts, _exits, lambda x, k: "not a shape", lambda x, y, k: x],  # the last: wrong arity
)
def test_a_broken_shape_rule_never_crashes_coverage(rule):
    spec = _unary(rule=rule, attrs=(Attr("k", 1, attrs.IntRange(0, 3)),))
    classes = applicable_classes(spec, [_case(np.ones((2, 3)))])
    assert "dtype:float64" in classes  # what needs no rule is still there
    exercised = edge_classes(spec, _case(np.ones((2, 3)), attrs={"k": 2}))
    assert "attr:k=non-default" in exercised
    coverage = _run(spec)  # the run reports the rule; coverage stays whole
    assert coverage.ops["unary"].classes


def test_broken_examples_and_checks_never_crash_coverage():
    def examples(shapes):
        raise RuntimeError("examples broke")

    def check(value):
        raise SystemExit(1)

    spec = _unary(rule=lambda x, k: x, attrs=(Attr("k", 1, check, examples),))
    assert "attr:k=default" in applicable_classes(spec)
    assert "attr:k=non-default" in edge_classes(spec, _case(np.ones(2), attrs={"k": 2}))


# --- over a run ---
def test_a_declaration_that_leaves_bad_input_untested_is_reported_so():
    coverage = _run(_unary(), pair_spec())
    unary = coverage.ops["unary"]
    assert "check:bad_input" in unary.missing
    assert unary.reasons["check:bad_input"] == REGISTRY["bad_input"].when_empty
    assert "check:reference" in unary.not_applicable  # not declared: not counted against it
    assert "check:reference" not in unary.classes
    assert unary.counts["check:grad_value"] == 0 and "check:grad_value" in unary.missing  # nondiff
    pair = coverage.ops["pair"]
    assert "check:bad_input" not in pair.missing  # (2, 3) + (7,) is rejected
    assert pair.counts["check:shape_rule"] > 0
    assert 0 < unary.percent < 100 and coverage.percent == round(
        100 * coverage.exercised / coverage.applicable, 1
    )


def test_only_results_about_a_call_count_as_a_check_that_ran():
    from opgraph.conformance.runner import Result

    coverage = Coverage()
    coverage.add_op(_unary())
    coverage.record_results(
        [
            Result("unary", "test", "shape_rule", "error", None, "", "generating samples crashed"),
            Result("unary", "test", "grad_value", "error", 3, "", "took longer than 1 s"),
            Result("unary", "test", "no_mutation", "fail", None, "explored: float64 (2,)", "bad"),
            Result("unary", "test", "reference", "skip", None, "", "no reference declared"),
            Result(
                "unary", "test", "bad_input", "skip", None, "", REGISTRY["bad_input"].when_empty
            ),
            Result("other", "test", "shape_rule", "error", None, "", "contested"),
        ]
    )
    entry = coverage.ops["unary"]
    assert entry.counts["check:no_mutation"] == 1 and "check:no_mutation" not in entry.missing
    assert {"check:shape_rule", "check:grad_value", "check:bad_input"} <= set(entry.missing)
    assert entry.reasons["check:shape_rule"] == "generating samples crashed"
    assert entry.not_applicable == {"check:reference": "no reference declared"}
    assert set(coverage.ops) == {"unary"}  # results of an op never added are not counted


def test_declared_error_inputs_make_bad_input_run():
    def errors():
        yield ErrorInput((np.ones(2),), {"k": -1}, ValueError)

    spec = _unary(
        rule=lambda x, k: x, attrs=(Attr("k", 1, attrs.IntRange(0)),), error_inputs=errors
    )
    assert "check:bad_input" not in _run(spec).ops["unary"].missing


def test_a_custom_op_gets_its_possible_shapes_from_its_own_samples():
    from opgraph import Sample

    def samples(rng, dtype):
        yield Sample((rng.standard_normal((2, 3, 4, 5)).astype(dtype),))

    def images(x):
        if len(x) != 4:
            raise ShapeError(f"images: shape {x} is not a batch of images")
        return x

    spec = OpSpec(
        "images", lambda x: x.copy(), images, None, nondiff=("x",), kind="custom",
        sample_inputs=samples,
    )  # fmt: skip
    assert "layout:transposed" not in applicable_classes(spec)  # no sample: nothing to probe
    entry = _run(spec).ops["images"]
    assert {"layout:transposed", "size-0:x", "size-1:x", "special:x"} <= set(entry.missing)
    assert "0-d:x" not in entry.classes  # the rule takes 4-d shapes only
    assert entry.counts["layout:contiguous"] == entry.counts["dtype:float64"] * 2


def test_a_case_from_any_generator_feeds_the_same_accumulator():
    coverage = Coverage()
    spec = _unary()
    coverage.record(spec, _case(np.ones(1)))
    entry = coverage.ops["unary"]
    assert entry.counts["size-1:x"] == 1 and "size-1:x" not in entry.missing
    assert "0-d:x" in entry.missing  # possible, never recorded
    coverage.record(spec, _case(np.ones(())))
    assert "0-d:x" not in entry.missing


def test_the_json_report_carries_the_matrix_strictly_and_streamed():
    mode = Attr("mode", "a\nb", attrs.Choice(("a\nb", "\x1b[31m")))
    spec = OpSpec("unary", lambda x, mode: -x, lambda x, mode: x, None, attrs=(mode,))
    ops = [Op(spec, Provenance("test"))]
    result = run(ops, ConformanceSettings(), coverage=Coverage())
    out = io.StringIO()
    report.write_json(result, out)
    text = out.getvalue()
    payload = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    cov = payload["coverage"]
    row = cov["matrix"]["unary"]
    assert set(cov) == {"percent", "exercised", "applicable", "ops", "matrix"}
    assert row["applicable"] == len(row["classes"]) and row["missing"]
    assert all(row["classes"][c] == 0 for c in row["missing"])
    assert row["exercised"] == sum(n > 0 for n in row["classes"].values())
    assert "check:grad_value" in row["reasons"] and set(row["reasons"]) <= set(row["missing"])
    assert any("\\n" in c for c in row["classes"])  # the option's newline, escaped
    assert "\x1b" not in text
    assert text.splitlines()[-2].startswith("}")  # one op per line, then the close
    lines = report.coverage_lines(result.coverage)
    assert all("\x1b" not in line and len(line) <= 80 for line in lines)


def test_the_text_section_lists_ops_under_100_percent_least_covered_first():
    coverage = _run(_unary(), pair_spec())
    lines = report.coverage_lines(coverage)
    assert lines[0].startswith(f"coverage: {coverage.percent:.1f}% of {coverage.applicable}")
    rows = [line.split()[0] for line in lines[1:] if line.startswith("  ") and "%" in line]
    percents = {name: coverage.ops[name].percent for name in rows}
    assert rows == sorted(percents, key=lambda n: (percents[n], n))
    unary_line = next(line for line in lines if line.strip().startswith("unary"))
    assert "untested:" in unary_line and "check bad_input" in " ".join(lines)
    assert all(len(line) <= 80 for line in lines)
    assert report.coverage_lines(Coverage()) == ["coverage: no op was checked"]
    assert Coverage().percent == 0.0


def test_check_coverage_prints_the_section_and_json_always_has_the_matrix(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    assert main(["check", "--op", "sin", "--op", "add", "--json", str(out_json)]) == 0
    assert "coverage:" not in capsys.readouterr().out
    matrix = json.loads(out_json.read_text())["coverage"]["matrix"]
    assert set(matrix) == {"sin", "add"}
    assert main(["check", "--op", "sin", "--op", "add", "--coverage"]) == 0
    text = capsys.readouterr().out
    section = text[text.index("\ncoverage: ") :]
    assert (
        "sin " in section
        and "check bad_input" in section
        and "at 100%: add" in " ".join(section.split())
    )
