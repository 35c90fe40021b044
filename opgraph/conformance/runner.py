"""Run the checks over an op set: one `Result` per op, check and sample, crashes included.

Expected failures from the settings turn a ``fail``/``error`` into ``xfail`` and a ``pass``
into ``xpass`` (which counts as a failure: the entry is stale and must go).
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from opgraph import engine
from opgraph.conformance.case import CaseRun, Outcome, describe_exception, skip
from opgraph.conformance.cases import decode
from opgraph.conformance.checks import REGISTRY, Check
from opgraph.conformance.guard import OpTimeout, ends_run, interrupts_watched, time_limit
from opgraph.conformance.samples import generate_bad_cases, generate_cases
from opgraph.conformance.settings import CHECKS, ConformanceSettings, ExpectedFailure
from opgraph.conformance.values import dtype_probes
from opgraph.contract import Tolerance
from opgraph.locations import Location, plugin_location, plugin_roots
from opgraph.op import Op

if TYPE_CHECKING:
    from opgraph.conformance.coverage import Coverage

STATUSES = ("pass", "fail", "skip", "error", "xfail", "xpass", "hint")
"""``hint``: nothing is wrong, but the op could claim more (an undeclared dtype that works)."""
FAILING = frozenset({"fail", "error", "xpass"})
"""Statuses that make a run fail (exit code 1)."""
NOT_RUN = frozenset({"skip", "xfail"})
"""Statuses reports show as skipped (an expected failure is not held against the op)."""


_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})
"""The details of every result that has none (most of them): one shared, read-only mapping
instead of an empty dict per result, which a 30x op set's 870,000 results would pay 56 MB for."""


@dataclass(frozen=True, slots=True)  # slots: a large run holds a million of them
class Result:
    """One check of one op on one sample (``sample`` is None for a check with no sample)."""

    op: str
    plugin: str
    check: str
    status: str
    sample: int | None
    sample_desc: str
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: _NO_DETAILS)
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
    """Ops a ``maxfail`` stop or an interrupt left unchecked."""
    interrupted: bool = False
    """A real Ctrl-C ended the run early: the report is incomplete."""
    exploration: dict[str, dict[str, Any]] | None = None
    """Per op, what ``--explore`` searched (`opgraph.conformance.explore.Exploration`);
    None: no exploration."""
    coverage: Coverage | None = None
    """The edge classes the run exercised per op, when it was asked to record them."""

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


Samples = dict[str, list[Any]]
"""The items of each check scope (`opgraph.conformance.checks.SCOPES`) for one op: each has
``index`` and ``describe()``."""


def op_cases(op: Op, settings: ConformanceSettings) -> Samples:
    """The op's samples per scope for a run: valid samples (the grid's, then the saved cases
    of the op), bad-input samples, dtype probes; the saved cases alone with ``only_cases``."""
    saved = settings.cases.get(op.name, ())
    if settings.only_cases:
        return {"sample": [decode(d, where, i)[1] for i, (where, d) in enumerate(saved)]}
    cases = generate_cases(op.spec, settings.seed, settings.dtypes, settings.max_samples)
    bad = generate_bad_cases(op.spec, cases, settings.seed, settings.max_samples)
    probes = dtype_probes(op.spec, settings.seed, cases)
    cases += [decode(d, where, len(cases) + i)[1] for i, (where, d) in enumerate(saved)]
    return {"sample": cases, "bad_input": bad, "dtype": probes}


def plan(
    op: Op, samples: Samples, checks: Iterable[str], rivals: Sequence[Op] = ()
) -> list[tuple[str, int | None, str | None]]:
    """(check, item index or None, skip reason or None) of every result a run of ``op``
    gives, in report order: a check that does not apply to the op, or whose scope has no
    item, gives one skip without an index."""
    planned: list[tuple[str, int | None, str | None]] = []
    per_item = []
    for name in checks:
        check = REGISTRY[name]
        if check.scope not in samples:  # a replay of saved cases: no item of other scopes
            continue
        reason = check.not_applicable(op, rivals)
        if reason is None and not samples[check.scope]:
            reason = check.when_empty
        if reason is not None:
            planned.append((name, None, reason))
        else:
            per_item.append(check)
    for scope in dict.fromkeys(c.scope for c in per_item):
        for item in samples[scope]:
            planned += [(c.name, item.index, None) for c in per_item if c.scope == scope]
    return planned


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
        dict(outcome.details) if outcome.details else _NO_DETAILS,
        outcome.tolerance,
        None if error is None else plugin_location(error, plugin_roots(op.provenance.entry_point)),
        error,
    )


def apply_expectations(
    results: list[Result], settings: ConformanceSettings, narrowed: bool = False
) -> list[Result]:
    """Known failures of one op's results: each failing result an entry covers becomes xfail;
    when nothing it covers failed in a run that checked all it covers, its passes become xpass
    (the entry is stale). A ``narrowed`` run (one sample, saved cases alone, explored calls)
    or one of other checks proves nothing stale."""
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
        if narrowed or not _covers_whole_entry(entry, settings):
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


def _covers_whole_entry(entry: ExpectedFailure, settings: ConformanceSettings) -> bool:
    """Whether the run checked every check ``entry`` excuses on the grid's samples."""
    checks = selected_checks(settings)
    covered = entry.check in checks if entry.check else checks == CHECKS
    return covered and not settings.only_cases


def _outcome(op: Op, check: Check, item: Any, runs: dict[int, CaseRun]) -> Outcome:
    """One check on one item (``runs`` holds the current sample's `CaseRun`, whose shared
    work its checks reuse); the check itself crashing must never stop a run."""
    try:
        if check.scope == "sample":
            return runs[item.index].outcome(check.name)
        return check.function()(op, item)
    except BaseException as exc:  # SystemExit from plugin code too: a result, not the end
        if ends_run(exc):
            raise
        return Outcome("error", f"{check.name} crashed: {describe_exception(exc)}", error=exc)


def run_op(
    op: Op,
    settings: ConformanceSettings,
    sample: int | None = None,
    rivals: Sequence[Op] = (),
    coverage: Coverage | None = None,
) -> list[Result]:
    """Results of one op, known failures applied; ``sample`` restricts to that sample index
    (replay); ``rivals`` are other plugins' providers of the op (``differential``); each sample
    run and each result is recorded in ``coverage``. Everything runs with the op's own op set
    active, so operators and helpers the checks use are the ones that op set chose."""
    results: list[Result] = []
    where = ["setup", None]  # the check and sample being run, for a time-out's result
    try:
        with (
            engine.switched(ops=op.dispatch) if op.dispatch is not None else nullcontext(),
            time_limit(settings.timeout),
        ):
            if coverage is not None:  # probes the shape rule: inside the op's time limit
                coverage.add_op(op.spec, op.provenance.plugin)
            results.extend(_op_results(op, settings, sample, rivals, where, coverage=coverage))
    except OpTimeout as exc:
        check, index = where
        results.append(
            Result(
                op.name,
                op.provenance.plugin,
                check if check in REGISTRY else selected_checks(settings)[0],
                "error",
                index,
                "",
                f"checking {op.name} {exc} (the --timeout / conformance.timeout limit); it "
                f"was running {check} on sample {index}: the op's remaining checks did not run",
            )
        )
    results = apply_expectations(results, settings, narrowed=sample is not None)
    if coverage is not None:
        coverage.record_results(results)
    return results


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


def _op_results(
    op: Op,
    settings: ConformanceSettings,
    sample: int | None,
    rivals: Sequence[Op],
    where: list,
    *,
    coverage: Coverage | None,
) -> Iterator[Result]:
    checks = selected_checks(settings)
    try:
        samples = op_cases(op, settings)
    except BaseException as exc:
        if ends_run(exc):
            raise
        outcome = Outcome(
            "error",
            f"generating samples crashed: {describe_exception(exc)} (check the op's "
            "sample_inputs, error_inputs and Attr examples)",
            error=exc,
        )
        yield from (_result(op, c, None, "", outcome) for c in checks)
        return
    items = {scope: {item.index: item for item in found} for scope, found in samples.items()}
    runs: dict[int, CaseRun] = {}
    described: dict[tuple[str, int], str] = {}
    for name, index, reason in plan(op, samples, checks, rivals):
        if sample is not None and index != sample:
            continue
        check = REGISTRY[name]
        if reason is not None:
            yield _result(op, name, None, "", skip(reason))
            continue
        item = items[check.scope][index]
        if check.scope == "sample" and index not in runs:
            runs.clear()  # one sample's shared work at a time
            runs[index] = CaseRun(op, item, settings, rivals)
            if coverage is not None:
                coverage.record(op.spec, item, op.provenance.plugin)
        where[:] = [name, index]
        outcome = _outcome(op, check, item, runs)
        if (check.scope, index) not in described:
            described[check.scope, index] = item.describe()
        result = _result(op, name, index, described[check.scope, index], outcome)
        if getattr(item, "source", None) is not None:  # a saved case: its file replays it
            result = replace(result, replay_args=("--op", op.name, "--case", item.source))
        yield result


def explored(
    op: Op,
    settings: ConformanceSettings,
    grid: list[Result],
    rivals: Sequence[Op] = (),
    coverage: Coverage | None = None,
) -> tuple[list[Result], dict[str, Any]]:
    """``--explore`` after the grid: a result per check failing on each minimal call found
    (checks the grid already failed are not searched), and what the search did; every call
    the search evaluates, and the findings, are recorded in ``coverage``."""
    from opgraph.conformance.explore import explore_op, searchable_checks

    budget = settings.explore
    failed = {r.check for r in grid if r.failed or r.status == "xfail"}
    searchable = searchable_checks(op, selected_checks(settings), rivals)
    targets = [c for c in searchable if c not in failed]
    try:
        with (
            engine.switched(ops=op.dispatch) if op.dispatch is not None else nullcontext(),
            np.errstate(all="ignore"),  # extreme calls warn; the checks judge their results
            warnings.catch_warnings(),
            time_limit(settings.timeout),
        ):
            warnings.simplefilter("ignore", RuntimeWarning)
            on_call = None
            if coverage is not None:
                on_call = functools.partial(coverage.record, op.spec, plugin=op.provenance.plugin)
            exploration = explore_op(op, settings, budget, targets, rivals, on_call=on_call)
    except BaseException as exc:  # a plugin's examples or rule crashing mid-search, a hang
        if ends_run(exc) and not isinstance(exc, OpTimeout):
            raise
        what = (
            f"{exc} (the --timeout / conformance.timeout limit)"
            if isinstance(exc, OpTimeout)
            else f"crashed: {describe_exception(exc)} (check the op's Attr examples and shape "
            "rule: they run on every call the search draws)"
        )
        outcome = Outcome("error", f"exploring {op.name} {what}", error=exc)
        stats = {"examples": 0, "seconds": 0.0, "findings": 0, "stopped": "error"}
        check = (targets or selected_checks(settings))[0]
        return [_result(op, check, None, "exploration", outcome)], stats
    results = [
        r for finding in exploration.findings for r in _finding_results(op, finding, settings)
    ]
    if coverage is not None:
        coverage.record_results(results)
    return apply_expectations(results, settings, narrowed=True), exploration.as_dict()


def _finding_results(op: Op, finding: Any, settings: ConformanceSettings) -> list[Result]:
    from opgraph.conformance.cases import save
    from opgraph.conformance.explore import finding_data, replay_source
    from opgraph.conformance.snippet import python_snippet

    data = finding_data(op, finding, settings.seed)
    saved = settings.explore.save_to
    path = save(saved, data) if saved is not None and data is not None else None
    replay = replay_source(data, path)
    case = finding.case
    seed = CaseRun(op, case, settings).rng_seed
    snippet = python_snippet(op.spec, case, list(finding.outcomes), seed)
    about = {"case": data, "case_file": None if path is None else str(path), "snippet": snippet}
    desc = f"explored, shrunk after {finding.tried} calls: {case.describe()}"
    return [
        replace(
            _result(op, check, None, desc, outcome),
            details={**outcome.details, **about},
            replay_args=None if replay is None else ("--op", op.name, "--case", replay),
        )
        for check, outcome in finding.outcomes.items()
    ]


def rival_providers(ops: Iterable[Op], providers: Mapping[str, Sequence[Op]]) -> dict[str, list]:
    """For each op, the other plugins' providers of its name (`opgraph.registry.collect`
    keeps every provider): ``differential`` compares them with the chosen one, whichever one
    a config picks."""
    return {
        op.name: [p for p in providers.get(op.name, ()) if p.provenance != op.provenance]
        for op in ops
    }


def run(
    ops: Iterable[Op],
    settings: ConformanceSettings,
    sample: int | None = None,
    progress: Callable[[Op, int, int], None] | None = None,
    contested: Mapping[str, list[Op]] | None = None,
    *,
    maxfail: int | None = None,
    on_results: Callable[[list[Result]], None] | None = None,
    rivals: Mapping[str, Sequence[Op]] | None = None,
    coverage: Coverage | None = None,
) -> RunReport:
    """Check every op (and report every ``contested`` op as an error); ``progress(op, i, n)``
    is called before each op and ``on_results(results)`` after it. With ``maxfail``, no
    further op starts once that many results failed (the ops left are listed in
    `RunReport.unchecked`). ``rivals`` (see `rival_providers`) turns on ``differential``;
    ``coverage`` records the edge classes exercised (`RunReport.coverage`)."""
    ops = list(ops)
    start = time.perf_counter()
    results: list[Result] = contested_results(contested or {}, settings)
    samples = 0
    interrupted = False
    unchecked: list[str] = []
    exploration: dict[str, dict[str, Any]] = {}
    with interrupts_watched():
        for i, op in enumerate(ops):
            if maxfail is not None and sum(r.failed for r in results) >= maxfail:
                unchecked = [o.name for o in ops[i:]]
                break
            if progress is not None:
                progress(op, i, len(ops))
            try:
                op_rivals = (rivals or {}).get(op.name, ())
                op_results = run_op(op, settings, sample, op_rivals, coverage)
            except KeyboardInterrupt:  # a real Ctrl-C: report what there is, marked as such
                interrupted, unchecked = True, [o.name for o in ops[i:]]
                break
            samples += len(
                {(REGISTRY[r.check].scope, r.sample) for r in op_results if r.sample is not None}
            )
            if settings.explore is not None:
                try:
                    found, exploration[op.name] = explored(
                        op, settings, op_results, op_rivals, coverage
                    )
                except KeyboardInterrupt:
                    interrupted, unchecked = True, [o.name for o in ops[i + 1 :]]
                    results.extend(op_results)
                    break
                op_results = [*op_results, *found]
            results.extend(op_results)
            if on_results is not None:
                on_results(op_results)
    checked = len(ops) - len(unchecked)
    seconds = time.perf_counter() - start
    return RunReport(
        results,
        checked,
        samples,
        seconds,
        settings.seed,
        unchecked,
        interrupted=interrupted,
        exploration=exploration if settings.explore is not None else None,
        coverage=coverage,
    )
