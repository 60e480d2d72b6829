"""The ``tsforge`` command line.

Each sub-command is a thin layer over the library: it parses arguments, calls
one public function, prints a readable summary and writes files on request.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tsforge._version import __version__
from tsforge.errors import TsforgeError

EPILOG = """examples:
  tsforge demo                                   run the whole path on bundled factory data
  tsforge analyze data.csv                       stationarity tests and transforms per sensor
  tsforge backtest data.csv --target OT --horizon 24 --models naive,seasonal_naive,mlp
  tsforge backtest data.csv --target OT --models naive,ets,arima,snarimax,holt_winters --levels 0.9
  tsforge export data.csv --target OT --model mlp --out model.onnx
"""


def _add_data_args(p: argparse.ArgumentParser, target: bool) -> None:
    p.add_argument("file",
                   help="CSV file (wide: timestamp,s1,s2,... or long: timestamp,sensor,value)")
    p.add_argument("--time", dest="time_col", metavar="COL",
                   help="timestamp column (auto-detected)")
    p.add_argument("--time-format", metavar="FMT", help="strftime format if timestamps are unusual")
    if target:
        p.add_argument("--target", metavar="COL", help="column to forecast (default: first sensor)")
        p.add_argument("--covariates", metavar="COLS", default="",
                       help="comma-separated columns used as inputs (other sensors of the asset)")
    p.add_argument("--freq", default="auto",
                   help="resampling step, e.g. 5min, 1h; 'auto' = median step; 'none' = keep as is")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsforge",
        description="Streaming time-series forecasting for industrial sensor data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tsforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run validate → analyse → fit → backtest → ONNX → runtime "
                       "on the bundled NAB machine-temperature series")
    p.add_argument("--out", default="tsforge-demo-out", help="folder for plots, model and JSON")
    p.add_argument("--quick", action="store_true", help="shorter training (for smoke tests)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("analyze", help="validation report, ADF/KPSS, season and STL per sensor, "
                       "with the recommended transform chain")
    _add_data_args(p, target=False)
    p.add_argument("--columns", metavar="COLS", default="", help="only these sensors")
    p.add_argument("--plots", metavar="DIR", help="write one decomposition PNG per sensor here")
    p.add_argument("--json", metavar="OUT", help="write the reports as JSON")
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("backtest",
                       help="fit on the first part, stream the rest, score MAE/RMSE/MASE")
    _add_data_args(p, target=True)
    p.add_argument("--horizon", type=int, default=1, help="steps ahead (H), default 1")
    p.add_argument("--models", default="naive,seasonal_naive,mlp",
                   help="comma-separated registry names (see `tsforge models-available`)")
    p.add_argument("--params", default="{}",
                   help='JSON of per-model parameters, e.g. \'{"mlp": {"window": 96}}\'')
    p.add_argument("--train-fraction", type=float, default=0.7, help="share used for fitting")
    p.add_argument("--json", metavar="OUT", help="write one JSON object per model")
    p.add_argument("--plot", metavar="PNG", help="write forecast-vs-actual plots")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--levels", default="0.8,0.95",
                   help="nominal levels of the conformal intervals scored, or 'none'")
    p.add_argument("--interval-method", choices=["aci", "split"], default="aci",
                   help="adaptive conformal inference (default) or split conformal")
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("export", help="fit a model on a CSV and export its streaming step to ONNX")
    _add_data_args(p, target=True)
    p.add_argument("--model", default="mlp", help="registry name (default mlp)")
    p.add_argument("--params", default="{}",
                   help='JSON of model parameters, e.g. \'{"window": 96}\'')
    p.add_argument("--horizon", type=int, default=1, help="steps ahead (H)")
    p.add_argument("--out", required=True, help="output .onnx path (manifest .json written beside)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("models-available", help="list registered model names")
    p.set_defaults(func=_cmd_models_available)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tsforge`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except TsforgeError as exc:
        print(f"tsforge {args.command}: error: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- helpers
def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _json_arg(text: str, flag: str) -> dict[str, Any]:
    from tsforge.errors import ConfigError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{flag} is not valid JSON ({exc}); example: '{{\"window\": 96}}'"
        ) from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object")
    return value


def interval_config(args: argparse.Namespace) -> Any:
    """The :class:`~tsforge.intervals.IntervalConfig` named by ``--levels`` and
    ``--interval-method`` (None for ``--levels none``)."""
    from tsforge.errors import ConfigError
    from tsforge.intervals import IntervalConfig

    if args.levels.strip().lower() == "none":
        return None
    try:
        levels = tuple(float(v) for v in _split(args.levels))
    except ValueError:
        raise ConfigError(f"--levels must be numbers like 0.8,0.95 or 'none', got "
                          f"{args.levels!r}") from None
    return IntervalConfig(levels=levels, method=args.interval_method)


def load_prepared(args: argparse.Namespace) -> tuple[Any, Any]:
    """Read and validate the CSV named on the command line."""
    from tsforge.data import DataPolicy, prepare, read_csv

    frame = read_csv(args.file, time_col=args.time_col, time_format=args.time_format)
    freq = None if str(args.freq).lower() == "none" else args.freq
    return prepare(frame, DataPolicy(freq=freq))


def _target_and_covariates(frame: Any, args: argparse.Namespace) -> tuple[str, list[str]]:
    target = args.target or frame.sensors[0]
    covariates = _split(args.covariates)
    frame.column(target)
    for c in covariates:
        frame.column(c)
    return target, covariates


# --------------------------------------------------------------------------- commands
def _cmd_demo(args: argparse.Namespace) -> int:
    from tsforge.demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick)
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from tsforge.preprocess import analyze, plot_decomposition

    frame, report = load_prepared(args)
    print(report.summary())
    sensors = _split(args.columns) or frame.sensors
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


def _cmd_backtest(args: argparse.Namespace) -> int:
    from tsforge.backtest import backtest
    from tsforge.plotting import plot_backtest

    frame, report = load_prepared(args)
    target, covariates = _target_and_covariates(frame, args)
    params = _json_arg(args.params, "--params")
    specs = [(name, params.get(name, {})) for name in _split(args.models)]
    X = frame.select(covariates).values if covariates else None
    result = backtest(frame.column(target), X, models=specs, horizon=args.horizon,
                      train_fraction=args.train_fraction, progress=args.progress,
                      intervals=interval_config(args))
    print(report.summary())
    print(f"\nbacktest of '{target}' ({len(frame)} readings, horizon {args.horizon}, "
          f"train {result.test_start}, stream {len(result.actual)}, season {result.period})")
    print(result.table())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"plot: {plot_backtest(result, args.plot, time=frame.time, title=target)}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from tsforge.export import export_onnx
    from tsforge.models import create
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.preprocess import analyze

    frame, _ = load_prepared(args)
    target, covariates = _target_and_covariates(frame, args)
    y = frame.column(target)
    X = frame.select(covariates).values if covariates else None
    params = _json_arg(args.params, "--params")
    params.setdefault("horizon", args.horizon)
    chain = analyze(y, name=target).transforms
    model = TransformedForecaster(create(args.model, **params), chain).fit(y, X)
    rep = export_onnx(model, args.out, sensor=target)
    print(f"exported '{args.model}' for '{target}' to {rep.onnx_path} ({rep.size_bytes} bytes)")
    print(f"manifest {rep.manifest_path}; sha256 {rep.sha256[:16]}…")
    print(f"ONNX Runtime vs PyTorch over {rep.parity_steps} steps: max |diff| = "
          f"{rep.parity_max_abs_error:.2e} (tolerance {rep.tolerance:g})")
    return 0


def _cmd_models_available(args: argparse.Namespace) -> int:
    from tsforge.models import available, model_class

    for name in available():
        doc = (model_class(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:<16}{doc}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
