"""``tsforge analyze FILE``: validation report, stationarity and transforms per sensor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tsforge.cli._common import add_data_args, load_prepared, split


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="validation report, ADF/KPSS, season and STL per sensor, "
                       "with the recommended transform chain")
    add_data_args(p, target=False)
    p.add_argument("--columns", metavar="COLS", default="", help="only these sensors")
    p.add_argument("--plots", metavar="DIR", help="write one decomposition PNG per sensor here")
    p.add_argument("--json", metavar="OUT", help="write the reports as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tsforge.preprocess import analyze, plot_decomposition

    frame, report = load_prepared(args)
    print(report.summary())
    sensors = split(args.columns) or frame.sensors
    results = {}
    for name in sensors:
        rep = analyze(frame.column(name), name=name)
        results[name] = rep.to_dict()
        print()
        print(rep.summary())
        if args.plots:
            png = plot_decomposition(frame.column(name), rep, Path(args.plots) / f"{name}.png",
                                     time=frame.time, title=f"{Path(args.file).name}: {name}")
            print(f"  plot: {png}")
    if args.json:
        Path(args.json).write_text(json.dumps({"validation": report.to_dict(),
                                               "sensors": results}, indent=1))
        print(f"\nwrote {args.json}")
    return 0
