"""``opgraph check --explore``: after the grid, search each op's calls with Hypothesis and
shrink every failure to a minimal call, reported like a grid failure plus a case that replays
it without Hypothesis and a Python snippet.

One search per op and round: the condition is "some check not yet found failing fails on this
call", so Hypothesis's shrinker keeps a failing call while it removes ranks, elements,
layouts, constants and attribute values. The checks failing on the shrunk call are reported;
the next round searches for the checks still passing, so two defects of one op are both
found. A check the grid already failed is not searched for again (it is reported).

Determinism: a search is seeded from the run's seed, the op and the round, uses no example
database and no wall clock unless ``--explore-time`` is given, so a seed and a Hypothesis
version name the same search. The explored calls' random streams (cotangents, projections)
depend on the seed and the op only (`opgraph.conformance.strategies.EXPLORED`).
"""

from __future__ import annotations

import importlib.util
import json
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opgraph.conformance import cases as case_files
from opgraph.conformance.case import CaseRun, Outcome
from opgraph.conformance.checks import REGISTRY
from opgraph.conformance.samples import Case, generate_cases, run_dtypes
from opgraph.errors import ConfigError
from opgraph.op import Op

MAX_ROUNDS = 3
"""Searches per op: each looks for the checks the earlier ones did not find failing."""
SHRINK_SECONDS = 30.0
"""How long shrinking may go on past ``--explore-time`` once a failure is found."""


@dataclass(frozen=True)
class Budget:
    """How much to search each op: ``examples`` valid calls per round, and at most
    ``seconds`` of searching per op (None: no clock, fully deterministic)."""

    examples: int = 100
    seconds: float | None = None
    save_to: Path | None = None
    """Where minimal failing cases are written (``--save-cases``)."""


@dataclass(frozen=True)
class Finding:
    """A minimal failing call and what fails on it."""

    case: Case
    outcomes: dict[str, Outcome]
    tried: int
    """Calls evaluated before this one was reported (shrinking included)."""


@dataclass
class Exploration:
    """What the search of one op did."""

    op: str
    plugin: str
    examples: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    stopped: str = "budget"
    """``budget`` (every round ran its examples), ``time`` (--explore-time), ``no call``
    (Hypothesis found no call the shape rule accepts) or ``nothing to search``."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "findings": len(self.findings),
            "stopped": self.stopped,
        }


def budget(examples: int, seconds: float | None = None, save_to: Path | None = None) -> Budget:
    """A `Budget`, or a ConfigError saying what to install when Hypothesis is missing (before
    any op runs, not at the first search)."""
    if importlib.util.find_spec("hypothesis") is None:
        raise ConfigError(
            "exploring needs Hypothesis, which is not installed: pip install 'opgraph[explore]'"
        )
    return Budget(examples, seconds, save_to)


class _OutOfTime(BaseException):
    """Raised inside the search to end it (a BaseException: Hypothesis lets it through)."""


def _hypothesis_settings(examples: int) -> Any:
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    return settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )


def searchable_checks(op: Op, checks: Sequence[str], rivals: Sequence[Op]) -> list[str]:
    """The sample checks among ``checks`` that apply to ``op`` at all."""
    return [
        c
        for c in checks
        if REGISTRY[c].scope == "sample" and REGISTRY[c].not_applicable(op, rivals) is None
    ]


def _size(case: Case) -> tuple[int, ...]:
    """Smaller is simpler: elements, then ranks, then non-default choices."""
    elements = sum(v.size for v in case.values)
    rank = sum(v.ndim for v in case.values)
    layouts = sum(lay != "contiguous" for lay in case.layouts)
    return (elements, rank, layouts, len(case.attrs), len(case.constants), len(case.dropped))


def _failing(run: CaseRun, targets: Sequence[str]) -> dict[str, Outcome]:
    outcomes = {c: run.outcome(c) for c in targets}
    return {c: o for c, o in outcomes.items() if o.status in ("fail", "error")}


class _Search:
    """One Hypothesis search of one op for calls failing any of ``targets``."""

    def __init__(
        self,
        op: Op,
        settings: Any,
        rivals: Sequence[Op],
        deadline: float | None,
        on_call: Callable[[Case], None] | None = None,
    ):
        self.op, self.settings, self.rivals = op, settings, rivals
        self.on_call = on_call
        self.deadline = deadline
        self.tried = 0
        self.timed_out = False
        self.best: tuple[Case, dict[str, Outcome]] | None = None
        """The smallest failing call seen, for a search the clock ends while shrinking."""
        self.last: tuple[Case, dict[str, Outcome]] | None = None
        """The last failing call: the minimal one, once Hypothesis has finished."""

    def fails(self, case: Case, targets: Sequence[str]) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _OutOfTime
        self.tried += 1
        if self.on_call is not None:
            self.on_call(case)
        failing = _failing(CaseRun(self.op, case, self.settings, self.rivals), targets)
        if not failing:
            return False
        if self.best is None and self.deadline is not None:  # shrinking may outlast it
            self.deadline = time.monotonic() + SHRINK_SECONDS
        if self.best is None or _size(case) < _size(self.best[0]):
            self.best = (case, failing)
        self.last = (case, failing)
        return True

    def run(
        self, strategy: Any, targets: Sequence[str], seed: int, examples: int
    ) -> tuple[Case, dict[str, Outcome]] | None:
        """The minimal failing call and its failures (the smallest seen, if the clock ran
        out while shrinking), or None."""
        from hypothesis import find
        from hypothesis.errors import NoSuchExample, Unsatisfiable

        try:
            minimal = find(
                strategy,
                lambda case: self.fails(case, targets),
                settings=_hypothesis_settings(examples),
                random=random.Random(seed),
            )
        except (NoSuchExample, Unsatisfiable):
            return None
        except _OutOfTime:
            self.timed_out = True
            return self.best
        if self.last is not None and self.last[0] is minimal:
            return self.last
        failing = _failing(CaseRun(self.op, minimal, self.settings, self.rivals), targets)
        return (minimal, failing) if failing else self.last


def explore_op(
    op: Op,
    settings: Any,
    budget: Budget,
    targets: Sequence[str],
    rivals: Sequence[Op] = (),
    *,
    on_call: Callable[[Case], None] | None = None,
) -> Exploration:
    """Search ``op`` for calls failing any of the sample checks ``targets``; ``on_call``
    sees every call evaluated (coverage)."""
    from opgraph.conformance.strategies import calls

    start = time.monotonic()
    found = Exploration(op.name, op.provenance.plugin)
    targets = list(targets)
    dtypes = run_dtypes(op.spec, settings.dtypes)
    if not targets or not dtypes:
        found.stopped = "nothing to search"
        return found
    grid = generate_cases(op.spec, settings.seed, settings.dtypes, settings.max_samples)
    strategy = calls(op.spec, grid, dtypes)
    deadline = None if budget.seconds is None else start + budget.seconds
    for round_ in range(MAX_ROUNDS):
        search = _Search(op, settings, rivals, deadline, on_call)
        seed = zlib.crc32(f"{settings.seed}/{op.name}/explore/{round_}".encode())
        minimal = search.run(strategy, targets, seed, budget.examples)
        found.examples += search.tried
        if search.timed_out:
            found.stopped = "time"
        if minimal is None:
            if search.tried == 0 and round_ == 0 and not search.timed_out:
                found.stopped = "no call"
            break
        case, failing = minimal
        found.findings.append(Finding(case, failing, search.tried))
        targets = [c for c in targets if c not in failing]
        if not targets or search.timed_out:
            break
    found.seconds = time.monotonic() - start
    return found


def finding_data(op: Op, finding: Finding, seed: int) -> dict[str, Any] | None:
    """The finding as case-file data (None when an attribute value cannot be saved)."""
    first = next(iter(finding.outcomes.values()))
    try:
        return case_files.encode(
            finding.case,
            op.name,
            op.provenance.plugin,
            seed,
            checks=list(finding.outcomes),
            message=first.message,
            found_by=f"opgraph check --explore --seed {seed}",
        )
    except ValueError:
        return None


def replay_source(data: dict[str, Any] | None, saved: Path | None) -> str | None:
    """What ``--case`` takes to replay a finding: the saved file, else the JSON inline."""
    if saved is not None:
        return str(saved)
    return None if data is None else json.dumps(data, separators=(",", ":"))
