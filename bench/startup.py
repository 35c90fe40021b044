"""Process-level costs, each measured in fresh subprocesses: interpreter start, ``import
numpy``, ``import opgraph``, a cold ``opgraph list`` and the full default ``opgraph check``."""

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


def _seconds(cmd: list[str]) -> tuple[float, int]:
    env = {**os.environ, **ONE_THREAD}
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
print(middle - start, time.perf_counter() - middle)
"""


def import_times(runs: int) -> tuple[float, float]:
    """Median seconds of ``import numpy`` and of ``import opgraph`` right after it, each timed
    inside a fresh interpreter (process start-up, which varies more, stays out)."""
    env = {**os.environ, **ONE_THREAD}
    pairs = [
        [
            float(v)
            for v in subprocess.check_output([sys.executable, "-c", IMPORT_TIMES], env=env).split()
        ]
        for _ in range(runs)
    ]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def measure(runs: int, check_runs: int) -> dict[str, float | None]:
    """Median seconds of each step; ``check`` is None without the conformance harness."""
    numpy_seconds, opgraph_extra = import_times(runs)
    results: dict[str, float | None] = {
        "python -c pass (process)": _median([sys.executable, "-c", "pass"], runs),
        "import numpy (in process)": numpy_seconds,
        "import opgraph after numpy (in process)": opgraph_extra,
        "opgraph list (cold process)": _median(_command("list"), runs),
        "opgraph check (process)": None,
    }
    if has_check_command():
        elapsed = [_seconds(_command("check")) for _ in range(check_runs)]
        results["opgraph check (process)"] = statistics.median(t for t, _ in elapsed)
        results["opgraph check exit code"] = elapsed[-1][1]
    return results
