"""opgraph: list the ops the installed plugins provide, show the plugins, and check every op
against its declaration (conformance). Exit codes: 0 ok, 1 check failures, 2 usage or config
error, 3 plugin error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opgraph.op import Op
    from opgraph.plugins import PluginRecord

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PLUGIN = 0, 1, 2, 3
"""0 ok; 1 a check failed; 2 usage or config error (`ConfigError`); 3 plugin error
(`PluginError`: a conflict, a missing requirement, or a broken plugin in strict mode)."""


def describe(op: Op) -> dict:
    """One op as a JSON-ready dict: name, signature, provenance."""
    spec, prov = op.spec, op.provenance
    return {
        "name": op.name,
        "inputs": list(spec.inputs),
        "attrs": {a.name: (None if a.required else repr(a.default)) for a in spec.attrs},
        "plugin": prov.plugin,
        "distribution": prov.distribution,
        "version": prov.version,
        "kind": spec.kind,
        "requires": list(spec.requires),
    }


def _signature(row: dict) -> str:
    attrs = [k if v is None else f"{k}={v}" for k, v in row["attrs"].items()]
    return f"{row['name']}({', '.join(row['inputs'] + attrs)})"


def _opset_and_records(args: argparse.Namespace) -> tuple:
    """The op set of ``--config`` (or the default one) and the plugin records behind it."""
    from opgraph import registry
    from opgraph.config import load_config

    if args.config:
        config = load_config(args.config)
        return config.build_opset(), registry.load_records(config.selection())
    return registry.default_opset(), registry.plugin_records()


def cmd_list(args: argparse.Namespace) -> int:
    opset, records = _opset_and_records(args)
    rows = [describe(op) for op in opset]
    broken = [r for r in records if r.broken]
    if args.json:
        json.dump({"ops": rows, "broken_plugins": [r.name for r in broken]}, sys.stdout, indent=2)
        print()
        return EXIT_OK
    width = max((len(_signature(r)) for r in rows), default=0)
    for r in rows:
        print(f"{_signature(r):<{width}}  {r['plugin']} ({r['distribution']} {r['version']})")
    print(f"{len(rows)} ops", file=sys.stderr)
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
    from opgraph import registry

    config = registry.config_for(args.config)
    selection = config.selection()
    records = registry.load_records(selection)
    rows = [plugin_row(r) for r in records]
    if args.json:
        json.dump({"plugins": rows, "strict": selection.strict}, sys.stdout, indent=2)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opgraph", description=__doc__)
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
    _add_plugin_flags(parser, default=False)
    for subparser in sub.choices.values():
        _add_plugin_flags(subparser, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from opgraph.errors import ConfigError, PluginError

    args = build_parser().parse_args(argv)
    _apply_plugin_flags(args)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"opgraph: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PluginError as exc:
        print(f"opgraph: error: {exc}", file=sys.stderr)
        return EXIT_PLUGIN
    except BrokenPipeError:  # `opgraph list | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
