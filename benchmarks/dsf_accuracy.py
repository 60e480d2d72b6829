"""Accuracy of DSF vs full BPTT vs fully truncated BPTT, at equal epochs and equal training time.

The same GRU (same initial weights, data order and optimiser) is trained three ways:

- BPTT: ``gru`` (gradient through time over the whole window);
- FT-BPTT: ``dsf_gru`` with ``feedback="zero"`` (one-step truncation);
- DSF: ``dsf_gru`` (fixed diagonal feedback, reference ``linspace`` rates).

Windows overlap by 3/4; batch 16, Adam, gradient norm clipped at 1.

Tasks (inputs standardised with training statistics, 60 % train / 20 % validation):

- ``ETTh1``: predict the oil temperature ``OT`` one hour ahead from OT and the six load
  columns (multivariate input), ../shared/datasets/ett/ETTh1.csv (skipped when absent);
- ``delayed_echo``: a smooth AR(1) covariate ``x`` (φ = 0.95) and a target that echoes it
  64 steps later, ``z_t = x_{t-64} + 0.05 ε_t``.  Predicting ``z_{t+1}`` well needs
  ``x_{t-63}``: memory longer than the 48-reading window of tsforge's windowed models.

Equal epochs: best validation MSE within E epochs.  Equal time: each method may
train until it has used the wall-clock time DSF needed for E epochs (FT-BPTT may
run more epochs, BPTT fewer); best validation MSE among the epochs finished in
that budget.  Gradient cosines to BPTT are measured per cell type (tanh RNN, GRU,
LSTM and the diagonal SSM, where DSF is exact) on a training batch at initialisation.

    python benchmarks/dsf_accuracy.py [--quick]
    python benchmarks/dsf_accuracy.py --feedbacks [--quick] [--seeds N]

``--feedbacks`` compares the feedback initialisations of ``dsf_gru`` on ETTh1 (the
development set, DESIGN.md §11): ``linspace`` (the reference choice), ``logspace`` and
``zero`` (FT-BPTT), with BPTT beside them, over ``--seeds`` initialisations.  After
every epoch it records the validation MSE and the cosine between the method's
gradient and the exact BPTT gradient on one fixed training batch, so the cosine at
initialisation can be read beside the cosine (and the error) after training.

Last line: JSON; ratio = DSF validation MSE / BPTT validation MSE at equal epochs
on ETTh1 (delayed_echo when ETTh1 is absent).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.models import create
from tsforge.models.dsf.cells import feedback
from tsforge.models.dsf.core import DSFCore
from tsforge.models.recurrent import sequence_samples, torch

ETTH1 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ett" / "ETTh1.csv"
METHODS = {"bptt": ("gru", {}), "ft_bptt": ("dsf_gru", {"feedback": "zero"}),
           "dsf": ("dsf_gru", {})}
BATCH = 16


def tasks(quick: bool) -> dict[str, np.ndarray]:
    """Task name -> ``(T, C)`` array, target in column 0."""
    out = {}
    if ETTH1.exists():
        raw = np.genfromtxt(ETTH1, delimiter=",", skip_header=1)[:, 1:]  # HUFL .. LULL, OT
        out["ETTh1"] = np.column_stack([raw[:, -1], raw[:, :-1]])
    rng = np.random.default_rng(0)
    n = 6000 if quick else 12000
    x = np.zeros(n + 64)
    for t in range(1, x.size):
        x[t] = 0.95 * x[t - 1] + np.sqrt(1 - 0.95**2) * rng.standard_normal()
    z = x[:-64] + 0.05 * rng.standard_normal(n)
    out["delayed_echo"] = np.column_stack([z, x[64:]])
    return out


def split(Z: np.ndarray, seq_len: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Standardised training and validation windows (validation keeps seq_len of context)."""
    n_train, n_val = int(0.6 * len(Z)), int(0.2 * len(Z))
    mu, sd = Z[:n_train].mean(0), Z[:n_train].std(0) + 1e-8
    Z = (Z - mu) / sd
    sets = []
    for part in (Z[:n_train], Z[n_train - seq_len // 4 : n_train + n_val]):
        w, y, m = sequence_samples(part, seq_len, 1, seq_len // 4)
        sets.append((torch.as_tensor(w, dtype=torch.float32),
                     torch.as_tensor(y, dtype=torch.float32), torch.as_tensor(m)))
    return sets[0], sets[1]


def val_mse(core: Any, val: tuple[Any, ...]) -> float:
    x, y, m = val
    burn = x.shape[1] // 4
    with torch.no_grad():
        pred, _ = core.forward_sequence(x, core.initial_state(x.shape[0]))
    mask = m[:, burn:].float()
    return float((((pred[:, burn:] - y[:, burn:]) ** 2) * mask).sum() / mask.sum())


def train_curve(method: str, train: tuple[Any, ...], val: tuple[Any, ...], seq_len: int,
                hidden: int, epochs: int, budget: float | None, lr: float, seed: int = 0,
                probe: Any = None) -> list[tuple]:
    """``(seconds so far, validation MSE)`` after each epoch (validation time not counted).

    ``method`` is a key of ``METHODS`` or ``"dsf:<feedback>"``.  With ``probe`` (a
    function of the model and core) each entry gets its value after the epoch as a
    third element, and the value at initialisation is the first entry ``(0, nan, value)``.
    """
    name, params = METHODS[method] if ":" not in method else \
        ("dsf_gru", {"feedback": method.split(":", 1)[1]})
    model = create(name, horizon=1, seq_len=seq_len, hidden=hidden, seed=seed, **params)
    model.n_covariates_ = train[0].shape[2] - 1
    core = model.build_core(train[0].shape[2])
    if method != "bptt":  # identical initial GRU weights for the three methods
        ref = create("dsf_gru", horizon=1, seq_len=seq_len, hidden=hidden, seed=seed)
        ref.n_covariates_ = model.n_covariates_
        weights = ref.build_core(train[0].shape[2]).state_dict()
        weights["a"] = core.a  # keep this method's own feedback buffer
        core.load_state_dict(weights)
    else:
        dsf = create("dsf_gru", horizon=1, seq_len=seq_len, hidden=hidden, seed=seed)
        dsf.n_covariates_ = model.n_covariates_
        dsf_core = dsf.build_core(train[0].shape[2])
        with torch.no_grad():
            for suffix in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(core.rnn, f"{suffix}_l0").copy_(getattr(dsf_core.rnns[0], f"{suffix}_l0"))
            core.head.load_state_dict(dsf_core.head.state_dict())
    opt = torch.optim.Adam(core.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    curve, spent, epoch = [], 0.0, 0
    if probe is not None:
        curve.append((0.0, float("nan"), probe(core)))
    while epoch < epochs or (budget is not None and spent < budget and epoch < 3 * epochs):
        order = torch.randperm(train[0].shape[0], generator=gen)
        core.train()
        t0 = time.perf_counter()
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            opt.zero_grad()
            model.loss(core, tuple(t[idx] for t in train)).backward()
            torch.nn.utils.clip_grad_norm_(core.parameters(), 1.0)
            opt.step()
        spent += time.perf_counter() - t0
        epoch += 1
        curve.append((spent, val_mse(core, val)) + ((probe(core),) if probe else ()))
    return curve


def grad_cosine(core: Any, batch: tuple[Any, ...]) -> float:
    """Cosine between ``core``'s DSF gradient and its exact BPTT gradient on ``batch`` (fp64)."""
    core = copy.deepcopy(core).double()
    x, y, m = (t.double() if t.is_floating_point() else t for t in batch)
    burn = x.shape[1] // 4
    grads = []
    for forward in (core.bptt_sequence, core.dsf_sequence):
        core.zero_grad()
        pred = forward(x)
        (((pred[:, burn:] - y[:, burn:]) ** 2) * m[:, burn:]).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for n, p in core.named_parameters()
                                if not n.startswith("head")]))
    return float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0))


def cosines(train: tuple[Any, ...], hidden: int) -> dict[str, float]:
    """Cosine between the DSF and the BPTT gradient of one batch, per cell type."""
    batch = tuple(t[:32] for t in train)
    out = {}
    for kind in ("rnn", "gru", "lstm", "diag"):
        torch.manual_seed(0)
        core = DSFCore(kind, train[0].shape[2], hidden, 1, 1,
                       feedback("linspace", hidden, train[0].shape[1]), True, False)
        out[kind] = grad_cosine(core, batch)
    return out


def compare_feedbacks(quick: bool, seeds: int) -> None:
    """Feedback initialisations of ``dsf_gru`` on ETTh1: error and cosine to BPTT per epoch."""
    Z = tasks(quick).get("ETTh1")
    if Z is None:
        print("ETTh1 not found at", ETTH1, "- nothing to compare")
        return
    seq_len, hidden, epochs, lr = (128, 32, 8, 3e-3) if quick else (256, 64, 20, 2e-3)
    train, val = split(Z, seq_len)
    batch = tuple(t[:32] for t in train)
    methods = ("bptt", "dsf:linspace", "dsf:logspace", "dsf:zero")
    runs: dict[str, list[list[tuple]]] = {m: [] for m in methods}
    print(f"ETTh1, GRU 1x{hidden}, T={seq_len}, {epochs} epochs, seeds 0..{seeds - 1}; "
          "cosine = gradient cosine to exact BPTT on one fixed training batch", flush=True)
    for seed in range(seeds):
        for m in methods:
            probe = None if m == "bptt" else (lambda core: grad_cosine(core, batch))
            runs[m].append(train_curve(m, train, val, seq_len, hidden, epochs, None, lr, seed,
                                       probe))
            best = min(v for _, v, *_ in runs[m][-1][-epochs:])
            print(f"  seed {seed} {m:13s} best val MSE {best:.4f}", flush=True)
    print("\n  method         val MSE (mean ± sd over seeds)   cosine: init   epoch 1   "
          f"epoch {epochs // 2}   epoch {epochs}")
    rows = {}
    for m in methods:
        best = np.array([min(v for _, v, *_ in c[-epochs:]) for c in runs[m]])
        row: dict[str, Any] = {"val_mse_mean": float(best.mean()), "val_mse_sd": float(best.std()),
                               "val_mse_per_seed": best.tolist()}
        if m != "bptt":
            cos = np.array([[e[2] for e in c] for c in runs[m]])  # (seeds, epochs + 1)
            row["cosine_mean_per_epoch"] = cos.mean(0).tolist()
        rows[m] = row
        cos_txt = "" if m == "bptt" else "   ".join(
            f"{row['cosine_mean_per_epoch'][k]:.3f}" for k in (0, 1, epochs // 2, epochs))
        print(f"  {m:13s}  {best.mean():.4f} ± {best.std():.4f}"
              f"                 {cos_txt}", flush=True)
    print(json.dumps({"benchmark": "dsf_feedbacks", "baseline": "gru full BPTT",
                      "candidate": "dsf_gru feedback initialisations", "task": "ETTh1",
                      "ratio": rows["dsf:linspace"]["val_mse_mean"] / rows["bptt"]["val_mse_mean"],
                      "ratio_meaning": "DSF (linspace) / BPTT mean best val MSE",
                      "seeds": seeds, "epochs": epochs, "hidden": hidden, "seq_len": seq_len,
                      "quick": quick, "methods": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--feedbacks", action="store_true",
                        help="compare the feedback initialisations on ETTh1 instead")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.feedbacks:
        compare_feedbacks(args.quick, args.seeds)
        return
    seq_len, hidden, epochs, lr = (128, 32, 8, 3e-3) if args.quick else (256, 64, 20, 2e-3)
    results = {}
    for task, Z in tasks(args.quick).items():
        train, val = split(Z, seq_len)
        dsf = train_curve("dsf", train, val, seq_len, hidden, epochs, None, lr)
        budget = dsf[epochs - 1][0]
        curves = {"dsf": dsf}
        for method in ("bptt", "ft_bptt"):
            curves[method] = train_curve(method, train, val, seq_len, hidden, epochs, budget, lr)
        row: dict[str, Any] = {"budget_s": budget, "epochs": epochs}
        for method, curve in curves.items():
            row[f"{method}_mse_equal_epochs"] = min(v for _, v in curve[:epochs])
            in_time = [v for s, v in curve if s <= budget * 1.0001]
            row[f"{method}_mse_equal_time"] = min(in_time) if in_time else float("nan")
            row[f"{method}_epochs_in_budget"] = len(in_time)
            row[f"{method}_s_per_epoch"] = curve[-1][0] / len(curve)
        row["cosine_to_bptt"] = cosines(train, hidden)
        results[task] = row
        print(f"\n{task}: GRU 1x{hidden}, T={seq_len}, {epochs} epochs; time budget "
              f"{budget:.1f} s (DSF's {epochs} epochs)", flush=True)
        print("  method    val MSE @ equal epochs   val MSE @ equal time   "
              "epochs in budget  s/epoch")
        for m in ("bptt", "ft_bptt", "dsf"):
            print(f"  {m:8s}  {row[f'{m}_mse_equal_epochs']:20.4f}   "
                  f"{row[f'{m}_mse_equal_time']:20.4f}   {row[f'{m}_epochs_in_budget']:16d}"
                  f"  {row[f'{m}_s_per_epoch']:7.2f}", flush=True)
        for key in ("equal_epochs", "equal_time"):
            d, b = row[f"dsf_mse_{key}"], row[f"bptt_mse_{key}"]
            row[f"dsf_over_bptt_{key}"] = d / b
            row[f"dsf_over_ft_bptt_{key}"] = d / row[f"ft_bptt_mse_{key}"]
            print(f"  {key}: DSF/BPTT {d / b:.3f}  "
                  f"DSF/FT-BPTT {row[f'dsf_over_ft_bptt_{key}']:.3f}")
        print("  gradient cosine DSF vs BPTT:",
              ", ".join(f"{k} {v:.3f}" for k, v in row["cosine_to_bptt"].items()), flush=True)
    main_task = "ETTh1" if "ETTh1" in results else "delayed_echo"
    print(json.dumps({"benchmark": "dsf_accuracy", "baseline": "gru full BPTT",
                      "candidate": "dsf_gru", "ratio": results[main_task][
                          "dsf_over_bptt_equal_epochs"], "ratio_task": main_task,
                      "ratio_meaning": "DSF val MSE / BPTT val MSE at equal epochs",
                      "device": "cpu", "threads": args.threads, "quick": args.quick,
                      "tasks": results}))


if __name__ == "__main__":
    main()
