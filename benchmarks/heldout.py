"""``auto`` on series it was never tuned on, against naive, seasonal naive, river and statsmodels.

Series (none is in the development set of ``benchmarks/devset.py``), read from
``../shared/datasets`` and skipped when absent: the steel plant's ``Usage_kWh``
(15 min, season 96), ETTm1 ``HUFL`` (15 min, season 96), ETTh2 ``OT`` (1 h,
season 24), river's water-flow (1 h, season 24).  The last ``--rows`` readings
(6,000; water-flow has 1,268), train fraction 0.7, horizons 1 and 24, online
conformal intervals at 0.8 and 0.95 on every model.

Per (series, horizon) the reference is the best of naive, seasonal naive, river's
SNARIMAX and statsmodels' ETS and ARIMA; ``auto`` wins a case when its MASE is at
or below the reference, and wins clearly when it is 10 % or more below.

    python benchmarks/heldout.py [--rows 6000] [--out DIR] [--resume]

Writes OUT/rows.jsonl (one cell per line, as it finishes) and OUT/heldout.md.
Last line JSON: cases, wins (at or below), clear wins (>= 10 % below), the
largest coverage gap of ``auto`` from nominal, and ``ratio`` = median over cases
of reference MASE / ``auto`` MASE.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from tsforge.backtest import backtest
from tsforge.intervals import IntervalConfig
from tsforge.preprocess import analyze

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REFERENCES = ("naive", "seasonal_naive", "snarimax", "ets", "arima")
LEVELS = (0.8, 0.95)
#: name -> (file under SHARED, column, readings per day)
SERIES = {
    "steel/Usage_kWh": ("steel/Steel_industry_data.csv", "Usage_kWh", 96),
    "ETTm1/HUFL": ("ett/ETTm1.csv.gz", "HUFL", 96),
    "ETTh2/OT": ("ett/ETTh2.csv", "OT", 24),
    "river/water-flow": ("river/water-flow.csv", "Water flow [l/s]", 24),
}


def load(rows: int) -> dict[str, tuple[np.ndarray, int]]:
    import pandas as pd

    out = {}
    for name, (rel, col, period) in SERIES.items():
        path = SHARED / rel
        if path.exists():
            y = pd.read_csv(path)[col].to_numpy(float)
            out[name] = (y[np.isfinite(y)][-rows:], period)
    return out


def cell(name: str, y: np.ndarray, period: int, horizon: int, model: str) -> dict:
    n_train = int(len(y) * 0.7)
    transforms = analyze(y[:n_train], name=name).transforms
    params = {"params": {"mlp": {"epochs": 10}}, "transforms": transforms} \
        if model == "auto" else {}
    result = backtest(y, models=[(model, params)], horizon=horizon, period=period,
                      transforms=transforms, intervals=IntervalConfig(levels=LEVELS))
    s = result.scores[0]
    return {"series": name, "horizon": horizon, "model": model, "mase": s.mase,
            "coverage": s.coverage, "fit_seconds": s.fit_seconds, "n": len(y),
            "period": period, "family": s.family, "explanation": s.explanation}


def summarise(rows: list[dict]) -> tuple[str, dict]:
    cases = sorted({(r["series"], r["horizon"]) for r in rows})
    lines = ["| series | h | auto | best reference | ratio | cov 0.8 | cov 0.95 | weights at the "
             "end |", "|" + " --- |" * 8]
    wins = clear = 0
    ratios, gaps = [], []
    for series, h in cases:
        got = {r["model"]: r for r in rows if (r["series"], r["horizon"]) == (series, h)}
        refs = {m: got[m]["mase"] for m in REFERENCES if m in got}
        if "auto" not in got or not refs:
            continue
        best = min(refs, key=refs.__getitem__)
        a = got["auto"]
        ratio = refs[best] / a["mase"]
        ratios.append(ratio)
        wins += a["mase"] <= refs[best]
        clear += a["mase"] <= 0.9 * refs[best]
        cov = a["coverage"]
        gaps += [abs(cov[f"{lvl:g}"] - lvl) for lvl in LEVELS]
        lines.append(f"| {series} | {h} | {a['mase']:.3f} | {best} {refs[best]:.3f} | "
                     f"{ratio:.2f} | {cov['0.8']:.3f} | {cov['0.95']:.3f} | {a['family']} |")
    summary = {"benchmark": "heldout", "cases": len(ratios), "wins": int(wins),
               "clear_wins": int(clear),
               "ratio": round(float(np.median(ratios)), 4) if ratios else None,
               "max_coverage_gap": round(float(max(gaps)), 4) if gaps else None,
               "goal": {"wins": "7 of 8", "clear_wins": "4 of 8", "coverage_gap": 0.02}}
    return "\n".join(lines), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--horizons", default="1,24")
    parser.add_argument("--series", default="", help="comma list (default: all four)")
    parser.add_argument("--models", default=",".join(("auto", *REFERENCES)))
    parser.add_argument("--out", default="benchmarks/out/heldout")
    parser.add_argument("--resume", action="store_true",
                        help="keep the cells already in OUT/rows.jsonl, run only the others")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "rows.jsonl"
    rows = [json.loads(x) for x in jsonl.read_text().splitlines()] \
        if args.resume and jsonl.exists() else []
    if not args.resume:
        jsonl.write_text("")
    done = {(r["series"], r["horizon"], r["model"]) for r in rows}
    data = load(args.rows)
    if args.series:
        data = {k: v for k, v in data.items() if k in args.series.split(",")}
    if not data:
        print(json.dumps({"benchmark": "heldout", "skipped": f"no data under {SHARED}"}))
        return
    t0 = time.perf_counter()
    for name, (y, period) in data.items():
        for h in (int(x) for x in args.horizons.split(",")):
            for model in args.models.split(","):
                if (name, h, model) in done:
                    continue
                row = cell(name, y, period, h, model)
                rows.append(row)
                with open(jsonl, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{name:<20} h={h:<3} {model:<15} MASE {row['mase']:.3f} cov "
                      f"{row['coverage'].get('0.8', float('nan')):.3f}/"
                      f"{row['coverage'].get('0.95', float('nan')):.3f} fit "
                      f"{row['fit_seconds']:.1f} s ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    table, summary = summarise(rows)
    (out / "heldout.md").write_text(table + "\n")
    print(table)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
