"""opgraph: list the ops the installed plugins provide, show the plugins, check every op
against its declaration (conformance), and start a new op package.

Exit codes: 0 ok, 1 check failures, 2 usage or config error, 3 plugin error."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import numbers
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opgraph.errors import EXIT_OK, EXIT_PLUGIN, EXIT_USAGE, OpgraphWarning

if TYPE_CHECKING:
    from opgraph.op import Op
    from opgraph.plugins import PluginRecord
    from opgraph.registry import OpSet


def _plain(value: object) -> object:
    """``value`` as JSON data, or TypeError when it is not plain data."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not JSON data")


def json_value(value: object) -> object:
    """``value`` as JSON data when it is plain data (None, bools, numbers, strings, and lists,
    tuples and str-keyed dicts of those), else its repr (a dtype, a function, NaN)."""
    try:
        return _plain(value)
    except TypeError:
        return repr(value)


def describe(op: Op, aliases: Sequence[str] = ()) -> dict:
    """One op as a JSON-ready dict: name, signature (attribute defaults as JSON values, null
    for the required ones, which are also listed), provenance and its alias names."""
    spec, prov = op.spec, op.provenance
    return {
        "name": op.name,
        "inputs": list(spec.inputs),
        "attrs": {a.name: None if a.required else json_value(a.default) for a in spec.attrs},
        "required_attrs": [a.name for a in spec.attrs if a.required],
        "plugin": prov.plugin,
        "distribution": prov.distribution,
        "version": prov.version,
        "kind": spec.kind,
        "requires": list(spec.requires),
        "aliases": list(aliases),
    }


def _signature(op: Op) -> str:
    attrs = [a.name if a.required else f"{a.name}={a.default!r}" for a in op.spec.attrs]
    return f"{op.name}({', '.join([*op.spec.inputs, *attrs])})"


def aliases_of(opset: Any) -> dict[str, list[str]]:
    """Op name -> the other names the op set shows it under (``ops.aliases`` of a config)."""
    found: dict[str, list[str]] = {}
    for name in dir(opset):
        op = opset[name]
        if name != op.name:
            found.setdefault(op.name, []).append(name)
    return found


def conflict_rows(opset: OpSet) -> list[dict]:
    """Each contested op of ``opset`` as a JSON-ready dict: its name and every provider."""
    return [
        {
            "name": name,
            "providers": [
                {
                    "plugin": op.provenance.plugin,
                    "distribution": op.provenance.distribution,
                    "version": op.provenance.version,
                }
                for op in providers
            ],
        }
        for name, providers in sorted(opset.conflicts.items())
    ]


def _print_conflicts(opset: OpSet) -> None:
    for row in conflict_rows(opset):
        who = " and ".join(
            f"{p['plugin']} ({p['distribution']} {p['version']})" for p in row["providers"]
        )
        print(f"{row['name']}: contested, unavailable: provided by {who}", file=sys.stderr)
    if opset.conflicts:
        print("(choose a provider under `providers:` in an op-set config)", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from opgraph import opsets

    with contextlib.redirect_stdout(sys.stderr):  # what plugins print is not the listing
        config = opsets.config_for(args.config)
        opset = opsets.build(config)
        records = opsets.plugin_records(config)
    ops = list(opset)
    aliases = aliases_of(opset)
    rows = [describe(op, aliases.get(op.name, ())) for op in ops]
    broken = [r for r in records if r.broken]
    if args.json:
        document = {
            "ops": rows,
            "conflicts": conflict_rows(opset),
            "broken_plugins": [r.name for r in broken],
        }
        json.dump(document, sys.stdout, indent=2)
        print()
        return EXIT_OK
    width = max((len(_signature(op)) for op in ops), default=0)
    for op in ops:
        also = f"  (alias: {', '.join(aliases[op.name])})" if op.name in aliases else ""
        prov = op.provenance
        origin = f"{prov.distribution} {prov.version}" if prov.distribution else "not installed"
        print(f"{_signature(op):<{width}}  {prov.plugin} ({origin}){also}")
    print(f"{len(ops)} op{'' if len(ops) == 1 else 's'}", file=sys.stderr)
    _print_conflicts(opset)
    for record in broken:
        print(
            f"plugin {record.name!r} ({record.provenance.distribution}) is {record.status}, "
            f"its ops are missing: {record.reason} (see `opgraph plugins`)",
            file=sys.stderr,
        )
    return EXIT_OK


def plugin_row(record: PluginRecord) -> dict:
    """One plugin as a JSON-ready dict for `opgraph plugins`."""
    prov = record.provenance
    return {
        "plugin": prov.plugin,
        "distribution": prov.distribution,
        "version": prov.version,
        "entry_point": prov.entry_point,
        "status": record.status,
        "ops": len(record.specs) if record.status == "active" else None,
        "rejected": list(record.rejected),
        "reason": record.reason,
    }


def cmd_plugins(args: argparse.Namespace) -> int:
    from opgraph import opsets

    with contextlib.redirect_stdout(sys.stderr):  # what plugins print is not the table
        config = opsets.config_for(args.config)
        selection = opsets.selection(config)
        records = opsets.plugin_records(config)
        opset = opsets.build(config)
    rows = [plugin_row(r) for r in records]
    if args.json:
        document = {"plugins": rows, "conflicts": conflict_rows(opset), "strict": selection.strict}
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        header = ("plugin", "distribution", "version", "entry point", "status", "ops")
        table = [header] + [
            (
                r["plugin"],
                r["distribution"] or "-",
                r["version"] or "-",
                r["entry_point"],
                r["status"],
                "-" if r["ops"] is None else str(r["ops"]),
            )
            for r in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        for r in rows:
            for why in ([r["reason"]] if r["reason"] else []) + r["rejected"]:
                print(f"{r['plugin']}: {why}")
        if opset.conflicts:
            print("\nconflicts (these ops are unavailable until a config chooses a provider):")
            for row in conflict_rows(opset):
                who = ", ".join(f"{p['plugin']} ({p['distribution']})" for p in row["providers"])
                print(f"  {row['name']}: {who}")
    failed = any(r.broken or r.rejected for r in records)
    return EXIT_PLUGIN if selection.strict and failed else EXIT_OK


def _add_plugin_flags(parser: argparse.ArgumentParser, default: object) -> None:
    """--no-plugins and --strict-plugins, accepted before or after the subcommand."""
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        default=default,
        help="load no third-party plugin (same as OPGRAPH_LOAD_PLUGINS=)",
    )
    parser.add_argument(
        "--strict-plugins",
        action="store_true",
        default=default,
        help=f"any broken plugin is an error, exit code {EXIT_PLUGIN} "
        "(same as OPGRAPH_STRICT_PLUGINS=1)",
    )


def _apply_plugin_flags(args: argparse.Namespace) -> None:
    """The flags become environment variables, so child processes see them too."""
    import os

    if getattr(args, "no_plugins", False):
        os.environ["OPGRAPH_LOAD_PLUGINS"] = ""
    if getattr(args, "strict_plugins", False):
        os.environ["OPGRAPH_STRICT_PLUGINS"] = "1"


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from opgraph.scaffold import create_plugin

    root = create_plugin(args.name, args.dir)
    print(f"created {root}; next: cd {root} && pip install -e . && python -m pytest")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from opgraph import __version__

    parser = argparse.ArgumentParser(
        prog="opgraph", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"opgraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list every op with its provider plugin and signature")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--config", metavar="FILE", help="list the op set of this config")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("plugins", help="every plugin found: status, op count, failure reason")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--config", metavar="FILE", help="apply this config's plugin selection")
    p.set_defaults(func=cmd_plugins)
    from opgraph.conformance.cli import add_parser as add_check_parser

    add_check_parser(sub)
    p = sub.add_parser(
        "new-plugin",
        help="create a new op package: pyproject, example ops, tests, README, CI workflow",
        description="Create an installable op package NAME (distribution NAME, package and "
        "plugin named after it) with two commented example ops whose conformance tests pass "
        "right after pip install -e.",
    )
    p.add_argument("name", metavar="NAME", help="distribution name, e.g. opgraph-myops")
    p.add_argument("--dir", metavar="DIR", help="where to create it (default: ./NAME)")
    p.set_defaults(func=cmd_new_plugin)
    _add_plugin_flags(parser, default=False)
    for subparser in sub.choices.values():
        _add_plugin_flags(subparser, default=argparse.SUPPRESS)
    return parser


@contextlib.contextmanager
def opgraph_warnings_on_stderr() -> Iterator[None]:
    """opgraph's warnings as ``opgraph: warning: ...`` lines (others as Python shows them)."""
    show = warnings.showwarning

    def show_warning(message: Warning | str, category: type[Warning], *where: Any) -> None:
        if issubclass(category, OpgraphWarning):
            print(f"opgraph: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *where)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        yield


def main(argv: Sequence[str] | None = None) -> int:
    from opgraph.errors import ConfigError, PluginError, PluginWarning

    args = build_parser().parse_args(argv)
    _apply_plugin_flags(args)
    try:
        with opgraph_warnings_on_stderr():
            return args.func(args)
    except ConfigError as exc:
        print(f"opgraph: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (PluginError, PluginWarning) as exc:  # a warning made an error by a -W filter
        print(f"opgraph: error: {exc}", file=sys.stderr)
        return EXIT_PLUGIN
    except BrokenPipeError:  # `opgraph list | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
