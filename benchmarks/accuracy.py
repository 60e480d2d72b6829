"""Accuracy of tsforge's families against simple baselines on real industrial series.

Every cell is one ``tsforge.backtest.backtest`` run (walk-forward: fit on the first
70 %, stream the rest one reading at a time), so these figures use the same
public contract as ``tsforge backtest --json``.

Series: ETTh1 ``OT`` (../shared/datasets, skipped when absent) and NAB machine
temperature (bundled).  Horizons 1 and 24.

    python benchmarks/accuracy.py [--quick] [--models a,b,...] [--out DIR]

Writes accuracy.csv / accuracy.json / accuracy.md to ``--out``; last line JSON with
ratio = seasonal-naive MASE / best tsforge model MASE (median over series and horizons).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from tsforge.backtest import backtest
from tsforge.data import prepare, read_csv
from tsforge.demo import bundled_csv

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BASELINES = ("naive", "seasonal_naive")
DEFAULT_MODELS = "naive,seasonal_naive,mlp,tcn,gru,lstm,stable_rnn"
NEURAL = {"mlp", "tcn", "gru", "lstm", "stable_rnn", "rnn"}


def series(quick: bool) -> dict[str, tuple[np.ndarray, int]]:
    """Name -> (values, season length)."""
    out = {}
    ett = SHARED / "ett" / "ETTh1.csv"
    if ett.exists():
        frame, _ = prepare(read_csv(ett))
        out["ETTh1/OT"] = (frame.column("OT"), 24)
    frame, _ = prepare(read_csv(bundled_csv()))
    out["NAB/machine_temperature"] = (frame.column(frame.sensors[0]), 288)
    if quick:
        out = {k: (v[-3000:], m) for k, (v, m) in out.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--horizons", default="1,24")
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    epochs = 4 if args.quick else 15
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = []
    for data_name, (y, season) in series(args.quick).items():
        for horizon in (int(h) for h in args.horizons.split(",")):
            specs = []
            for name in names:
                params: dict = {"epochs": epochs} if name in NEURAL else {}
                if name == "seasonal_naive":
                    params["period"] = season
                specs.append((name, params))
            result = backtest(y, models=specs, horizon=horizon, period=season, intervals=None)
            for s in result.scores:
                rows.append({"series": data_name, "horizon": horizon, "model": s.model,
                             "mae": s.mae, "mase": s.mase, "fit_seconds": s.fit_seconds,
                             "us_per_step": s.predict_us_per_step,
                             "transforms": s.transform_chain})
                print(f"{data_name:<26} h={horizon:<3} {s.model:<15} MAE {s.mae:8.4f} "
                      f"MASE {s.mase:7.3f}  fit {s.fit_seconds:6.1f} s", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "accuracy.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "accuracy.json").write_text(json.dumps(rows, indent=1))
    cells = sorted({(r["series"], r["horizon"]) for r in rows})
    lines = ["| model | " + " | ".join(f"{s} h={h}" for s, h in cells) + " |",
             "|---|" + "---|" * len(cells)]
    for name in names:
        vals = []
        for cell in cells:
            match = [r for r in rows if (r["series"], r["horizon"]) == cell and r["model"] == name]
            vals.append(f"{match[0]['mase']:.3f}" if match else "–")
        lines.append(f"| {name} | " + " | ".join(vals) + " |")
    table = "\n".join(lines)
    (out / "accuracy.md").write_text(table + "\n")
    print("\nMASE (lower is better)\n" + table)
    ratios = []
    for cell in cells:
        in_cell = [r for r in rows if (r["series"], r["horizon"]) == cell]
        snaive = [r["mase"] for r in in_cell if r["model"] == "seasonal_naive"]
        ours = [r["mase"] for r in in_cell if r["model"] not in BASELINES]
        if snaive and ours:
            ratios.append(snaive[0] / min(ours))
    print(json.dumps({"benchmark": "accuracy", "baseline": "seasonal_naive",
                      "candidate": "best tsforge model per series and horizon",
                      "ratio": float(np.median(ratios)) if ratios else None,
                      "cells": len(cells), "quick": args.quick, "table": str(out / "accuracy.md")}))


if __name__ == "__main__":
    main()
