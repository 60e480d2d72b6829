"""How fast online learners recover after the process changes, side by side in one run.

Streams: (1) a synthetic AR(2) process whose coefficients switch abruptly every
``segment`` readings, drawn with ``--seeds`` noise seeds (figures averaged over
them: one online run is sensitive to its noise path); (2) NAB machine
temperature (bundled), which runs into a known failure.  Learners: rtrl, uoro,
esn, ptncn (K = 1 correction step, as the reference code) and ptncn_k3 (K = 3),
all learning online, a frozen mlp and river's SNARIMAX (``snarimax``).  All see
the same standardised stream and forecast one step ahead.

Steps to recover after a switch: the number of readings until the rolling MAE
(window 100) first comes back within 10 % of the learner's own rolling MAE just
before the switch (capped at the segment length).  Post-switch MAE: mean absolute
error over the first 2 x window readings after each switch.

    python benchmarks/online_adaptation.py [--quick] [--seeds N] [--out DIR]

Last line: JSON; ratio = frozen mlp mean steps-to-recover / best online learner's;
``ptncn_vs_best_other`` = each ptncn variant's figure / the best of rtrl, uoro, esn
(below 1: ptncn wins on that figure).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tsforge.demo import bundled_csv
from tsforge.models import create
from tsforge.models.transformed import TransformedForecaster

#: label -> (registry name, parameters)
LEARNERS = {
    "rtrl": ("rtrl", {"hidden": 16}),
    "uoro": ("uoro", {"hidden": 16}),
    "esn": ("esn", {"reservoir": 100}),
    "ptncn": ("ptncn", {"hidden": 16}),
    "ptncn_k3": ("ptncn", {"hidden": 16, "inference_steps": 3}),
    "mlp": ("mlp", {"window": 16, "epochs": 10}),
    "snarimax": ("snarimax", {}),
}
ONLINE = ("rtrl", "uoro", "esn", "ptncn", "ptncn_k3")
OTHERS = ("rtrl", "uoro", "esn")
WINDOW = 100


def switching_ar(n: int, segment: int, seed: int = 0) -> np.ndarray:
    regimes = [(0.9, -0.2), (-0.5, 0.3), (1.3, -0.6), (0.2, 0.5)]
    rng = np.random.default_rng(seed)
    z = np.zeros(n)
    for t in range(2, n):
        a1, a2 = regimes[(t // segment) % len(regimes)]
        z[t] = a1 * z[t - 1] + a2 * z[t - 2] + 0.5 * rng.standard_normal()
    return z


def rolling_mae(errors: np.ndarray) -> np.ndarray:
    c = np.cumsum(np.insert(np.abs(errors), 0, 0.0))
    out = np.full(errors.size, np.nan)
    out[WINDOW - 1 :] = (c[WINDOW:] - c[:-WINDOW]) / WINDOW
    return out


def steps_to_recover(roll: np.ndarray, switches: list[int], segment: int) -> list[int]:
    out = []
    for s in switches:
        before = roll[s - 1]
        after = roll[s : s + segment]
        ok = np.flatnonzero(after <= 1.1 * before)
        # the window still holds pre-switch readings for WINDOW steps: look past them
        ok = ok[ok >= WINDOW]
        out.append(int(ok[0]) if ok.size else segment)
    return out


def stream(label: str, y: np.ndarray, n_fit: int) -> tuple[np.ndarray, float]:
    name, params = LEARNERS[label]
    model = TransformedForecaster(create(name, horizon=1, **params), [{"kind": "scale"}],
                                  intervals=None)
    model.fit(y[:n_fit])
    errors = np.empty(len(y) - n_fit)
    t0 = time.perf_counter()
    for i, value in enumerate(y[n_fit:]):
        errors[i] = model.forecast().mean[0] - value
        model.learn_one(value)
    return errors, (time.perf_counter() - t0) / len(errors) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None,
                        help="noise seeds of the synthetic stream (default 2 quick, 3 full)")
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    segment = 800 if args.quick else 1500
    n_fit = 600
    seeds = args.seeds or (2 if args.quick else 3)
    synths = [switching_ar(n_fit + 4 * segment, segment, seed) for seed in range(seeds)]
    import pandas as pd

    nab = pd.read_csv(bundled_csv())["value"].to_numpy()
    nab = nab[-(3000 if args.quick else 8000):]
    switches = [segment * k - n_fit for k in range(1, 5) if segment * k > n_fit]
    results: dict[str, dict] = {}
    curves: dict[str, dict[str, np.ndarray]] = {"synthetic": {}, "nab": {}}
    for label in LEARNERS:
        rec, post_list, mae, times = [], [], [], []
        for synth in synths:
            err_s, us = stream(label, synth, n_fit)
            roll = rolling_mae(err_s)
            curves["synthetic"].setdefault(label, roll)  # the plot shows seed 0
            rec += steps_to_recover(roll, switches, segment)
            post_list += [np.abs(err_s[s : s + 2 * WINDOW]).mean() for s in switches]
            mae.append(np.mean(np.abs(err_s)))
            times.append(us)
        err_n, us = stream(label, nab, 1000)
        curves["nab"][label] = rolling_mae(err_n)
        post, us = float(np.mean(post_list)), float(np.mean([*times, us]))
        results[label] = {"synthetic_mae": float(np.mean(mae)),
                          "nab_mae": float(np.mean(np.abs(err_n))),
                          "post_switch_mae": post,
                          "steps_to_recover": rec, "mean_steps_to_recover": float(np.mean(rec)),
                          "us_per_step": us}
        print(f"{label:<9} synthetic MAE {results[label]['synthetic_mae']:.3f}  "
              f"NAB MAE {results[label]['nab_mae']:.3f}  post-switch MAE {post:.3f}  "
              f"recover {rec}  {us:.0f} µs/step")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(11, 7), constrained_layout=True)
    for ax, (title, data) in zip(axes, curves.items()):
        for name, roll in data.items():
            ax.plot(roll, lw=0.9, label=name)
        ax.set_title(f"rolling MAE (window {WINDOW}), {title}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for s in switches:
        axes[0].axvline(s, color="grey", ls="--", lw=0.8)
    fig.savefig(out / "online_adaptation.png", dpi=100)
    online = {k: v["mean_steps_to_recover"] for k, v in results.items() if k in ONLINE}
    best = min(online, key=online.get)
    figures = ("synthetic_mae", "nab_mae", "post_switch_mae", "mean_steps_to_recover",
               "us_per_step")
    versus = {label: {f: results[label][f] / min(results[o][f] for o in OTHERS)
                      for f in figures} for label in ("ptncn", "ptncn_k3")}
    print(json.dumps({
        "benchmark": "online_adaptation", "baseline": "mlp (frozen)", "candidate": best,
        "ratio": results["mlp"]["mean_steps_to_recover"] / max(online[best], 1.0),
        "ptncn_vs_best_other": versus, "results": results,
        "plot": str(out / "online_adaptation.png"), "seeds": seeds, "quick": args.quick,
    }))


if __name__ == "__main__":
    main()
