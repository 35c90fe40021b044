"""``opgraph check --explore``: a seeded Hypothesis search that finds what the grid misses,
shrinks it to a minimal call, and leaves a case file that replays without Hypothesis."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from opgraph import Attr, OpSpec, attrs, opsets
from opgraph.cli import main
from opgraph.conformance import cases as case_files
from opgraph.conformance.explore import Budget
from opgraph.conformance.runner import run
from opgraph.conformance.samples import Case
from opgraph.conformance.settings import ConformanceSettings
from opgraph.conformance.snippet import python_snippet
from opgraph.conformance.target import resolve_target
from opgraph.op import Op, Provenance

PLANTED = """
import numpy as np
import opgraph
from opgraph import Attr, OpSpec, attrs


def _rank4_backward(ctx, gy):
    (x,) = ctx.inputs
    g = gy * ctx.ops.cos(x)
    return g * 1.5 if x.ndim == 4 else g  # planted: wrong for rank 4, which the grid lacks


def _scale_backward(ctx, gy):
    p = ctx.attrs["p"]
    return gy * (6 if p == 7 else p)  # planted: wrong for p=7 only


@opgraph.hookimpl
def opgraph_ops():
    return [
        OpSpec("rank4sin", np.sin, lambda s: s, _rank4_backward, requires=("cos",)),
        OpSpec(
            "scale",
            lambda x, p: x * p,
            lambda s, p: s,
            _scale_backward,
            attrs=(Attr("p", 1, check=attrs.IntRange(1, 10)),),
        ),
    ]
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file for the module: ``--module`` refuses a second module of the same name."""
    path = tmp_path_factory.mktemp("planted") / "explore_planted_ops.py"
    path.write_text(PLANTED)
    return path


def _planted_ops(path: Path) -> dict[str, Op]:
    """The planted module's ops, built in an op set as ``opgraph check --module`` does."""
    target = resolve_target(None, None, None, [str(path)])
    return {op.name: op for op in target.ops}


def _explore(op: Op, examples: int = 200, seed: int = 0):
    settings = ConformanceSettings(seed=seed, explore=Budget(examples))
    return run([op], settings)


def _failures(report) -> list:
    return [r for r in report.results if r.failed]


@pytest.mark.parametrize(
    ("name", "shapes", "attributes"),
    [("rank4sin", [(1, 1, 1, 1)], {}), ("scale", [()], {"p": 7})],
)
def test_a_planted_bug_the_grid_misses_is_found_and_shrunk_to_its_minimal_call(
    planted, name, shapes, attributes
):
    op = _planted_ops(planted)[name]
    grid = run([op], ConformanceSettings())
    assert not _failures(grid), "the planted bug must be one the grid misses"
    report = _explore(op)
    failed = _failures(report)
    assert {r.check for r in failed} == {"grad_value"}
    (result,) = failed
    case = result.details["case"]
    assert [tuple(i["shape"]) for i in case["inputs"]] == shapes
    assert {k: v for k, v in case["attrs"].items()} == attributes
    assert [i["layout"] for i in case["inputs"]] == ["contiguous"] * len(shapes)
    assert result.replay_args[:3] == ("--op", name, "--case")
    assert report.exploration[name]["findings"] == 1


def test_the_same_seed_gives_the_same_minimal_call(planted):
    op = _planted_ops(planted)["rank4sin"]
    first, second = (_failures(_explore(op, 40, seed=3)) for _ in range(2))
    assert [r.details["case"] for r in first] == [r.details["case"] for r in second]


def test_a_correct_op_of_the_default_set_has_no_finding():
    ops = opsets.default_opset()
    report = run(
        [ops["sum"], ops["transpose"], ops["add"]], ConformanceSettings(explore=Budget(15))
    )
    assert not _failures(report), [r.message for r in _failures(report)]
    assert all(e["examples"] >= 15 for e in report.exploration.values())


def _no_hypothesis(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """``opgraph`` in a fresh process where Hypothesis cannot be imported."""
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "from opgraph.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], check=False, capture_output=True, text=True, cwd=cwd
    )


def test_a_saved_case_replays_in_a_fresh_process_without_hypothesis(planted, tmp_path, capsys):
    saved = tmp_path / "cases"
    args = ["check", "--module", str(planted), "--op", "rank4sin"]
    assert main([*args, "--explore-examples", "200", "--save-cases", str(saved)]) == 1
    out = capsys.readouterr().out
    (path,) = saved.glob("*.case.json")
    assert f"--case {path}" in out and "reproduce with plain opgraph calls:" in out

    replay = _no_hypothesis(*args, "--case", str(path), cwd=tmp_path)
    assert replay.returncode == 1, replay.stderr
    assert "FAIL rank4sin · grad_value" in replay.stdout
    assert "(1, 1, 1, 1)" in replay.stdout

    again = _no_hypothesis(*args, "--cases", str(saved), cwd=tmp_path)  # a permanent sample
    assert again.returncode == 1 and f"--case {path}" in again.stdout

    missing = _no_hypothesis(*args, "--explore", cwd=tmp_path)
    assert missing.returncode == 2
    assert "pip install 'opgraph[explore]'" in missing.stderr


def test_the_pytest_suite_runs_saved_cases_as_regression_samples(planted, tmp_path):
    saved = tmp_path / "cases"
    args = ["check", "--module", str(planted), "--op", "scale"]
    assert main([*args, "--explore-examples", "200", "--save-cases", str(saved)]) == 1
    test = tmp_path / "test_planted.py"
    test.write_text(
        "from opgraph.testing import conformance_suite\n"
        f"test_conformance = conformance_suite(module={str(planted)!r}, ops=['scale'],"
        f" cases={str(saved)!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout
    assert "scale-grad_value" in result.stdout and "--case" in result.stdout


def _case(**kw) -> Case:
    values = (np.arange(6.0).reshape(2, 3), np.array(0.5))
    base = dict(index=3, dtype="float32", values=values, layouts=("transposed", "contiguous"))
    return Case(**{**base, **kw})


def test_a_case_file_keeps_values_types_and_streams_exactly():
    value = np.float32(1) / np.float32(3)
    original = _case(
        values=(np.full((2, 3), value), np.array(0.5, dtype=np.float32)),
        attrs={
            "axis": (0, -1),
            "sizes": [1, 2],
            "index": np.array([0, 1, 1]),
            "scalar": np.int16(3),
            "none": None,
            "flag": True,
            "eps": 1e-5,
            "mode": "same",
        },
        constants=(1,),
        numbers=True,
        dropped=(1,),
    )
    data = json.loads(case_files.dumps(case_files.encode(original, "op", "p", seed=7)))
    op, back = case_files.decode(data, "file", index=0)
    assert op == "op" and back.stream == (7, 3) and back.thorough
    for a, b in zip(original.values, back.values, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert back.values[0][0, 0] == value  # exact, not a decimal approximation
    assert back.layouts == original.layouts
    assert (back.constants, back.numbers, back.dropped) == ((1,), True, (1,))
    for name, expected in original.attrs.items():
        got = back.attrs[name]
        assert type(got) is type(expected) and repr(got) == repr(expected), name


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"op": 3}, "op"),
        ({"stream": [1]}, "stream"),
        (
            {"inputs": [{"dtype": "float64", "shape": [2], "values": [1.0], "layout": "x"}]},
            "inputs[0]",
        ),
        (
            {"inputs": [{"dtype": "object", "shape": [], "values": 1, "layout": "contiguous"}]},
            "inputs[0]",
        ),
        ({"attrs": {"axis": [0, 1]}}, "attrs.axis"),
        ({"attrs": {"axis": {"set": [0]}}}, "attrs.axis"),
        ({"constants": [5]}, "constants"),
        ({"numbers": "yes"}, "numbers"),
    ],
)
def test_a_bad_case_file_names_the_field(change, field):
    data = {**case_files.encode(_case(), "op", "p", 0), **change}
    with pytest.raises(case_files.CaseFileError, match=rf"^file: {re.escape(field)}"):
        case_files.decode(data, "file", 0)


def test_text_that_is_not_a_case_is_refused():
    with pytest.raises(case_files.CaseFileError, match="not an opgraph case"):
        case_files.read('{"format": "other"}')
    with pytest.raises(case_files.CaseFileError, match="not JSON"):
        case_files.read("{nope")


def test_a_bad_case_on_the_command_line_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.case.json"
    bad.write_text('{"format": "opgraph-case/1", "op": "sin", "stream": [0, 0], "inputs": 3}')
    assert main(["check", "--case", str(bad)]) == 2
    assert f"{bad}: inputs must be a JSON array" in capsys.readouterr().err
    assert main(["check", "--case", str(tmp_path / "none.json")]) == 2
    assert main(["check", "--case", "{not json"]) == 2


def test_the_snippet_reproduces_the_call_with_plain_opgraph_calls(capsys):
    spec = opsets.default_opset()["maximum"].spec
    case = _case(dtype="float64", constants=(1,), numbers=True)
    code = python_snippet(spec, case, ["grad_value"], None)
    assert "materialize(" in code and "x1 = 0.5" in code
    exec(compile(code, "<snippet>", "exec"), {})
    out = capsys.readouterr().out
    assert "output 0: float64 (2, 3)" in out
    analytic, numerical = (float(v) for v in out.split("analytic")[1].split("numerical"))
    assert analytic == pytest.approx(numerical, rel=1e-6)


def test_a_typed_attribute_is_explored_over_its_whole_range():
    from hypothesis import find, settings

    from opgraph.conformance.strategies import calls

    spec = OpSpec(
        "ranged",
        lambda x, k: x * k,
        lambda s, k: s,
        lambda ctx, gy: gy * ctx.attrs["k"],
        attrs=(Attr("k", 1, check=attrs.IntRange(1, 50)),),
    )
    found = find(
        calls(spec, [], ["float64"]),
        lambda c: c.attrs["k"] == 37,
        settings=settings(database=None, max_examples=2000),
    )
    assert found.attrs == {"k": 37} and found.values[0].shape == ()


def test_explored_and_saved_cases_run_the_checks_the_grid_keeps_to_its_first_samples():
    from opgraph.conformance.case import CaseRun

    op = opsets.default_opset()["maximum"]
    for thorough, status in ((False, "skip"), (True, "pass")):
        case = _case(dtype="float64", thorough=thorough, index=10**6)
        assert CaseRun(op, case, ConformanceSettings()).outcome("trace").status == status


def test_a_crash_or_a_hang_while_exploring_is_an_error_of_that_op_only():
    def examples(shapes):
        if len(shapes[0]) == 4:  # a rank the grid never has
            raise RuntimeError("examples broke")
        return [1]

    broken = OpSpec(
        "broken_examples",
        lambda x, k: x * k,
        lambda s, k: s,
        lambda ctx, gy: gy * ctx.attrs["k"],
        attrs=(Attr("k", 1, examples=examples),),
    )
    fine = opsets.default_opset()["sin"]
    report = run([Op(broken, Provenance("test")), fine], ConformanceSettings(explore=Budget(40)))
    errors = [r for r in report.results if r.failed]
    assert errors and all(r.op == "broken_examples" for r in errors)
    assert any(
        "exploring broken_examples crashed: RuntimeError: examples broke" in r.message
        for r in errors
    )
    assert report.exploration["sin"]["examples"] >= 40


def test_explored_calls_count_in_the_coverage():
    from opgraph.conformance.coverage import Coverage

    op = opsets.default_opset()["sum"]
    grid_only, explored_too = Coverage(), Coverage()
    run([op], ConformanceSettings(), coverage=grid_only)
    run([op], ConformanceSettings(explore=Budget(60)), coverage=explored_too)
    before, after = (c.as_dict()["matrix"]["sum"]["classes"] for c in (grid_only, explored_too))
    assert all(after[k] >= n for k, n in before.items())
    assert sum(after.values()) >= sum(before.values()) + 60  # every explored call counted


def test_explore_time_alone_bounds_the_search_by_the_clock(tmp_path):
    report_path = tmp_path / "r.json"
    assert main(["check", "--op", "sin", "--explore-time", "0.5", "--json", str(report_path)]) == 0
    exploration = json.loads(report_path.read_text())["summary"]["exploration"]["sin"]
    assert exploration["stopped"] == "time" and exploration["examples"] > 0
