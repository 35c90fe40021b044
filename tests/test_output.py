"""Output people read: an 80-column table with a legend, failures grouped with one replay,
skip and never-ran reasons, colour and progress only on a terminal, --maxfail/-x, and the
small command-line items (--version, python -m opgraph, --json -, plain --help, plurals)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from xml.etree import ElementTree as ET

import numpy as np
import pytest

import opgraph
from opgraph import opsets
from opgraph.cli import json_value, main
from opgraph.conformance import report
from opgraph.conformance.cli import Progress, use_colour
from opgraph.conformance.runner import Result, RunReport, run
from opgraph.conformance.settings import ConformanceSettings
from tests.test_conformance import install_faulty

ANSI = re.compile(r"\x1b\[")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_default_run_fits_80_columns_with_a_legend(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert lines[0].split()[:3] == ["op", "sr", "od"]
    legend = " ".join(out.split())
    assert "sr=shape_rule" in legend and "gog=grad_of_grad" in legend
    assert "ok all that ran passed; F<n> n failed" in legend
    assert not ANSI.search(out)  # captured output is no terminal: no colour


def test_a_repeated_failure_prints_once_with_its_samples_and_one_replay(fake_site, capsys):
    install_faulty(fake_site)
    assert main(["check", "--op", "faulty_unbroadcast", "--plugin", "faulty"]) == 1
    out = capsys.readouterr().out
    blocks = [b for b in out.split("\n\n") if b.startswith("FAIL faulty_unbroadcast")]
    # one block per message (did not reduce / wrong shape), not one per sample
    assert len(blocks) == 2
    assert all(b.count("replay: ") == 1 for b in blocks)
    assert out.count("replay: ") == 2
    assert re.search(r"on 28 samples \(1-10, 16-19, 21-30, 36-39\); first, sample 1:", blocks[0])


def test_verbose_shows_counts_and_every_skip_reason(capsys):
    assert main(["check", "--op", "sin"]) == 0
    plain = capsys.readouterr().out
    assert "second order is computed in float64" not in plain
    assert main(["check", "--op", "sin", "-v"]) == 0
    verbose = capsys.readouterr().out
    assert "shape_rule" in verbose.splitlines()[0]  # full check names
    assert re.search(r"sin +\d+/0/0", verbose)
    assert "skip sin · grad_of_grad (9 samples: 9-17): second order is computed in float64" in (
        " ".join(verbose.split())
    )


def test_the_summary_gives_every_never_ran_reason(capsys):
    assert main(["check", "--op", "sin"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "bad_input never ran for 1 op (sin): the shape rule accepts every generated shape and "
        "no error_inputs are declared"
    ) in out


def test_maxfail_and_exitfirst_stop_starting_ops(fake_site, capsys, tmp_path):
    install_faulty(fake_site)
    out_json = tmp_path / "r.json"
    assert main(["check", "--plugin", "faulty", "-x", "--json", str(out_json)]) == 1
    out = capsys.readouterr().out
    summary = json.loads(out_json.read_text())["summary"]
    n = sum(op.provenance.plugin == "faulty" for op in opsets.default_opset())
    assert summary["ops"] == 1 and len(summary["unchecked"]) == n - 1
    assert f"stopped early (--maxfail / -x): {n - 1} ops not checked" in " ".join(out.split())
    assert main(["check", "--plugin", "faulty", "--maxfail", "100", "--json", str(out_json)]) == 1
    summary = json.loads(out_json.read_text())["summary"]
    assert summary["ops"] > 1 and summary["fail"] + summary["error"] >= 100
    with pytest.raises(SystemExit) as info:  # refused by argparse, before any op is built
        main(["check", "--maxfail", "0"])
    assert info.value.code == 2 and "'0': give a whole number >= 1" in capsys.readouterr().err


def test_colour_only_on_a_terminal_and_as_the_environment_says():
    assert use_colour(Terminal(), {}) is True
    assert use_colour(io.StringIO(), {}) is False
    assert use_colour(Terminal(), {"NO_COLOR": "1"}) is False
    assert use_colour(io.StringIO(), {"FORCE_COLOR": "1"}) is True
    assert use_colour(io.StringIO(), {"FORCE_COLOR": "0"}) is False
    assert use_colour(Terminal(), {"NO_COLOR": "1", "FORCE_COLOR": "1"}) is False


def test_forced_colour_paints_failures_without_changing_the_layout(fake_site, capsys, monkeypatch):
    install_faulty(fake_site)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert main(["check", "--op", "faulty_unbroadcast", "--plugin", "faulty"]) == 1
    coloured = capsys.readouterr().out
    assert "\x1b[31mFAIL\x1b[0m faulty_unbroadcast" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["check", "--op", "faulty_unbroadcast", "--plugin", "faulty"]) == 1
    plain = capsys.readouterr().out
    assert not ANSI.search(plain)
    assert re.sub(r"\x1b\[\d+m", "", coloured).split("\n\n")[:-1] == plain.split("\n\n")[:-1]


def test_progress_is_one_updating_line_on_a_terminal_and_plain_lines_otherwise():
    class FakeOp:
        name = "sin"

        class provenance:  # noqa: N801 - stands in for a Provenance
            plugin = "builtin"

    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(stream)
        progress(FakeOp, 0, 2)
        progress(FakeOp, 1, 2)
        progress.clear()
    assert terminal.getvalue() == "\r\x1b[K[1/2] sin (builtin)\r\x1b[K[2/2] sin (builtin)\r\x1b[K"
    assert log.getvalue() == "[1/2] sin (builtin)\n[2/2] sin (builtin)\n"


def test_plugin_text_cannot_send_escape_sequences_to_the_terminal():
    result = Result("evil", "p", "shape_rule", "error", 0, "float64 ()", "boom\x1b[2J\nline 2")
    text = report.text(RunReport([result], 1, 1, 0.0, 0))
    assert "\x1b" not in text and "boom\\x1b[2J\\nline 2" in text  # one escaped line
    assert "line 2" not in [line.strip() for line in text.splitlines()]


def test_check_names_render_generically():
    results = [
        Result("op_a", "p", name, "pass", 0, "")
        for name in ("shape_rule", "reference_value", "reference_dtype", "determinism")
    ]
    labels = report.abbreviations([r.check for r in results])
    assert len(set(labels.values())) == 4 and labels["determinism"] == "dete"
    table = report.table(RunReport(results, 1, 1, 0.0, 0))
    assert all(f"{labels[r.check]}={r.check}" in " ".join(table.split()) for r in results)


def test_plurals_in_the_summary(capsys):
    assert main(["check", "--op", "sin", "--sample", "0", "--check", "shape_rule"]) == 0
    assert "1 op, 1 sample in" in capsys.readouterr().out
    rep = RunReport([Result("a", "p", "c", "error", None, "")], 2, 0, 0.0, 0)
    assert report.summary_line(rep).startswith("2 ops, 0 samples in") and "1 error" in (
        report.summary_line(rep)
    )


def test_json_dash_writes_the_report_to_stdout(capsys):
    assert main(["check", "--op", "sin", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"]["ops"] == 1
    assert "1 op, " in captured.err  # the text report moved to stderr
    assert main(["check", "--op", "sin", "--json", "-", "--junit", "-"]) == 2


def _strict_json(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_results_without_details_share_one_read_only_mapping():
    """A 30x op set's run holds about 870,000 results, nearly all without details: an empty
    dict each would cost 56 MB of the run's peak."""
    results = run([opgraph.ops.sin, opgraph.ops.sum], ConformanceSettings()).results
    empty = [r.details for r in results if not r.details]
    assert len(empty) > 50 and len({id(d) for d in empty}) == 1
    with pytest.raises(TypeError):
        empty[0]["max_abs_err"] = 1.0  # shared, so nobody may fill it in
    assert Result("sin", "p", "shape_rule", "pass", 0, "").details is empty[0]


def test_the_json_report_is_strict_compact_and_one_result_per_line():
    details = {
        "max_abs_err": np.float32("nan"),
        "max_rel_err": float("inf"),
        "where": (np.int64(2), -np.inf),
        "observed": np.dtype("float32"),
    }
    results = [
        Result("sin", "p", "grad_value", "fail", 3, "float64 (2,)", "bad", details),
        Result("sin", "p", "shape_rule", "pass", 3, "float64 (2,)"),
    ]
    out = io.StringIO()
    report.write_json(RunReport(results, 1, 1, 0.25, 7), out)
    lines = out.getvalue().splitlines()
    assert lines[1:] == ['"results":[', *lines[2:4], "],", '"coverage":null', "}"]
    assert ": " not in out.getvalue()
    payload = _strict_json(out.getvalue())
    assert payload["summary"]["results"] == 2 and payload["summary"]["fail"] == 1
    first = payload["results"][0]
    assert first["details"] == {
        "max_abs_err": "nan",
        "max_rel_err": "inf",
        "where": [2, "-inf"],
        "observed": "float32",
    }
    assert first["replay"] == "opgraph check --op sin --check grad_value --sample 3 --seed 7"
    junit = io.StringIO()
    report.write_junit(RunReport(results, 1, 1, 0.25, 7), junit)
    (suite,) = ET.fromstring(junit.getvalue().split("\n", 1)[1])
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("sin", "2", "1")


def test_check_help_is_plain_text_and_lists_every_exit_code():
    out = subprocess.run(
        [sys.executable, "-m", "opgraph", "check", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "``" not in out and "`" not in out
    for code in ("0  nothing failed", "1  a check failed", "2  usage", "3  plugin error"):
        assert code in out
    assert "--module" in out and "--maxfail" in out and "--pdb" in out
    for command in ([], ["list"], ["plugins"], ["new-plugin"]):
        assert (
            "`"
            not in subprocess.run(
                [sys.executable, "-m", "opgraph", *command, "--help"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )


def test_version_and_python_dash_m():
    from opgraph import __version__

    for argv in (["-m", "opgraph", "--version"], ["-m", "opgraph.cli", "--version"]):
        ran = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True)
        assert ran.stdout.strip() == f"opgraph {__version__}"


def test_list_shows_aliases_and_json_defaults(tmp_path, capsys):
    config = tmp_path / "alias.yaml"
    config.write_text("ops:\n  include: [sigmoid, sum]\n  aliases: {logistic: sigmoid}\n")
    assert main(["list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^sigmoid\(x\) .*\(alias: logistic\)$", out, flags=re.M)
    assert main(["list", "--config", str(config), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["ops"]}
    assert rows["sigmoid"]["aliases"] == ["logistic"] and rows["sum"]["aliases"] == []
    assert rows["sum"]["attrs"] == {"axis": None, "keepdims": False}


def test_attribute_defaults_are_json_values_or_their_repr():
    assert json_value((1, (2, 3))) == [1, [2, 3]]
    assert json_value(np.int64(3)) == 3 and json_value({"a": 0.5}) == {"a": 0.5}
    assert json_value(np.dtype("float32")) == "dtype('float32')"
    assert json_value(float("nan")) == "nan"  # not valid JSON as a number
    assert json_value([1, np.dtype("int8")]) == "[1, dtype('int8')]"
