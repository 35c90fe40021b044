"""The ``opgraph`` command: ``list`` (ops and providers) and the subcommands of other modules."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def describe(op) -> dict:
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


def cmd_list(args: argparse.Namespace) -> int:
    from opgraph.registry import default_opset

    rows = [describe(op) for op in default_opset()]
    if args.json:
        json.dump({"ops": rows}, sys.stdout, indent=2)
        print()
        return EXIT_OK
    width = max(len(_signature(r)) for r in rows)
    for r in rows:
        print(f"{_signature(r):<{width}}  {r['plugin']} ({r['distribution']} {r['version']})")
    print(f"{len(rows)} ops", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opgraph", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list every op with its provider plugin and signature")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `opgraph list | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
