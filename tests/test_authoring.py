"""The plugin author's workflow: check a module that is not installed, the plugin under test
is strict (a misspelt declaration fails with a suggestion), and every crash names the file and
line in the plugin's own code (text, JSON, JUnit, --tb, --pdb, pytest)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from xml.etree import ElementTree as ET

import pytest

from opgraph.cli import main
from opgraph.conformance.runner import run
from opgraph.conformance.target import resolve_target
from opgraph.errors import DeclarationWarning

pytestmark = pytest.mark.usefixtures("isolated_imports")

GOOD = """
import numpy as np
from opgraph import Domain, OpSpec, hookimpl


def _backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * 3 * x**2


@hookimpl
def opgraph_ops():
    yield OpSpec("{name}", lambda x: x**3, lambda x: x, _backward, domain=Domain(-2.0, 2.0))
"""

BACKWARD_TYPO = """
import numpy as np
from opgraph import OpSpec, hookimpl


def _backward(ctx, gy):
    return gy.reshape(gy.shap)  # the typo under test


@hookimpl
def opgraph_ops():
    yield OpSpec("typo_neg", lambda x: -x, lambda x: x, _backward)
"""

MISSPELT = """
import numpy as np
from opgraph import OpSpec, hookimpl


def _same(ctx, gy):
    return gy


@hookimpl
def opgraph_ops():
    yield OpSpec("fine", lambda x: x.copy(), lambda x: x, _same)
    yield OpSpec("bad_kind", lambda x: x.copy(), lambda x: x, _same, kind="shapes")
    yield OpSpec("bad_dtype", lambda x: x.copy(), lambda x: x, _same, dtypes=("float46",))
    yield OpSpec("bad_requires", lambda x: x.copy(), lambda x: x, _same, requires=("rol",))
"""

KEYWORD_TYPO = """
from opgraph import OpSpec, hookimpl


@hookimpl
def opgraph_ops():
    yield OpSpec(name="typo_keyword", forward=abs, backward=None, nondiff=("x",),
                 shape_rul=lambda x: x)
"""

IMPORT_FAILS = """
import numpy as np

AXES = normalise_axes(0)  # a NameError at import
"""


def write(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_a_module_file_is_checked_without_installing_and_says_so(tmp_path, capsys, fake_site):
    path = write(tmp_path, "loose_ops", GOOD.format(name="loose_cube"))
    target = resolve_target(modules=[str(path)])
    (op,) = target.ops
    assert op.name == "loose_cube" and not target.problems
    assert str(op.provenance) == f"plugin 'loose_ops' from module {path} (not installed)"
    assert main(["check", "--module", str(path)]) == 0
    out = capsys.readouterr().out
    assert "loose_cube" in out and "1 op, " in out


def test_a_dotted_module_name_and_a_package_directory_load_too(tmp_path, monkeypatch, fake_site):
    package = tmp_path / "pkg_ops"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(GOOD.format(name="pkg_cube")))
    assert [op.name for op in resolve_target(modules=[str(package)]).ops] == ["pkg_cube"]
    write(tmp_path, "dotted_ops", GOOD.format(name="dotted_cube"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [op.name for op in resolve_target(modules=["dotted_ops"]).ops] == ["dotted_cube"]


def test_a_module_that_names_nothing_is_a_usage_error(tmp_path, capsys, fake_site):
    assert main(["check", "--module", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["check", "--module", "no_such_module_anywhere"]) == 2
    assert "no module named 'no_such_module_anywhere'" in capsys.readouterr().err


def test_a_plugin_under_test_that_fails_to_import_exits_3_naming_file_and_line(
    tmp_path, capsys, fake_site
):
    path = write(tmp_path, "import_fails", IMPORT_FAILS)
    assert main(["check", "--module", str(path)]) == 3
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())  # unwrapped
    assert "NameError: name 'normalise_axes' is not defined" in out
    assert f"{path}:4: AXES = normalise_axes(0)" in out
    assert "plugin under test failed to load: import_fails" in captured.err


def test_an_installed_plugins_import_failure_names_file_and_line(fake_site, capsys):
    from opgraph.opsets import plugin_records

    fake_site.add_plugin("broken-import", IMPORT_FAILS)
    (record,) = [r for r in plugin_records() if r.name == "broken_import"]
    assert record.status == "failed"
    assert "broken_import.py:4: AXES = normalise_axes(0)" in record.reason


def test_misspelt_declarations_of_the_plugin_under_test_are_errors_with_suggestions(
    fake_site, capsys
):
    fake_site.add_plugin("extra-ops", MISSPELT, entry_point="extra")
    target = resolve_target(plugins=["extra"])
    assert [op.name for op in target.ops] == ["fine"]
    problems = {r.op: r for r in target.problems}
    assert set(problems) == {"bad_kind", "bad_dtype", "bad_requires"}
    assert all(r.status == "error" and r.check == "declaration" for r in problems.values())
    assert "kind 'shapes' is not one of" in problems["bad_kind"].message
    assert "did you mean 'shape'?" in problems["bad_kind"].message
    assert "did you mean 'float64'?" in problems["bad_dtype"].message
    assert "its backward requires 'rol', which no active plugin provides" in (
        problems["bad_requires"].message
    )
    assert main(["check", "--plugin", "extra", "--json", "-"]) == 1  # the plugin's CI fails
    payload = json.loads(capsys.readouterr().out)
    errors = [r for r in payload["results"] if r["status"] == "error"]
    assert {r["op"] for r in errors} == set(problems)
    assert all(r["replay"].startswith("opgraph check --plugin extra") for r in errors)


def test_a_requires_typo_gets_the_closest_op(fake_site):
    fake_site.add_plugin("roll-ops", MISSPELT.replace('("rol",)', '("tahn",)'), entry_point="roll")
    problems = {r.op: r for r in resolve_target(plugins=["roll"]).problems}
    assert "did you mean 'tanh'?" in problems["bad_requires"].message


def test_other_plugins_problems_stay_warnings(fake_site, capsys):
    fake_site.add_plugin("extra-ops", MISSPELT, entry_point="extra")
    with pytest.warns(DeclarationWarning, match="kind 'shapes'"):  # still warned about
        target = resolve_target(ops=["sin"])
    assert not target.problems and [op.name for op in target.ops] == ["sin"]
    assert main(["check", "--op", "sin"]) == 0


def test_a_misspelt_opspec_keyword_names_the_op_the_field_and_the_line(tmp_path, capsys, fake_site):
    path = write(tmp_path, "keyword_typo", KEYWORD_TYPO)
    target = resolve_target(modules=[str(path)])
    (problem,) = target.problems
    assert problem.check == "load" and problem.status == "error"
    assert "OpSpec 'typo_keyword': unknown field 'shape_rul'; did you mean 'shape_rule'?" in (
        problem.message
    )
    assert f"{path}:7:" in problem.message
    assert main(["check", "--module", str(path)]) == 3


def test_a_crash_in_a_backward_carries_file_line_and_source(tmp_path, capsys, fake_site):
    path = write(tmp_path, "typo_ops", BACKWARD_TYPO)
    target = resolve_target(modules=[str(path)])
    results = run(target.ops, target.settings).results
    errors = [r for r in results if r.status == "error"]
    assert errors and all(r.check == "grad_count" for r in errors)
    location = errors[0].location
    assert (location.file, location.line) == (str(path), 7)
    assert location.source == "return gy.reshape(gy.shap)  # the typo under test"
    junit = tmp_path / "r.xml"
    argv = ["check", "--module", str(path), "--json", "-", "--junit", str(junit)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    row = next(r for r in json.loads(captured.out)["results"] if r["status"] == "error")
    assert row["location"] == {"file": str(path), "line": 7, "source": location.source}
    assert "AttributeError" in row["traceback"] and f'"{path}", line 7' in row["traceback"]
    assert f"at {path}:7: return gy.reshape(gy.shap)" in captured.err  # the text report
    error = ET.parse(junit).getroot().find(".//testcase/error")
    assert f"at {path}:7:" in error.text and "Traceback (most recent call last)" in error.text


def test_tb_prints_full_tracebacks_and_pdb_stops_at_the_first_error(
    tmp_path, capsys, monkeypatch, fake_site
):
    path = write(tmp_path, "typo_ops2", BACKWARD_TYPO)
    assert main(["check", "--module", str(path)]) == 1
    assert "Traceback" not in capsys.readouterr().out
    assert main(["check", "--module", str(path), "--tb"]) == 1
    out = capsys.readouterr().out
    assert "Traceback (most recent call last)" in out and f'"{path}", line 7' in out
    import pdb

    entered = []
    monkeypatch.setattr(pdb, "post_mortem", entered.append)
    assert main(["check", "--module", str(path), "--pdb"]) == 1
    (tb,) = entered  # once, at the first error
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_filename == str(path) and tb.tb_lineno == 7


def _pytest(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(cwd), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_conformance_suite_of_a_module_propagates_the_plugins_exception_to_pytest(tmp_path):
    write(tmp_path, "typo_ops3", BACKWARD_TYPO)
    write(tmp_path, "misspelt_ops", MISSPELT)
    (tmp_path / "test_mine.py").write_text(
        "from opgraph.testing import conformance_suite\n\n"
        'test_typo = conformance_suite(module="typo_ops3.py")\n'
        'test_misspelt = conformance_suite(module="misspelt_ops.py")\n'
    )
    ran = _pytest(["-q", "--tb=long", "-k", "grad_count or declaration"], tmp_path)
    assert ran.returncode == 1, ran.stdout
    assert "AttributeError: 'Variable' object has no attribute 'shap'" in ran.stdout
    assert "typo_ops3.py:7: AttributeError" in ran.stdout  # pytest's own traceback
    assert "replay: opgraph check --op typo_neg --check grad_count --sample 0" in ran.stdout
    for op in ("bad_kind", "bad_dtype", "bad_requires"):
        assert f"FAILED test_mine.py::test_misspelt[{op}-declaration]" in ran.stdout
    assert "did you mean 'shape'?" in ran.stdout


def test_an_installed_plugin_under_test_whose_hook_raises_exits_3(fake_site, capsys):
    fake_site.add_plugin("typo-keyword-ops", KEYWORD_TYPO, entry_point="typokw")
    assert main(["check", "--plugin", "typokw", "--json", "-"]) == 3
    (row,) = json.loads(capsys.readouterr().out)["results"]
    assert (row["op"], row["check"], row["status"]) == ("typokw", "load", "error")
    assert "did you mean 'shape_rule'?" in row["message"]
    assert "typo_keyword_ops.py:7:" in row["message"]
    assert row["replay"] == "opgraph check --plugin typokw"
    assert main(["check", "--op", "sin"]) == 0  # not under test: a warning only


def test_the_pytest_plugin_checks_a_module_that_is_not_installed(tmp_path):
    write(tmp_path, "loose_plugin_ops", GOOD.format(name="loose_square"))
    args = ["-p", "opgraph.testing", "--opgraph-module", "loose_plugin_ops.py"]
    listed = _pytest([*args, "--collect-only", "-q"], tmp_path)
    assert "conformance[loose_square]::grad_value" in listed.stdout
    assert "conformance[sin]" not in listed.stdout  # the module's ops only


def test_a_syntax_error_in_a_module_names_its_file_and_line(tmp_path, fake_site):
    path = write(tmp_path, "syntax_ops", "import numpy as np\n\ndef broken(:\n    pass\n")
    (problem,) = resolve_target(modules=[str(path)]).problems
    assert "SyntaxError" in problem.message and f"{path}:3: def broken(:" in problem.message
