"""opgraph: list the ops the installed plugins provide, show the plugins, and check every op
against its declaration (conformance). Exit codes: 0 ok, 1 check failures, 2 usage or config
error, 3 plugin error."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opgraph.errors import EXIT_OK, EXIT_PLUGIN, EXIT_USAGE, OpgraphWarning

if TYPE_CHECKING:
    from opgraph.op import Op
    from opgraph.plugins import PluginRecord
    from opgraph.registry import OpSet


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

    config = opsets.config_for(args.config)
    opset = opsets.build(config)
    records = opsets.plugin_records(config)
    rows = [describe(op) for op in opset]
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
    width = max((len(_signature(r)) for r in rows), default=0)
    for r in rows:
        print(f"{_signature(r):<{width}}  {r['plugin']} ({r['distribution']} {r['version']})")
    print(f"{len(rows)} ops", file=sys.stderr)
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
