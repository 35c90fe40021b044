"""Conformance at scale: the default op set re-registered under many names, as a plugin module.

As a plugin (``opgraph check --module bench/scale.py``, ``pytest -p opgraph.testing
--opgraph-module bench/scale.py``) it declares every op of the default op set again,
``OPGRAPH_SCALE_COPIES`` times (default 10), as ``<op>_copy<k>``: an op set N times the size
of the default one whose ops all pass. As a script it measures runs over such op sets:

    python bench/scale.py [--copies 1,10,30] [--json-out]

Each run is a fresh ``opgraph check --module bench/scale.py --json FILE`` process; the table
gives its wall-clock time, time per copy (flat when the run is linear) and peak RSS (the
child's own ``ru_maxrss``, from ``os.wait4``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import opgraph
from opgraph import OpSpec

COPIES_VARIABLE = "OPGRAPH_SCALE_COPIES"


def copies() -> int:
    """How many times the plugin declares each op (``OPGRAPH_SCALE_COPIES``, default 10)."""
    text = os.environ.get(COPIES_VARIABLE, "10")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{COPIES_VARIABLE}={text!r}: give a whole number >= 1")
    return int(text)


def copied_specs(n: int) -> list[OpSpec]:
    """Every spec of the default op set, renamed ``<op>_copy<k>`` for k in 1..n."""
    return [renamed(op.spec, f"{op.name}_copy{k}") for k in range(1, n + 1) for op in opgraph.ops]


def renamed(spec: OpSpec, name: str) -> OpSpec:
    """``spec`` under another name. Its forward and shape rule name the original op in their
    errors, which the ``bad_input`` check requires to name the op called: they are wrapped to
    say ``name`` instead."""
    original = re.compile(rf"\b{re.escape(spec.name)}\b")

    def naming_copy(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if len(exc.args) == 1 and isinstance(exc.args[0], str):
                    exc.args = (original.sub(name, exc.args[0]),)
                raise

        return call

    return dataclasses.replace(
        spec, name=name, forward=naming_copy(spec.forward), shape_rule=naming_copy(spec.shape_rule)
    )


@opgraph.hookimpl
def opgraph_ops() -> Iterable[OpSpec]:
    return copied_specs(copies())


def _command() -> list[str]:
    script = Path(sys.executable).with_name("opgraph")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "opgraph"]
    return [*base, "check", "--module", str(Path(__file__).resolve())]


def measure(n: int, json_report: bool) -> dict[str, float | int]:
    """Seconds, peak RSS (MB) and exit code of one check process over ``n`` copies."""
    env = {**os.environ, COPIES_VARIABLE: str(n)}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = _command() + (["--json", str(Path(tmp) / "report.json")] if json_report else [])
        start = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = child.stderr.read() if child.stderr else b""
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        size = (Path(tmp) / "report.json").stat().st_size if json_report else 0
    if child.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {child.returncode}:\n{stderr.decode()[-2000:]}")
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024  # ru_maxrss: KiB (bytes on macOS)
    return {
        "copies": n,
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / scale,
        "json_mb": size / 1e6,
        "exit": child.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", default="1,10,30", help="comma-separated copy counts")
    parser.add_argument("--no-json", action="store_true", help="without --json (text only)")
    args = parser.parse_args(argv)
    print("| copies | seconds | seconds per copy | peak RSS | JSON report | exit |")
    print("|---|---|---|---|---|---|")
    for n in (int(c) for c in args.copies.split(",")):
        row = measure(n, json_report=not args.no_json)
        print(
            f"| {n} | {row['seconds']:.1f} | {row['seconds'] / n:.2f} | "
            f"{row['peak_rss_mb']:.0f} MB | {row['json_mb']:.1f} MB | {row['exit']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
