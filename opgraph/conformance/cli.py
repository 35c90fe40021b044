"""opgraph check: run the conformance harness on an op set and report.

Every op of the op set (or those --op, --plugin and --module select) is checked from its
declaration alone. A plugin named by --plugin or --module is under test and strict: each of
its declarations that was rejected, and each of its ops that had to be dropped, is an error.

Exit codes:
  0  nothing failed
  1  a check failed (fail, error or xpass)
  2  usage or config error (unknown op, plugin or check, invalid config, a --sample no op has)
  3  plugin error: a plugin under test failed to load, plugins conflict, or a broken plugin
     in strict mode
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from opgraph.conformance.settings import CHECKS
from opgraph.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PLUGIN,
    EXIT_USAGE,
    ConfigError,
)


def add_parser(sub: Any) -> None:
    """Register the ``check`` subcommand on the top-level parser's subparsers."""
    p = sub.add_parser(
        "check",
        help="check every op of the op set against its declaration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="op-set config (default: every plugin)")
    p.add_argument("--op", action="append", metavar="NAME", help="only this op (repeatable)")
    p.add_argument(
        "--plugin", action="append", metavar="NAME", help="only this plugin's ops (repeatable)"
    )
    p.add_argument(
        "--module",
        action="append",
        metavar="PATH_OR_NAME",
        help="also load this plugin module that is not installed (a .py file, a package "
        "directory or a dotted name) and check its ops (repeatable)",
    )
    p.add_argument("--json", metavar="FILE", help="write the JSON report to FILE (- for stdout)")
    p.add_argument(
        "--junit", metavar="FILE", help="write a JUnit XML report to FILE (- for stdout)"
    )
    p.add_argument(
        "--seed", type=_seed, help="sample seed, an integer >= 0 (default: the config's, else 0)"
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="time limit of one op's checks; an op over it gets an error and the run goes on",
    )
    p.add_argument(
        "--full-jacobian",
        action="store_true",
        help="compare gradients element by element instead of by random projections",
    )
    p.add_argument(
        "--check", action="append", choices=CHECKS, metavar="NAME", help="only this check"
    )
    p.add_argument("--sample", type=int, metavar="N", help="only sample N of each op (replay)")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="counts per cell, and every skip reason"
    )
    p.add_argument("--tb", action="store_true", help="print the full traceback of each error")
    p.add_argument("--pdb", action="store_true", help="enter the debugger at the first error")
    p.add_argument(
        "--maxfail", type=_count, metavar="N", help="start no further op after N failed results"
    )
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop after the first failing op")
    _add_case_arguments(p)
    p.add_argument(
        "--coverage",
        action="store_true",
        help="print which edge classes (0-d, broadcast, layouts, dtypes, constants, attribute "
        "values, checks ...) each op's samples left untested; the JSON report always has them",
    )
    p.set_defaults(func=cmd_check)


def _add_case_arguments(p: argparse.ArgumentParser) -> None:
    """--explore and the case files (docs/conformance.md, "Exploration")."""
    p.add_argument(
        "--explore",
        action="store_true",
        help="after the samples, search each op with Hypothesis (pip install 'opgraph[explore]')"
        " and shrink every failure to a minimal call",
    )
    p.add_argument(
        "--explore-examples",
        type=_count,
        metavar="N",
        help=f"valid calls per op and search round (default {DEFAULT_EXAMPLES}; implies --explore)",
    )
    p.add_argument(
        "--explore-time",
        type=_seconds,
        metavar="SECONDS",
        help="at most this long searching each op (implies --explore)",
    )
    p.add_argument(
        "--save-cases",
        metavar="DIR",
        help="write each minimal failing call found to DIR as a case file; DIR's cases run too",
    )
    p.add_argument(
        "--cases",
        action="append",
        metavar="DIR",
        help="also run the case files in DIR as samples of their ops (repeatable)",
    )
    p.add_argument(
        "--case",
        action="append",
        metavar="FILE_OR_JSON",
        help="run only this case (a case file, or its JSON text) on its op (repeatable)",
    )


def use_colour(stream: IO[str], environ: Any = os.environ) -> bool:
    """Colour on a terminal; ``NO_COLOR`` (any value) turns it off, ``FORCE_COLOR`` on."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR", "0").strip().lower() not in ("", "0", "false", "no"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``[12/62] sin (builtin)`` on stderr: one line rewritten in place on a terminal, one
    line per op otherwise (a CI log)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.inline = bool(isatty and isatty())

    def __call__(self, op: Any, i: int, n: int) -> None:
        line = f"[{i + 1}/{n}] {op.name} ({op.provenance.plugin})"
        if self.inline:  # cut to the terminal's width: a wrapped line cannot be rewritten
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(f"\r\x1b[K{line[:width]}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Remove the in-place line before anything else is printed."""
        if self.inline:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _replay_options(args: argparse.Namespace) -> list[str]:
    extra = ["--config", args.config] if args.config else []
    for module in args.module or ():
        extra += ["--module", module]
    return [*extra, "--full-jacobian"] if args.full_jacobian else extra


def _debugger(progress: Progress) -> Any:
    """An ``on_results`` callback entering pdb post-mortem at the first error."""
    entered = []

    def on_results(results: list) -> None:
        if entered:
            return
        for r in results:
            if r.status == "error" and r.error is not None:
                import pdb

                progress.clear()
                print(f"opgraph check: {r.op} · {r.check}: {r.message}", file=sys.stderr)
                entered.append(r)
                pdb.post_mortem(r.error.__traceback__)
                return

    return on_results


def _bounded(convert: Any, valid: Any, need: str) -> Any:
    """An argparse ``type``: ``convert`` the text, then refuse what ``valid`` rejects, saying
    ``need``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"{text!r}: {need}")
        return value

    return parse


_seed = _bounded(int, lambda v: v >= 0, "a seed is an integer >= 0")
_count = _bounded(int, lambda v: v >= 1, "give a whole number >= 1")
_seconds = _bounded(float, lambda v: 0 < v < float("inf"), "give a number of seconds > 0")


def report_path_problem(path: str) -> str | None:
    """Why a report cannot be written at ``path`` (checked before the run, so a typo costs
    no run), or None. ``-`` is stdout."""
    return None if path == "-" else next(_path_problems(path), None)


def _path_problems(path: str) -> Iterator[str]:
    if not path.strip():
        yield "an empty path"
        return
    target = Path(path)
    parent = target.parent
    if len(os.fsencode(target.name)) > _longest_name(parent):
        yield f"the file name is longer than {_longest_name(parent)} bytes"
    elif target.is_dir():
        yield f"{path} is a directory"
    elif not parent.exists():
        yield f"the directory {parent} does not exist"
    elif not parent.is_dir():
        yield f"{parent} is not a directory"
    elif target.exists() and not os.access(target, os.W_OK):
        yield f"{path} is not writable"
    elif not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
        yield f"the directory {parent} is not writable"


def _longest_name(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def write_report(path: str, write: Any) -> None:
    """Write a report so that no reader ever sees half of one: into a temporary file beside
    it, renamed over it when complete. A special file (a device, a pipe) is written as is."""
    target = Path(path)
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8") as stream:
            write(stream)
        return
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            write(stream)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _usage_error(message: str) -> int:
    print(f"opgraph check: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _path_errors(paths: list[tuple[str, str | None]]) -> str | None:
    """The first problem of the report paths (``--json``, ``--junit`` or the config's)."""
    given = [(flag, p) for flag, p in paths if p is not None]
    for flag, path in given:
        if problem := report_path_problem(str(path)):
            return f"{flag} {path}: {problem}"
    real = [os.path.realpath(p) for _, p in given if str(p) != "-"]
    if len(set(real)) < len(real):
        return "the JSON and JUnit reports need different paths"
    if [str(p) for _, p in given].count("-") > 1:
        return "--json - and --junit - cannot both write to stdout"
    return None


def cmd_check(args: argparse.Namespace) -> int:
    from opgraph.conformance.target import resolve_target

    if problem := _path_errors([("--json", args.json), ("--junit", args.junit)]):
        return _usage_error(problem)
    try:
        replays = _replayed_cases(args)
        ops = args.op or (sorted(replays) if replays else None)
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the report, not plugins
            target = resolve_target(args.config, ops, args.plugin, args.module or ())
        target.settings = _case_settings(args, target, replays)
    except ConfigError as exc:
        return _usage_error(str(exc))
    json_path = args.json or target.config.json
    junit_path = args.junit or target.config.junit
    if problem := _path_errors([("report.json", json_path), ("report.junit", junit_path)]):
        return _usage_error(problem)
    return _check(args, target, json_path, junit_path)


DEFAULT_EXAMPLES = 100
TIMED_EXAMPLES = 10**6
"""Calls per op and round with ``--explore-time`` alone: the clock ends the search."""


def _replayed_cases(args: argparse.Namespace) -> dict[str, list[tuple[str, Any]]]:
    """``--case`` arguments by op name, each validated (a ConfigError names the problem)."""
    from opgraph.conformance.cases import decode, read

    if args.case and (args.sample is not None or _exploring(args)):
        raise ConfigError("--case replays saved cases: drop --sample and --explore")
    found: dict[str, list[tuple[str, Any]]] = {}
    for source in args.case or ():
        where, data = read(source)
        op, _ = decode(data, where, 0)
        if args.op and op not in args.op:
            raise ConfigError(f"{where}: its op {op!r} is not among --op {', '.join(args.op)}")
        found.setdefault(op, []).append((where, data))
    return found


def _exploring(args: argparse.Namespace) -> bool:
    return bool(args.explore or args.explore_examples or args.explore_time)


def _case_settings(args: argparse.Namespace, target: Any, replays: dict) -> Any:
    """The target's settings with the saved cases, the replayed ones and the search budget."""
    from opgraph.conformance.explore import budget
    from opgraph.conformance.settings import with_cases

    settings = target.settings
    if replays:
        cases = {op: tuple(found) for op, found in replays.items()}
        return dataclasses.replace(settings, cases=cases, only_cases=True)
    dirs = [Path(d) for d in args.cases or ()]
    save_to = Path(args.save_cases) if args.save_cases else None
    if save_to is not None and save_to.is_dir():
        dirs.append(save_to)  # a found bug stays found: its case runs before the search
    search = None
    if _exploring(args) or save_to is not None:
        timed = TIMED_EXAMPLES if args.explore_time else DEFAULT_EXAMPLES
        search = budget(args.explore_examples or timed, args.explore_time, save_to)
    settings = with_cases(settings, dirs, search)
    if unused := sorted(set(settings.cases) - {op.name for op in target.ops}):
        names = ", ".join(unused[:6]) + ("..." if len(unused) > 6 else "")
        print(f"opgraph check: note: saved cases of ops not checked here: {names}", file=sys.stderr)
    return settings


def _check(args: argparse.Namespace, target: Any, json_path: Any, junit_path: Any) -> int:
    from opgraph.conformance import report
    from opgraph.conformance.coverage import Coverage
    from opgraph.conformance.runner import run

    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.full_jacobian:
        overrides["full_jacobian"] = True
    if args.check:
        overrides["checks"] = tuple(args.check)
    if args.timeout is not None:
        overrides["timeout"] = args.timeout
    settings = dataclasses.replace(target.settings, **overrides)
    progress = Progress(sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):
        result = run(
            target.ops,
            settings,
            sample=args.sample,
            progress=progress,
            contested=target.contested,
            rivals=target.rivals,
            maxfail=1 if args.exitfirst else args.maxfail,
            on_results=_debugger(progress) if args.pdb else None,
            coverage=Coverage() if args.coverage or json_path is not None else None,
        )
    progress.clear()
    if args.sample is not None and not result.results and not result.interrupted:
        return _usage_error(
            f"--sample {args.sample}: no selected op has that sample "
            "(take the number from a report's replay command)"
        )
    result = dataclasses.replace(result, results=[*target.problems, *result.results])
    extra = _replay_options(args)
    to_stdout = "-" in (str(json_path), str(junit_path))
    out = sys.stderr if to_stdout else sys.stdout
    style = report.Style(
        colour=use_colour(out), verbose=args.verbose, tracebacks=args.tb, coverage=args.coverage
    )
    print(report.text(result, extra, style), file=out)
    for path, write in ((json_path, report.write_json), (junit_path, report.write_junit)):
        if path is None:
            continue
        if str(path) == "-":
            write(result, sys.stdout, extra)
            continue
        try:
            write_report(str(path), lambda stream, write=write: write(result, stream, extra))
        except OSError as exc:
            return _usage_error(f"cannot write the report {path}: {exc.strerror or exc}")
        print(f"wrote {path}", file=sys.stderr)
    if result.interrupted:
        print(
            f"opgraph check: interrupted: {len(result.unchecked)} ops not checked; the "
            "reports above are incomplete",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if target.broken:
        names = ", ".join(r.name for r in target.broken)
        print(f"opgraph check: error: plugin under test failed to load: {names}", file=sys.stderr)
        return EXIT_PLUGIN
    return EXIT_FAILED if result.failed else EXIT_OK
