"""Training cost per epoch of a GRU: full BPTT vs truncated BPTT (k = 32), side by side.

Same data (a synthetic AR stream, 64 units, batch 32), same number of readings
per epoch at every sequence length T, CPU.  These are the baselines the
fixed-feedback (DSF) method is measured against.

    python benchmarks/bptt_cost.py [--quick]

Last line: JSON; ratio = full-BPTT epoch seconds / truncated-BPTT epoch seconds at T = 1024.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tsforge.models import create
from tsforge.models.recurrent import sequence_samples, torch


def epoch_seconds(tbptt: int | None, seq_len: int, readings: int, repeats: int,
                  name: str = "gru", **params: object) -> float:
    """Fastest of ``repeats`` epochs over ``readings`` readings, after one warm-up epoch.

    ``name`` and ``params`` choose the recurrent family (shared with dsf_speed.py).
    """
    rng = np.random.default_rng(0)
    z = np.zeros(readings + seq_len + 1)
    for t in range(1, z.size):
        z[t] = 0.9 * z[t - 1] + rng.standard_normal()
    params = {"hidden": 64, **params}
    model = create(name, horizon=1, seq_len=seq_len, tbptt=tbptt, **params)
    model.n_covariates_ = 0
    core = model.build_core(1)
    windows, targets, mask = sequence_samples(z[:, None], seq_len, 1, seq_len)
    x, y, m = (torch.as_tensor(windows, dtype=torch.float32),
               torch.as_tensor(targets, dtype=torch.float32), torch.as_tensor(mask))
    opt = torch.optim.Adam(core.parameters(), lr=1e-3)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        for start in range(0, x.shape[0], 32):
            opt.zero_grad()
            loss = model.loss(core, (x[start : start + 32], y[start : start + 32],
                                     m[start : start + 32]))
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.min(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    readings = 32 * 1024 if args.quick else 128 * 1024
    repeats = 2 if args.quick else 3
    rows = {}
    for T in (256, 1024):
        full = epoch_seconds(None, T, readings, repeats)
        cut = epoch_seconds(32, T, readings, repeats)
        rows[T] = {"full_bptt_s": full, "tbptt32_s": cut, "ratio": full / cut}
        print(f"T={T:5d}  full BPTT {full:7.3f} s/epoch  truncated k=32 {cut:7.3f} s/epoch  "
              f"ratio {full / cut:.2f}")
    print(json.dumps({"benchmark": "bptt_cost", "baseline": "gru truncated BPTT k=32",
                      "candidate": "gru full BPTT", "ratio": rows[1024]["ratio"],
                      "readings_per_epoch": readings, "hidden": 64, "batch": 32,
                      "per_T": {str(k): v for k, v in rows.items()}, "quick": args.quick}))


if __name__ == "__main__":
    main()
