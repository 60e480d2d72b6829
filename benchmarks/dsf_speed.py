"""Training speed of DSF vs full BPTT on the same GRU, side by side, as a user trains it.

Seconds per epoch over the same readings (synthetic AR(1) stream, batch 32, Adam,
``model.loss(...).backward()`` as ``fit`` calls it) for a GRU trained four ways:

- ``bptt``: ``gru``, PyTorch's fused kernel forward and its backward through time;
- ``dsf``: ``dsf_gru`` (``DSFCore.dsf_sequence``: graph-free fused forward, blocked
  hand-written DSF backward);
- ``dsf_ref``: the same model through ``DSFCore.dsf_sequence_reference``, the plain
  window form (fused forward, autograd through one batched local step, parallel
  filter): what ``dsf_gru`` ran before the fast form, same gradients;
- ``ft_bptt``: ``dsf_gru`` with ``feedback="zero"`` (fully truncated BPTT, fast form).

All four start from the same weights.  They are timed in rounds (one epoch of each
per round, after a warm-up round) and the fastest epoch of each is kept, so load from
other processes hits all alike.  After the timed epochs (equal epochs for all) each
model's validation MSE on held-out readings of the same stream is printed beside its
time.  PyTorch runs with ``--threads`` intra-op threads (BLAS included).

The trace form (``learn_one``'s online gradient) is timed per reading for a 1-layer
``dsf_gru`` with n = 16 (``TraceForm.step`` + ``gradient``), beside the bare
library's cheapest online step: one ``torch.nn.GRUCell`` step with autograd
backward, and beside a whole ``learn_one`` call.

    python benchmarks/dsf_speed.py [--quick] [--threads N] [--rows 1x128x256,...]

Quick: GRU 1x64, 1x256 and 2x64 at T = 1024.  Full: layers {1, 2} x hidden
{64, 128, 256} x T {256, 1024, 4096}.  Last line: JSON with ``ratio`` = BPTT / DSF
epoch seconds (1x64, T = 1024), ``ratio_h256`` (1x256, T = 1024), ``ratio_2layer``
(2x64, T = 1024), ``trace_us_per_reading`` and the validation errors.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from dsf_accuracy import val_mse  # the one validation score of both DSF benchmarks

from tsforge.models import create
from tsforge.models.dsf.trace import TraceForm
from tsforge.models.recurrent import sequence_samples, torch

METHODS = {"bptt": ("gru", {}), "dsf": ("dsf_gru", {}), "dsf_ref": ("dsf_gru", {}),
           "ft_bptt": ("dsf_gru", {"feedback": "zero"})}
BATCH, READINGS, LR = 32, 32 * 1024, 3e-3


def _stream(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.zeros(n)
    for t in range(1, n):
        z[t] = 0.9 * z[t - 1] + rng.standard_normal()
    return z


def _tensors(z: np.ndarray, T: int) -> tuple[Any, ...]:
    w, y, m = sequence_samples(z[:, None], T, 1, T)
    return (torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32),
            torch.as_tensor(m))


def _setup(method: str, T: int, layers: int, hidden: int) -> tuple[Any, Any, Any]:
    """Model, core (DSF's initial weights for every method) and optimiser."""
    name, params = METHODS[method]
    model = create(name, horizon=1, seq_len=T, layers=layers, hidden=hidden, seed=0, **params)
    model.n_covariates_ = 0
    core = model.build_core(1)
    ref = create("dsf_gru", horizon=1, seq_len=T, layers=layers, hidden=hidden, seed=0)
    ref.n_covariates_ = 0
    weights = ref.build_core(1).state_dict()
    if method == "bptt":  # the fused stacked GRU names layer i's weights ..._l{i}
        weights = {(f"rnn.{k.split('.')[2][:-1]}{k.split('.')[1]}" if k.startswith("rnns.")
                    else k): v for k, v in weights.items() if k != "a"}
    else:
        weights["a"] = core.a  # keep the method's own feedback
    core.load_state_dict(weights)
    if method == "dsf_ref":
        core.dsf_sequence = core.dsf_sequence_reference  # the plain window form
    return model, core, torch.optim.Adam(core.parameters(), lr=LR)


def _epoch(model: Any, core: Any, opt: Any, data: tuple[Any, ...]) -> float:
    t0 = time.perf_counter()
    for start in range(0, data[0].shape[0], BATCH):
        opt.zero_grad()
        model.loss(core, tuple(d[start : start + BATCH] for d in data)).backward()
        opt.step()
    return time.perf_counter() - t0


def timed(T: int, rounds: int, layers: int, hidden: int) -> dict[str, Any]:
    """Fastest epoch of each method over ``rounds`` interleaved rounds, and validation MSE."""
    train = _tensors(_stream(READINGS + T + 1, 0), T)
    val = _tensors(_stream(8 * T + T + 1, 1), T)
    runs = {k: _setup(k, T, layers, hidden) for k in METHODS}
    best = {k: float("inf") for k in runs}
    for r in range(rounds + 1):
        for k, run in runs.items():
            seconds = _epoch(*run, train)
            if r > 0:
                best[k] = min(best[k], seconds)
    row: dict[str, Any] = {"layers": layers, "hidden": hidden, "T": T, "epochs": rounds + 1,
                           "steps": (rounds + 1) * -(-train[0].shape[0] // BATCH)}
    for k, (_, core, _) in runs.items():
        row[f"{k}_s"] = best[k]
        row[f"{k}_val_mse"] = val_mse(core, val)
    row["bptt_over_dsf"] = best["bptt"] / best["dsf"]
    row["bptt_over_dsf_ref"] = best["bptt"] / best["dsf_ref"]
    row["dsf_val_over_bptt"] = row["dsf_val_mse"] / row["bptt_val_mse"]
    return row


def trace_cost(hidden: int = 16, readings: int = 2000) -> dict[str, float]:
    """Microseconds per reading: trace form, bare GRUCell step + backward, ``learn_one``."""
    y = np.sin(np.arange(600) / 5.0)
    model = create("dsf_gru", hidden=hidden, layers=1, seq_len=32, epochs=1).fit(y[:400])
    trace = TraceForm(model.core_, batch=1)
    state, x = model.core_.initial_state(1), torch.randn(1, 1)
    e = torch.randn(1, hidden)
    cell, head = torch.nn.GRUCell(1, hidden), torch.nn.Linear(hidden, 1)
    h = torch.zeros(1, hidden)

    def trace_step() -> None:
        nonlocal state
        with torch.no_grad():
            _, state = trace.step(x, state)
            trace.gradient(e)

    def bare_step() -> None:
        nonlocal h
        h_new = cell(x, h.detach())
        (head(h_new) - 1.0).pow(2).sum().backward()
        h = h_new

    out = {}
    for key, fn in (("trace", trace_step), ("bare", bare_step)):
        for _ in range(100):  # warm-up
            fn()
        t0 = time.perf_counter()
        for _ in range(readings):
            fn()
        out[key] = (time.perf_counter() - t0) / readings * 1e6
    stream = np.sin(np.arange(400, 400 + readings // 4) / 5.0)
    t0 = time.perf_counter()
    for v in stream:
        model.learn_one(float(v))
    out["learn_one"] = (time.perf_counter() - t0) / stream.size * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1 is steadiest on a shared machine)")
    parser.add_argument("--rows", default="",
                        help="only these rows, e.g. 1x128x256,2x256x4096 (layers x hidden x T)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:  # torch's own setting covers its BLAS
        pass
    rounds = 3 if args.quick else 2
    grid = [(1, 64, 1024), (1, 256, 1024), (2, 64, 1024)]
    if not args.quick:
        grid = [(L, n, T) for L in (1, 2) for n in (64, 128, 256) for T in (256, 1024, 4096)]
    if args.rows:
        grid = [tuple(int(v) for v in row.split("x")) for row in args.rows.split(",")]
    rows = []
    print(f"CPU, {args.threads} thread(s), batch {BATCH}, seconds per epoch of {READINGS} "
          "readings (fastest of the interleaved rounds); val MSE after the same epochs",
          flush=True)
    print("GRU    T     BPTT s  DSF s  DSF-ref s  FT-BPTT s  BPTT/DSF  BPTT/DSF-ref   "
          "val MSE: BPTT   DSF  DSF-ref FT-BPTT", flush=True)
    for layers, hidden, T in grid:
        r = timed(T, rounds, layers, hidden)
        rows.append(r)
        print(f"{layers}x{hidden:<3d} {T:5d}  {r['bptt_s']:7.3f} {r['dsf_s']:6.3f}  "
              f"{r['dsf_ref_s']:8.3f}  {r['ft_bptt_s']:9.3f}  {r['bptt_over_dsf']:8.2f}  "
              f"{r['bptt_over_dsf_ref']:12.2f}   {r['bptt_val_mse']:12.4f} "
              f"{r['dsf_val_mse']:6.4f} {r['dsf_ref_val_mse']:7.4f} {r['ft_bptt_val_mse']:7.4f}",
              flush=True)
    trace = trace_cost()
    print(f"trace form, dsf_gru 1x16: {trace['trace']:.0f} µs per reading (step + gradient); "
          f"bare GRUCell step + backward {trace['bare']:.0f} µs; learn_one "
          f"{trace['learn_one']:.0f} µs", flush=True)

    def pick(layers: int, hidden: int, T: int = 1024) -> dict[str, Any]:
        return next((r for r in rows if (r["layers"], r["hidden"], r["T"]) == (layers, hidden, T)),
                    {})

    print(json.dumps({
        "benchmark": "dsf_speed", "baseline": "gru full BPTT", "candidate": "dsf_gru",
        "ratio": pick(1, 64).get("bptt_over_dsf"), "ratio_h256": pick(1, 256).get("bptt_over_dsf"),
        "ratio_2layer": pick(2, 64).get("bptt_over_dsf"),
        "ratio_before": pick(1, 64).get("bptt_over_dsf_ref"),
        "ratio_h256_before": pick(1, 256).get("bptt_over_dsf_ref"),
        "ratio_2layer_before": pick(2, 64).get("bptt_over_dsf_ref"),
        "val_dsf_over_bptt": pick(1, 64).get("dsf_val_over_bptt"),
        "val_dsf_over_bptt_h256": pick(1, 256).get("dsf_val_over_bptt"),
        "val_dsf_over_bptt_2layer": pick(2, 64).get("dsf_val_over_bptt"),
        "trace_us_per_reading": trace["trace"], "trace_bare_gru_cell_us": trace["bare"],
        "learn_one_us": trace["learn_one"], "ratio_gpu": None,
        "ratio_gpu_note": "not measured: no GPU machine was available", "device": "cpu",
        "threads": args.threads, "batch": BATCH, "readings_per_epoch": READINGS,
        "rows": rows, "quick": args.quick}))


if __name__ == "__main__":
    main()
