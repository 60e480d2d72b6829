"""``tsforge-edge``: serve an exported model on a box with numpy and onnxruntime only.

Reads readings as CSV lines ``timestamp,sensor,value[,covariate...]`` from a
file or standard input (a header line is optional), writes one line per
reading ``timestamp,sensor,step_1,...,step_H`` with the forecast in engineering
units (with ``--intervals``, then ``lower_<level>_step_h`` and
``upper_<level>_step_h`` columns, empty while a sensor's residual windows warm
up).  Lines that cannot be parsed go to a dead-letter file (or standard error)
with the reason; the stream keeps running.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
from pathlib import Path
from typing import IO

from tsforge.errors import TsforgeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsforge-edge",
        description="Torch-free streaming inference of a tsforge ONNX artifact.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="stream readings through a model and print forecasts")
    run.add_argument("model", help="model.onnx (its manifest model.json must sit beside it)")
    run.add_argument("--input", default="-", help="CSV of readings, '-' for standard input")
    run.add_argument("--output", default="-", help="CSV of forecasts, '-' for standard output")
    run.add_argument("--dead-letter", default=None,
                     help="file for unparseable lines (default: standard error)")
    run.add_argument("--threads", type=int, default=1,
                     help="onnxruntime threads (1 = lowest latency)")
    run.add_argument("--intervals", action="store_true",
                     help="also write the conformal prediction intervals of every forecast")
    return parser


def _open(path: str, mode: str) -> IO[str]:
    if path == "-":
        return sys.stdin if "r" in mode else sys.stdout
    return open(path, mode, newline="")


def run_stream(model: str, source: IO[str], sink: IO[str], dead: IO[str], threads: int = 1,
               intervals: bool = False) -> int:
    """Serve every line of ``source``; return the number of dead-lettered lines."""
    from tsforge.runtime.streaming import StreamingRuntime

    runtime = StreamingRuntime(model, threads=threads, intervals=intervals)
    steps = [f"step_{h + 1}" for h in range(runtime.horizon)]
    levels = runtime.interval_levels if intervals else ()
    writer = csv.writer(sink)
    writer.writerow(["timestamp", "sensor", *steps]
                    + [f"{side}_{lvl:g}_{s}" for lvl in levels for side in ("lower", "upper")
                       for s in steps])
    n_dead = 0
    for lineno, row in enumerate(csv.reader(source), start=1):
        if not row or (lineno == 1 and row[0].strip().lower() in ("timestamp", "time", "ts")):
            continue
        try:
            if len(row) < 3:
                raise ValueError("expected timestamp,sensor,value[,covariates...]")
            values = [float(v) for v in row[2:]]
            forecast = runtime.push_with_intervals(row[1], values[0], values[1:] or None)
        except (ValueError, TsforgeError) as exc:
            n_dead += 1
            dead.write(f"line {lineno}: {exc}: {','.join(row)}\n")
            continue
        cells = [f"{v:.6g}" for v in forecast.mean]
        for lvl in levels:
            band = forecast.intervals.get(lvl)
            for side in (0, 1):
                cells += [f"{v:.6g}" for v in band[side]] if band else [""] * len(steps)
        writer.writerow([row[0], row[1], *cells])
    sink.flush()
    return n_dead


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tsforge-edge`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        parser.print_help()
        return 0
    try:
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(_open(args.input, "r"))
            sink = stack.enter_context(_open(args.output, "w"))
            dead = stack.enter_context(open(args.dead_letter, "a")) if args.dead_letter \
                else sys.stderr
            n_dead = run_stream(args.model, source, sink, dead, args.threads, args.intervals)
    except TsforgeError as exc:
        print(f"tsforge-edge: error: {exc}", file=sys.stderr)
        return 2
    if n_dead:
        where = Path(args.dead_letter) if args.dead_letter else "standard error"
        print(f"tsforge-edge: {n_dead} line(s) sent to {where}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
