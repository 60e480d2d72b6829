"""Cost per reading of the online learners, side by side on the same CPU in one run.

Part 1, one sensor: RTRL, UORO, ESN and P-TNCN (two latent layers of ``hidden``
units; K = 1 and K = 3 correction steps) ``learn_one``; baseline: one plain forward
+ backward (one-step vector-Jacobian product) of the same tanh cell with its
readout, the cheapest any gradient learner can be.  Hidden sizes 16, 32, 64.

Part 2, many sensors: one batch learner serving S = 1 and S = 256 sensors
(``learn_many``, n = 64, ESN reservoir 100), in sensor-steps per second.

BLAS is pinned to one thread for the whole run (threadpoolctl), as the learners
pin it on their own hot path, and costs are CPU seconds of this process.

    python benchmarks/online_cost.py [--quick]

Last line: JSON with ``ratio`` = RTRL seconds per step / UORO seconds per step at
n = 64 (RTRL's O(n^4) against UORO's O(n^2) only reaches 30 and more from n = 128),
``uoro_over_fwd_bwd`` (UORO ``learn_one`` / forward+backward step at n = 64, goal
<= 4) and ``uoro_over_fwd_bwd_s256`` (the same with both batched over 256 sensors,
where Python's fixed cost per call is shared and the arithmetic shows),
``sensor_steps_per_s`` per learner at S = 1 and S = 256, and ``ratio_vectorised`` =
ESN sensor-steps/s at S = 256 / at S = 1 (goal >= 10).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tsforge.models import create
from tsforge.models.online import rnn
from tsforge.models.online.batch import one_blas_thread


def per_step(fn, steps: int) -> float:
    """CPU seconds per call (``time.process_time``: on a shared, loaded machine the wall
    clock mostly measures waiting; with BLAS on one thread CPU time is the cost)."""
    fn()  # warm-up
    t0 = time.process_time()
    for _ in range(steps):
        fn()
    return (time.process_time() - t0) / steps


#: label -> (registry name, extra parameters)
LEARNERS = {"rtrl": ("rtrl", {}), "uoro": ("uoro", {}), "esn": ("esn", {}),
            "ptncn": ("ptncn", {}), "ptncn_k3": ("ptncn", {"inference_steps": 3})}


def learner_step(label: str, hidden: int, z: np.ndarray):
    name, extra = LEARNERS[label]
    params = {"reservoir": hidden} if name == "esn" else {"hidden": hidden, "fit_readings": 50}
    model = create(name, horizon=1, **params, **extra).fit(z[:100])
    it = iter(np.tile(z, 1000))
    return lambda: model.learn_one(next(it))


def forward_backward_step(hidden: int, z: np.ndarray, sensors: int | None = None):
    """Forward of the cell + readout and backward through that single step (no history),
    for one sensor (flat arrays) or ``sensors`` at once (leading sensor axis)."""
    rng = np.random.default_rng(0)
    lead = () if sensors is None else (sensors,)
    theta = rng.normal(0, 0.3, (*lead, rnn.n_params(hidden, 1)))
    V = rng.normal(0, 0.3, (*lead, hidden))
    state = {"h": np.zeros((*lead, hidden)), "i": 0}

    def step() -> None:
        x = np.full((*lead, 1), z[state["i"] % len(z)])
        h_new, D = rnn.step(theta, state["h"], x, hidden)
        err = np.einsum("...n,...n->...", V, h_new) - x[..., 0]
        grad = rnn.immediate_vjp(err[..., None] * V, D, state["h"], x)
        theta[...] -= 1e-4 * grad
        state["h"], state["i"] = h_new, state["i"] + 1

    return step


def batch_rate(label: str, sensors: int, z: np.ndarray, steps: int) -> float:
    """Sensor-steps per second of one batch learner serving ``sensors`` sensors."""
    name, extra = LEARNERS[label]
    params = {"reservoir": 100} if name == "esn" else {"hidden": 64, "fit_readings": 50}
    model = create(name, horizon=1, **params, **extra).fit(z[:200])
    batch = type(model.batch_).from_models([model] * sensors)
    offsets = np.linspace(-0.5, 0.5, sensors)
    it = iter(np.tile(z, 100))
    seconds = per_step(lambda: batch.learn_many(next(it) + offsets), steps)
    return sensors / seconds


#: learner -> steps timed at (S = 1, S = 256), full run; --quick takes a quarter (>= 3)
BATCH_STEPS = {"rtrl": (100, 3), "uoro": (1000, 40), "esn": (1000, 40), "ptncn": (1000, 40)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with one_blas_thread():
        run(args.quick)


def run(quick: bool) -> None:
    z = np.sin(np.arange(2000) / 7.0) + np.random.default_rng(0).normal(0, 0.1, 2000)
    rows = []
    for n in (16, 32, 64):
        steps = {"rtrl": 100 if n == 64 else 300, "uoro": 2000, "esn": 2000, "ptncn": 2000,
                 "ptncn_k3": 1000, "fwd_bwd": 5000}
        if quick:
            steps = {k: max(50, v // 4) for k, v in steps.items()}
        row = {"hidden": n, "fwd_bwd": per_step(forward_backward_step(n, z), steps["fwd_bwd"])}
        for label in LEARNERS:
            row[label] = per_step(learner_step(label, n, z), steps[label])
        rows.append(row)
        print(f"n={n:3d}  " + "  ".join(f"{k} {row[k] * 1e6:9.1f} µs" for k in
                                          (*LEARNERS, "fwd_bwd")))
    n64 = rows[-1]
    rates: dict[str, dict[str, float]] = {}
    for label, (one, many) in BATCH_STEPS.items():
        if quick:
            one, many = max(50, one // 4), max(3, many // 4)
        rates[label] = {"1": batch_rate(label, 1, z, one), "256": batch_rate(label, 256, z, many)}
        if label == "uoro":  # the same cell's forward + backward, batched the same way
            fb = 256 / per_step(forward_backward_step(64, z, 256), 4 * many)
        print(f"{label:6s} sensor-steps/s  S=1 {rates[label]['1']:10.0f}  "
              f"S=256 {rates[label]['256']:10.0f}  x{rates[label]['256'] / rates[label]['1']:.1f}")
    print(json.dumps({
        "benchmark": "online_cost", "baseline": "rtrl", "candidate": "uoro",
        "ratio": n64["rtrl"] / n64["uoro"],
        "uoro_over_fwd_bwd": n64["uoro"] / n64["fwd_bwd"],
        "uoro_over_fwd_bwd_s256": fb / rates["uoro"]["256"],
        "sensor_steps_per_s": rates,
        "ratio_vectorised": rates["esn"]["256"] / rates["esn"]["1"],
        "uoro_over_fwd_bwd_n64": n64["uoro"] / n64["fwd_bwd"],
        "ptncn_over_uoro_n64": n64["ptncn"] / n64["uoro"],
        "ptncn_over_fwd_bwd_n64": n64["ptncn"] / n64["fwd_bwd"],
        "us_per_step": {str(r["hidden"]): {k: r[k] * 1e6 for k in r if k != "hidden"}
                        for r in rows},
        "quick": quick,
    }))


if __name__ == "__main__":
    main()
