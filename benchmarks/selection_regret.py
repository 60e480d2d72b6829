"""Regret of the regime policy: MASE of the family it picks / MASE of the best family in
hindsight, on the synthetic regimes and on real series.

For every series the candidate families (the policy's roles: windowed ``mlp``,
fixed-feedback ``dsf_gru``, online ``uoro``, short-history ``esn``; ``--extra``
adds others to the hindsight set) are backtested with the public
``tsforge.backtest.backtest`` (fit on the first 70 %, stream the rest).  The
policy decides from the transformed training part exactly as ``auto`` does at
``fit`` (:meth:`AutoForecaster.plan`), without seeing the test part.

Series: the fixed-seed suite of :mod:`tsforge.selection.synthetic`; ETTh1 columns,
NAB realKnownCause series and SKAB anomaly-free channels read from
``../shared/datasets`` (skipped when absent; nothing is copied).

    python benchmarks/selection_regret.py [--quick] [--full-auto] [--out DIR]

``--quick``: 800-reading series, 5 epochs, the synthetic suite and three real
series; default: 1,500 readings, 12 epochs, every series.  ``--full-auto`` also streams the
``auto`` model itself (with live switching) and reports its MASE.

Last line JSON: benchmark, baseline (median regret of the best single fixed
family), candidate (median regret of the policy), ratio (median of best MASE /
picked MASE), worst regret, and the counts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tsforge.backtest import backtest
from tsforge.preprocess import analyze
from tsforge.preprocess.transforms import TransformChain
from tsforge.selection.auto import AutoForecaster
from tsforge.selection.synthetic import suite

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CANDIDATES = ("mlp", "dsf_gru", "uoro", "esn")
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
    return {"mlp": {"epochs": epochs}, "tcn": {"epochs": epochs},
            "dsf_gru": {"epochs": epochs, "hidden": 16 if quick else 32},
            "rtrl": {"hidden": 8}}


def decide(y: np.ndarray, train_fraction: float, params: dict[str, dict]) -> tuple[object, int,
                                                                                  AutoForecaster]:
    """The policy's decision on the transformed training part, as ``auto`` takes it."""
    n_train = int(len(y) * train_fraction)
    report = analyze(y[:n_train], name="target")
    period = report.period or 1
    z = TransformChain.from_spec(report.transforms).fit(y[:n_train]).transform(y[:n_train])
    auto = AutoForecaster(period=period if period > 1 else 0, params=params)
    return auto.plan(z), period, auto


def evaluate(name: str, y: np.ndarray, families: list[str], params: dict[str, dict],
             full_auto: bool) -> dict:
    decision, period, auto = decide(y, 0.7, params)
    # every candidate gets the sizing auto would give it on this profile
    specs = [(f, auto.family_params(f, decision.profile)) for f in families]  # type: ignore
    if full_auto:
        specs.append(("auto", {"params": params}))
    result = backtest(y, models=specs, horizon=1, period=period, intervals=None)
    mase = {s.model: float(s.mase) for s in result.scores}
    fams = {f: mase[f] for f in families}
    best = min(fams, key=fams.__getitem__)
    picked = decision.family  # type: ignore[attr-defined]
    row = {"series": name, "picked": picked, "rule": decision.rule,  # type: ignore[attr-defined]
           "best": best, "regret": fams[picked] / fams[best], "mase": fams,
           "explanation": decision.explanation,  # type: ignore[attr-defined]
           "profile": decision.profile.to_dict()}  # type: ignore[attr-defined]
    if full_auto:
        row["auto_mase"] = mase["auto"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full-auto", action="store_true",
                        help="also stream the auto model itself (live switching)")
    parser.add_argument("--extra", default="", help="more families in the hindsight set")
    parser.add_argument("--only", default="",
                        help="comma list of substrings: keep series whose name has one")
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    n = 800 if args.quick else 1500
    families = list(CANDIDATES) + [f for f in args.extra.split(",") if f.strip()]
    params = budget(args.quick)
    data = {f"synthetic/{k}": v for k, v in suite(n).items()}
    real = real_series(n)
    if args.quick:  # a few real series of each source
        keep = ("ETTh1/OT", "NAB/machine_temperature_system_failure", "SKAB/Temperature")
        real = {k: v for k, v in real.items() if k in keep}
    data.update(real)
    wanted = [w for w in args.only.split(",") if w] or [""]
    data = {k: v for k, v in data.items() if any(w in k for w in wanted)}
    rows = []
    t0 = time.perf_counter()
    for name, y in data.items():
        row = evaluate(name, y, families, params, args.full_auto)
        rows.append(row)
        cells = " ".join(f"{f} {row['mase'][f]:.3f}" for f in families)
        extra = f" auto {row['auto_mase']:.3f}" if "auto_mase" in row else ""
        print(f"{name:<48} picked {row['picked']:<8}({row['rule']}) best {row['best']:<8} "
              f"regret {row['regret']:.3f} | {cells}{extra}", flush=True)
    regrets = np.array([r["regret"] for r in rows])
    fixed = {f: float(np.median([r["mase"][f] / min(r["mase"].values()) for r in rows]))
             for f in families}
    best_fixed = min(fixed, key=fixed.__getitem__)
    table = markdown(rows, families)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "selection_regret.md").write_text(table + "\n")
    (out / "selection_regret.json").write_text(json.dumps(rows, indent=1))
    print(table)
    synth = [r["regret"] for r in rows if r["series"].startswith("synthetic/")]
    realr = [r["regret"] for r in rows if not r["series"].startswith("synthetic/")]
    print(json.dumps({
        "benchmark": "selection_regret", "quick": args.quick, "n_series": len(rows),
        "baseline": round(fixed[best_fixed], 4), "baseline_family": best_fixed,
        "candidate": round(float(np.median(regrets)), 4),
        "ratio": round(float(np.median(1.0 / regrets)), 4),
        "worst_regret": round(float(regrets.max()), 4),
        "median_regret_synthetic": round(float(np.median(synth)), 4) if synth else None,
        "median_regret_real": round(float(np.median(realr)), 4) if realr else None,
        "fixed_family_median_regret": {k: round(v, 4) for k, v in fixed.items()},
        "target": {"median": 1.05, "worst": 1.3},
        "seconds": round(time.perf_counter() - t0, 1),
    }))


def markdown(rows: list[dict], families: list[str]) -> str:
    head = "| series | picked (rule) | best | regret | " + " | ".join(
        f"MASE {f}" for f in families) + " |"
    lines = [head, "|" + " --- |" * (4 + len(families))]
    for r in rows:
        cells = " | ".join(f"{r['mase'][f]:.3f}" for f in families)
        lines.append(f"| {r['series']} | {r['picked']} ({r['rule']}) | {r['best']} | "
                     f"{r['regret']:.3f} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
