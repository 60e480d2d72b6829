"""``tsforge export FILE``: fit a model and write its streaming step to ONNX or to a bundle."""

from __future__ import annotations

import argparse

import numpy as np

from tsforge import progress
from tsforge.cli._common import add_data_args, json_arg, load_prepared, target_and_covariates
from tsforge.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="fit a model on a CSV and export its streaming step to ONNX")
    add_data_args(p, target=True)
    p.add_argument("--model", default="mlp", help="registry name (default mlp)")
    p.add_argument("--params", default="{}",
                   help='JSON of model parameters, e.g. \'{"window": 96}\'')
    p.add_argument("--horizon", type=int, default=1, help="steps ahead (H)")
    p.add_argument("--calibration", type=float, default=0.2,
                   help="share of the newest readings streamed after the fit to calibrate "
                   "the prediction intervals exported with the model (default 0.2)")
    p.add_argument("--out", help="output .onnx path (manifest .json written beside); for "
                   "--model auto a folder (aggregate.json and the experts' ONNX steps)")
    p.add_argument("--bundle", metavar="OUT",
                   help="write a deployment bundle folder instead (an existing bundle gets a new "
                        "version and keeps its current one as the rollback target)")
    p.add_argument("--int8", action="store_true",
                   help="bundle only: also write the int8 dynamically quantised step and report "
                        "its accuracy cost")
    p.add_argument("--no-previous", action="store_true",
                   help="bundle only: do not keep the bundle's current version for rollback")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tsforge.api import fit_calibrated

    if bool(args.out) == bool(args.bundle):
        raise ConfigError("give exactly one of --out FILE.onnx or --bundle FOLDER")
    if (args.int8 or args.no_previous) and not args.bundle:
        raise ConfigError("--int8 and --no-previous apply to --bundle exports only")
    if args.int8 and args.model == "auto":
        raise ConfigError("--int8 quantises one ONNX step; an aggregate (model auto) is "
                          "exported in float32 only")
    frame, _ = load_prepared(args)
    target, covariates = target_and_covariates(frame, args)
    y = frame.column(target)
    X = frame.select(covariates).values if covariates else None
    params = json_arg(args.params, "--params")
    horizon = int(params.pop("horizon", args.horizon))
    dropped: list[str] = []
    if args.model == "auto":
        from tsforge.export.aggregate import servable_params

        params, dropped = servable_params(params)
        print(f"auto is served as an aggregate of experts with an ONNX step: candidates "
              f"{params['experts']}" + (f" (left out, no ONNX step: {', '.join(dropped)})"
                                        if dropped else ""))
    # fit on the older readings, stream the newest: the exported state is at the last reading
    # and the interval state holds real residuals, so the box issues intervals at once
    with progress.stage(f"fit {args.model} and calibrate its intervals"):
        model = fit_calibrated(y, X, model=args.model, params=params, horizon=horizon,
                               calibration=args.calibration)
    counts = model.conformal_.count if model.conformal_ is not None else np.zeros(1)
    print(f"fitted '{args.model}' on {len(y) - int(len(y) * args.calibration)} readings; "
          f"intervals calibrated on the last {int(len(y) * args.calibration)} "
          f"({int(counts.min())} readings scored per step)")
    if args.model == "auto":
        return _aggregate(args, model, target, dropped)
    if args.bundle:
        return _bundle(args, model, target, y, X)
    from tsforge.export import export_onnx

    with progress.stage("export ONNX and check parity"):
        rep = export_onnx(model, args.out, sensor=target)
    print(f"exported '{args.model}' for '{target}' to {rep.onnx_path} ({rep.size_bytes} bytes)")
    print(f"manifest {rep.manifest_path}; sha256 {rep.sha256[:16]}…")
    print(f"ONNX Runtime vs PyTorch over {rep.parity_steps} steps: max |diff| = "
          f"{rep.parity_max_abs_error:.2e} (tolerance {rep.tolerance:g})")
    return 0


def _bundle(args: argparse.Namespace, model, target: str, y, X) -> int:
    from tsforge.export import export_bundle
    from tsforge.preprocess.transforms import TransformChain

    z = TransformChain.from_spec(model.transforms).fit(np.asarray(y)).transform(np.asarray(y))
    cols = [z] + ([s.transform(c) for s, c in zip(model.covariate_scales_, np.asarray(X).T)]
                  if X is not None else [])
    rows = np.column_stack(cols)[-2000:]
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    with progress.stage("export the bundle and check parity"):
        rep = export_bundle(model, args.bundle, sensor=target, int8=args.int8,
                            keep_previous=not args.no_previous, parity_inputs=rows)
    print(f"bundle {rep.root}: version {rep.version} ({rep.current}), previous "
          f"{rep.previous or 'none'}, {rep.size_bytes} bytes")
    print(f"ONNX Runtime vs PyTorch over {rep.parity_steps} steps of the series: max |diff| = "
          f"{rep.parity_max_abs_error:.2e}")
    if rep.int8:
        q = rep.int8
        print(f"int8: {q['size_bytes']} bytes (float32 {q['float32_size_bytes']}); accuracy cost "
              f"max |diff| {q['max_abs_error']:.3g}, RMSE {q['rmse']:.3g} "
              f"({100 * q['relative_rmse']:.2f}% of the forecast spread)")
    if rep.adaptive:
        print("online learner included: `tsforge-edge run BUNDLE --adapt` keeps learning")
    return 0


def _aggregate(args: argparse.Namespace, model, target: str, dropped: list[str]) -> int:
    """Write a fitted ``auto`` as an aggregate folder (``--out``) or bundle version."""
    auto = model.model
    print(f"experts kept: {', '.join(auto.expert_names)}; weights 1 step ahead: "
          f"{auto.family}")
    with progress.stage("export the experts' ONNX steps and check parity"):
        if args.bundle:
            from tsforge.export import export_bundle

            rep = export_bundle(model, args.bundle, sensor=target, int8=args.int8,
                                keep_previous=not args.no_previous, dropped=dropped)
            where = f"bundle {rep.root}: version {rep.version} ({rep.current}), previous " \
                    f"{rep.previous or 'none'}"
        else:
            from tsforge.export.aggregate import export_aggregate

            rep = export_aggregate(model, args.out, sensor=target, dropped=dropped)
            where = f"aggregate folder {rep.out} (manifest {rep.manifest_path})"
    print(f"{where}, {rep.size_bytes} bytes")
    print(f"ONNX Runtime vs PyTorch, worst expert: max |diff| = "
          f"{rep.parity_max_abs_error:.2e}; the BOA weights keep learning where it is served")
    return 0
