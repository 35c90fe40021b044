"""``opgraph check``: run the conformance harness on an op set and report.

Exit codes: 0 nothing failed, 1 a check failed (fail, error or xpass), 2 usage or config error.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any

from opgraph.conformance.settings import CHECKS, ConformanceSettings
from opgraph.errors import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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


@dataclasses.dataclass
class _Loaded:
    """What a run needs from the config (or the fallback without a config module)."""

    opset: Any
    settings: ConformanceSettings
    json: Path | None
    junit: Path | None


def _load(config_path: str | None) -> _Loaded:
    from opgraph.config import default_config, load_config

    config = load_config(config_path) if config_path else default_config()
    return _Loaded(config.build_opset(), config.conformance, config.json, config.junit)


def _select(opset: Any, names: list[str] | None, plugins: list[str] | None) -> list:
    """The ops to check; an unknown name is a usage error with suggestions."""
    ops = list(opset)
    known = {op.name for op in ops}
    for name in names or ():
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"--op {name}: no such op in the op set{hint}")
    plugin_names = {op.provenance.plugin for op in ops}
    for plugin in plugins or ():
        if plugin not in plugin_names:
            raise ConfigError(
                f"--plugin {plugin}: no op of the op set comes from it "
                f"(plugins: {', '.join(sorted(plugin_names))})"
            )
    return [
        op
        for op in ops
        if (not names or op.name in names) and (not plugins or op.provenance.plugin in plugins)
    ]


def _replay_options(args: argparse.Namespace) -> list[str]:
    extra = ["--config", args.config] if args.config else []
    return [*extra, "--full-jacobian"] if args.full_jacobian else extra


def _progress(op: Any, i: int, n: int) -> None:
    print(f"[{i + 1}/{n}] {op.name} ({op.provenance.plugin})", file=sys.stderr, flush=True)


def cmd_check(args: argparse.Namespace) -> int:
    from opgraph.conformance import report
    from opgraph.conformance.runner import run

    try:
        loaded = _load(args.config)
        ops = _select(loaded.opset, args.op, args.plugin)
    except ConfigError as exc:
        print(f"opgraph check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = loaded.settings
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.full_jacobian:
        overrides["full_jacobian"] = True
    if args.check:
        overrides["checks"] = tuple(args.check)
    settings = dataclasses.replace(settings, **overrides)
    result = run(ops, settings, sample=args.sample, progress=_progress)
    extra = _replay_options(args)
    print(report.text(result, extra))
    for path, render in (
        (args.json or loaded.json, report.to_json),
        (args.junit or loaded.junit, report.to_junit),
    ):
        if path:
            Path(path).write_text(render(result, extra) + "\n")
            print(f"wrote {path}", file=sys.stderr)
    return EXIT_FAILED if result.failed else EXIT_OK
