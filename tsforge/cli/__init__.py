"""The ``tsforge`` command line.

Each sub-command lives in its own module with two functions: ``register(sub)`` adds
its parser, ``run(args)`` parses nothing more, calls one public library function,
prints a readable summary and writes files on request.  Adding a command means
adding a module and one entry to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tsforge._version import __version__
from tsforge.cli._common import interval_config
from tsforge.errors import TsforgeError

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS: list[str] = [
    "demo",
    "analyze",
    "backtest",
    "export",
    "models_available",
    "models",
    "serve",
    "report",
    "run",
]

EPILOG = """examples:
  tsforge demo                                   run the whole path on bundled factory data
  tsforge analyze data.csv                       stationarity tests and transforms per sensor
  tsforge backtest data.csv --target OT --horizon 24 --models naive,seasonal_naive,mlp
  tsforge backtest data.csv --target OT --models naive,ets,arima,snarimax,holt_winters --levels 0.9
  tsforge export data.csv --target OT --model mlp --out model.onnx
  tsforge export data.csv --target OT --model esn --bundle bundle/ --int8   bundle for tsforge-edge
  tsforge models register --onnx model.onnx --metrics '{"mae": 0.4}' --promote
  tsforge models list; tsforge models rollback; tsforge models verify
  tsforge serve pipelines/kafka-production.toml --bootstrap-servers kafka-1:9092
  tsforge backtest data.csv --target OT --models auto,mlp,uoro  family picked by the regime policy
  tsforge report examples/data/factory --out report.html   PoC study as one HTML file
  tsforge run pipelines/factory-csv-poc.toml               run a declarative pipeline
"""

__all__ = ["COMMANDS", "build_parser", "interval_config", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="tsforge",
        description="Streaming time-series forecasting for industrial sensor data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tsforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tsforge.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tsforge`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from tsforge import progress

    before = progress.enabled()
    progress.enable(not getattr(args, "no_progress", False))
    try:
        return int(args.func(args) or 0)
    except TsforgeError as exc:
        print(f"tsforge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.enable(before)  # the library's default is quiet; main() only lends it
