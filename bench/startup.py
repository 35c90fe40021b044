"""Process-level costs, each measured in fresh subprocesses: interpreter start, ``import
numpy``, ``import opgraph``, the first ``opgraph.ops``, a cold ``opgraph list`` and the full
default ``opgraph check``. The children may write bytecode caches (``PYTHONDONTWRITEBYTECODE``
is dropped), as an installed package has them: compiling sources would be timed otherwise."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import ONE_THREAD


def _command(*args: str) -> list[str]:
    """The ``opgraph`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("opgraph")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "opgraph.cli", *args]


def _environment() -> dict[str, str]:
    env = {**os.environ, **ONE_THREAD}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _seconds(cmd: list[str]) -> tuple[float, int]:
    env = _environment()
    start = time.perf_counter()
    done = subprocess.run(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - start, done.returncode


def _median(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        elapsed, code = _seconds(cmd)
        if code != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {code}")
        times.append(elapsed)
    return statistics.median(times)


def has_check_command() -> bool:
    """True once the conformance harness provides ``opgraph check``."""
    return _seconds(_command("check", "--help"))[1] == 0


IMPORT_TIMES = """
import time
start = time.perf_counter()
import numpy
middle = time.perf_counter()
import opgraph
end = time.perf_counter()
opgraph.ops
print(middle - start, end - middle, time.perf_counter() - end)
"""


def import_times(runs: int) -> tuple[float, float, float]:
    """Median seconds of ``import numpy``, of ``import opgraph`` right after it and of the
    first ``opgraph.ops``, each timed inside a fresh interpreter (process start-up, which
    varies more, stays out)."""
    cmd = [sys.executable, "-c", IMPORT_TIMES]
    rows = [
        [float(v) for v in subprocess.check_output(cmd, env=_environment()).split()]
        for _ in range(runs + 1)
    ][1:]  # the first run may write bytecode caches
    numpy_s, opgraph_s, ops_s = (statistics.median(column) for column in zip(*rows, strict=True))
    return numpy_s, opgraph_s, ops_s


def measure(runs: int, check_runs: int) -> dict[str, float | None]:
    """Median seconds of each step; ``check`` is None without the conformance harness."""
    numpy_seconds, opgraph_extra, first_ops = import_times(runs)
    results: dict[str, float | None] = {
        "python -c pass (process)": _median([sys.executable, "-c", "pass"], runs),
        "import numpy (in process)": numpy_seconds,
        "import opgraph after numpy (in process)": opgraph_extra,
        "first opgraph.ops after import (in process)": first_ops,
        "opgraph list (cold process)": _median(_command("list"), runs),
        "opgraph check (process)": None,
    }
    if has_check_command():
        elapsed = [_seconds(_command("check")) for _ in range(check_runs)]
        results["opgraph check (process)"] = statistics.median(t for t, _ in elapsed)
        results["opgraph check exit code"] = elapsed[-1][1]
    return results
