"""``tsforge analyze FILE``: validation report, stationarity, transforms, regime profile and
the model family the selection policy recommends, per sensor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tsforge.cli._common import add_data_args, load_prepared, pairs
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
    p.add_argument("--details", action="store_true",
                   help="print every sensor's tests, regime profile and reasons in full "
                   "(default: one summary table)")
    p.set_defaults(func=run)


def overrides(text: str) -> dict[str, str]:
    """``"OT=uoro, HUFL=mlp"`` -> ``{"OT": "uoro", "HUFL": "mlp"}``."""
    return pairs(text, "--family", "OT=uoro")


def _chain(transforms: list[dict]) -> str:
    return " -> ".join(t["kind"] for t in transforms) or "none"


def run(args: argparse.Namespace) -> int:
    from tsforge import progress
    from tsforge.drift.plot import plot_drift
    from tsforge.preprocess import analyze, plot_decomposition
    from tsforge.selection import choose, profile_series
    from tsforge.table import format_table

    frame, report = load_prepared(args)
    print(report.summary())
    if frame.skipped:
        print(f"  - text columns not read as sensors: {', '.join(frame.skipped)}")
    if frame.labels:
        print(f"  - label columns kept out of the sensors: {', '.join(frame.labels)}")
    plots: list[str] = []
    sensors = frame.sensors
    forced = overrides(args.family)
    unknown = sorted(set(forced) - set(sensors))
    if unknown:
        raise ConfigError(f"--family names sensor(s) {unknown} that are not analysed; "
                          f"sensors: {', '.join(sensors)}")
    results = {}
    rows = []
    track = progress.track(sensors, "analyze", "sensor")
    for name in track:
        y = frame.column(name)
        rep = analyze(y, name=name)
        prof = profile_series(y, sensor=name, transforms=rep.transforms, period=rep.period)
        prof.seasonal_strength = rep.seasonal_strength
        decision = choose(prof, override=forced.get(name))
        results[name] = {**rep.to_dict(), "regime": prof.to_dict(),
                         "recommendation": {k: v for k, v in decision.to_dict().items()
                                            if k != "profile"}}
        rows.append([name, frame.unit(name) or "-", rep.adf_pvalue, rep.kpss_pvalue,
                     rep.decision, rep.period or "none",
                     _chain(rep.transforms),
                     decision.family, decision.rule])
        if args.details:
            print()
            print(rep.summary())
            print(prof.summary())
            print(f"  recommendation ({decision.rule}): {decision.explanation}")
        if args.plots:
            png = plot_decomposition(y, rep, Path(args.plots) / f"{name}.png",
                                     time=frame.time, title=f"{Path(args.file).name}: {name}",
                                     unit=frame.unit(name), step=frame.freq)
            drift_png = plot_drift(
                y, prof.alarms, Path(args.plots) / f"{name}_drift.png", time=frame.time,
                offset=len(y) - prof.n, unit=frame.unit(name), name=name,
                title=f"{name}: drift alarms on the last {prof.n} readings (warm-up window)")
            plots.append(f"  {name}: {png}, {drift_png}")
    print()
    print(format_table(["sensor", "unit", "ADF p", "KPSS p", "stationarity", "season",
                        "transforms", "recommended", "rule"], rows,
                       formats=[None, None, ".3f", ".3f"]))
    if not args.details:
        print("\n(--details prints each sensor's tests, regime profile and reasons)")
    if plots:
        print("\nplots:")
        print("\n".join(plots))
    if args.json:
        Path(args.json).write_text(json.dumps({"validation": report.to_dict(),
                                               "sensors": results}, indent=1))
        print(f"\nwrote {args.json}")
    return 0
