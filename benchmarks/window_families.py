"""Before/after of the training budget, the chain rule and the ``linear`` family.

For each development series (``benchmarks/devset.py``) one walk-forward backtest
(``tsforge.backtest.backtest``: fit on the first 70 %, stream the rest, H steps
ahead) scores, side by side on the same test readings:

- ``naive``, ``seasonal_naive``: the baselines;
- ``mlp_quick_old``: the mlp as ``tsforge report --quick`` trained it before
  (5 epochs, batch 64, no step budget) under the old chain;
- ``mlp_old``: the previous family defaults (30 epochs, batch 256, patience 5),
  old chain;
- ``mlp_budget``: today's defaults (a budget of 5,000 optimiser steps, batch 32,
  early stopping with patience 20 on the chronological validation split), old chain;
- ``mlp``: today's defaults and today's chain;
- ``linear``: the ridge least-squares window model, today's chain.

"Old chain" is the previous rule, which also differenced a deseasonalized series
when KPSS alone rejected; today's chain differences it only when ADF keeps a unit
root (``tsforge.preprocess.stationarity``).  MASE is the mean absolute error over
every step ahead divided by the in-sample MAE of the one-step seasonal-naive
forecast on the training part (the same scale for every column of a row).

    python benchmarks/window_families.py --quick   # HUFL, MUFL, LULL, last 1,500 readings
    python benchmarks/window_families.py           # all ETTh1 columns, last 1,500 readings

Options: ``--series``, ``--last N`` (0: whole series), ``--horizon``, ``--data DIR``.
Last line: JSON with per-series MASE and ``mlp_wins`` / ``linear_wins`` (series where
the family beats the better baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from devset import DEFAULT_ROOT, development_series

from tsforge.backtest import backtest
from tsforge.preprocess import analyze

OLD_QUICK = {"epochs": 5, "batch_size": 64, "max_steps": None, "patience": 5}
OLD_DEFAULTS = {"epochs": 30, "batch_size": 256, "max_steps": None, "patience": 5}
QUICK_SERIES = ("ETTh1/HUFL", "ETTh1/MUFL", "ETTh1/LULL")


def old_chain(report: Any) -> list[dict[str, Any]]:
    """The chain the previous rule recommended: a difference after deseasonalizing
    whenever KPSS rejected too (today's analysis says so in its reasons)."""
    chain = list(report.transforms)
    if any("not differenced" in r for r in report.reasons):
        chain.insert(1, {"kind": "difference"})
    return chain


def run_series(y: Any, period: int, horizon: int) -> dict[str, Any]:
    n_train = int(len(y) * 0.7)
    report = analyze(y[:n_train])
    new, old = report.transforms, old_chain(report)
    cells = [("naive", "naive", {}, new), ("seasonal_naive", "seasonal_naive", {}, new),
             ("mlp_quick_old", "mlp", OLD_QUICK, old), ("mlp_old", "mlp", OLD_DEFAULTS, old),
             ("mlp_budget", "mlp", {}, old), ("mlp", "mlp", {}, new),
             ("linear", "linear", {}, new)]
    row: dict[str, Any] = {"chain_old": [s["kind"] for s in old],
                           "chain_new": [s["kind"] for s in new]}
    for label, family, params, chain in cells:
        t0 = time.perf_counter()
        res = backtest(y, models=[(family, params)], horizon=horizon,
                       transforms=chain, period=period, intervals=None)
        row[label] = round(res.scores[0].mase, 3)
        row[f"{label}_s"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--series", default="")
    ap.add_argument("--last", type=int, default=1500)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--data", default=str(DEFAULT_ROOT))
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    wanted = (args.series.split(",") if args.series else
              list(QUICK_SERIES) if args.quick else None)
    from pathlib import Path

    series = [s for s in development_series(Path(args.data))
              if (wanted is None and s.name.startswith("ETTh1/")) or
              (wanted is not None and s.name in wanted)]
    if not series:
        raise SystemExit(f"no development series found under {args.data}")
    rows = {}
    for s in series:
        y = s.values[-args.last:] if args.last else s.values
        rows[s.name] = run_series(y, s.period, args.horizon)
        r = rows[s.name]
        print(f"{s.name:<12} chain old {'>'.join(r['chain_old'])}, new "
              f"{'>'.join(r['chain_new'])}", flush=True)
        print("   " + "  ".join(f"{k} {v}" for k, v in r.items()
                                if not k.startswith("chain") and not k.endswith("_s")),
              flush=True)
    best = {k: min(r["naive"], r["seasonal_naive"]) for k, r in rows.items()}
    print(json.dumps({"horizon": args.horizon, "last": args.last, "series": rows,
                      "mlp_wins": sum(r["mlp"] < best[k] for k, r in rows.items()),
                      "linear_wins": sum(r["linear"] < best[k] for k, r in rows.items()),
                      "n_series": len(rows)}))


if __name__ == "__main__":
    main()
