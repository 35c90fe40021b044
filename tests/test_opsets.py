"""The op set is a value: a computation uses one op set everywhere (operators, unbroadcast,
fan-in sums, backwards), whether it comes from `load_opset`, `use_opset`, ``OPGRAPH_CONFIG``,
``opgraph check --config`` or the pytest plugin; and engine state is per thread and task."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import opgraph
from opgraph import Variable, cli, engine, opsets
from opgraph.errors import EXIT_FAILED

# A second provider of `mul` that records every call on its module, so a test sees which `mul`
# ran (forward and the backwards' own multiplications).
COUNTING_MUL = """
import numpy as np
from opgraph import OpSpec, hookimpl, unbroadcast
from opgraph.shapes import broadcast

CALLS = []

def _forward(a, b):
    CALLS.append((np.shape(a), np.shape(b)))
    return np.multiply(a, b)

def _backward(ctx, gy):
    a, b = ctx.inputs
    return (
        unbroadcast(gy * b, a) if ctx.needs_input_grad[0] else None,
        unbroadcast(gy * a, b) if ctx.needs_input_grad[1] else None,
    )

@hookimpl
def opgraph_ops():
    return [OpSpec("mul", _forward, lambda a, b: broadcast("mul", a, b), _backward,
                   inputs=("a", "b"), kind="broadcast")]
"""


@pytest.fixture
def counting_mul(fake_site, tmp_path):
    """A second provider of ``mul`` and a config choosing it; returns (config path, calls)."""
    fake_site.add_plugin("counting-mul", COUNTING_MUL)
    path = tmp_path / "counting.yaml"
    path.write_text("providers:\n  mul: counting_mul\n")
    return path


def calls_of_counting_mul() -> list:
    return sys.modules["counting_mul"].CALLS


def test_a_loaded_op_sets_backward_uses_its_own_ops(counting_mul):
    ops = opgraph.load_opset(counting_mul)
    x = Variable(np.array([1.0, 2.0]))
    ops.sum(ops.exp(x)).backward()  # exp's backward multiplies: with cfg's mul
    assert np.allclose(x.grad.data, np.exp([1.0, 2.0]))
    assert len(calls_of_counting_mul()) == 1
    assert ops.mul.provenance.plugin == "counting_mul"


def test_use_opset_makes_operators_unbroadcast_and_fan_in_use_it(counting_mul):
    ops = opgraph.load_opset(counting_mul)
    x = Variable(np.array([1.0, 2.0]))
    with opgraph.use_opset(ops) as active:
        assert active is ops
        y = x * 3.0  # the operator
        z = ops.sum(y * x, keepdims=False)  # fan-in: x is used twice
    assert len(calls_of_counting_mul()) == 2
    z.backward()
    assert np.allclose(x.grad.data, 6 * x.data)
    assert len(calls_of_counting_mul()) > 2  # the backwards multiplied with cfg's mul too
    # outside the block the default op set is active again, and it has no provider for mul
    # but the built-in one... and the counting one: contested, so the operator refuses
    with pytest.raises(opgraph.OpConflictError):
        x * 2.0


def test_opgraph_config_makes_the_choice_the_process_default(counting_mul, monkeypatch):
    monkeypatch.setenv("OPGRAPH_CONFIG", str(counting_mul))
    opsets.reset()
    x = Variable(np.array([1.0, 2.0]))
    (x * 2.0).sum().backward()
    assert opgraph.ops.mul.provenance.plugin == "counting_mul"
    assert len(calls_of_counting_mul()) >= 1
    assert np.allclose(x.grad.data, [2.0, 2.0])


def test_opgraph_check_with_a_provider_override_runs_in_that_op_set(counting_mul, tmp_path, capsys):
    report = tmp_path / "r.json"
    code = cli.main(["check", "--config", str(counting_mul), "--op", "exp", "--json", str(report)])
    assert code == cli.EXIT_OK, capsys.readouterr().out
    results = json.loads(report.read_text())["results"]
    assert results and all(r["status"] in ("pass", "skip", "hint") for r in results)
    assert calls_of_counting_mul()  # exp's backward multiplied with the chosen mul


def test_the_pytest_plugin_and_conformance_suite_run_in_the_configs_op_set(counting_mul, fake_site):
    test_file = counting_mul.parent / "test_suite_in_config.py"
    test_file.write_text(
        "from opgraph.testing import conformance_suite\n"
        f"test_conformance = conformance_suite(ops=('exp', 'mul'), config={str(counting_mul)!r})\n"
    )
    for args in (
        [str(test_file)],
        ["-p", "opgraph.testing", "--opgraph-config", str(counting_mul), "--opgraph-op", "exp",
         "-k", "conformance", str(counting_mul.parent)],
    ):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            env=fake_site.env,
            capture_output=True,
            text=True,
            check=False,
            cwd=counting_mul.parent,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert " passed" in done.stdout and "failed" not in done.stdout


def test_a_conflict_is_listed_by_list_and_plugins_and_fails_check(fake_site, capsys, monkeypatch):
    fake_site.add_plugin("rival-tanh", COUNTING_MUL.replace('"mul"', '"tanh"'))
    assert cli.main(["list", "--json"]) == cli.EXIT_OK
    listing = json.loads(capsys.readouterr().out)
    (conflict,) = listing["conflicts"]
    assert conflict["name"] == "tanh"
    assert {p["plugin"] for p in conflict["providers"]} == {"builtin", "rival_tanh"}
    assert "tanh" not in {row["name"] for row in listing["ops"]}
    assert cli.main(["list"]) == cli.EXIT_OK
    assert "tanh: contested, unavailable: provided by builtin" in capsys.readouterr().err
    assert cli.main(["plugins"]) == cli.EXIT_OK
    assert "conflicts (these ops are unavailable" in capsys.readouterr().out
    assert cli.main(["check", "--op", "tanh"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "op 'tanh' is contested: it is provided by plugin 'builtin'" in out
    assert cli.main(["check", "--op", "sin"]) == cli.EXIT_OK  # untouched by the conflict
    assert cli.main(["check", "--plugin", "rival_tanh"]) == EXIT_FAILED
    capsys.readouterr()
    monkeypatch.setenv("OPGRAPH_STRICT_PLUGINS", "")  # restored after the flag sets it
    assert cli.main(["--strict-plugins", "list"]) == cli.EXIT_PLUGIN


def test_plugin_warnings_are_python_warnings_a_filter_can_make_errors(fake_site):
    fake_site.add_plugin("broken-plugin", "raise ImportError('no GPU')\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", opgraph.PluginWarning)
        with pytest.raises(opgraph.PluginWarning, match="broken_plugin"):
            opsets.plugin_records()
    assert opsets.default_opset().sin  # the records survived: the rest still loads
    opsets.reset()  # forget that the warning was given
    with warnings.catch_warnings():
        warnings.simplefilter("error", opgraph.PluginWarning)  # as pytest -W error::... does
        assert cli.main(["list"]) == cli.EXIT_PLUGIN


# --- per-thread and per-task engine state ---------------------------------------------------


def test_another_threads_backward_or_no_grad_never_switches_recording_off():
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            x = Variable(np.ones(3))
            with opgraph.no_grad():
                opgraph.ops.sin(x)
            opgraph.ops.sum(opgraph.ops.sin(x)).backward()

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        unrecorded = sum(opgraph.ops.sin(Variable(np.ones(3))).creator is None for _ in range(3000))
    finally:
        stop.set()
        thread.join()
    assert unrecorded == 0
    assert engine.is_grad_enabled()


def test_four_threads_training_separate_graphs_get_exact_gradients():
    errors: list[str] = []

    def train(k: int) -> None:
        rng = np.random.default_rng(k)
        for _ in range(200):
            data = rng.normal(size=5)
            x = Variable(data.copy())
            loss = opgraph.ops.sum(opgraph.ops.tanh(x * float(k + 1)) * x)
            loss.backward()
            t = np.tanh((k + 1) * data)
            want = t + data * (k + 1) * (1 - t**2)
            if x.grad is None or not np.allclose(x.grad.data, want, rtol=1e-12, atol=0):
                errors.append(f"thread {k}: wrong gradient")

    threads = [threading.Thread(target=train, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert engine.is_grad_enabled() and engine.is_training()


def test_the_default_op_set_is_built_once_when_many_threads_ask_at_once(fake_site):
    fake_site.add_plugin(
        "slow-ops",
        """
        import time
        from opgraph import OpSpec, hookimpl
        CALLS = []

        @hookimpl
        def opgraph_ops():
            CALLS.append(1)
            time.sleep(0.2)  # every thread arrives while the first one is still loading
            return [OpSpec("ident", lambda x: x.copy(), lambda x: x, lambda ctx, gy: gy)]
        """,
    )
    barrier = threading.Barrier(8)
    seen: list[object] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(opgraph.ops)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.modules["slow_ops"].CALLS == [1]
    assert len({id(o) for o in seen}) == 1


def test_use_opset_and_no_grad_are_per_asyncio_task(counting_mul):
    ops = opgraph.load_opset(counting_mul)

    async def in_config() -> object:
        with opgraph.use_opset(ops), opgraph.no_grad():
            await asyncio.sleep(0.01)
            return engine.active_ops().mul  # the dispatch table holds the op's fast path

    async def default_meanwhile() -> bool:
        await asyncio.sleep(0.005)
        return engine.is_grad_enabled()

    async def both() -> tuple:
        return await asyncio.gather(in_config(), default_meanwhile())

    mul, recording = asyncio.run(both())
    assert mul is ops.mul.fast and ops.mul.provenance.plugin == "counting_mul"
    assert recording is True


def test_backward_restores_exactly_the_state_it_found():
    x = Variable(np.array([0.5]))
    with opgraph.no_grad():
        y = opgraph.ops.sin(x)
    with opgraph.test_mode():
        y2 = opgraph.ops.sin(x)
        y2.backward(create_graph=True)
        assert engine.state().grad_enabled and not engine.state().training
    assert y.creator is None and engine.state().training
