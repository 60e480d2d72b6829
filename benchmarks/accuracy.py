"""Accuracy, interval calibration and cost of every registered family on the development data.

Every cell is one ``tsforge.backtest.backtest`` run (walk-forward: fit on the first
70 % of the series, stream the rest one reading at a time, forecasting H steps
before each reading), the public contract of ``tsforge backtest --json``.  The
transform chain is the stationarity analysis' recommendation on the training
part (``transforms="auto"``), computed once per series.  Online conformal
intervals (ACI, levels 0.8 and 0.95) are on for every model.

Grid: series (``benchmarks/devset.py``: ETTh1 OT and load columns, NAB
realKnownCause, SKAB anomaly-free channels) x horizons 1 and 24 x every name in
``tsforge.models.available()`` (new families join automatically).

    python benchmarks/accuracy.py --quick      # 2 series, < ~2 min on 2 idle cores
    python benchmarks/accuracy.py              # table mode: the table in docs/accuracy.md
    python benchmarks/accuracy.py --full       # whole series, default epochs (a big machine)

Options: ``--models a,b`` (default: all registered), ``--series ETTh1/OT,...``,
``--horizons 1,24``, ``--data DIR`` (default ``../shared/datasets``), ``--out DIR``,
``--resume`` (keep the cells already in ``--out``/rows.jsonl), ``--report-only``.

Writes rows.jsonl (one row per cell, as it finishes), accuracy.csv,
accuracy.json (rows, settings, per-family summary, coverage check) and
accuracy.md.  Last line: JSON with ratio = seasonal-naive MASE / ``auto`` MASE,
median over series and horizons (the best single tsforge family, labelled as
such, when ``auto`` is not registered).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import accuracy_report as report
import numpy as np
from devset import DEFAULT_ROOT, Series, development_series

from tsforge.backtest import backtest
from tsforge.intervals import IntervalConfig
from tsforge.io_utils import atomic_write_bytes
from tsforge.models.registry import available, model_class
from tsforge.preprocess import analyze

LEVELS = (0.8, 0.95)


@dataclass(frozen=True)
class Mode:
    """Budget of one run mode (printed and stored with the results)."""

    name: str
    last: int | None  # most recent readings of each series used (None: all)
    epochs: int | None  # epochs of the torch families (None: their default, 30)
    online_hidden: int | None  # hidden size of rtrl/uoro (None: default, 16)
    statespace: dict[str, int] = field(default_factory=dict)  # ets/arima overrides
    series: tuple[str, ...] = ()  # restrict to these series (empty: all)


MODES = {
    "quick": Mode("quick", last=1200, epochs=2, online_hidden=8,
                  statespace={"refit_every": 0, "max_window": 500, "maxiter": 10},
                  series=("ETTh1/OT", "NAB/machine_temperature_system_failure")),
    "table": Mode("table", last=1200, epochs=5, online_hidden=8,
                  statespace={"refit_every": 0, "max_window": 300, "maxiter": 10}),
    "full": Mode("full", last=None, epochs=None, online_hidden=None),
}


def model_params(name: str, mode: Mode) -> dict[str, Any]:
    """Hyper-parameters a family gets in ``mode`` (only budget knobs are changed)."""
    fields = model_class(name).Config.__dataclass_fields__
    params: dict[str, Any] = {}
    if mode.epochs is not None and "epochs" in fields:
        params["epochs"] = mode.epochs
    if mode.online_hidden is not None and name in ("rtrl", "uoro"):
        params["hidden"] = mode.online_hidden
    if "refit_every" in fields:
        params.update({k: v for k, v in mode.statespace.items() if k in fields})
    if "params" in fields:  # a selector (``auto``): the same budget for the families it builds
        nested = {n: model_params(n, mode) for n in available() if n != name}
        params["params"] = {n: p for n, p in nested.items() if p}
    return params


def run_cell(s: Series, y: np.ndarray, transforms: list[dict[str, Any]], horizon: int,
             name: str, mode: Mode) -> dict[str, Any]:
    """Backtest one family on one series at one horizon; a failure becomes an error row."""
    params = model_params(name, mode)
    row: dict[str, Any] = {"series": s.name, "horizon": horizon, "model": name,
                           "params": params, "n": len(y), "period": s.period}
    try:
        result = backtest(y, models=[(name, params)], horizon=horizon, period=s.period,
                          transforms=transforms, intervals=IntervalConfig(levels=LEVELS))
    except Exception as exc:  # a family that cannot fit a series is reported, not fatal
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    sc = result.scores[0]
    row.update({"mae": sc.mae, "mase": sc.mase, "rmse": sc.rmse,
                "fit_seconds": sc.fit_seconds, "us_per_step": sc.predict_us_per_step,
                "n_train": sc.n_train, "n_test": sc.n_test,
                "transforms": sc.transform_chain})
    for lvl in LEVELS:
        key = f"{lvl:g}"
        row[f"coverage_{key}"] = sc.coverage.get(key, float("nan"))
        row[f"width_{key}"] = sc.interval_width.get(key, float("nan"))
    return row


def select_series(all_series: list[Series], mode: Mode, wanted: str | None) -> list[Series]:
    names = [n.strip() for n in wanted.split(",")] if wanted else list(mode.series)
    if names:
        missing = [n for n in names if n not in {s.name for s in all_series}]
        if missing:
            print(f"skipped (absent): {', '.join(missing)}", flush=True)
        return [s for s in all_series if s.name in names]
    return all_series


def write_outputs(out: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
                  summary: dict[str, Any], markdown: str) -> None:
    """accuracy.csv (scored cells), accuracy.json (everything) and accuracy.md."""
    ok = [r for r in rows if "error" not in r]
    text = io.StringIO()
    if ok:
        keys = [k for k in ok[0] if k != "params"]
        writer = csv.DictWriter(text, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(ok)
    atomic_write_bytes(out / "accuracy.csv", text.getvalue().encode())
    payload = report.clean({"settings": settings, "summary": summary, "rows": rows})
    atomic_write_bytes(out / "accuracy.json", json.dumps(payload, indent=1).encode())
    atomic_write_bytes(out / "accuracy.md", markdown.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true")
    group.add_argument("--full", action="store_true")
    parser.add_argument("--models", default=None, help="comma-separated; default: all registered")
    parser.add_argument("--series", default=None, help="comma-separated series names")
    parser.add_argument("--horizons", default="1,24")
    parser.add_argument("--data", default=str(DEFAULT_ROOT))
    parser.add_argument("--out", default="benchmarks/out/accuracy")
    parser.add_argument("--resume", action="store_true",
                        help="keep the cells already in OUT/rows.jsonl, run only the others")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the tables from OUT/rows.jsonl without running models")
    args = parser.parse_args()
    mode = MODES["quick" if args.quick else "full" if args.full else "table"]
    names = [m.strip() for m in args.models.split(",")] if args.models else available()
    horizons = [int(h) for h in args.horizons.split(",")]
    chosen = select_series(development_series(Path(args.data)), mode, args.series)
    if not chosen:
        print(json.dumps({"benchmark": "accuracy", "skipped": f"no development data under "
                          f"{args.data}; pass --data DIR"}))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"mode": asdict(mode), "models": names, "horizons": horizons,
                "levels": list(LEVELS), "train_fraction": 0.7, "interval_method": "aci",
                "series": [s.name for s in chosen], "torch_threads": 1,
                "loadavg_start": os.getloadavg()}
    print("settings: " + json.dumps(settings), flush=True)
    import torch

    torch.set_num_threads(1)
    jsonl = out / "rows.jsonl"
    keep = args.resume or args.report_only
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()] \
        if keep and jsonl.exists() else []
    if args.report_only:
        chosen = []
        settings["series"] = sorted({r["series"] for r in rows})
    done = {(r["series"], r["horizon"], r["model"]) for r in rows}
    if not keep:
        jsonl.write_text("")
    t_start = time.perf_counter()
    for s in chosen:
        y = s.values[-mode.last:] if mode.last else s.values
        todo = [(h, n) for h in horizons for n in names if (s.name, h, n) not in done]
        if not todo:
            continue
        transforms = analyze(y[: int(len(y) * 0.7)], name=s.name).transforms
        for horizon, name in todo:
            row = run_cell(s, y, transforms, horizon, name, mode)
            rows.append(row)
            with open(jsonl, "a") as fh:
                fh.write(json.dumps(row, default=float) + "\n")
            print(report.progress_line(row), flush=True)
    settings["loadavg_end"] = os.getloadavg()
    settings["seconds"] = round(time.perf_counter() - t_start, 1)
    summary = report.summarise(rows, names, LEVELS)
    markdown = report.markdown(rows, summary, settings)
    write_outputs(out, rows, settings, summary, markdown)
    print("\n" + markdown)
    print(json.dumps(report.last_line(summary, settings, out)))


if __name__ == "__main__":
    main()
