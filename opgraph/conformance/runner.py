"""Run the checks over an op set: one `Result` per op, check and sample, crashes included.

Expected failures from the settings turn a ``fail``/``error`` into ``xfail`` and a ``pass``
into ``xpass`` (which counts as a failure: the entry is stale and must go).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from opgraph import engine
from opgraph.conformance.checks import (
    CASE_CHECKS,
    CaseRun,
    Outcome,
    check_bad_input,
    describe_exception,
    skip,
)
from opgraph.conformance.samples import BadCase, Case, generate_bad_cases, generate_cases
from opgraph.conformance.settings import CHECKS, ConformanceSettings, ExpectedFailure
from opgraph.contract import Tolerance
from opgraph.locations import Location, plugin_location, plugin_roots
from opgraph.op import Op

STATUSES = ("pass", "fail", "skip", "error", "xfail", "xpass")
FAILING = frozenset({"fail", "error", "xpass"})
"""Statuses that make a run fail (exit code 1)."""
NOT_RUN = frozenset({"skip", "xfail"})
"""Statuses reports show as skipped (an expected failure is not held against the op)."""


@dataclass(frozen=True)
class Result:
    """One check of one op on one sample (``sample`` is None for a check with no sample)."""

    op: str
    plugin: str
    check: str
    status: str
    sample: int | None
    sample_desc: str
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    tolerance: Tolerance | None = None
    location: Location | None = None
    """Where in the plugin's own code the exception behind this result was raised."""
    error: BaseException | None = field(default=None, compare=False, repr=False)
    """That exception, for full tracebacks (``--tb``), the debugger and pytest."""
    replay_args: tuple[str, ...] | None = None
    """``opgraph check`` arguments that reproduce a result no ``--op/--check/--sample`` can
    (a plugin's load or declaration problem); None: those three."""

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass
class RunReport:
    """All results of a run, with its size and duration."""

    results: list[Result]
    ops: int
    samples: int
    seconds: float
    seed: int
    unchecked: list[str] = field(default_factory=list)
    """Ops a ``maxfail`` stop left unchecked."""

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.results)

    def counts(self) -> dict[str, int]:
        totals = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            totals[r.status] += 1
        return totals


def selected_checks(settings: ConformanceSettings) -> tuple[str, ...]:
    """The checks to run, in their stable order."""
    if settings.checks is None:
        return CHECKS
    return tuple(c for c in CHECKS if c in settings.checks)


def op_cases(op: Op, settings: ConformanceSettings) -> tuple[list[Case], list[BadCase]]:
    """The op's samples and its bad-input samples for a run."""
    cases = generate_cases(op.spec, settings.seed, settings.dtypes, settings.max_samples)
    bad = generate_bad_cases(op.spec, cases, settings.seed, settings.max_samples)
    return cases, bad


def _result(op: Op, check: str, index: int | None, desc: str, outcome: Outcome) -> Result:
    error = outcome.error
    return Result(
        op.name,
        op.provenance.plugin,
        check,
        outcome.status,
        index,
        desc,
        outcome.message,
        dict(outcome.details),
        outcome.tolerance,
        None if error is None else plugin_location(error, plugin_roots(op.provenance.entry_point)),
        error,
    )


def apply_expectations(
    results: list[Result], settings: ConformanceSettings, sample: int | None = None
) -> list[Result]:
    """Known failures of one op's results: each failing result an entry covers becomes xfail;
    when nothing it covers failed in a run that checked all it covers, its passes become xpass
    (the entry is stale). A run narrowed to one sample or to other checks proves nothing stale."""
    out = list(results)
    for entry in settings.expected_failures:
        covered = [
            i for i, r in enumerate(out) if entry.covers(r.op, r.check) and r.status != "skip"
        ]
        if any(out[i].status in ("fail", "error") for i in covered):
            for i in covered:
                if out[i].status in ("fail", "error"):
                    note = f"{out[i].message} [expected failure: {entry.reason}]"
                    out[i] = replace(out[i], status="xfail", message=note)
            continue
        if not _covers_whole_entry(entry, settings, sample):
            continue
        scope = f"check {entry.check!r}" if entry.check else "every check"
        for i in covered:
            if out[i].status == "pass":
                out[i] = replace(
                    out[i],
                    status="xpass",
                    message=f"expected to fail ({entry.reason}) but passed: remove the expected "
                    f"failure of op {entry.op!r} ({scope}) from the config",
                )
    return out


def _covers_whole_entry(
    entry: ExpectedFailure, settings: ConformanceSettings, sample: int | None
) -> bool:
    """Whether the run checked every sample and check ``entry`` excuses."""
    checks = selected_checks(settings)
    return sample is None and (entry.check in checks if entry.check else checks == CHECKS)


def run_case(
    op: Op, case: Case, checks: Iterable[str], settings: ConformanceSettings
) -> list[Result]:
    """Every selected per-sample check of ``op`` on ``case``."""
    run = CaseRun(op, case, settings)
    desc = case.describe()
    return [_result(op, c, case.index, desc, run.outcome(c)) for c in checks if c in CASE_CHECKS]


def run_bad_inputs(op: Op, bad_cases: list[BadCase], settings: ConformanceSettings) -> list[Result]:
    """``bad_input`` on each bad sample, or one skip when the op has none."""
    if not bad_cases:
        outcome = skip(
            "the shape rule accepts every generated shape and no error_inputs are declared"
        )
        return [_result(op, "bad_input", None, "", outcome)]
    return [
        _result(op, "bad_input", bad.index, bad.describe(), _guarded_bad_input(op, bad))
        for bad in bad_cases
    ]


def _guarded_bad_input(op: Op, bad: BadCase) -> Outcome:
    try:
        return check_bad_input(op, bad)
    except Exception as exc:  # the check itself must never stop a run
        return Outcome("error", f"bad_input crashed: {describe_exception(exc)}", error=exc)


def run_op(op: Op, settings: ConformanceSettings, sample: int | None = None) -> list[Result]:
    """Results of one op, known failures applied; ``sample`` restricts to that sample index
    (replay). Everything runs with the op's own op set active, so operators and helpers the
    checks use are the ones that op set chose."""
    with engine.switched(ops=op.dispatch) if op.dispatch is not None else nullcontext():
        results = list(_op_results(op, settings, sample))
    return apply_expectations(results, settings, sample)


def contested_results(
    contested: Mapping[str, list[Op]], settings: ConformanceSettings
) -> list[Result]:
    """One ``error`` per selected check of each contested op, naming every provider."""
    results = []
    for name, rivals in contested.items():
        who = " and by ".join(str(op.provenance) for op in rivals)
        message = (
            f"op {name!r} is contested: it is provided by {who}, and no config chose one "
            f"(add `{name}: <plugin>` under `providers:`)"
        )
        plugins = "+".join(op.provenance.plugin for op in rivals)
        for check in selected_checks(settings):
            results.append(Result(name, plugins, check, "error", None, "", message))
    return results


def _op_results(op: Op, settings: ConformanceSettings, sample: int | None) -> Iterator[Result]:
    checks = selected_checks(settings)
    try:
        cases, bad_cases = op_cases(op, settings)
    except Exception as exc:
        outcome = Outcome(
            "error",
            f"generating samples crashed: {describe_exception(exc)} (check the op's "
            "sample_inputs, error_inputs and Attr examples)",
            error=exc,
        )
        yield from (_result(op, c, None, "", outcome) for c in checks)
        return
    for case in cases:
        if sample is None or case.index == sample:
            yield from run_case(op, case, checks, settings)
    if "bad_input" in checks:
        chosen = [b for b in bad_cases if sample is None or b.index == sample]
        if chosen or sample is None:
            yield from run_bad_inputs(op, chosen, settings)


def run(
    ops: Iterable[Op],
    settings: ConformanceSettings,
    sample: int | None = None,
    progress: Callable[[Op, int, int], None] | None = None,
    contested: Mapping[str, list[Op]] | None = None,
    *,
    maxfail: int | None = None,
    on_results: Callable[[list[Result]], None] | None = None,
) -> RunReport:
    """Check every op (and report every ``contested`` op as an error); ``progress(op, i, n)``
    is called before each op and ``on_results(results)`` after it. With ``maxfail``, no
    further op starts once that many results failed (the ops left are listed in
    `RunReport.unchecked`)."""
    ops = list(ops)
    start = time.perf_counter()
    results: list[Result] = contested_results(contested or {}, settings)
    samples = 0
    for i, op in enumerate(ops):
        if maxfail is not None and sum(r.failed for r in results) >= maxfail:
            unchecked = [o.name for o in ops[i:]]
            break
        if progress is not None:
            progress(op, i, len(ops))
        op_results = run_op(op, settings, sample)
        samples += len({(r.check == "bad_input", r.sample) for r in op_results})
        results.extend(op_results)
        if on_results is not None:
            on_results(op_results)
    else:
        unchecked = []
    checked = len(ops) - len(unchecked)
    seconds = time.perf_counter() - start
    return RunReport(results, checked, samples, seconds, settings.seed, unchecked)
