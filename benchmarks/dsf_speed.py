"""Training speed of DSF vs full BPTT vs fully truncated BPTT on the same GRU, side by side.

Seconds per epoch over the same readings (synthetic AR stream, batch 32, CPU)
for a GRU trained three ways:

- BPTT: ``gru``, PyTorch's fused multi-layer kernel forward and its backward through time;
- FT-BPTT (truncation k = 1): ``dsf_gru`` with ``feedback="zero"``: graph-free fused
  forward, one batched local step, no error carried back in time (as the reference
  implementation computes it);
- DSF: ``dsf_gru`` (graph-free fused forward, batched local step, parallel filter).

The three are timed in rounds (one epoch of each per round, after a warm-up
epoch) and the fastest epoch of each is kept, so load from other processes hits
all three alike.  PyTorch runs with ``--threads`` intra-op threads.

    python benchmarks/dsf_speed.py [--quick] [--threads N]

Quick: 1 layer, hidden 64, T in {256, 1024}.  Full: layers {1, 3} x hidden {64, 256}
x T {256, 1024, 4096}.  Last line: JSON; ratio = BPTT epoch seconds / DSF epoch
seconds for the GRU with 1 layer, hidden 64, T = 1024.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from tsforge.models import create
from tsforge.models.recurrent import sequence_samples, torch

METHODS = {"bptt": ("gru", {}), "ft_bptt": ("dsf_gru", {"feedback": "zero"}),
           "dsf": ("dsf_gru", {})}


def _setup(name: str, params: dict[str, Any], T: int, readings: int, layers: int,
           hidden: int) -> tuple[Any, Any, Any, tuple[Any, ...]]:
    rng = np.random.default_rng(0)
    z = np.zeros(readings + T + 1)
    for t in range(1, z.size):
        z[t] = 0.9 * z[t - 1] + rng.standard_normal()
    model = create(name, horizon=1, seq_len=T, layers=layers, hidden=hidden, **params)
    model.n_covariates_ = 0
    core = model.build_core(1)
    windows, targets, mask = sequence_samples(z[:, None], T, 1, T)
    data = (torch.as_tensor(windows, dtype=torch.float32),
            torch.as_tensor(targets, dtype=torch.float32), torch.as_tensor(mask))
    return model, core, torch.optim.Adam(core.parameters(), lr=1e-3), data


def _epoch(model: Any, core: Any, opt: Any, data: tuple[Any, ...]) -> float:
    t0 = time.perf_counter()
    for start in range(0, data[0].shape[0], 32):
        opt.zero_grad()
        model.loss(core, tuple(d[start : start + 32] for d in data)).backward()
        opt.step()
    return time.perf_counter() - t0


def timed(T: int, readings: int, rounds: int, layers: int, hidden: int) -> dict[str, float]:
    """Fastest epoch of each method over ``rounds`` interleaved rounds (after a warm-up)."""
    runs = {k: _setup(name, p, T, readings, layers, hidden) for k, (name, p) in METHODS.items()}
    best = {k: float("inf") for k in runs}
    for r in range(rounds + 1):
        for k, run in runs.items():
            seconds = _epoch(*run)
            if r > 0:
                best[k] = min(best[k], seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1 is steadiest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    readings = 32 * 1024
    rounds = 3 if args.quick else 2
    grid = [(1, 64, 256), (1, 64, 1024)]
    if not args.quick:
        grid = [(L, n, T) for L in (1, 3) for n in (64, 256) for T in (256, 1024, 4096)]
    rows = []
    print("CPU, batch 32, seconds per epoch of", readings, "readings", flush=True)
    for layers, hidden, T in grid:
        s = timed(T, readings, rounds, layers, hidden)
        row = {"layers": layers, "hidden": hidden, "T": T, "bptt_s": s["bptt"],
               "ft_bptt_s": s["ft_bptt"], "dsf_s": s["dsf"],
               "bptt_over_dsf": s["bptt"] / s["dsf"], "ft_bptt_over_dsf": s["ft_bptt"] / s["dsf"]}
        rows.append(row)
        print(f"GRU {layers}x{hidden:<3d} T={T:5d}  BPTT {s['bptt']:7.3f}  FT-BPTT "
              f"{s['ft_bptt']:7.3f}  DSF {s['dsf']:7.3f}  BPTT/DSF {row['bptt_over_dsf']:5.2f}  "
              f"FT-BPTT/DSF {row['ft_bptt_over_dsf']:4.2f}", flush=True)
    ref = next(r for r in rows if (r["layers"], r["hidden"], r["T"]) == (1, 64, 1024))
    print(json.dumps({"benchmark": "dsf_speed", "baseline": "gru full BPTT", "candidate": "dsf_gru",
                      "ratio": ref["bptt_over_dsf"], "device": "cpu", "threads": args.threads,
                      "batch": 32, "readings_per_epoch": readings, "rows": rows,
                      "quick": args.quick}))


if __name__ == "__main__":
    main()
