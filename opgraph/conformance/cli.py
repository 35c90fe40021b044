"""``opgraph check``: run the conformance harness on an op set and report.

Exit codes: 0 nothing failed, 1 a check failed (fail, error or xpass), 2 usage or config error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from opgraph.conformance.selection import select_contested, select_ops
from opgraph.conformance.settings import CHECKS, settings_for
from opgraph.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigError


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
    p.add_argument("--json", metavar="FILE", help="write the JSON report to FILE")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
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
    p.set_defaults(func=cmd_check)


def _replay_options(args: argparse.Namespace) -> list[str]:
    extra = ["--config", args.config] if args.config else []
    return [*extra, "--full-jacobian"] if args.full_jacobian else extra


def _progress(op: Any, i: int, n: int) -> None:
    print(f"[{i + 1}/{n}] {op.name} ({op.provenance.plugin})", file=sys.stderr, flush=True)


def cmd_check(args: argparse.Namespace) -> int:
    from opgraph import opsets
    from opgraph.conformance import report
    from opgraph.conformance.runner import run

    try:
        config = opsets.config_for(args.config)
        opset = opsets.build(config)
        ops = select_ops(opset, args.op, args.plugin)
        contested = select_contested(opset, args.op, args.plugin)
        settings = settings_for(config, (op.name for op in opset))
    except ConfigError as exc:
        print(f"opgraph check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.full_jacobian:
        overrides["full_jacobian"] = True
    if args.check:
        overrides["checks"] = tuple(args.check)
    settings = dataclasses.replace(settings, **overrides)
    result = run(ops, settings, sample=args.sample, progress=_progress, contested=contested)
    if args.sample is not None and not result.results:
        print(
            f"opgraph check: error: --sample {args.sample}: no selected op has that sample "
            "(take the number from a report's replay command)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    extra = _replay_options(args)
    print(report.text(result, extra))
    for path, render in (
        (args.json or config.json, report.to_json),
        (args.junit or config.junit, report.to_junit),
    ):
        if path:
            Path(path).write_text(render(result, extra) + "\n")
            print(f"wrote {path}", file=sys.stderr)
    return EXIT_FAILED if result.failed else EXIT_OK
