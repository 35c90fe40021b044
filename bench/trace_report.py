"""The `opgraph.trace` rows of a run: replay against hand-written numpy, eager opgraph and
PyTorch eager, and the issue's targets for it (bench/peer_trace.py is the peer)."""

from __future__ import annotations

from typing import Any

from report import _markdown, _ratio, fmt_seconds

NUMPY_LIMIT = 1.1  # replay / numpy on the chain and the float32 MLP step
EAGER_SPEEDUP = 3.0  # eager opgraph / replay on the chain, at least
PEERS = ("numpy", "trace", "opgraph", "torch")


def targets(medians: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for workload in ("chain", "mlp32"):
        times = medians.get(workload, {})
        value = _ratio(times.get("trace"), times.get("numpy"))
        rows.append(
            _row(
                f"{workload}: replay / numpy",
                value,
                NUMPY_LIMIT,
                value is not None and value <= NUMPY_LIMIT,
            )
        )
    chain = medians.get("chain", {})
    value = _ratio(chain.get("opgraph"), chain.get("trace"))
    rows.append(
        _row(
            "chain: eager opgraph / replay",
            value,
            EAGER_SPEEDUP,
            value is not None and value >= EAGER_SPEEDUP,
            at_least=True,
        )
    )
    return rows


def _row(name: str, value: float | None, limit: float, met: bool, at_least: bool = False) -> dict:
    verdict = "not measured" if value is None else ("met" if met else "MISSED")
    return {
        "target": name,
        "value": value,
        "limit": f"{'>=' if at_least else '<='} {limit:g}",
        "verdict": verdict,
    }


def render(record: dict[str, Any]) -> str:
    medians = record["medians"]
    if not any("trace" in t for t in medians.values()):
        return ""
    peers = [p for p in PEERS if any(p in t for t in medians.values())]
    table = _markdown(
        ["opgraph.trace (median)", *peers, "replay / numpy", "eager / replay"],
        [
            [
                w,
                *(fmt_seconds(t.get(p)) for p in peers),
                _fmt(_ratio(t.get("trace"), t.get("numpy"))),
                _fmt(_ratio(t.get("opgraph"), t.get("trace"))),
            ]
            for w, t in medians.items()
        ],
    )
    verdicts = _markdown(
        ["trace target", "measured", "limit", "verdict"],
        [[t["target"], _fmt(t["value"]), t["limit"], t["verdict"]] for t in targets(medians)],
    )
    return table + "\n\n" + verdicts


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
