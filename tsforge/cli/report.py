"""``tsforge report FILE_OR_FOLDER --out report.html``: the proof-of-concept study as one
self-contained HTML file (validation, stationarity, decompositions, picked family,
backtest with intervals, drift alarms, ONNX export and latency)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tsforge.cli._common import add_progress_arg, add_units_arg, json_arg, split, units_arg

#: ``--quick``: readings kept per file.  Quick mode cuts the data, never the training:
#: each model still trains to its early-stopping point (a model stopped while still
#: learning would make the report recommend a baseline for the wrong reason).
QUICK_LAST = 1500


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="analyse a CSV file or a folder of CSVs and write a "
                       "self-contained HTML report")
    p.add_argument("path", metavar="FILE_OR_FOLDER", help="a CSV export or a folder of them")
    p.add_argument("--out", default="report.html", help="HTML file to write (default "
                   "report.html)")
    p.add_argument("--columns", metavar="COLS", default="", help="only these sensors")
    p.add_argument("--time", dest="time_col", default="", metavar="COL",
                   help="timestamp column (auto-detected)")
    p.add_argument("--time-format", metavar="FMT", default="",
                   help="strftime format if timestamps are unusual, e.g. '%%d/%%m/%%Y %%H:%%M'")
    p.add_argument("--separator", metavar="SEP", default="",
                   help="CSV separator (sniffed from the header: , ; or tab)")
    p.add_argument("--horizon", type=int, default=12, help="steps ahead (default 12)")
    p.add_argument("--family", default="auto",
                   help="model family for every sensor, or 'auto' to let tsforge pick")
    p.add_argument("--params", default="{}", help="JSON of the family's parameters")
    p.add_argument("--train-fraction", type=float, default=0.7, help="share used for fitting")
    p.add_argument("--levels", default="0.8,0.95", help="prediction-interval levels")
    p.add_argument("--interval-method", choices=["aci", "split"], default="aci")
    p.add_argument("--last", type=int, default=0, metavar="N",
                   help="study only the last N readings of each file (0: all)")
    p.add_argument("--no-calendar", dest="calendar", action="store_false",
                   help="no hour-of-day / day-of-week covariates from the timestamps")
    p.add_argument("--quick", action="store_true",
                   help=f"a fast look: the last {QUICK_LAST} readings of each file "
                   "(models still train to convergence)")
    p.add_argument("--models-dir", metavar="DIR",
                   help="keep the exported ONNX models here (default: a temporary folder)")
    p.add_argument("--json", metavar="OUT", help="also write the study's results as JSON")
    p.add_argument("--aggregate", action="store_true",
                   help="also backtest 'auto', the online aggregation of the candidate "
                   "families, and plot its weights over time")
    add_units_arg(p)
    add_progress_arg(p)
    p.set_defaults(func=run)


def build_spec(args: argparse.Namespace) -> object:
    """The ``use = "csv"`` pipeline spec equivalent to the command line."""
    from tsforge.errors import ConfigError
    from tsforge.pipeline import parse_spec

    params = json_arg(args.params, "--params")
    try:
        levels = [float(v) for v in split(args.levels)]
    except ValueError:
        raise ConfigError(f"--levels must be numbers like 0.8,0.95, got {args.levels!r}") from None
    path = Path(args.path)
    return parse_spec({
        "name": path.stem if path.is_file() else path.resolve().name, "use": "csv",
        "source": {"path": str(path.resolve()), "columns": split(args.columns),
                   "time_column": args.time_col, "time_format": args.time_format,
                   "separator": args.separator, "units": units_arg(args.units)},
        "model": {"family": args.family, "horizon": args.horizon, "params": params,
                  "train_fraction": args.train_fraction,
                  "calendar": getattr(args, "calendar", True)},
        "intervals": {"levels": levels, "method": args.interval_method},
    })


def run(args: argparse.Namespace) -> int:
    from tsforge.report import run_study, write_html

    spec = build_spec(args)
    last = args.last or (QUICK_LAST if args.quick else None)
    with tempfile.TemporaryDirectory(prefix="tsforge-report-") as tmp:
        study = run_study(spec, last=last, export_dir=Path(args.models_dir or tmp), log=print,
                          aggregate=args.aggregate)
        out = write_html(study, args.out)
    print(f"\nwrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(study.sensors)} sensors, "
          f"{study.seconds:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(study.to_dict(), indent=1, default=float))
        print(f"wrote {args.json}")
    return 0
