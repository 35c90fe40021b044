"""Bytecodes one step executes: a count that no machine load moves, per function.

    python bench/opcodes.py [--workload chain|sin] [--top N]

Interpreting bytecode is most of what opgraph's Python costs, and unlike a time this count is
exact and the same on every run: it tells whether a change to the engine made a step cheaper,
and where the rest goes. It counts one step of opgraph and of ``Floor`` (`floor.py`, the same
model without opgraph's features) on (3,), after warm-up runs, with ``sys.settrace``'s opcode
events. numpy's and the interpreter's own C code are not counted: callgrind measures those
(bench/README.md).
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from pathlib import Path

import problems

WARM_UP = 5


def count(step: Callable[[], object]) -> tuple[collections.Counter, collections.Counter]:
    """Opcodes and calls per function (``file:name:first line``) in one call of ``step``."""
    opcodes: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()

    def tracer(frame, event, _arg):  # sys.settrace calls it with these three
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = f"{Path(code.co_filename).name}:{code.co_name}:{code.co_firstlineno}"
        if event == "call":
            calls[key] += 1
        elif event == "opcode":
            opcodes[key] += 1
        return tracer

    for _ in range(WARM_UP):
        step()
    sys.settrace(tracer)
    try:
        step()
    finally:
        sys.settrace(None)
    return opcodes, calls


def steps(workload: str) -> dict[str, Callable[[], object]]:
    """opgraph's and the floor's step of ``workload``, on (3,) so that it is about Python."""
    import floor
    import peer_opgraph
    from define_by_run import DefineByRun

    problems.CHAIN_SIZE = 3  # sin_input is (3,) already
    model = DefineByRun(
        lambda a: floor.Floor(a, True), floor.sin, floor.tanh, floor.total, floor.mul, {}
    )
    return {
        "opgraph": getattr(peer_opgraph, f"{workload}_step")(),
        "floor": getattr(model, f"{workload}_step")(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("chain", "sin"), default="chain")
    parser.add_argument("--top", type=int, default=12, help="functions listed per engine")
    args = parser.parse_args(argv)
    for name, step in steps(args.workload).items():
        opcodes, calls = count(step)
        print(f"{name}: {sum(opcodes.values())} opcodes in {sum(calls.values())} calls")
        for key, n in opcodes.most_common(args.top):
            print(f"  {n:6d} opcodes {calls[key]:4d} calls  {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
