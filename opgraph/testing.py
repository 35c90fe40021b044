"""The conformance checks as pytest tests, for the CI of opgraph and of any op package.

One test per op and check, looping over the op's samples; two ways in:

- ``pytest -p opgraph.testing`` (or ``pytest_plugins = ["opgraph.testing"]``) adds one
  collector per op with one test per check, ``conformance[sin]::grad_value``, for the op set
  selected with ``--opgraph-config FILE``, ``--opgraph-op NAME``, ``--opgraph-plugin NAME``,
  ``--opgraph-module PATH`` (repeatable) and ``--opgraph-seed N``;
- in a test module of an op package, one line::

      test_conformance = conformance_suite(plugins=("conv",))

  gives ``test_conformance[sin-grad_value]`` and so on.

Collection builds the op set but generates no sample: the IDs come from the op and check
names alone, so they are stable whatever the samples are, and collecting on every pytest-xdist
worker is cheap. An op's checks all run on its first test (expected failures are judged over
the whole op); its collector node keeps them together under ``--dist loadscope``, so each op
runs on one worker. A failing test shows every failing sample, grouped as ``opgraph check``
does, with a replay command per group.

``--opgraph-per-op`` (``conformance_suite(per_op=True)``) makes one test per op instead,
``conformance[sin]``: whole under any ``--dist`` mode, and a ninth of the tests, which matters
because pytest-xdist costs a millisecond or two per test whatever the test does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from opgraph.conformance.explore import budget
from opgraph.conformance.report import group, group_block
from opgraph.conformance.runner import (
    NOT_RUN,
    Result,
    contested_results,
    explored,
    run_op,
    selected_checks,
)
from opgraph.conformance.settings import ConformanceSettings, with_cases
from opgraph.conformance.target import resolve_target
from opgraph.errors import ConfigError

Param = tuple[str, "str | None"]
"""(op, check): one test; (op, None) with ``per_op``: every check of the op."""


class ConformanceSuite:
    """The op set and (lazily, memoised per op) the results, for one test session.

    The plugins named in ``plugins`` and the ``modules`` (checked without installing) are
    under test: their rejected declarations, dropped ops and load failures are failing tests.
    """

    def __init__(
        self,
        config: str | None = None,
        ops: Iterable[str] | None = None,
        plugins: Iterable[str] | None = None,
        seed: int | None = None,
        modules: Iterable[str] = (),
        *,
        per_op: bool = False,
        cases: Iterable[str | os.PathLike[str]] = (),
        explore: int | None = None,
    ) -> None:
        modules = list(modules)
        self.per_op = per_op
        names, plugin_names = list(ops or ()), list(plugins or ())
        target = resolve_target(config, names or None, plugin_names or None, modules)
        search = None if explore is None else budget(explore)
        dirs = (Path(d) for d in cases)
        self.settings: ConformanceSettings = with_cases(target.settings, dirs, search)
        if seed is not None:
            self.settings = dataclasses.replace(self.settings, seed=seed)
        self.extra = ["--config", str(config)] if config else []
        for module in modules:
            self.extra += ["--module", module]
        self.ops = {op.name: op for op in target.ops}
        self.rivals = target.rivals
        problems = [*target.problems, *contested_results(target.contested, self.settings)]
        self.problems: list[Param] = list(dict.fromkeys((r.op, r.check) for r in problems))
        self._results: dict[Param, list[Result]] = {}
        self._ran: set[str] = set()
        self._store(problems)
        self._tracebacks: dict[int, TracebackType | None] = {}

    def params(self) -> list[Param]:
        """(op, check) for every test, in report order: the problems of the plugins under test
        and the contested ops' errors first; (op, None) per op with ``per_op``. No sample is
        generated to list them."""
        checks = selected_checks(self.settings)
        params = [*self.problems, *((name, c) for name in self.ops for c in checks)]
        if self.per_op:
            return [(op, None) for op in dict.fromkeys(op for op, _ in params)]
        return params

    def results(self, op_name: str, check: str | None) -> list[Result]:
        """The results of one check (every check: None) of one op over all its samples; the
        op runs on first use."""
        if op_name in self.ops and op_name not in self._ran:
            self._ran.add(op_name)  # once: its checks never run twice
            rivals = self.rivals.get(op_name, ())
            results = run_op(self.ops[op_name], self.settings, rivals=rivals)
            if self.settings.explore is not None:
                results += explored(self.ops[op_name], self.settings, results, rivals)[0]
            self._store(results)
        if check is None:
            return [r for (op, _), rs in self._results.items() if op == op_name for r in rs]
        return self._results.get((op_name, check), [])

    def _store(self, results: Iterable[Result]) -> None:
        for r in results:
            self._results.setdefault((r.op, r.check), []).append(r)

    def verify(self, param: Param) -> None:
        """Turn one check's results into a pytest outcome: failed if any sample failed (every
        failure shown, grouped), else xfail if an expected failure happened, else passed if
        any sample passed (or only hinted), else skipped. An error raises the op's own
        exception, with its original traceback and the report's details as a note, so
        ``--tb`` and ``--pdb`` land in the plugin's code."""
        results = self.results(*param)
        if failed := [r for r in results if r.failed]:
            details = "\n\n".join(
                group_block(g, self.settings.seed, self.extra) for g in group(failed)
            )
            errors = (r.error for r in failed if r.status == "error" and r.error is not None)
            if (exc := next(errors, None)) is None:
                pytest.fail(details, pytrace=False)
            tb = self._tracebacks.setdefault(id(exc), exc.__traceback__)
            notes = [n for n in getattr(exc, "__notes__", []) if not n.startswith(_NOTE)]
            exc.__notes__ = [*notes, f"{_NOTE}\n{details}"]
            raise exc.with_traceback(tb)
        by_status = {r.status: r for r in reversed(results)}  # the first of each status
        if "xfail" in by_status:
            pytest.xfail(by_status["xfail"].message)
        if any(r.status not in NOT_RUN for r in results):
            return  # passed (a hint passes too)
        if "skip" in by_status:
            pytest.skip(by_status["skip"].message)
        op, check = param
        pytest.skip(f"op {op!r} has no sample that check {check or 'any'!r} applies to")


_NOTE = "opgraph conformance:"
"""Starts the note an error carries into pytest's report (replaced, not repeated, when one
exception is behind several tests)."""


def param_id(param: Param) -> str:
    return "-".join(p for p in param if p is not None)


def conformance_suite(
    plugins: Iterable[str] | None = None,
    ops: Iterable[str] | None = None,
    config: str | None = None,
    seed: int | None = None,
    module: str | Iterable[str] = (),
    *,
    per_op: bool = False,
    cases: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = (),
    explore: int | None = None,
) -> Callable[..., None]:
    """A parametrized test function checking the ops of ``plugins`` and of ``module`` (a
    plugin module that need not be installed: a ``.py`` path, a package directory or a dotted
    name; or several), or only those named in ``ops`` (which must come from them when both are
    given); every op of the config when all are empty. The plugins and modules named are under
    test: a rejected declaration or dropped op of theirs is a failing test. Each test carries
    ``xdist_group(op)``, so ``pytest -n N --dist loadgroup`` keeps an op on one worker;
    ``per_op=True`` makes one test per op (every check: ``test_conformance[sin]``), whole
    under any ``--dist`` mode and with a ninth of pytest-xdist's per-test cost. ``cases``: a
    directory of case files (or several) run as extra samples of their ops, the regression
    samples ``opgraph check --save-cases`` writes; ``explore=N`` also searches each op with
    Hypothesis, N calls per round (``opgraph check --explore``)."""
    modules = [module] if isinstance(module, str) else list(module)
    dirs = [cases] if isinstance(cases, (str, os.PathLike)) else list(cases)
    suite = ConformanceSuite(
        config, ops, plugins, seed, modules, per_op=per_op, cases=dirs, explore=explore
    )
    params = [
        pytest.param(p, id=param_id(p), marks=pytest.mark.xdist_group(p[0])) for p in suite.params()
    ]

    @pytest.mark.parametrize("conformance_case", params)
    def test_conformance(conformance_case: Param) -> None:
        suite.verify(conformance_case)

    return test_conformance


# --- the opt-in plugin (-p opgraph.testing) ---
OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--opgraph-config", "config", {"metavar": "FILE", "help": "op-set config to check"}),
    ("--opgraph-op", "ops", {"action": "append", "metavar": "NAME", "help": "only this op"}),
    (
        "--opgraph-plugin",
        "plugins",
        {"action": "append", "metavar": "NAME", "help": "only this plugin's ops"},
    ),
    ("--opgraph-seed", "seed", {"type": int, "metavar": "N", "help": "sample seed"}),
    (
        "--opgraph-module",
        "modules",
        {
            "action": "append",
            "default": [],
            "metavar": "PATH_OR_NAME",
            "help": "also check this plugin module that is not installed",
        },
    ),
    (
        "--opgraph-per-op",
        "per_op",
        {
            "action": "store_true",
            "help": "one test per op (every check) instead of one per op and check",
        },
    ),
    (
        "--opgraph-cases",
        "cases",
        {
            "action": "append",
            "default": [],
            "metavar": "DIR",
            "help": "also run the case files in DIR as samples of their ops",
        },
    ),
    (
        "--opgraph-explore",
        "explore",
        {
            "type": int,
            "metavar": "N",
            "help": "also search each op with Hypothesis, N calls per round "
            "(opgraph check --explore)",
        },
    ),
)
"""The plugin's options: (flag, the `ConformanceSuite` keyword it sets, ``addoption``
arguments). A new option is one entry here and one keyword of the suite."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opgraph", "opgraph conformance checks")
    for flag, _, kwargs in OPTIONS:
        group.addoption(flag, **kwargs)


def suite_from_options(config: pytest.Config) -> ConformanceSuite:
    """The suite the command line's ``--opgraph-*`` options select; a bad selection is a
    usage error (exit code 4), as for any bad pytest option."""
    try:
        return ConformanceSuite(**{key: config.getoption(flag) for flag, key, _ in OPTIONS})
    except ConfigError as exc:
        raise pytest.UsageError(f"opgraph.testing: {exc}") from None


class ConformanceItem(pytest.Item):
    """One check of one op, over all its samples."""

    def __init__(self, *, suite: ConformanceSuite, param: Param, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.param = param

    def runtest(self) -> None:
        self.suite.verify(self.param)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, self.nodeid


class ConformanceOp(pytest.Collector):
    """The tests of one op, ``conformance[sin]``: the scope ``--dist loadscope`` keeps on one
    worker, so an op's samples are generated and its checks run only once."""

    def __init__(self, *, suite: ConformanceSuite, checks: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.checks = checks

    def collect(self) -> Iterator[ConformanceItem]:
        op = self.name.removeprefix("conformance[").removesuffix("]")
        for check in self.checks:
            yield ConformanceItem.from_parent(self, name=check, suite=self.suite, param=(op, check))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the conformance items before selection (``-k``) and reporting see the list."""
    suite = suite_from_options(config)
    if suite.per_op:
        items.extend(
            ConformanceItem.from_parent(session, name=f"conformance[{p[0]}]", suite=suite, param=p)
            for p in suite.params()
        )
        return
    checks_by_op: dict[str, list[str]] = {}
    for op, check in suite.params():
        checks_by_op.setdefault(op, []).append(str(check))
    for op, checks in checks_by_op.items():
        node = ConformanceOp.from_parent(
            session, name=f"conformance[{op}]", suite=suite, checks=checks
        )
        items.extend(node.collect())
