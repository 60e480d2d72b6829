"""Training speed of DSF vs full BPTT vs fully truncated BPTT on the same GRU, side by side.

Epoch seconds over the same readings (synthetic AR stream, batch 32, CPU) for a
GRU trained three ways: full BPTT through the window, FT-BPTT (truncation k = 1)
and DSF (fused no-graph forward, one batched local step, parallel
fixed-feedback filter).

    python benchmarks/dsf_speed.py [--quick]

Quick: 1 layer, hidden 64, T in {256, 1024}.  Full adds 3 layers, hidden 256, T = 4096.
Last line: JSON; ratio = BPTT epoch seconds / DSF epoch seconds, GRU, 1 layer, hidden 64, T = 1024.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bptt_cost import epoch_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    readings = 32 * 1024 if args.quick else 64 * 1024
    repeats = 2 if args.quick else 3
    grid = [(1, 64, 256), (1, 64, 1024)]
    if not args.quick:
        grid += [(1, 64, 4096), (3, 64, 1024), (1, 256, 1024), (3, 256, 1024)]
    rows = []
    for layers, hidden, T in grid:
        common = {"layers": layers, "hidden": hidden}
        bptt = epoch_seconds(None, T, readings, repeats, "gru", **common)
        ft = epoch_seconds(1, T, readings, repeats, "gru", **common)
        dsf = epoch_seconds(None, T, readings, repeats, "dsf_gru", **common)
        row = {"layers": layers, "hidden": hidden, "T": T, "bptt_s": bptt, "ft_bptt_s": ft,
               "dsf_s": dsf, "bptt_over_dsf": bptt / dsf}
        rows.append(row)
        print(f"GRU {layers}x{hidden} T={T:5d}  BPTT {bptt:7.3f} s  FT-BPTT {ft:7.3f} s  "
              f"DSF {dsf:7.3f} s  BPTT/DSF {bptt / dsf:5.2f}", flush=True)
    ref = next(r for r in rows if (r["layers"], r["hidden"], r["T"]) == (1, 64, 1024))
    print(json.dumps({"benchmark": "dsf_speed", "baseline": "gru full BPTT", "candidate": "dsf_gru",
                      "ratio": ref["bptt_over_dsf"], "readings_per_epoch": readings,
                      "rows": rows, "quick": args.quick}))


if __name__ == "__main__":
    main()
