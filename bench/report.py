"""Turn measured medians into the printed tables, the target verdicts and the JSON record."""

from __future__ import annotations

from typing import Any

PEER_ORDER = ("numpy", "opgraph", "dezero", "autograd", "mygrad", "torch", "jax")
MLP_LIMIT = 1.15  # opgraph / numpy
FROZEN_MLP_LIMIT = 1.1  # opgraph / numpy, the batch in Variable(..., requires_grad=False)
MATMUL_LIMIT = 1.05  # "parity"
OVERHEAD_LIMITS = (  # (workload, peer, limit): opgraph's overhead over the peer's
    ("sin", "dezero", 0.3),
    ("chain", "dezero", 0.5),
    ("chain", "torch", 0.8),
)
IMPORT_LIMIT = 0.020  # seconds over `import numpy`
FIRST_OPS_LIMIT = 0.060  # seconds, the first `opgraph.ops` after `import opgraph`
LIST_LIMIT = 0.5  # seconds, cold `opgraph list`
PER_OP_WORKLOADS = ("sin", "chain")  # small arrays: the time above numpy's is the engine's


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def kernels_of(peer: str) -> str:
    """The key in the medians of a workload written by hand in a peer's own kernels."""
    return f"{peer} kernels"


def overhead(times: dict[str, float], peer: str) -> float | None:
    """Time above the hand-written numpy floor: what the engine itself costs (the issue's
    definition; an engine whose kernels beat numpy's looks cheaper by that margin, which the
    ``<peer> kernels`` column shows)."""
    if peer not in times or "numpy" not in times:
        return None
    return times[peer] - times["numpy"]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def ratios(medians: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Per workload: opgraph's time over each peer's, and its overhead over each peer's."""
    table = {}
    for workload, times in medians.items():
        row: dict[str, float | None] = {}
        for peer in PEER_ORDER:
            if peer == "opgraph" or peer not in times or "opgraph" not in times:
                continue
            row[f"time vs {peer}"] = _ratio(times["opgraph"], times[peer])
            if peer != "numpy" and workload in PER_OP_WORKLOADS:
                row[f"overhead vs {peer}"] = _ratio(
                    overhead(times, "opgraph"), overhead(times, peer)
                )
        table[workload] = row
    return table


def targets(
    medians: dict[str, dict[str, float]], startup: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and met / missed / not measured."""
    rows = []

    def target(name: str, value: float | None, limit: float) -> None:
        verdict = "not measured" if value is None else ("met" if value <= limit else "MISSED")
        rows.append({"target": name, "value": value, "limit": limit, "verdict": verdict})

    for workload, peer, limit in OVERHEAD_LIMITS:
        times = medians.get(workload, {})
        target(
            f"{workload}: overhead / {peer}'s overhead",
            _ratio(overhead(times, "opgraph"), overhead(times, peer)),
            limit,
        )
    mlp_limits = (("mlp64", MLP_LIMIT), ("mlpfrozen", FROZEN_MLP_LIMIT), ("mlp32", MLP_LIMIT))
    for workload, limit in mlp_limits:
        times = medians.get(workload, {})
        target(f"{workload}: time / numpy", _ratio(times.get("opgraph"), times.get("numpy")), limit)
    times = medians.get("matmul", {})
    target("matmul: time / numpy", _ratio(times.get("opgraph"), times.get("numpy")), MATMUL_LIMIT)
    if startup:
        extra = startup["import opgraph after numpy (in process)"]
        target("import opgraph after numpy (s)", extra, IMPORT_LIMIT)
        first = startup["first opgraph.ops after import (in process)"]
        target("first opgraph.ops (s)", first, FIRST_OPS_LIMIT)
        target("cold opgraph list (s)", startup["opgraph list (cold process)"], LIST_LIMIT)
    return rows


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render(record: dict[str, Any]) -> str:
    """The Markdown tables bench/README.md and the README's Benchmarks section show."""
    medians = record["medians"]
    names = [n for p in PEER_ORDER for n in (p, kernels_of(p))]
    peers = [p for p in names if any(p in t for t in medians.values())]
    parts = [
        _markdown(
            ["workload (median)", *peers],
            [
                [record["workloads"][w], *(fmt_seconds(t.get(p)) for p in peers)]
                for w, t in medians.items()
            ],
        )
    ]
    ratio_rows = record["ratios"]
    columns = sorted({c for row in ratio_rows.values() for c in row}, key=_column_order)
    if columns:
        parts.append(
            _markdown(
                ["opgraph ratio", *columns],
                [[w, *(_fmt_ratio(row.get(c)) for c in columns)] for w, row in ratio_rows.items()],
            )
        )
    parts.append(
        _markdown(
            ["target", "measured", "limit", "verdict"],
            [
                [t["target"], _fmt_ratio(t["value"]), f"{t['limit']:g}", t["verdict"]]
                for t in record["targets"]
            ],
        )
    )
    if record.get("startup"):
        parts.append(
            _markdown(
                ["process (median wall clock)", "time"],
                [[k, fmt_seconds(v)] for k, v in record["startup"].items() if "exit" not in k],
            )
        )
    if record.get("memory"):
        loop = record["memory"]["training_loop"]
        peaks = record["memory"]["backward_peak_mb"]
        parts.append(
            f"Memory: traced {loop['before_mb']:.2f} MB before and {loop['after_mb']:.2f} MB "
            f"after {loop['steps']} more MLP steps; backward peak of a 50-op chain on "
            f"(100000,) float64: {peaks['retain_grad=False']:.1f} MB with retain_grad=False, "
            f"{peaks['retain_grad=True']:.1f} MB with retain_grad=True."
        )
    return "\n\n".join(parts)


def _column_order(column: str) -> tuple[int, int]:
    kind, _, peer = column.partition(" vs ")
    return (kind != "time", PEER_ORDER.index(peer))


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
