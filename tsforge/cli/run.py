"""``tsforge run PIPELINE``: run a declarative pipeline spec (``pipelines/*.toml``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a pipeline spec (TOML); csv pipelines write results, "
                       "ONNX models and an HTML report to [output] path")
    p.add_argument("pipeline", metavar="PIPELINE", help="pipeline spec, e.g. "
                   "pipelines/factory-csv-poc.toml")
    p.add_argument("--out", metavar="DIR", help="override [output] path")
    p.add_argument("--last", type=int, default=0, metavar="N",
                   help="study only the last N readings of each file (0: all)")
    p.add_argument("--check", action="store_true",
                   help="only validate the spec and print what it would run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from tsforge.cli import COMMANDS, main
    from tsforge.pipeline import load_spec
    from tsforge.pipeline.runner import run_pipeline

    spec = load_spec(args.pipeline)
    if args.out:
        spec = spec.replace(output=dataclasses.replace(spec.output, path=args.out))
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
    run_pipeline(spec, last=args.last or None, log=print)
    return 0
