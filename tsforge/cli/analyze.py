"""``tsforge analyze FILE``: validation report, stationarity, transforms, regime profile and
the model family the selection policy recommends, per sensor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tsforge.cli._common import add_data_args, load_prepared, split
from tsforge.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="validation report, ADF/KPSS, season and STL per sensor, "
                       "the recommended transform chain, regime profile and model family")
    add_data_args(p, target=False)
    p.add_argument("--plots", metavar="DIR", help="write a decomposition PNG and a drift-alarm "
                   "PNG per sensor here")
    p.add_argument("--json", metavar="OUT", help="write the reports as JSON")
    p.add_argument("--family", metavar="SENSOR=MODEL,...", default="",
                   help="override the policy for these sensors, e.g. OT=uoro,HUFL=mlp")
    p.set_defaults(func=run)


def overrides(text: str) -> dict[str, str]:
    """``"OT=uoro, HUFL=mlp"`` -> ``{"OT": "uoro", "HUFL": "mlp"}``."""
    out = {}
    for item in split(text):
        sensor, sep, model = item.partition("=")
        if not sep or not sensor.strip() or not model.strip():
            raise ConfigError(f"--family item {item!r} must look like SENSOR=MODEL, e.g. OT=uoro")
        out[sensor.strip()] = model.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from tsforge.drift.plot import plot_drift
    from tsforge.preprocess import analyze, plot_decomposition
    from tsforge.selection import choose, profile_series

    frame, report = load_prepared(args)
    print(report.summary())
    sensors = split(args.columns) or frame.sensors
    forced = overrides(args.family)
    unknown = sorted(set(forced) - set(sensors))
    if unknown:
        raise ConfigError(f"--family names sensor(s) {unknown} that are not analysed; "
                          f"sensors: {', '.join(sensors)}")
    results = {}
    for name in sensors:
        y = frame.column(name)
        rep = analyze(y, name=name)
        prof = profile_series(y, sensor=name, transforms=rep.transforms, period=rep.period)
        prof.seasonal_strength = rep.seasonal_strength
        decision = choose(prof, override=forced.get(name))
        results[name] = {**rep.to_dict(), "regime": prof.to_dict(),
                         "recommendation": {k: v for k, v in decision.to_dict().items()
                                            if k != "profile"}}
        print()
        print(rep.summary())
        print(prof.summary())
        print(f"  recommendation ({decision.rule}): {decision.explanation}")
        if args.plots:
            png = plot_decomposition(y, rep, Path(args.plots) / f"{name}.png",
                                     time=frame.time, title=f"{Path(args.file).name}: {name}")
            print(f"  plot: {png}")
            drift_png = plot_drift(
                y, prof.alarms, Path(args.plots) / f"{name}_drift.png", time=frame.time,
                offset=len(y) - prof.n,
                title=f"{name}: drift alarms on the last {prof.n} readings (warm-up window)")
            print(f"  drift plot: {drift_png}")
    if args.json:
        Path(args.json).write_text(json.dumps({"validation": report.to_dict(),
                                               "sensors": results}, indent=1))
        print(f"\nwrote {args.json}")
    return 0
