"""Render a `RunReport`: the text table with failure details, JSON and JUnit XML.

Every failure carries a one-line command that replays exactly that op, check and sample.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

from opgraph.conformance.runner import FAILING, NOT_RUN, Result, RunReport
from opgraph.conformance.settings import CHECKS


def replay_command(result: Result, seed: int, extra: Sequence[str] = ()) -> str:
    """``opgraph check --op OP --check CHECK --sample N --seed S`` (plus the run's config and
    Jacobian options, given as ``extra``)."""
    words = ["opgraph", "check", "--op", result.op, "--check", result.check]
    if result.sample is not None:
        words += ["--sample", str(result.sample)]
    words += ["--seed", str(seed), *extra]
    return shlex.join(words)


def _cell(results: list[Result]) -> str:
    if not results:
        return "-"
    passed = sum(r.status == "pass" for r in results)
    failed = sum(r.status in FAILING for r in results)
    skipped = sum(r.status in NOT_RUN for r in results)
    return f"{passed}/{failed}/{skipped}"


def table(report: RunReport) -> str:
    """Ops x checks, each cell ``pass/fail/skip`` counts (fail includes error and xpass; skip
    includes xfail), failing rows marked with ``!``."""
    by_op: dict[str, dict[str, list[Result]]] = {}
    for r in report.results:
        by_op.setdefault(r.op, {}).setdefault(r.check, []).append(r)
    checks = [c for c in CHECKS if any(c in row for row in by_op.values())]
    width = max([len("op"), *(len(op) + 2 for op in by_op)])
    cells = {op: {c: _cell(row.get(c, [])) for c in checks} for op, row in by_op.items()}
    widths = {c: max(len(c), *(len(cells[op][c]) for op in cells)) for c in checks}
    lines = ["  ".join([f"{'op':<{width}}", *(f"{c:>{widths[c]}}" for c in checks)])]
    for op, row in cells.items():
        mark = "! " if any(r.failed for rs in by_op[op].values() for r in rs) else "  "
        lines.append(
            "  ".join([f"{mark + op:<{width}}", *(f"{row[c]:>{widths[c]}}" for c in checks)])
        )
    return "\n".join(lines)


def _tolerance_text(result: Result) -> str:
    tol = result.tolerance
    if tol is None:
        return ""
    reason = f" ({tol.reason})" if tol.reason else ""
    return f"rtol={tol.rtol:g} atol={tol.atol:g}{reason}"


def failure_details(result: Result, seed: int, extra: Sequence[str] = ()) -> str:
    """Everything needed to understand and replay one failure."""
    sample = "no sample" if result.sample is None else f"sample {result.sample}"
    lines = [
        f"{result.status.upper()} {result.op} · {result.check} · plugin {result.plugin!r} · "
        f"{sample}: {result.sample_desc}",
        f"  {result.message}",
    ]
    details = result.details
    if "expected" in details or "observed" in details:
        lines.append(f"  expected: {details.get('expected')}  observed: {details.get('observed')}")
    if "max_abs_err" in details:
        rel = details.get("max_rel_err")
        rel_text = "n/a" if rel is None else f"{rel:.3g}"
        where = f" at {details['where']}" if "where" in details else ""
        lines.append(f"  max abs err {details['max_abs_err']:.3g}, max rel err {rel_text}{where}")
    elif "where" in details:
        lines.append(f"  where: {details['where']}")
    if tol := _tolerance_text(result):
        lines.append(f"  tolerance: {tol}")
    lines.append(f"  replay: {replay_command(result, seed, extra)}")
    return "\n".join(lines)


def summary_line(report: RunReport) -> str:
    """Size, duration and the non-zero status counts, last in the text report."""
    counts = report.counts()
    parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return (
        f"{report.ops} ops, {report.samples} samples, {len(report.results)} results in "
        f"{report.seconds:.2f}s: {parts or 'nothing run'}"
    )


def text(report: RunReport, extra: Sequence[str] = ()) -> str:
    """The table, then every failure in detail, then the totals."""
    parts = [table(report)] if report.results else []
    failures = [r for r in report.results if r.failed]
    if failures:
        parts.append("\n\n".join(failure_details(r, report.seed, extra) for r in failures))
    parts.append(summary_line(report))
    return "\n\n".join(parts)


def result_dict(result: Result, seed: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One row of the JSON report; its keys are the documented format, read by CI tools."""
    tol = result.tolerance
    return {
        "op": result.op,
        "plugin": result.plugin,
        "check": result.check,
        "status": result.status,
        "sample": result.sample,
        "sample_description": result.sample_desc,
        "message": result.message,
        "details": dict(result.details),
        "tolerance": None
        if tol is None
        else {"rtol": tol.rtol, "atol": tol.atol, "reason": tol.reason},
        "replay": replay_command(result, seed, extra),
    }


def to_json(report: RunReport, extra: Sequence[str] = ()) -> str:
    """The JSON report documented in the README (``summary`` + ``results``)."""
    payload = {
        "summary": {
            "ops": report.ops,
            "samples": report.samples,
            "results": len(report.results),
            "seed": report.seed,
            "seconds": round(report.seconds, 3),
            "failed": report.failed,
            **report.counts(),
        },
        "results": [result_dict(r, report.seed, extra) for r in report.results],
    }
    return json.dumps(payload, indent=2, default=str)


def to_junit(report: RunReport, extra: Sequence[str] = ()) -> str:
    """JUnit XML: one test suite per op, one test case per check and sample."""
    suites = ET.Element("testsuites", name="opgraph conformance", time=f"{report.seconds:.3f}")
    by_op: dict[str, list[Result]] = {}
    for r in report.results:
        by_op.setdefault(r.op, []).append(r)
    for op, results in by_op.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=op,
            tests=str(len(results)),
            failures=str(sum(r.failed and r.status != "error" for r in results)),
            errors=str(sum(r.status == "error" for r in results)),
            skipped=str(sum(r.status in NOT_RUN for r in results)),
        )
        for r in results:
            name = r.check if r.sample is None else f"{r.check}[{r.sample}]"
            case = ET.SubElement(suite, "testcase", classname=f"conformance.{op}", name=name)
            if r.failed:
                tag = "error" if r.status == "error" else "failure"
                ET.SubElement(case, tag, message=r.message).text = failure_details(
                    r, report.seed, extra
                )
            elif r.status in NOT_RUN:
                ET.SubElement(case, "skipped", message=r.message)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
