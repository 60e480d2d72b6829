"""Cost per reading of the online learners, side by side on the same CPU in one run.

Candidates: RTRL, UORO, ESN and P-TNCN (two latent layers of ``hidden`` units;
K = 1 and K = 3 correction steps) ``learn_one``; baseline: one plain forward +
backward (one-step vector-Jacobian product) of the same tanh cell with its
readout, the cheapest any gradient learner can be.  Hidden sizes 16, 32, 64.

    python benchmarks/online_cost.py [--quick]

Last line: JSON with ratio = RTRL seconds per step / UORO seconds per step at n = 64,
and P-TNCN's cost relative to UORO and to the forward + backward baseline at n = 64.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tsforge.models import create
from tsforge.models.online import rnn


def per_step(fn, steps: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


#: label -> (registry name, extra parameters)
LEARNERS = {"rtrl": ("rtrl", {}), "uoro": ("uoro", {}), "esn": ("esn", {}),
            "ptncn": ("ptncn", {}), "ptncn_k3": ("ptncn", {"inference_steps": 3})}


def learner_step(label: str, hidden: int, z: np.ndarray):
    name, extra = LEARNERS[label]
    params = {"reservoir": hidden} if name == "esn" else {"hidden": hidden, "fit_readings": 50}
    model = create(name, horizon=1, **params, **extra).fit(z[:100])
    it = iter(np.tile(z, 1000))
    return lambda: model.learn_one(next(it))


def forward_backward_step(hidden: int, z: np.ndarray):
    """Forward of the cell + readout and backward through that single step (no history)."""
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 0.3, rnn.n_params(hidden, 1))
    V = rng.normal(0, 0.3, hidden)
    state = {"h": np.zeros(hidden), "i": 0}

    def step() -> None:
        x = np.array([z[state["i"] % len(z)]])
        h_new, D = rnn.step(theta, state["h"], x, hidden)
        err = V @ h_new - x[0]
        grad = rnn.immediate_vjp(err * V, D, state["h"], x)
        theta[:] -= 1e-4 * grad
        state["h"], state["i"] = h_new, state["i"] + 1

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    z = np.sin(np.arange(2000) / 7.0) + np.random.default_rng(0).normal(0, 0.1, 2000)
    rows = []
    for n in (16, 32, 64):
        steps = {"rtrl": 100 if n == 64 else 300, "uoro": 2000, "esn": 2000, "ptncn": 2000,
                 "ptncn_k3": 1000, "fwd_bwd": 5000}
        if args.quick:
            steps = {k: max(50, v // 4) for k, v in steps.items()}
        row = {"hidden": n, "fwd_bwd": per_step(forward_backward_step(n, z), steps["fwd_bwd"])}
        for label in LEARNERS:
            row[label] = per_step(learner_step(label, n, z), steps[label])
        rows.append(row)
        print(f"n={n:3d}  " + "  ".join(f"{k} {row[k] * 1e6:9.1f} µs" for k in
                                          (*LEARNERS, "fwd_bwd")))
    n64 = rows[-1]
    print(json.dumps({
        "benchmark": "online_cost", "baseline": "rtrl", "candidate": "uoro",
        "ratio": n64["rtrl"] / n64["uoro"],
        "uoro_over_fwd_bwd_n64": n64["uoro"] / n64["fwd_bwd"],
        "ptncn_over_uoro_n64": n64["ptncn"] / n64["uoro"],
        "ptncn_over_fwd_bwd_n64": n64["ptncn"] / n64["fwd_bwd"],
        "us_per_step": {str(r["hidden"]): {k: r[k] * 1e6 for k in r if k != "hidden"}
                        for r in rows},
        "quick": args.quick,
    }))


if __name__ == "__main__":
    main()
