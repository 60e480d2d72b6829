"""``tsforge demo``: the whole path on the bundled NAB machine-temperature series."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run validate → analyse → fit → backtest → ONNX → runtime "
                       "on the bundled NAB machine-temperature series")
    p.add_argument("--out", default="tsforge-demo-out", help="folder for plots, model and JSON")
    p.add_argument("--quick", action="store_true", help="shorter training (for smoke tests)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tsforge.demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick)
    return 0
