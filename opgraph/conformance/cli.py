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
import dataclasses
import os
import shutil
import sys
from pathlib import Path
from typing import IO, Any

from opgraph.conformance.settings import CHECKS
from opgraph.errors import EXIT_FAILED, EXIT_OK, EXIT_PLUGIN, EXIT_USAGE, ConfigError


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
    p.add_argument("--seed", type=int, help="sample seed (default: the config's, else 0)")
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
        "--maxfail", type=int, metavar="N", help="start no further op after N failed results"
    )
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop after the first failing op")
    p.set_defaults(func=cmd_check)


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


def _usage_error(message: str) -> int:
    print(f"opgraph check: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_check(args: argparse.Namespace) -> int:
    from opgraph.conformance import report
    from opgraph.conformance.runner import RunReport, run
    from opgraph.conformance.target import resolve_target

    if args.json == "-" and args.junit == "-":
        return _usage_error("--json - and --junit - cannot both write to stdout")
    if args.maxfail is not None and args.maxfail < 1:
        return _usage_error(f"--maxfail {args.maxfail}: give a number >= 1")
    try:
        target = resolve_target(args.config, args.op, args.plugin, args.module or ())
    except ConfigError as exc:
        return _usage_error(str(exc))
    settings = target.settings
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.full_jacobian:
        overrides["full_jacobian"] = True
    if args.check:
        overrides["checks"] = tuple(args.check)
    settings = dataclasses.replace(settings, **overrides)
    progress = Progress(sys.stderr)
    maxfail = 1 if args.exitfirst else args.maxfail
    result = run(
        target.ops,
        settings,
        sample=args.sample,
        progress=progress,
        contested=target.contested,
        rivals=target.rivals,
        maxfail=maxfail,
        on_results=_debugger(progress) if args.pdb else None,
    )
    progress.clear()
    if args.sample is not None and not result.results:
        return _usage_error(
            f"--sample {args.sample}: no selected op has that sample "
            "(take the number from a report's replay command)"
        )
    result = RunReport(
        [*target.problems, *result.results],
        result.ops,
        result.samples,
        result.seconds,
        result.seed,
        result.unchecked,
    )
    extra = _replay_options(args)
    to_stdout = "-" in (args.json, args.junit)
    out = sys.stderr if to_stdout else sys.stdout
    style = report.Style(colour=use_colour(out), verbose=args.verbose, tracebacks=args.tb)
    print(report.text(result, extra, style), file=out)
    for path, render in (
        (args.json or target.config.json, report.to_json),
        (args.junit or target.config.junit, report.to_junit),
    ):
        if path == "-":
            print(render(result, extra))
        elif path:
            Path(path).write_text(render(result, extra) + "\n")
            print(f"wrote {path}", file=sys.stderr)
    if target.broken:
        names = ", ".join(r.name for r in target.broken)
        print(f"opgraph check: error: plugin under test failed to load: {names}", file=sys.stderr)
        return EXIT_PLUGIN
    return EXIT_FAILED if result.failed else EXIT_OK
