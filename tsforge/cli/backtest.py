"""``tsforge backtest FILE``: fit on the first part, stream the rest, score the forecasts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tsforge.cli._common import (
    add_data_args,
    interval_config,
    json_arg,
    load_prepared,
    split,
    target_and_covariates,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest",
                       help="fit on the first part, stream the rest, score MAE/RMSE/MASE")
    add_data_args(p, target=True)
    p.add_argument("--horizon", type=int, default=1, help="steps ahead (H), default 1")
    p.add_argument("--models", default="naive,seasonal_naive,mlp",
                   help="comma-separated registry names (see `tsforge models-available`); "
                   "'auto' aggregates the candidate families with online weights")
    p.add_argument("--params", default="{}",
                   help='JSON of per-model parameters, e.g. \'{"mlp": {"window": 96}}\'')
    p.add_argument("--train-fraction", type=float, default=0.7, help="share used for fitting")
    p.add_argument("--json", metavar="OUT", help="write one JSON object per model")
    p.add_argument("--plot", metavar="PNG", help="write forecast-vs-actual plots (and, with "
                   "'auto', its weights over time next to it: PNG stem + '_weights.png')")
    p.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)  # now the default
    p.add_argument("--levels", default="0.8,0.95",
                   help="nominal levels of the conformal intervals scored, or 'none'")
    p.add_argument("--interval-method", choices=["aci", "split"], default="aci",
                   help="adaptive conformal inference (default) or split conformal")
    p.add_argument("--calendar", action="store_true",
                   help="add hour-of-day / day-of-week covariates (sin, cos) from the "
                   "timestamps, where the sampling resolves them")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tsforge.backtest import backtest
    from tsforge.plotting import plot_backtest, plot_weights

    frame, report = load_prepared(args)
    target, covariates = target_and_covariates(frame, args)
    params = json_arg(args.params, "--params")
    specs = [(name, params.get(name, {})) for name in split(args.models)]
    X = frame.select(covariates).values if covariates else None
    if args.calendar:
        import numpy as np

        from tsforge.preprocess.calendar import calendar_features

        cal, names = calendar_features(frame.time)
        print(f"calendar covariates: {', '.join(names) or 'none (step or span too coarse)'}")
        X = cal if X is None else np.column_stack([X, cal])
    result = backtest(frame.column(target), X, models=specs, horizon=args.horizon,
                      train_fraction=args.train_fraction, progress=not args.no_progress,
                      intervals=interval_config(args))
    print(report.summary())
    print(f"\nbacktest of '{target}' ({len(frame)} readings, horizon {args.horizon}, "
          f"train {result.test_start}, stream {len(result.actual)}, season {result.period})")
    print(result.table())
    for score in result.scores:
        if score.explanation:
            print(f"\n{score.model}: {score.explanation}")
            print(f"  {score.n_alarms} drift alarms while streaming; weights at the end: "
                  f"{score.family}")
            for event in score.switches:
                print(f"  reading {event['index']}: {event['reason']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        from tsforge.data.folder import known_events

        file = Path(args.file)
        events = known_events(file.parent).get(file.name, [])  # known_events.json beside it
        png = plot_backtest(result, args.plot, time=frame.time, title=target,
                            unit=frame.unit(target), events=events)
        print(f"plot: {png} (whole streamed part, latest {min(300, len(result.actual))} "
              "readings, intervals of the lowest-MASE model)")
        for name in result.weights:
            png = Path(args.plot).with_name(f"{Path(args.plot).stem}_weights.png")
            out = plot_weights(result, png, model=name, time=frame.time, title=target,
                               unit=frame.unit(target))
            print(f"weights plot: {out}")
    return 0
