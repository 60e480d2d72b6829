"""Quick start: forecast a factory sensor from a CSV with the Python API.

Run from anywhere:  python examples/quickstart.py [path/to.csv] [--target COL]
Without arguments it uses the NAB machine-temperature series bundled with tsforge.
"""

from __future__ import annotations

import argparse

from tsforge.backtest import backtest
from tsforge.data import prepare, read_csv
from tsforge.demo import bundled_csv
from tsforge.preprocess import analyze


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", nargs="?", default=str(bundled_csv()))
    parser.add_argument("--target", default=None)
    parser.add_argument("--horizon", type=int, default=12)
    args = parser.parse_args()

    frame, report = prepare(read_csv(args.csv))      # validate, repair, resample
    print(report.summary())
    target = args.target or frame.sensors[0]
    y = frame.column(target)

    stat = analyze(y, name=target)                   # ADF/KPSS, season, STL, transforms
    print(stat.summary())

    result = backtest(y, models=["naive", "seasonal_naive", ("mlp", {"epochs": 10})],
                      horizon=args.horizon, transforms=stat.transforms, period=stat.period)
    print(result.table())


if __name__ == "__main__":
    main()
