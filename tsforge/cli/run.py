"""``tsforge run PIPELINE``: run a declarative pipeline spec (``pipelines/*.toml``)."""

from __future__ import annotations

import argparse

from tsforge.cli._common import add_progress_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a pipeline spec (TOML); csv pipelines write results, "
                       "ONNX models and an HTML report to [output] path")
    p.add_argument("pipeline", metavar="PIPELINE", help="pipeline spec, e.g. "
                   "pipelines/factory-csv-poc.toml")
    p.add_argument("--out", metavar="DIR", help="override [output] path (default: the spec's "
                   "[output] path, else ./tsforge-out/NAME in the current folder)")
    p.add_argument("--last", type=int, default=0, metavar="N",
                   help="study only the last N readings of each file (0: all)")
    p.add_argument("--check", action="store_true",
                   help="only validate the spec and print what it would run")
    add_progress_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from tsforge.cli import COMMANDS, main
    from tsforge.pipeline import load_spec
    from tsforge.pipeline.runner import run_pipeline
    from tsforge.pipeline.spec import OutputSpec

    spec = load_spec(args.pipeline)
    out = args.out
    if not out and spec.use == "csv" and spec.output.path == OutputSpec.path:
        # no [output] path in the spec: the current folder, never the spec's own folder
        out = str(Path.cwd() / OutputSpec.path / spec.name)
    if out:
        spec = spec.replace(output=dataclasses.replace(spec.output, path=str(Path(out).resolve())))
    print(f"pipeline '{spec.name}' (use = {spec.use}) from {spec.origin}")
    if args.check:
        print(f"  source: {spec.source.path or spec.kafka.input_topic}; family "
              f"{spec.model.family}, horizon {spec.model.horizon}; output {spec.output.path}")
        print("  the spec is valid")
        return 0
    if spec.use == "kafka" and "serve" in COMMANDS:
        # the production worker is its own command; hand the file over to it
        print("handing over to `tsforge serve` (the production Kafka worker)")
        return main(["serve", args.pipeline])
    print(f"results go to {spec.output.path}")
    run_pipeline(spec, last=args.last or None, log=print)
    print(f"\ndone: results, models and report in {spec.output.path}")
    return 0
