"""Online learners at h = 1: forecasting the level against forecasting the change.

Each online family (``rtrl``, ``uoro``, ``esn``, ``ptncn``) runs twice on the same
series and chain, ``residual=False`` (the readout forecasts the level, as before
the residual option existed) and ``residual=True`` (the default: last reading +
learned change), next to the naive forecast.  Protocol as ``benchmarks/accuracy.py``:
the last ``--last`` readings, the first 70 % fit, the rest streamed with online
learning, the transform chain from the stationarity analysis of the training part.

    python benchmarks/online_residual.py [--quick] [--series NAMES] [--last N]

Development series by default (ETTh1/OT, ETTh1/HUFL, NAB machine temperature,
SKAB's first channel); ``--series steel`` adds the steel plant's ``Usage_kWh``
(held-out data: report it, do not tune on it).  Last line: JSON with the MASE of
every cell and ``improved``, the share of (series, family) cells where the residual
form has the lower MASE.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from devset import DEFAULT_ROOT, Series, development_series

from tsforge.backtest import backtest
from tsforge.data import read_csv
from tsforge.models.online.batch import one_blas_thread
from tsforge.preprocess import analyze

FAMILIES = ("rtrl", "uoro", "esn", "ptncn")
DEFAULT_SERIES = ("ETTh1/OT", "ETTh1/HUFL", "NAB/machine_temperature_system_failure",
                  "SKAB/Accelerometer1RMS")


def steel(root: Path) -> list[Series]:
    path = root / "steel" / "Steel_industry_data.csv"
    if not path.exists():
        return []
    frame = read_csv(path, columns=["Usage_kWh"], time_format="%d/%m/%Y %H:%M")
    return [Series("steel/Usage_kWh", frame.column("Usage_kWh"), 96)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="last 1,500 readings, 2 series")
    parser.add_argument("--series", default=None, help="comma-separated; 'steel' for steel")
    parser.add_argument("--last", type=int, default=None, help="readings per series (6000)")
    parser.add_argument("--data", default=str(DEFAULT_ROOT))
    args = parser.parse_args()
    root = Path(args.data)
    every = {s.name: s for s in development_series(root) + steel(root)}
    wanted = [w.strip() for w in args.series.split(",")] if args.series else \
        list(DEFAULT_SERIES[:2] if args.quick else DEFAULT_SERIES)
    wanted = ["steel/Usage_kWh" if w == "steel" else w for w in wanted]
    chosen = [every[w] for w in wanted if w in every]
    if not chosen:
        print(json.dumps({"benchmark": "online_residual", "skipped": f"no data under {root}"}))
        return
    last = args.last or (1500 if args.quick else 6000)
    models = [("naive", {})] + [(f, {"residual": r}) for f in FAMILIES for r in (False, True)]
    mase: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    print(f"{'series':42s} {'naive':>7s}  " + "  ".join(f"{f + ' lvl/chg':>15s}" for f in FAMILIES))
    for s in chosen:
        y = np.asarray(s.values[-last:], dtype=np.float64)
        chain = analyze(y[: int(len(y) * 0.7)], name=s.name).transforms
        with one_blas_thread():
            result = backtest(y, models=models, horizon=1, period=s.period, transforms=chain,
                              intervals=None)
        row = {"naive": result.scores[0].mase}
        for i, (family, params) in enumerate(models[1:], start=1):
            row[f"{family}/{'change' if params['residual'] else 'level'}"] = result.scores[i].mase
        mase[s.name] = row
        print(f"{s.name:42s} {row['naive']:7.3f}  " + "  ".join(
            f"{row[f + '/level']:7.3f}/{row[f + '/change']:<7.3f}" for f in FAMILIES), flush=True)
    pairs = [(r[f + "/level"], r[f + "/change"]) for r in mase.values() for f in FAMILIES]
    print(json.dumps({"benchmark": "online_residual", "horizon": 1, "last": last,
                      "mase": mase, "improved": sum(c < lv for lv, c in pairs) / len(pairs),
                      "seconds": round(time.perf_counter() - t0, 1), "quick": args.quick}))


if __name__ == "__main__":
    main()
