"""Regret of ``auto``: MASE of the aggregate / MASE of the best single family in hindsight.

For every series, ``auto`` (online aggregation of its candidate families, see
``docs/selection.md``) is backtested with the public ``tsforge.backtest.backtest``
(fit on the first 70 %, stream the rest, one step ahead).  The hindsight set is
every candidate family on its own: the families ``auto`` kept are scored from the
forecasts they made inside the aggregate (exactly what the family forecasts on its
own: same chain, seed and parameters, tested in tests/test_auto.py), the ones it
pruned at fit are backtested separately.  So the best family in hindsight is the
best of all candidates, including those ``auto`` threw away.

Series: the fixed-seed suite of :mod:`tsforge.selection.synthetic`; ETTh1 columns,
NAB realKnownCause series and SKAB anomaly-free channels read from
``../shared/datasets`` (skipped when absent; nothing is copied).

    python benchmarks/selection_regret.py [--quick] [--out DIR] [--only a,b]

``--quick``: 800-reading series, 5 epochs, six synthetic regimes and two real
series; default: 1,500 readings, 12 epochs, every series.

Last line JSON: ``candidate`` = median over series of MASE(auto) / MASE(best
family in hindsight) (goal <= 1.0), ``worst`` its maximum (goal <= 1.15),
``baseline`` = the same median for the best *fixed* family (one family for every
series, chosen in hindsight), ``ratio`` = baseline / candidate (> 1: ``auto``
beats always using the best fixed family).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from tsforge.backtest import backtest
from tsforge.metrics import forecast_errors, mae
from tsforge.models.registry import MODELS
from tsforge.preprocess import analyze
from tsforge.selection.synthetic import suite

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
QUICK_FAMILIES = ("naive", "seasonal_naive", "ets", "linear", "esn", "uoro", "mlp")
FAMILIES = (*QUICK_FAMILIES, "dsf_gru")
QUICK_SYNTHETIC = ("white_noise", "ar_short", "seasonal_ar", "random_walk", "abrupt_drift",
                   "variance_change")
QUICK_REAL = ("ETTh1/OT", "NAB/machine_temperature_system_failure")
NAB = ("ambient_temperature_system_failure", "cpu_utilization_asg_misconfiguration",
       "ec2_request_latency_system_failure", "machine_temperature_system_failure", "nyc_taxi",
       "rogue_agent_key_hold", "rogue_agent_key_updown")


def real_series(n: int) -> dict[str, np.ndarray]:
    """ETTh1 columns, NAB realKnownCause, SKAB anomaly-free channels (first ``n`` readings)."""
    import pandas as pd

    out: dict[str, np.ndarray] = {}
    ett = SHARED / "ett" / "ETTh1.csv"
    if ett.exists():
        frame = pd.read_csv(ett)
        for col in frame.columns[1:]:
            out[f"ETTh1/{col}"] = frame[col].to_numpy(float)
    for name in NAB:
        path = SHARED / "nab" / "realKnownCause" / f"{name}.csv"
        if path.exists():
            out[f"NAB/{name}"] = pd.read_csv(path)["value"].to_numpy(float)
    skab = SHARED / "skab" / "anomaly-free" / "anomaly-free.csv"
    if skab.exists():
        frame = pd.read_csv(skab, sep=";")
        for col in frame.columns[1:]:
            out[f"SKAB/{col}"] = frame[col].to_numpy(float)
    return {k: v[np.isfinite(v)][:n] for k, v in out.items()}


def budget(quick: bool) -> dict[str, dict]:
    """Training budget per family (the only thing --quick changes besides lengths)."""
    epochs = 5 if quick else 12
    return {"mlp": {"epochs": epochs}, "dsf_gru": {"epochs": epochs,
                                                   "hidden": 16 if quick else 32}}


def evaluate(name: str, y: np.ndarray, families: list[str], params: dict[str, dict]) -> dict:
    """Backtest ``auto`` and every candidate family it pruned; MASE of each."""
    n_train = int(len(y) * 0.7)
    report = analyze(y[:n_train], name="target")
    period = report.period or 1
    auto = ("auto", {"experts": ",".join(families), "params": params,
                     "transforms": report.transforms})
    result = backtest(y, models=[auto], horizon=1, period=period, intervals=None,
                      transforms=report.transforms)
    score = result.scores[0]
    scale = result.mase_scale
    mase = {f: mae(forecast_errors(p, result.actual)) / scale
            for f, p in result.experts["auto"].items()}
    model = result.weights["auto"][0]
    pruned = [f for f in families if f not in mase]
    if pruned:
        from tsforge.selection.auto import AutoForecaster

        sizing = AutoForecaster(params=params)
        specs = [(f, sizing.family_params(f)) for f in pruned]
        extra = backtest(y, models=specs, horizon=1, period=period, intervals=None,
                         transforms=report.transforms)
        mase.update({s.model: float(s.mase) for s in extra.scores})
    best = min(mase, key=mase.__getitem__)
    return {"series": name, "auto": float(score.mase), "best": best,
            "regret": float(score.mase) / mase[best], "mase": mase, "kept": model,
            "weights_end": score.family, "explanation": score.explanation,
            "fit_seconds": score.fit_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="",
                        help="comma list of substrings: keep series whose name has one")
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    n = 800 if args.quick else 1500
    families = [f for f in (QUICK_FAMILIES if args.quick else FAMILIES) if f in MODELS]
    params = budget(args.quick)
    data = {f"synthetic/{k}": v for k, v in suite(n).items()
            if not args.quick or k in QUICK_SYNTHETIC}
    data.update({k: v for k, v in real_series(n).items() if not args.quick or k in QUICK_REAL})
    wanted = [w for w in args.only.split(",") if w] or [""]
    data = {k: v for k, v in data.items() if any(w in k for w in wanted)}
    print(f"families: {', '.join(families)}; {len(data)} series of {n} readings", flush=True)
    rows = []
    t0 = time.perf_counter()
    for name, y in data.items():
        row = evaluate(name, y, families, params)
        rows.append(row)
        print(f"{name:<44} auto {row['auto']:.3f} best {row['best']:<14} "
              f"{row['mase'][row['best']]:.3f} regret {row['regret']:.3f} | weights at the "
              f"end: {row['weights_end']}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    regrets = np.array([r["regret"] for r in rows])
    fixed = {f: float(np.median([r["mase"][f] / min(r["mase"].values()) for r in rows]))
             for f in families if all(f in r["mase"] for r in rows)}
    best_fixed = min(fixed, key=fixed.__getitem__)
    table = markdown(rows, families)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "selection_regret.md").write_text(table + "\n")
    (out / "selection_regret.json").write_text(json.dumps(rows, indent=1))
    print(table)
    candidate = float(np.median(regrets))
    print(json.dumps({
        "benchmark": "selection_regret", "quick": args.quick, "n_series": len(rows),
        "families": families,
        "candidate": round(candidate, 4), "worst": round(float(regrets.max()), 4),
        "baseline": round(fixed[best_fixed], 4), "baseline_family": best_fixed,
        "ratio": round(fixed[best_fixed] / candidate, 4),
        "auto_at_or_below_best": int((regrets <= 1.0).sum()),
        "fixed_family_median_regret": {k: round(v, 4) for k, v in fixed.items()},
        "goal": {"candidate": 1.0, "worst": 1.15},
        "seconds": round(time.perf_counter() - t0, 1),
    }))


def markdown(rows: list[dict], families: list[str]) -> str:
    head = "| series | MASE auto | best family | regret | " + " | ".join(
        f"{f}" for f in families) + " |"
    lines = [head, "|" + " --- |" * (4 + len(families))]
    for r in rows:
        cells = " | ".join(f"{r['mase'][f]:.3f}" if f in r["mase"] else "-" for f in families)
        lines.append(f"| {r['series']} | {r['auto']:.3f} | {r['best']} | {r['regret']:.3f} | "
                     f"{cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
