"""``tsforge serve CONFIG``: run the production Kafka worker of a pipeline spec."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="consume a Kafka topic of readings, publish forecasts")
    p.add_argument("config", help="pipeline spec with use = 'kafka' (e.g. "
                                  "pipelines/kafka-production.toml)")
    p.add_argument("--bootstrap-servers", metavar="HOSTS", default="",
                   help="comma-separated host:port list overriding [kafka] bootstrap_servers")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="port of /metrics and /healthz overriding [metrics] port (0: off)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop after this many seconds (default: run until SIGTERM/SIGINT)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from tsforge.cli._common import split
    from tsforge.pipeline import load_spec
    from tsforge.serve import configure_logging, serve

    configure_logging(args.log_level)
    spec = load_spec(args.config)
    if args.metrics_port is not None:
        import dataclasses

        spec = spec.replace(metrics=dataclasses.replace(spec.metrics, port=args.metrics_port))
    totals = serve(spec, bootstrap_servers=split(args.bootstrap_servers) or None,
                   max_seconds=args.max_seconds)
    print(json.dumps(totals))
    return 0
