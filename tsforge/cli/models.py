"""``tsforge models ...``: the model registry from the command line.

Sub-commands: ``list``, ``show VERSION``, ``register --onnx FILE``, ``promote VERSION``,
``rollback [--to VERSION]``, ``diff A B``, ``events``, ``verify`` and ``recover``.  The
registry directory is ``--root``, default ``$TSFORGE_REGISTRY`` or ``./tsforge-registry``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from tsforge.cli._common import json_arg

DEFAULT_ROOT = "tsforge-registry"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="model registry: list, register, promote, rollback, ...")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        q = actions.add_parser(name, help=help_text)
        q.add_argument("--root", default=os.environ.get("TSFORGE_REGISTRY", DEFAULT_ROOT),
                       help="registry directory (default $TSFORGE_REGISTRY or "
                            f"./{DEFAULT_ROOT})")
        q.add_argument("--json", action="store_true", help="print JSON instead of text")
        q.set_defaults(func=run)
        return q

    add("list", "every version with its stage, family and metrics")
    add("show", "full metadata of one version").add_argument("version")
    q = add("register", "add an exported model as a new immutable candidate version")
    q.add_argument("--onnx", help="exported .onnx file (its .json manifest beside it)")
    q.add_argument("--weights", help=".npz written by Forecaster.save")
    q.add_argument("--name", help="version name (default v0001, v0002, ...)")
    q.add_argument("--family", help="model family (default: the model's registry name)")
    q.add_argument("--metrics", default="{}", help='JSON, e.g. \'{"mae": 0.41}\'')
    q.add_argument("--data-window", default="{}",
                   help='JSON, e.g. \'{"start": "2014-01-01", "end": "2014-02-01"}\'')
    q.add_argument("--parent", help="parent version (default: the current champion)")
    q.add_argument("--notes", default="", help="free text")
    q.add_argument("--promote", action="store_true", help="promote it to champion at once")
    add("promote", "make a version the champion (files verified first)").add_argument("version")
    q = add("rollback", "return to the previous champion (or --to VERSION)")
    q.add_argument("--to", help="version to return to (default: the previous champion)")
    q = add("diff", "metrics of two versions side by side")
    q.add_argument("a")
    q.add_argument("b")
    add("events", "the audit log of registrations, promotions and rollbacks")
    add("verify", "check every checksum; exit status 1 if anything is wrong")
    add("recover", "rebuild corrupt metadata from the previous state and verified versions")


def run(args: argparse.Namespace) -> int:
    from tsforge.registry import Registry, check_registry, layout, recover_registry

    if args.action == "verify":
        report = check_registry(args.root)
        _print(args, report.to_dict(), _report_text(report.to_dict()))
        return 0 if report.ok else 1
    if args.action == "recover":
        report = recover_registry(args.root)
        _print(args, report.to_dict(), _report_text(report.to_dict()))
        return 0
    if args.action == "list" and not Path(args.root, layout.STATE_FILE).exists() and not \
            Path(args.root, layout.VERSIONS_DIR).exists():
        _print(args, [], f"no model registry at {args.root} yet: no versions. Register one "
               "with `tsforge models register --root DIR --onnx FILE`.")
        return 0
    reg = Registry(args.root, create=args.action == "register")
    if args.action == "list":
        from tsforge.table import format_table

        rows = [v.to_dict() for v in reg.list()]
        text = format_table(["version", "stage", "family", "created", "metrics"],
                            [[r["name"], r["stage"], r["family"], r["created"],
                              json.dumps(r["metrics"])] for r in rows])
        _print(args, rows, text if rows else "(no versions)")
    elif args.action == "show":
        info = reg.show(args.version).to_dict()
        _print(args, info, json.dumps(info, indent=1))
    elif args.action == "register":
        info = reg.register(
            onnx=args.onnx, weights=args.weights, name=args.name, family=args.family,
            metrics=json_arg(args.metrics, "--metrics"),
            data_window=json_arg(args.data_window, "--data-window"),
            parent=args.parent or "champion", notes=args.notes)
        if args.promote:
            info = reg.promote(info.name, reason="registered with --promote")
        _print(args, info.to_dict(), f"registered {info.name} ({info.family}), stage "
               f"{info.stage}, checksum {info.checksum[:16]}…")
    elif args.action == "promote":
        old = reg.champion
        info = reg.promote(args.version, reason="manual (CLI)")
        _print(args, info.to_dict(), f"champion: {old} -> {info.name}")
    elif args.action == "rollback":
        old = reg.champion
        info = reg.rollback(args.to, reason="manual (CLI)")
        _print(args, info.to_dict(), f"rolled back: {old} (rejected) -> {info.name}")
    elif args.action == "diff":
        table = reg.diff(args.a, args.b)
        lines = [f"{'METRIC':<20}{args.a:>14}{args.b:>14}{'DELTA':>12}{'RATIO':>10}"]
        for key, row in table.items():
            lines.append(f"{key:<20}{_fmt(row[args.a]):>14}{_fmt(row[args.b]):>14}"
                         f"{_fmt(row.get('delta')):>12}{_fmt(row.get('ratio')):>10}")
        _print(args, table, "\n".join(lines))
    elif args.action == "events":
        rows = reg.events()
        _print(args, rows, "\n".join(
            f"gen {r.get('generation')}: {r.get('action'):<9} {r.get('version', '')} "
            f"champion={r.get('champion')} {r.get('reason', '')}" for r in rows))
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _report_text(rep: dict[str, Any]) -> str:
    lines = [f"registry {rep['root']}: {'OK' if rep['ok'] else 'PROBLEMS FOUND'}; "
             f"champion {rep['champion']}"]
    lines += [f"  problem: {p}" for p in rep["problems"]]
    lines += [f"  action: {a}" for a in rep["actions"]]
    if not rep["ok"] and not rep["actions"]:
        lines.append(f"  fix: tsforge models recover --root {rep['root']}")
    return "\n".join(lines)


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=1, default=str) if args.json else text)
