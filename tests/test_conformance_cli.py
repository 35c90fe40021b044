"""`opgraph check` (exit codes, reports, exact replay) and the pytest plugin `opgraph.testing`."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from xml.etree import ElementTree as ET

import pytest

from opgraph.cli import main
from opgraph.conformance.settings import CHECKS
from tests.test_conformance import install_faulty


def test_check_passes_on_builtin_ops_and_writes_reports(tmp_path, capsys):
    out_json, out_xml = tmp_path / "r.json", tmp_path / "r.xml"
    code = main(
        ["check", "--op", "sin", "--op", "add", "--json", str(out_json), "--junit", str(out_xml)]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].split()[:2] == ["op", "sr"]  # legend: sr=shape_rule
    assert "sr=shape_rule" in captured.out
    assert "[1/2] add (builtin)" in captured.err  # progress goes to stderr
    payload = json.loads(out_json.read_text())
    summary = payload["summary"]
    assert summary["ops"] == 2 and summary["fail"] == 0 and summary["failed"] is False
    assert summary["samples"] > 0 and summary["seconds"] >= 0
    row = payload["results"][0]
    assert set(row) >= {"op", "plugin", "check", "status", "sample", "message", "replay"}
    assert {r["check"] for r in payload["results"]} == set(CHECKS)
    suites = ET.parse(out_xml).getroot()
    assert {s.get("name") for s in suites} == {"add", "sin"}
    assert sum(int(s.get("tests")) for s in suites) == len(payload["results"])


def test_check_fails_with_details_and_the_replay_is_exact(fake_site, tmp_path, capsys):
    install_faulty(fake_site)
    out_json, out_xml = tmp_path / "r.json", tmp_path / "r.xml"
    argv = ["check", "--plugin", "faulty", "--seed", "5", "--json", str(out_json)]
    assert main([*argv, "--junit", str(out_xml)]) == 1
    text = capsys.readouterr().out
    assert "FAIL faulty_unbroadcast · grad_shape · plugin 'faulty'" in text
    assert "did not reduce the gradient of input" in text
    suites = {s.get("name"): s for s in ET.parse(out_xml).getroot()}
    failure = suites["faulty_unbroadcast"].find("testcase/failure")
    assert int(suites["faulty_unbroadcast"].get("failures")) > 0
    assert "did not reduce" in failure.get("message")
    assert "replay: opgraph check --op faulty_unbroadcast --check grad_shape" in failure.text
    error = suites["faulty_backward_raises"].find("testcase/error")
    assert int(suites["faulty_backward_raises"].get("errors")) > 0
    assert "RuntimeError" in error.get("message")
    failures = [r for r in json.loads(out_json.read_text())["results"] if r["status"] == "fail"]
    wanted = next(r for r in failures if r["check"] == "grad_value")
    assert "--seed 5" in wanted["replay"]
    replay_json = tmp_path / "replay.json"
    argv = [*shlex.split(wanted["replay"])[1:], "--json", str(replay_json)]
    assert main(argv) == 1
    replayed = json.loads(replay_json.read_text())["results"]
    assert len(replayed) == 1
    assert {k: replayed[0][k] for k in ("op", "check", "status", "sample", "message")} == {
        k: wanted[k] for k in ("op", "check", "status", "sample", "message")
    }


def test_unknown_op_and_bad_config_are_usage_errors(tmp_path, capsys):
    assert main(["check", "--op", "sinn"]) == 2
    assert "did you mean sin" in capsys.readouterr().err
    assert main(["check", "--op", "sin", "--op", "gelu", "--plugin", "activations"]) == 2
    assert "--op sin: it comes from plugin 'builtin'" in capsys.readouterr().err
    assert main(["check", "--op", "sin", "--sample", "9999"]) == 2
    assert "--sample 9999: no selected op has that sample" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("conformance:\n  seeed: 3\n")
    assert main(["check", "--config", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["check", "--check", "grad_values"])
    assert exc.value.code == 2


def _pytest(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(cwd), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_pytest_plugin_generates_readable_ids(tmp_path):
    listed = _pytest(
        ["-p", "opgraph.testing", "--opgraph-op", "sin", "--collect-only", "-q"], tmp_path
    )
    assert "conformance[sin]::grad_shape\n" in listed.stdout  # one test per op and check
    ran = _pytest(["-p", "opgraph.testing", "--opgraph-op", "sin", "-q"], tmp_path)
    assert ran.returncode == 0, ran.stdout
    assert re.search(r"\d+ passed, \d+ skipped", ran.stdout) and "failed" not in ran.stdout
    unknown = _pytest(["-p", "opgraph.testing", "--opgraph-op", "nope"], tmp_path)
    assert unknown.returncode == 4 and "no such op" in unknown.stderr


def test_collecting_the_pytest_tests_generates_no_sample(monkeypatch):
    from opgraph.conformance import runner
    from opgraph.testing import ConformanceSuite

    def generate(*args):
        raise AssertionError("samples generated at collection")

    monkeypatch.setattr(runner, "op_cases", generate)
    suite = ConformanceSuite(ops=("sin", "add"))
    assert suite.params() == [(op, c) for op in ("add", "sin") for c in CHECKS]
    with pytest.raises(AssertionError, match="samples generated"):
        suite.verify(("sin", "grad_value"))  # generated on first use, not before


def test_per_op_mode_makes_one_test_of_every_check(fake_site, tmp_path):
    from opgraph.testing import ConformanceSuite

    install_faulty(fake_site)
    suite = ConformanceSuite(ops=("faulty_unbroadcast", "sin"), per_op=True)
    assert suite.params() == [("faulty_unbroadcast", None), ("sin", None)]
    with pytest.raises(pytest.fail.Exception, match="FAIL faulty_unbroadcast · grad_shape"):
        suite.verify(("faulty_unbroadcast", None))
    suite.verify(("sin", None))
    listed = _pytest(
        [
            "-p",
            "opgraph.testing",
            "--opgraph-op",
            "sin",
            "--opgraph-per-op",
            "--collect-only",
            "-q",
        ],
        tmp_path,
    )
    assert listed.stdout.splitlines()[0] == "::conformance[sin]"


LOGGED_SAMPLES = """
import os

import numpy as np
from opgraph import OpSpec, Sample, hookimpl


def _logged(name):
    def samples(rng, dtype):
        with open(os.environ["OPGRAPH_SAMPLE_LOG"], "a") as log:
            log.write(f"{name} {os.getpid()}\\n")
        yield Sample((rng.standard_normal(3).astype(dtype),))

    return samples


@hookimpl
def opgraph_ops():
    return [
        OpSpec(f"logged{i}", lambda x: -x, lambda s: s, lambda ctx, gy: -gy, kind="custom",
               sample_inputs=_logged(f"logged{i}"))
        for i in range(6)
    ]
"""


def _sample_log(path):
    """(op, process id) per sample generation the plugin above logged."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [tuple(line.split()) for line in lines]


def test_under_xdist_loadscope_each_op_runs_once_on_one_worker(fake_site, tmp_path, monkeypatch):
    pytest.importorskip("xdist")
    from opgraph.testing import ConformanceSuite

    fake_site.add_plugin("logged-ops", LOGGED_SAMPLES)
    log = tmp_path / "samples.log"
    monkeypatch.setenv("OPGRAPH_SAMPLE_LOG", str(log))
    suite = ConformanceSuite(plugins=("logged_ops",))
    for op in suite.ops:
        suite.results(op, None)  # every check of the op, in this process
    serial = sorted(op for op, _ in _sample_log(log))  # what one process generates
    log.unlink()
    env = {**fake_site.env, "OPGRAPH_SAMPLE_LOG": str(log)}
    args = ["-p", "opgraph.testing", "--opgraph-plugin", "logged_ops", "-n", "2"]
    listed = _pytest([*args, "--collect-only", "-q"], tmp_path, env=env)
    assert "conformance[logged0]::grad_value" in listed.stdout
    assert _sample_log(log) == []  # the workers collect without generating a sample
    ran = _pytest([*args, "--dist", "loadscope", "-v"], tmp_path, env=env)
    assert ran.returncode == 0, ran.stdout
    workers: dict[str, set[str]] = {}
    for worker, op in re.findall(r"\[(gw\d)\].* ::conformance\[(\w+)\]::", ran.stdout):
        workers.setdefault(op, set()).add(worker)
    assert sorted(workers) == [f"logged{i}" for i in range(6)]
    assert all(len(w) == 1 for w in workers.values()), workers
    assert len(set().union(*workers.values())) == 2  # and the ops are shared out
    generated = _sample_log(log)
    assert sorted(op for op, _ in generated) == serial  # each op's samples made once in all
    pids = {op: {pid for o, pid in generated if o == op} for op, _ in generated}
    assert all(len(p) == 1 for p in pids.values()), pids


def test_conformance_suite_one_liner_reports_a_faulty_plugin(fake_site, tmp_path):
    install_faulty(fake_site)
    (tmp_path / "test_faulty_conformance.py").write_text(
        textwrap.dedent(
            """
            from opgraph.testing import conformance_suite

            test_conformance = conformance_suite(plugins=("faulty",))
            """
        )
    )
    ran = _pytest(["-q", "-rf", "-k", "unbroadcast"], tmp_path, env=fake_site.env)
    assert ran.returncode == 1
    assert (
        "FAILED test_faulty_conformance.py::test_conformance[faulty_unbroadcast-grad_shape]"
        in ran.stdout
    )
    assert "replay: opgraph check --op faulty_unbroadcast --check grad_shape" in ran.stdout
    groups = re.findall(r"^  on (\d+) samples \([\d, -]+\); first, sample", ran.stdout, re.M)
    assert len(groups) >= 2 and all(int(n) > 1 for n in groups)  # every failing sample, grouped
    assert (
        "test_conformance[faulty_unbroadcast-grad_value]" not in ran.stdout.split("short test")[-1]
    )


BROKEN_SAMPLES = """
import numpy as np
from opgraph import OpSpec, hookimpl


def _samples(rng, dtype):
    raise RuntimeError("sample_inputs is broken")


@hookimpl
def opgraph_ops():
    return [OpSpec("broken_samples", np.sin, lambda x: x, None, nondiff=("x",),
                   sample_inputs=_samples)]
"""


def test_a_crash_generating_samples_is_an_error_of_every_check(fake_site):
    from opgraph.conformance.runner import run
    from opgraph.testing import ConformanceSuite

    fake_site.add_plugin(
        "opgraph-broken", BROKEN_SAMPLES, module="opgraph_broken", entry_point="broken"
    )
    suite = ConformanceSuite(plugins=("broken",))
    results = run(suite.ops.values(), suite.settings).results
    assert [(r.check, r.status, r.sample) for r in results] == [(c, "error", None) for c in CHECKS]
    assert "sample_inputs is broken" in results[0].message
    params = suite.params()
    assert params == [("broken_samples", c) for c in CHECKS]
    with pytest.raises(RuntimeError, match="sample_inputs is broken") as raised:
        suite.verify(params[0])  # the plugin's own exception, for pytest's --tb and --pdb
    with pytest.raises(RuntimeError) as again:
        suite.verify(params[1])
    assert raised.value is again.value
    (note,) = again.value.__notes__  # replaced, not repeated, per result
    assert "generating samples crashed" in note and "· output_dtype ·" in note
    assert again.traceback[-1].path.name == "opgraph_broken.py"  # raised in the plugin


def test_suite_maps_expected_failures_to_xfail_and_replays_with_the_config(fake_site, tmp_path):
    from opgraph.testing import ConformanceSuite

    install_faulty(fake_site)
    config = tmp_path / "opgraph.yaml"
    config.write_text(
        "conformance:\n  expected_failures:\n"
        "    - {op: faulty_wrong_value, check: grad_value, reason: doubled on purpose}\n"
    )
    suite = ConformanceSuite(str(config), ops=("faulty_wrong_value", "faulty_unbroadcast"))
    params = suite.params()
    statuses = {p: {r.status for r in suite.results(*p)} for p in params}
    excused = next(p for p in params if "xfail" in statuses[p])
    with pytest.raises(pytest.xfail.Exception, match="doubled on purpose"):
        suite.verify(excused)
    failing = next(p for p in params if "fail" in statuses[p])
    assert failing[:2] == ("faulty_unbroadcast", "grad_shape")
    with pytest.raises(pytest.fail.Exception, match=f"--config {re.escape(str(config))}"):
        suite.verify(failing)
