"""Coverage and width of online conformal intervals: ACI against split conformal.

On real sensor series (NAB machine temperature, bundled; ETTh1 oil temperature,
from the shared data folder, skipped when absent) each model is backtested once
(fit on the first 70 %, stream the rest).  On the *same* forecasts the script
scores three interval methods from :mod:`tsforge.intervals`:

- ``split``: split conformal, calibrated on the first ``window`` residuals of the
  stream and then frozen (the baseline);
- ``rolling``: the same sliding window as ACI with a fixed level (gamma = 0);
- ``aci``: adaptive conformal inference (the candidate, tsforge's default: an
  interval the window cannot bound is capped at the window's largest residual);
- ``aci_inf``: ACI exactly as in the paper (such intervals are infinite).

Figures per (series, model, method, level): coverage, mean width (engineering
units, over finite intervals), share of intervals ACI could not bound from its
window (served infinite by ``aci_inf``, at the window's largest residual by
``aci``), and *local* coverage error (mean over
consecutive blocks of 500 readings of |block coverage - level|, which shows
whether coverage holds through drift rather than only on average).

The last line is one JSON object: ``baseline`` and ``candidate`` are the mean
absolute coverage error (|coverage - level|, averaged over series, models and
levels) of split conformal and of ACI; ``ratio`` = baseline / candidate (> 1:
ACI is closer to nominal).

    python benchmarks/intervals_coverage.py --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsforge.backtest import backtest  # noqa: E402
from tsforge.intervals import IntervalConfig, replay  # noqa: E402
from tsforge.metrics import future_truth, interval_coverage, interval_width  # noqa: E402

NAB = ROOT / "tsforge" / "datasets" / "machine_temperature_system_failure.csv"
ETTH1 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ett" / "ETTh1.csv"
LEVELS = (0.8, 0.95)
BLOCK = 500
CHAIN = [{"kind": "difference"}, {"kind": "scale"}]


def load(quick: bool) -> list[tuple[str, np.ndarray, int, int]]:
    """(name, series, season period, horizon) of each available data set."""
    import pandas as pd

    sets = [("nab_machine_temperature", pd.read_csv(NAB)["value"].to_numpy(float), 288, 12)]
    if ETTH1.exists():
        sets.append(("etth1_OT", pd.read_csv(ETTH1)["OT"].to_numpy(float), 24, 24))
    else:
        print(f"skipping ETTh1: {ETTH1} not found")
    if quick:  # the most recent 12,000 readings keep NAB's failure and a year of ETTh1
        sets = [(n, y[-12000:], m, h) for n, y, m, h in sets]
    return sets


def models(quick: bool) -> list:
    mlp = {"window": 48, "hidden": 32, "epochs": 3 if quick else 20, "batch_size": 256}
    ets = {"refit_every": 1000 if quick else 500, "max_window": 1000 if quick else 2000}
    return ["naive", ("mlp", mlp), ("ets", ets)]


def local_error(lo: np.ndarray, hi: np.ndarray, actual: np.ndarray, level: float) -> float:
    """Mean over blocks of BLOCK readings of |coverage in the block - level|."""
    truth = future_truth(actual, lo.shape[1])
    errors = []
    for start in range(0, len(actual) - BLOCK + 1, BLOCK):
        s = slice(start, start + BLOCK)
        ok = np.isfinite(truth[s]) & ~np.isnan(lo[s])
        if ok.sum() > BLOCK // 2:
            inside = (lo[s][ok] <= truth[s][ok]) & (truth[s][ok] <= hi[s][ok])
            errors.append(abs(float(inside.mean()) - level))
    return float(np.mean(errors)) if errors else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter series, short training")
    args = parser.parse_args()
    methods = {
        "split": IntervalConfig(levels=LEVELS, method="split"),
        "rolling": IntervalConfig(levels=LEVELS, gamma=0.0),
        "aci": IntervalConfig(levels=LEVELS),
        "aci_inf": IntervalConfig(levels=LEVELS, unbounded="inf"),
    }
    rows: list[dict] = []
    mase: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    for name, y, period, horizon in load(args.quick):
        result = backtest(y, models=models(args.quick), horizon=horizon, transforms=CHAIN,
                          period=period, intervals=methods["aci"])
        for score in result.scores:
            preds = result.predictions[score.model]
            for method, cfg in methods.items():
                saturated: dict[float, np.ndarray] = {}
                bands = replay(preds, result.actual, cfg, saturated=saturated)
                if method == "aci":  # the backtest's own intervals are the same
                    for lvl, (lo, _) in bands.items():
                        np.testing.assert_array_equal(lo, result.intervals[score.model][lvl][0])
                for level, (lo, hi) in bands.items():
                    rows.append({
                        "series": name, "model": score.model, "method": method, "level": level,
                        "coverage": interval_coverage(lo, hi, result.actual),
                        "width": interval_width(lo, hi),
                        "saturated": float(np.mean(saturated[level][~np.isnan(hi)])),
                        "local_error": local_error(lo, hi, result.actual, level),
                    })
            mase.setdefault(name, {})[score.model] = round(score.mase, 4)
    seconds = time.perf_counter() - t0

    print(f"{'series':<25}{'model':<8}{'method':<9}{'level':>6}{'coverage':>10}{'width':>10}"
          f"{'saturated':>10}{'local err':>10}")
    for r in rows:
        print(f"{r['series']:<25}{r['model']:<8}{r['method']:<9}{r['level']:>6.2f}"
              f"{r['coverage']:>10.3f}{r['width']:>10.3f}{r['saturated']:>10.4f}"
              f"{r['local_error']:>10.3f}")

    def mean_error(method: str, key: str = "coverage") -> float:
        sel = [r for r in rows if r["method"] == method]
        if key == "coverage":
            return float(np.mean([abs(r["coverage"] - r["level"]) for r in sel]))
        return float(np.mean([r[key] for r in sel]))

    summary = {m: {"coverage_error": mean_error(m), "local_coverage_error":
                   mean_error(m, "local_error")} for m in methods}
    baseline, candidate = summary["split"]["coverage_error"], summary["aci"]["coverage_error"]
    print(json.dumps({
        "benchmark": "intervals_coverage",
        "quick": args.quick,
        "metric": "mean |coverage - level| over series x models {naive, mlp, ets} x levels "
                  f"{list(LEVELS)}",
        "baseline": baseline,
        "candidate": candidate,
        "ratio": baseline / candidate if candidate > 0 else float("inf"),
        "ratio_meaning": "split-conformal coverage error / ACI coverage error (>1: ACI closer)",
        "methods": summary,
        "mase": mase,
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                 for r in rows],
        "seconds": round(seconds, 1),
    }))


if __name__ == "__main__":
    main()
