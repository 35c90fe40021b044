"""Benchmark opgraph against hand-written numpy and the peers that are installed.

    python bench/run.py [--quick] [--json FILE] [--only sin,chain,...] [--no-startup]
        [--no-memory]

Every engine runs the same workloads in this one process, on one BLAS thread; the tables give
medians and opgraph's ratios against each peer measured in the same run (see bench/README.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from types import ModuleType
from typing import Any

import report
import timing
import trace_report

PEERS = ("numpy", "opgraph", "trace", "dezero", "autograd", "mygrad", "torch", "jax")
REQUIRED_PEERS = ("numpy", "opgraph")


def load_peers(names: list[str]) -> tuple[dict[str, ModuleType], dict[str, str]]:
    """Import each peer's module; an optional peer that is not installed is skipped."""
    loaded, skipped = {}, {}
    for name in names:
        try:
            loaded[name] = importlib.import_module(f"peer_{name}")
        except Exception as exc:  # an optional peer may also fail on import (old numpy API)
            if name in REQUIRED_PEERS:
                raise
            skipped[name] = f"unavailable: {type(exc).__name__}: {exc}"
    return loaded, skipped


def check_against_floor(workload: str, peer: ModuleType, got: list, want: list) -> dict:
    """Compare one step's results with numpy's; opgraph must also keep the workload's dtype."""
    import numpy as np

    arrays = [np.asarray(peer.to_numpy(v)) for v in got]
    loose = workload == "mlp32"
    rtol, atol = (2e-3, 1e-4) if loose else (1e-6, 1e-9)
    close = len(arrays) == len(want) and all(
        np.allclose(a, w, rtol=rtol, atol=atol) for a, w in zip(arrays, want, strict=False)
    )
    dtypes = sorted({str(a.dtype) for a in arrays})
    expected = "float32" if workload == "mlp32" else "float64"
    if peer.NAME in REQUIRED_PEERS:
        if not close:
            raise AssertionError(f"{peer.NAME} {workload}: results differ from numpy's")
        if dtypes != [expected]:
            raise AssertionError(f"{peer.NAME} {workload}: dtype {dtypes}, expected {expected}")
    return {"matches_numpy": close, "dtypes": dtypes, "dtype_preserved": dtypes == [expected]}


def run_workloads(peers: dict[str, ModuleType], only: list[str], quick: bool) -> dict[str, Any]:
    """Check each peer's step against numpy's once, then time all peers' steps interleaved."""
    import numpy as np
    import problems

    repeats, batch = (5, 0.02) if quick else (15, 0.05)
    steps = {name: problems.steps(peer) for name, peer in peers.items()}
    kernels = {name: problems.kernel_steps(peer) for name, peer in peers.items()}
    medians: dict[str, dict[str, float]] = {}
    checks: dict[str, dict[str, dict]] = {}
    for workload in only:
        first = {name: steps[name][workload]() for name in peers}  # from the same start
        reference = [np.asarray(v) for v in first["numpy"]]
        checks[workload] = {
            name: check_against_floor(workload, peer, first[name], reference)
            for name, peer in peers.items()
        }
        floors = {
            report.kernels_of(name): k[workload] for name, k in kernels.items() if workload in k
        }
        medians[workload] = timing.interleaved_medians(
            {**{name: steps[name][workload] for name in peers}, **floors},
            repeats=repeats,
            min_batch_seconds=batch,
        )
        print(
            f"  {workload:7}"
            + "".join(f"  {name} {report.fmt_seconds(t)}" for name, t in medians[workload].items()),
            flush=True,
        )
    return {"medians": medians, "checks": checks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    parser.add_argument("--json", metavar="FILE", help="write the full record as JSON")
    parser.add_argument("--only", help="comma-separated workloads (default: all)")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--no-startup", action="store_true", help="skip the subprocess timings")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory checks")
    args = parser.parse_args(argv)

    timing.use_one_thread()  # before numpy, torch or opgraph is imported
    import problems

    limiter = _limit_blas_threads()
    only = args.only.split(",") if args.only else list(problems.WORKLOADS)
    if unknown := set(only) - set(problems.WORKLOADS):
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {list(problems.WORKLOADS)}")
    names = [p for p in args.peers.split(",") if p]
    if unknown := set(names) - set(PEERS):
        parser.error(f"unknown peers {sorted(unknown)}; choose from {list(PEERS)}")
    peers, skipped = load_peers(sorted(set(names) | set(REQUIRED_PEERS), key=PEERS.index))
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}", file=sys.stderr)

    print("timing workloads (median per call):", flush=True)
    record: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "blas": limiter,
        "versions": {name: peer.VERSION for name, peer in peers.items()},
        "notes": {n: p.describe() for n, p in peers.items() if hasattr(p, "describe")},
        "skipped": skipped,
        "workloads": {w: problems.WORKLOADS[w] for w in only},
        **run_workloads(peers, only, args.quick),
    }
    if not args.no_startup:
        import startup

        print("timing processes ...", flush=True)
        record["startup"] = startup.measure(runs=3 if args.quick else 7, check_runs=1)
    if not args.no_memory:
        import memory

        print("measuring memory ...", flush=True)
        record["memory"] = memory.measure(args.quick)
    record["ratios"] = report.ratios(record["medians"])
    record["targets"] = report.targets(record["medians"], record.get("startup"))
    record["trace_targets"] = trace_report.targets(record["medians"])
    print()
    print(report.render(record))
    print("\n" + trace_report.render(record))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


def _limit_blas_threads() -> list[dict[str, Any]]:
    """Pin every loaded BLAS to one thread (threadpoolctl, when installed) and report them."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return [{"note": "threadpoolctl not installed; thread counts from environment only"}]
    import numpy  # noqa: F401 - load its BLAS so that the limit applies to it

    threadpool_limits(1)
    return [
        {k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
        for info in threadpool_info()
    ]


if __name__ == "__main__":
    sys.exit(main())
