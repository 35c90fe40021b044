"""What a conformance run checks, and which failures are known: plain data that a config's
``conformance:`` section (`settings_for`) and the CLI fill."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opgraph.config import Config, valid_items
from opgraph.conformance.checks import CHECKS
from opgraph.contract import Tolerance

__all__ = ["CHECKS", "ConformanceSettings", "ExpectedFailure"]


@dataclass(frozen=True)
class ExpectedFailure:
    """A known failure of ``op`` (of one ``check``, or of every check when None) and why.

    A matching failure is reported as ``xfail``; a matching pass as ``xpass``, which counts as a
    failure so that a fixed op gets its entry removed from the config.
    """

    op: str
    check: str | None
    reason: str

    def covers(self, op: str, check: str) -> bool:
        """Whether this entry excuses ``check`` of ``op``."""
        return self.op == op and self.check in (None, check)


@dataclass(frozen=True)
class ConformanceSettings:
    """Knobs of one conformance run; the defaults check every op fully with seed 0."""

    seed: int = 0
    dtypes: tuple[str, ...] | None = None
    """Restrict to these dtypes (intersected with each op's declared dtypes); None: all."""
    checks: tuple[str, ...] | None = None
    """Run only these checks (names from `CHECKS`); None: every check."""
    max_samples: int | None = None
    """Cap on the number of samples per op; None: no cap."""
    full_jacobian: bool = False
    """Compare the whole Jacobian element by element instead of random projections."""
    tolerances: Mapping[str, Mapping[str, Tolerance]] = field(default_factory=dict)
    """Per-op, per-dtype tolerance overrides: op name -> dtype name -> Tolerance."""
    expected_failures: tuple[ExpectedFailure, ...] = ()
    timeout: float | None = None
    """Seconds one op's checks may take; then the op gets an ``error`` and the run goes on."""
    cases: Mapping[str, tuple[tuple[str, Mapping[str, Any]], ...]] = field(default_factory=dict)
    """Saved cases per op name, as (where, case-file data) (`opgraph.conformance.cases`):
    extra samples of the op, after the grid's."""
    only_cases: bool = False
    """Run the saved cases alone (``--case``): a replay, narrowed like ``--sample``."""
    explore: Any = None
    """An `opgraph.conformance.explore.Budget`: search each op with Hypothesis after its
    samples (``--explore``); None: the deterministic grid alone."""


def settings_for(config: Config, op_names: Iterable[str]) -> ConformanceSettings:
    """The conformance section of ``config`` as settings; its check names, and the op names of
    its tolerances and expected failures (against ``op_names``, the op set's), are validated
    here, each problem reported at its line."""
    section = config.conformance_section
    op_names = set(op_names)
    for i, check in valid_items(section.get("checks", [])):
        if check not in CHECKS:
            config.unknown(f"conformance.checks[{i}]", "check", check, CHECKS)
    tolerances = section.get("tolerances", {})
    failures = section.get("expected_failures", [])
    for op in tolerances:
        if op not in op_names:
            config.unknown(f"conformance.tolerances.{op}", "op (not in this op set)", op, op_names)
    seen: dict[tuple[str, str | None], int] = {}
    for i, entry in valid_items(failures):
        key = f"conformance.expected_failures[{i}]"
        if entry.get("check") is not None and entry["check"] not in CHECKS:
            config.unknown(f"{key}.check", "check", entry["check"], CHECKS)
        if entry["op"] not in op_names:
            config.unknown(f"{key}.op", "op (not in this op set)", entry["op"], op_names)
        ident = (entry["op"], entry.get("check"))
        if ident in seen:
            config.problem(key, f"repeats expected_failures[{seen[ident]}]")
        seen.setdefault(ident, i)
    config.raise_problems()
    dtypes = section.get("dtypes")
    checks = section.get("checks")
    return ConformanceSettings(
        seed=section.get("seed", 0),
        dtypes=None if dtypes is None else tuple(dtypes),
        checks=None if checks is None else tuple(checks),
        max_samples=section.get("max_samples"),
        full_jacobian=section.get("full_jacobian", False),
        timeout=section.get("timeout"),
        tolerances={
            op: {dtype: Tolerance(**t) for dtype, t in by_dtype.items()}
            for op, by_dtype in tolerances.items()
        },
        expected_failures=tuple(
            ExpectedFailure(op=e["op"], check=e.get("check"), reason=e["reason"])
            for _, e in valid_items(failures)
        ),
        cases=saved_cases(_case_dirs(config)),
    )


def _case_dirs(config: Config) -> list[Path]:
    """``conformance.cases``: directories, relative to the config file."""
    base = config.path.parent if config.path is not None else Path.cwd()
    return [base / d for _, d in valid_items(config.conformance_section.get("cases", []))]


def saved_cases(
    directories: Iterable[Path],
) -> dict[str, tuple[tuple[str, Mapping[str, Any]], ...]]:
    """Every case file of ``directories`` by op name, each file validated now (a bad one is
    a `opgraph.conformance.cases.CaseFileError`, a ConfigError)."""
    directories = list(directories)
    if not directories:
        return {}
    from opgraph.conformance.cases import cases_by_op  # numpy: only when there are cases

    return {op: tuple(found) for op, found in cases_by_op(directories).items()}


def with_cases(
    settings: ConformanceSettings, directories: Iterable[Path], explore: Any = None
) -> ConformanceSettings:
    """``settings`` with the case files of ``directories`` after the cases it has, and the
    search budget ``explore`` (``--cases``/``--save-cases``, ``conformance_suite(cases=...)``)."""
    cases = dict(settings.cases)
    for op, found in saved_cases(directories).items():
        cases[op] = (*cases.get(op, ()), *found)
    return replace(settings, cases=cases, explore=explore)
