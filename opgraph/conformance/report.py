"""Render a `RunReport`: the text report people read, JSON and JUnit XML for CI tools.

The text report is a table of ops x checks that fits 80 columns (compact cells, a legend),
then one block per distinct failure (op x check x message, with the samples it hit and one
replay command), then the totals with the reason of every check that never ran. Check names
are taken from the results, so checks added later render like the others.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from xml.etree import ElementTree as ET

import numpy as np

from opgraph.conformance.coverage import Coverage
from opgraph.conformance.runner import FAILING, NOT_RUN, Result, RunReport
from opgraph.conformance.settings import CHECKS
from opgraph.locations import format_traceback

WIDTH = 80
_COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1"}
_STATUS_COLOUR = {"fail": "red", "error": "red", "xpass": "red", "skip": "yellow"}


@dataclass(frozen=True)
class Style:
    """How the text report is drawn: ANSI colour, ``-v`` detail, full tracebacks (``--tb``),
    the coverage section (``--coverage``)."""

    colour: bool = False
    verbose: bool = False
    tracebacks: bool = False
    coverage: bool = False

    def paint(self, text: str, colour: str | None) -> str:
        if not self.colour or colour is None or not text.strip():
            return text
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str, keep_newlines: bool = False) -> str:
    """Text from a plugin (sample notes, messages, exception text) as one printable line:
    control characters and newlines escaped (``\\n``), so it can neither send an escape sequence
    to the terminal nor forge a line of the report (a ``replay:`` line). ``keep_newlines``
    for text that is multi-line by nature and shown indented (``--tb`` tracebacks)."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(lambda m: repr(m[0])[1:-1], text)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 op``, ``2 ops``; ``many`` for irregular plurals."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def replay_command(result: Result, seed: int, extra: Sequence[str] = ()) -> str:
    """``opgraph check --op OP --check CHECK --sample N --seed S`` (plus the run's config and
    Jacobian options, given as ``extra``)."""
    if result.replay_args is not None:
        return shlex.join(["opgraph", "check", *result.replay_args, *extra])
    words = ["opgraph", "check", "--op", result.op, "--check", result.check]
    if result.sample is not None:
        words += ["--sample", str(result.sample)]
    words += ["--seed", str(seed), *extra]
    return shlex.join(words)


def _checks_of(results: Iterable[Result]) -> list[str]:
    """The checks present, in `CHECKS` order, then any other check in order of appearance."""
    present = dict.fromkeys(r.check for r in results)
    return [c for c in CHECKS if c in present] + [c for c in present if c not in CHECKS]


def abbreviations(checks: Sequence[str]) -> dict[str, str]:
    """Short, unique column labels: the initials of a check's words (``grad_value`` -> ``gv``),
    a one-word name's first four letters, more letters of the last word on a clash."""
    short: dict[str, str] = {}
    for check in checks:
        words = [w for w in check.split("_") if w] or [check]
        label = "".join(w[0] for w in words) if len(words) > 1 else words[0][:4]
        extra = 1
        while label in short.values() and extra < len(words[-1]):
            label = "".join(w[0] for w in words[:-1]) + words[-1][: extra + 1]
            extra += 1
        short[check] = label if label not in short.values() else check
    return short


def _counts(results: Sequence[Result]) -> tuple[int, int, int]:
    return (
        sum(r.status in ("pass", "hint") for r in results),
        sum(r.status in FAILING for r in results),
        sum(r.status in NOT_RUN for r in results),
    )


def _cell(results: Sequence[Result], verbose: bool) -> tuple[str, str | None]:
    """The cell text and its colour: ``ok`` / ``F<n>`` / ``s`` (``pass/fail/skip`` with -v)."""
    if not results:
        return "", None
    passed, failed, skipped = _counts(results)
    colour = "red" if failed else "green" if passed else "yellow"
    if verbose:
        return f"{passed}/{failed}/{skipped}", colour
    return (f"F{failed}" if failed else "ok" if passed else "s"), colour


def _by_op(results: Iterable[Result]) -> dict[str, dict[str, list[Result]]]:
    by_op: dict[str, dict[str, list[Result]]] = {}
    for r in results:
        by_op.setdefault(r.op, {}).setdefault(r.check, []).append(r)
    return by_op


def table(report: RunReport, style: Style = Style()) -> str:
    """Ops x checks; failing rows marked ``!``; a legend below. Compact cells keep it within
    80 columns (op names are shortened only when they alone would not fit); ``-v`` shows
    ``pass/fail/skip`` counts under full check names instead."""
    by_op = _by_op(report.results)
    checks = _checks_of(report.results)
    labels = {c: c for c in checks} if style.verbose else abbreviations(checks)
    cells = {
        op: {c: _cell(row.get(c, []), style.verbose) for c in checks} for op, row in by_op.items()
    }
    widths = {c: max(len(labels[c]), *(len(cells[op][c][0]) for op in cells)) for c in checks}
    room = WIDTH - 2 - sum(widths[c] + 1 for c in checks)
    name_width = max(len("op"), *(len(op) for op in by_op))
    if not style.verbose:
        name_width = max(8, min(name_width, room))
    lines = ["  " + "op".ljust(name_width) + "".join(f" {labels[c]:>{widths[c]}}" for c in checks)]
    for op, row in cells.items():
        failed = any(r.failed for rs in by_op[op].values() for r in rs)
        name = op if len(op) <= name_width else op[: name_width - 1] + "~"
        line = style.paint("! ", "red") if failed else "  "
        line += name.ljust(name_width)
        for c in checks:
            text, colour = row[c]
            line += " " + style.paint(f"{text:>{widths[c]}}", colour)
        lines.append(line.rstrip())
    lines.append(_legend(checks, labels, style.verbose))
    return "\n".join(lines)


def _legend(checks: Sequence[str], labels: dict[str, str], verbose: bool) -> str:
    cells = (
        "cells: passed/failed/skipped (failed counts error and xpass; skipped counts xfail)"
        if verbose
        else "ok all that ran passed; F<n> n failed; s never ran (see below); ! op has a failure"
    )
    names = "" if verbose else " ".join(f"{labels[c]}={c}" for c in checks) + "; "
    return textwrap.fill(names + cells, WIDTH)


# --- failure and skip blocks ---
_VARYING = re.compile(
    r"\((?:-?\d+,? ?)*\)|\[[^\]]*\]|-?\d+(?:\.\d*)?(?:e[-+]?\d+)?|\bnan\b|\binf\b"
)


def _message_key(message: str) -> str:
    """A message with its sample-specific numbers (shapes, indices, values) blanked out, so one
    defect seen on many samples is one group."""
    return _VARYING.sub("#", message)


def group(results: Iterable[Result]) -> list[list[Result]]:
    """Results by op x check x status x message (numbers blanked) x location, in run order."""
    groups: dict[tuple, list[Result]] = {}
    for r in results:
        key = (r.op, r.check, r.status, _message_key(r.message), str(r.location))
        groups.setdefault(key, []).append(r)
    return list(groups.values())


def sample_ranges(samples: Iterable[int | None]) -> str:
    """``0-3, 5, 7`` for sample indices (None: the result had no sample)."""
    numbers = sorted({s for s in samples if s is not None})
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _tolerance_text(result: Result) -> str:
    tol = result.tolerance
    if tol is None:
        return ""
    reason = f" ({tol.reason})" if tol.reason else ""
    return f"rtol={tol.rtol:g} atol={tol.atol:g}{reason}"


def _wrapped(text: str, indent: str = "  ") -> list[str]:
    """Plugin text as report lines: indented, wrapped to 80 columns (words never broken)."""
    return [
        wrapped
        for line in printable(text).splitlines() or [""]
        for wrapped in textwrap.wrap(
            line,
            WIDTH,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        or [indent]
    ]


def _detail_lines(result: Result, tracebacks: bool) -> list[str]:
    """The message, expected vs observed, errors, location, tolerance of one result."""
    lines = _wrapped(result.message)
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
    if result.location is not None:
        lines.append(f"  at {printable(str(result.location))}")
    if tracebacks and result.error is not None:
        text = printable(format_traceback(result.error), keep_newlines=True)
        lines.append(textwrap.indent(text, "    "))
    if tol := _tolerance_text(result):
        lines.append(f"  tolerance: {tol}")
    if details.get("case_file"):
        lines.append(f"  case file: {printable(str(details['case_file']))}")
    if isinstance(details.get("snippet"), str):
        lines.append("  reproduce with plain opgraph calls:")
        text = printable(details["snippet"], keep_newlines=True)
        lines.append(textwrap.indent(text.rstrip("\n"), "    "))
    return lines


def _sample_text(result: Result) -> str:
    return "no sample" if result.sample is None else f"sample {result.sample}"


def failure_details(
    result: Result, seed: int, extra: Sequence[str] = (), tracebacks: bool = False
) -> str:
    """Everything needed to understand and replay one failure (JUnit, pytest)."""
    head = (
        f"{result.status.upper()} {result.op} · {result.check} · plugin {result.plugin!r} · "
        f"{_sample_text(result)}" + (f": {result.sample_desc}" if result.sample_desc else "")
    )
    lines = [head, *_detail_lines(result, tracebacks)]
    lines.append(f"  replay: {replay_command(result, seed, extra)}")
    return "\n".join(lines)


def group_block(
    results: list[Result], seed: int, extra: Sequence[str] = (), style: Style = Style()
) -> str:
    """One failure group: what, on which samples, the first sample's details, one replay."""
    first = results[0]
    status = style.paint(first.status.upper(), _STATUS_COLOUR.get(first.status))
    lines = [f"{status} {first.op} · {first.check} · plugin {printable(first.plugin)!r}"]
    if len(results) > 1:
        on = f"on {plural(len(results), 'sample')} ({sample_ranges(r.sample for r in results)})"
        if first.sample is not None:
            on += f"; first, sample {first.sample}: {first.sample_desc}"
        lines += _wrapped(on)
    elif first.sample is not None:
        lines += _wrapped(f"on sample {first.sample}: {first.sample_desc}")
    elif first.sample_desc:  # an explored call: no sample number, its case replays it
        lines += _wrapped(f"on {first.sample_desc}")
    lines += _detail_lines(first, style.tracebacks)
    lines.append(f"  replay: {replay_command(first, seed, extra)}")
    return "\n".join(lines)


def _skip_lines(report: RunReport) -> list[str]:
    """With -v: every skip reason per op and check, with the samples it covers."""
    lines = []
    for results in group(r for r in report.results if r.status in NOT_RUN):
        first = results[0]
        samples = sample_ranges(r.sample for r in results)
        on = f" ({plural(len(results), 'sample')}: {samples})" if samples else ""
        lines += _wrapped(f"{first.status} {first.op} · {first.check}{on}: {first.message}", "")
    return lines


def never_ran(report: RunReport) -> list[str]:
    """Each check that ran on no sample of an op, by reason: ``checks never ran for ops:
    reason``, the checks that share a reason and the same ops on one line."""
    ops_by_key: dict[tuple[str, str], list[str]] = {}
    messages: dict[str, str] = {}
    for op, row in _by_op(report.results).items():
        for check, results in row.items():
            if all(r.status in NOT_RUN for r in results):
                reason = _message_key(results[0].message)
                ops_by_key.setdefault((check, reason), []).append(op)
                messages.setdefault(reason, results[0].message)
    checks_by_group: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (check, reason), ops in ops_by_key.items():
        checks_by_group.setdefault((reason, tuple(ops)), []).append(check)
    lines = []
    for (reason, ops), checks in checks_by_group.items():
        shown = ", ".join(ops[:6]) + (f" and {len(ops) - 6} more" if len(ops) > 6 else "")
        lines += _wrapped(
            f"{', '.join(checks)} never ran for {plural(len(ops), 'op')} ({shown}): "
            f"{messages[reason]}"
        )
    return lines


_STATUS_WORDS = {
    "pass": ("passed", "passed"),
    "fail": ("failed", "failed"),
    "skip": ("skipped", "skipped"),
    "error": ("error", "errors"),
    "xfail": ("xfailed", "xfailed"),
    "xpass": ("xpassed", "xpassed"),
    "hint": ("hint", "hints"),
}


def hint_lines(hints: Sequence[Result]) -> list[str]:
    """Hints (not failures), one paragraph per check: its message, then each op with what its
    hints are about (``details["about"]``)."""
    by_check: dict[str, dict[str, list[str]]] = {}
    first: dict[str, str] = {}
    for r in hints:
        first.setdefault(r.check, r.message)
        by_check.setdefault(r.check, {}).setdefault(r.op, []).append(str(r.details.get("about")))
    lines: list[str] = []
    for check, ops in by_check.items():
        listed = "; ".join(f"{op} {', '.join(about)}" for op, about in ops.items())
        lines += _wrapped(f"HINT {check} ({first[check]}): {listed}", indent="")
    return lines


def summary_line(report: RunReport, style: Style = Style()) -> str:
    """Size, duration and the non-zero status counts (they add up to the results), last in
    the text report."""
    parts = []
    for status, n in report.counts().items():
        if n:
            one, many = _STATUS_WORDS[status]
            parts.append(style.paint(f"{n} {one if n == 1 else many}", _STATUS_COLOUR.get(status)))
    size = f"{plural(report.ops, 'op')}, {plural(report.samples, 'sample')}"
    return f"{size} in {report.seconds:.2f}s: {', '.join(parts) or 'nothing run'}"


def exploration_line(exploration: Mapping[str, Mapping[str, Any]]) -> str:
    """``explored 66 ops: 1650 calls in 41.2s, 2 minimal failing calls`` and the ops the clock
    or the shape rule cut short."""
    calls = sum(e["examples"] for e in exploration.values())
    seconds = sum(e["seconds"] for e in exploration.values())
    findings = sum(e["findings"] for e in exploration.values())
    line = (
        f"explored {plural(len(exploration), 'op')}: {plural(calls, 'call')} in {seconds:.1f}s, "
        f"{plural(findings, 'minimal failing call')}"
    )
    for why, words in (("time", "out of --explore-time"), ("no call", "no valid call found")):
        if cut := [op for op, e in exploration.items() if e["stopped"] == why]:
            line += f"; {words}: {printable(', '.join(cut))}"
    return line


def text(report: RunReport, extra: Sequence[str] = (), style: Style = Style()) -> str:
    """The table, every distinct failure once, skip reasons (``-v``), then the totals."""
    parts = [table(report, style)] if report.results else []
    failures = group(r for r in report.results if r.failed)
    if failures:
        parts.append("\n\n".join(group_block(g, report.seed, extra, style) for g in failures))
    if hints := [r for r in report.results if r.status == "hint"]:
        parts.append("\n".join(hint_lines(hints)))
    if style.verbose and (skips := _skip_lines(report)):
        parts.append("\n".join(skips))
    if style.coverage and report.coverage is not None:
        parts.append("\n".join(coverage_lines(report.coverage)))
    summary = []
    if ran_never := never_ran(report):
        summary += ["checks that never ran:", *ran_never]
    if report.unchecked:
        names = ", ".join(report.unchecked[:6]) + ("..." if len(report.unchecked) > 6 else "")
        why = "interrupted (Ctrl-C)" if report.interrupted else "stopped early (--maxfail / -x)"
        summary.append(f"{why}: {plural(len(report.unchecked), 'op')} not checked: {names}")
    if report.exploration is not None:
        summary.append(exploration_line(report.exploration))
    summary.append(summary_line(report, style))
    parts.append("\n".join(summary))
    return "\n\n".join(parts)


_FULL_COVERAGE_SHOWN = 12
"""Ops at 100% named in the coverage section (the others are counted)."""


def untested(missing: Sequence[str]) -> str:
    """``size-1 x, y; layout sliced; check bad_input``: missing edge classes by family."""
    by_family: dict[str, list[str]] = {}
    for name in missing:
        family, _, detail = name.partition(":")
        by_family.setdefault(family, []).append(detail)
    return "; ".join(f"{family} {', '.join(details)}" for family, details in by_family.items())


def coverage_lines(coverage: Coverage) -> list[str]:
    """The overall percentage, then one line per op under 100% (least covered first) naming
    what it left untested, then the ops at 100%."""
    if not coverage.ops:
        return ["coverage: no op was checked"]
    total = coverage.summary()
    lines = [
        f"coverage: {total['percent']:.1f}% of {total['applicable']} edge classes exercised "
        f"over {plural(total['ops'], 'op')}"
    ]
    rows = sorted(coverage.ops.values(), key=lambda e: (e.percent, e.op))
    partial = [e for e in rows if e.missing]
    width = min(max((len(e.op) for e in partial), default=0), 24)
    for e in partial:
        head = f"{e.op:<{width}} {e.percent:5.1f}% ({e.exercised}/{len(e.classes)})"
        lines += _wrapped(f"{head} untested: {untested(e.missing)}")
    full = [e.op for e in rows if not e.missing]
    if full:
        shown = ", ".join(full[:_FULL_COVERAGE_SHOWN])
        more = (
            f" and {len(full) - _FULL_COVERAGE_SHOWN} more"
            if len(full) > _FULL_COVERAGE_SHOWN
            else ""
        )
        lines += _wrapped(f"{plural(len(full), 'op')} at 100%: {shown}{more}")
    return lines


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
        "location": None if result.location is None else result.location.as_dict(),
        "traceback": None if result.error is None else format_traceback(result.error),
        "replay": replay_command(result, seed, extra),
    }


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: a non-finite float becomes the string ``"nan"``,
    ``"inf"`` or ``"-inf"`` (JSON has no NaN), a numpy scalar its Python value, a tuple a list,
    any other object its ``str()`` (details come from plugins and may hold anything)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return str(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def write_json(report: RunReport, out: IO[str], extra: Sequence[str] = ()) -> None:
    """The JSON report documented in docs/conformance.md (``summary``, ``results``,
    ``coverage``), written to ``out`` one compact result (one op's coverage) per line as it is
    encoded: memory stays flat however many results a run has."""
    summary = {
        "ops": report.ops,
        "samples": report.samples,
        "results": len(report.results),
        "seed": report.seed,
        "seconds": round(report.seconds, 3),
        "failed": report.failed,
        **report.counts(),
        "unchecked": list(report.unchecked),
        "incomplete": report.interrupted,
    }
    if report.exploration is not None:
        summary["exploration"] = report.exploration
    out.write(f'{{"summary":{_ENCODER.encode(json_safe(summary))},\n"results":[')
    separator = "\n"
    for result in report.results:
        out.write(separator + _ENCODER.encode(json_safe(result_dict(result, report.seed, extra))))
        separator = ",\n"
    out.write("\n],\n")
    _write_coverage(report.coverage, out)
    out.write("}\n")


def _write_coverage(coverage: Coverage | None, out: IO[str]) -> None:
    """``"coverage": null``, or its totals and ``matrix``, one op per line."""
    if coverage is None:
        out.write('"coverage":null\n')
        return
    totals = _ENCODER.encode(json_safe(coverage.summary()))
    out.write(f'"coverage":{totals[:-1]},"matrix":{{')
    separator = "\n"
    for op, entry in coverage.ops.items():
        row = _ENCODER.encode(json_safe(entry.as_dict()))
        out.write(f"{separator}{_ENCODER.encode(op)}:{row}")
        separator = ",\n"
    out.write("\n}}\n")


def write_junit(report: RunReport, out: IO[str], extra: Sequence[str] = ()) -> None:
    """JUnit XML: one test suite per op, one test case per check and sample; an error's body
    holds its full traceback. Written op by op, like `write_json`."""
    out.write("<?xml version='1.0' encoding='utf-8'?>\n")
    root = ET.tostring(
        ET.Element("testsuites", name="opgraph conformance", time=f"{report.seconds:.3f}"),
        encoding="unicode",
    )
    out.write(root.removesuffix(" />") + ">")
    by_op: dict[str, list[Result]] = {}
    for r in report.results:
        by_op.setdefault(r.op, []).append(r)
    for op, results in by_op.items():
        suite = ET.Element(
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
                    r, report.seed, extra, tracebacks=True
                )
            elif r.status in NOT_RUN:
                ET.SubElement(case, "skipped", message=r.message)
        out.write(xml_safe(ET.tostring(suite, encoding="unicode")))
    out.write("</testsuites>\n")


_XML_INVALID = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(markup: str) -> str:
    """Serialised XML with every character XML 1.0 forbids (control characters, lone
    surrogates, U+FFFE/U+FFFF: plugin text may hold any) shown as an escape, so the document
    stays well-formed. Markup itself is printable ASCII: only text and attribute values
    change."""
    return _XML_INVALID.sub(lambda m: repr(m[0])[1:-1], markup)
