"""``tsforge export FILE``: fit a model and write its streaming step to ONNX."""

from __future__ import annotations

import argparse

from tsforge.cli._common import add_data_args, json_arg, load_prepared, target_and_covariates


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="fit a model on a CSV and export its streaming step to ONNX")
    add_data_args(p, target=True)
    p.add_argument("--model", default="mlp", help="registry name (default mlp)")
    p.add_argument("--params", default="{}",
                   help='JSON of model parameters, e.g. \'{"window": 96}\'')
    p.add_argument("--horizon", type=int, default=1, help="steps ahead (H)")
    p.add_argument("--out", required=True, help="output .onnx path (manifest .json written beside)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tsforge.export import export_onnx
    from tsforge.models import create
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.preprocess import analyze

    frame, _ = load_prepared(args)
    target, covariates = target_and_covariates(frame, args)
    y = frame.column(target)
    X = frame.select(covariates).values if covariates else None
    params = json_arg(args.params, "--params")
    params.setdefault("horizon", args.horizon)
    chain = analyze(y, name=target).transforms
    model = TransformedForecaster(create(args.model, **params), chain).fit(y, X)
    rep = export_onnx(model, args.out, sensor=target)
    print(f"exported '{args.model}' for '{target}' to {rep.onnx_path} ({rep.size_bytes} bytes)")
    print(f"manifest {rep.manifest_path}; sha256 {rep.sha256[:16]}…")
    print(f"ONNX Runtime vs PyTorch over {rep.parity_steps} steps: max |diff| = "
          f"{rep.parity_max_abs_error:.2e} (tolerance {rep.tolerance:g})")
    return 0
