"""The conformance checks as pytest tests, for the CI of opgraph and of any op package.

Two ways in, both giving test IDs ``[op-check-sample]`` (e.g. ``[sin-grad_shape-2]``):

- ``pytest -p opgraph.testing`` (or ``pytest_plugins = ["opgraph.testing"]``) adds items
  ``conformance[...]`` for the op set, selected with ``--opgraph-config FILE``,
  ``--opgraph-op NAME``, ``--opgraph-plugin NAME``, ``--opgraph-module PATH`` (repeatable) and
  ``--opgraph-seed N``;
- in a test module of an op package, one line::

      test_conformance = conformance_suite(plugins=("conv",))

Each (op, sample) runs all its checks once, on first use; every check then becomes its own
test: a failure shows the same details and replay command as ``opgraph check``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import pytest

from opgraph.conformance.report import failure_details
from opgraph.conformance.runner import (
    Result,
    Samples,
    contested_results,
    op_cases,
    plan,
    run_op,
    selected_checks,
)
from opgraph.conformance.settings import ConformanceSettings
from opgraph.conformance.target import resolve_target
from opgraph.errors import ConfigError
from opgraph.op import Op

Param = tuple[str, str, "int | None"]


class ConformanceSuite:
    """The op set, its samples and (lazily, memoised) the results, for one test session.

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
    ) -> None:
        modules = list(modules)
        names, plugin_names = list(ops or ()), list(plugins or ())
        target = resolve_target(config, names or None, plugin_names or None, modules)
        self.settings = target.settings
        if seed is not None:
            self.settings = dataclasses.replace(self.settings, seed=seed)
        self.extra = ["--config", str(config)] if config else []
        for module in modules:
            self.extra += ["--module", module]
        self.ops = {op.name: op for op in target.ops}
        self.rivals = target.rivals
        self.cases = {op.name: _cases_or_none(op, self.settings) for op in target.ops}
        problems = [*target.problems, *contested_results(target.contested, self.settings)]
        self.problems: list[Param] = [(r.op, r.check, r.sample) for r in problems]
        self._results: dict[tuple[str, str, int | None], Result] = {
            (r.op, r.check, r.sample): r for r in problems
        }
        self._tracebacks: dict[int, TracebackType | None] = {}

    def params(self) -> list[Param]:
        """(op, check, sample) for every test, in report order: the problems of the plugins
        under test and the contested ops' errors first."""
        checks = selected_checks(self.settings)
        params: list[Param] = list(self.problems)
        for name, found in self.cases.items():
            if found is None:  # generation crashed: the run reports it once per check
                params += [(name, c, None) for c in checks]
                continue
            rivals = self.rivals.get(name, ())
            params += [(name, c, i) for c, i, _ in plan(self.ops[name], found, checks, rivals)]
        return params

    def result(self, op_name: str, check: str, sample: int | None) -> Result:
        key = (op_name, check, sample)
        if key not in self._results:
            self._run(op_name)
        return self._results[key]

    def _run(self, op_name: str) -> None:
        """All results of one op at once: expected failures are judged over the whole op."""
        rivals = self.rivals.get(op_name, ())
        results = run_op(self.ops[op_name], self.settings, rivals=rivals)
        self._results.update(((r.op, r.check, r.sample), r) for r in results)

    def verify(self, param: Param) -> None:
        """Turn one result into a pytest outcome. An error raises the op's own exception, with
        its original traceback and the report's details as a note, so ``--tb`` and ``--pdb``
        land in the plugin's code."""
        result = self.result(*param)
        if result.status == "skip":
            pytest.skip(result.message)
        if result.status == "xfail":
            pytest.xfail(result.message)
        if not result.failed:
            return
        details = failure_details(result, self.settings.seed, self.extra)
        exc = result.error
        if result.status != "error" or exc is None:
            pytest.fail(details, pytrace=False)
        tb = self._tracebacks.setdefault(id(exc), exc.__traceback__)
        notes = [n for n in getattr(exc, "__notes__", []) if not n.startswith(_NOTE)]
        exc.__notes__ = [*notes, f"{_NOTE}\n{details}"]
        raise exc.with_traceback(tb)


_NOTE = "opgraph conformance:"
"""Starts the note an error carries into pytest's report (replaced, not repeated, when one
exception is behind several results)."""


def _cases_or_none(op: Op, settings: ConformanceSettings) -> Samples | None:
    """The op's samples, or None when generating them crashes: collection must go on, and the
    run reports the crash as an ``error`` of every check, like ``opgraph check``."""
    try:
        return op_cases(op, settings)
    except Exception:
        return None


def param_id(param: Param) -> str:
    op, check, sample = param
    return f"{op}-{check}" if sample is None else f"{op}-{check}-{sample}"


def conformance_suite(
    plugins: Iterable[str] | None = None,
    ops: Iterable[str] | None = None,
    config: str | None = None,
    seed: int | None = None,
    module: str | Iterable[str] = (),
) -> Callable[..., None]:
    """A parametrized test function checking the ops of ``plugins`` and of ``module`` (a
    plugin module that need not be installed: a ``.py`` path, a package directory or a dotted
    name; or several), or only those named in ``ops`` (which must come from them when both are
    given); every op of the config when all are empty. The plugins and modules named are under
    test: a rejected declaration or dropped op of theirs is a failing test."""
    modules = [module] if isinstance(module, str) else list(module)
    suite = ConformanceSuite(config, ops, plugins, seed, modules)
    params = suite.params()

    @pytest.mark.parametrize("conformance_case", params, ids=[param_id(p) for p in params])
    def test_conformance(conformance_case: Param) -> None:
        suite.verify(conformance_case)

    return test_conformance


# --- the opt-in plugin (-p opgraph.testing) ---
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opgraph", "opgraph conformance checks")
    group.addoption("--opgraph-config", metavar="FILE", help="op-set config to check")
    group.addoption("--opgraph-op", action="append", metavar="NAME", help="only this op")
    group.addoption(
        "--opgraph-plugin", action="append", metavar="NAME", help="only this plugin's ops"
    )
    group.addoption("--opgraph-seed", type=int, metavar="N", help="sample seed")
    group.addoption(
        "--opgraph-module",
        action="append",
        default=[],
        metavar="PATH_OR_NAME",
        help="also check this plugin module that is not installed",
    )


class ConformanceItem(pytest.Item):
    """One check of one op on one sample."""

    def __init__(self, *, suite: ConformanceSuite, param: Param, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.param = param

    def runtest(self) -> None:
        self.suite.verify(self.param)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, self.name


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the conformance items before selection (``-k``) and reporting see the list."""
    try:
        suite = ConformanceSuite(
            config.getoption("opgraph_config"),
            config.getoption("opgraph_op"),
            config.getoption("opgraph_plugin"),
            config.getoption("opgraph_seed"),
            config.getoption("opgraph_module"),
        )
    except ConfigError as exc:
        raise pytest.UsageError(f"opgraph.testing: {exc}") from None
    items.extend(
        ConformanceItem.from_parent(
            session, name=f"conformance[{param_id(p)}]", suite=suite, param=p
        )
        for p in suite.params()
    )
