"""``tsforge-edge``: serve a bundle on a box with numpy and onnxruntime only.

``tsforge-edge run BUNDLE`` verifies the bundle (every checksum) and reads
readings ``timestamp,sensor,value[,covariate...]`` from standard input, a CSV
file, a followed file (``tail:PATH``), a local socket (``tcp://HOST:PORT``) or
Kafka (``kafka://HOST:PORT/TOPIC``, kafka-python needed).  It writes one row per
reading ``timestamp,sensor,step_1,...,step_H`` in engineering units (with
``--intervals`` also ``lower_<level>_step_h``/``upper_<level>_step_h``, empty while
a sensor's residual windows warm up) to standard output, a CSV file or Kafka.

Bad readings never stop the stream: a line that cannot be parsed, or a first
reading that is not finite, goes to the dead-letter file (or standard error)
with the reason; a NaN/inf reading later on is imputed by the model's own
forecast and counted.  Rollbacks and saved versions are reported as JSON lines
on the events file (standard error by default).  ``tsforge-edge verify BUNDLE``
only checks the bundle.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

from tsforge.errors import ConfigError, TsforgeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsforge-edge",
        description="Torch-free streaming inference of a tsforge bundle or ONNX artifact.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="stream readings through a model and write forecasts")
    run.add_argument("model", help="bundle folder (tsforge export --bundle) or model.onnx "
                                   "with its manifest model.json beside it")
    run.add_argument("--input", default="-",
                     help="'-' (stdin), CSV path, tail:PATH, tcp://HOST:PORT or "
                          "kafka://HOST:PORT/TOPIC")
    run.add_argument("--output", default="-",
                     help="'-' (stdout), CSV path or kafka://HOST:PORT/TOPIC")
    run.add_argument("--dead-letter", default=None,
                     help="file for unusable readings (default: standard error)")
    run.add_argument("--events", default=None,
                     help="file for rollback/save events as JSON lines (default: standard error)")
    run.add_argument("--threads", type=int, default=1,
                     help="onnxruntime threads (1 = lowest latency)")
    run.add_argument("--intervals", action="store_true",
                     help="also write the conformal prediction intervals of every forecast")
    run.add_argument("--int8", action="store_true", help="serve the bundle's int8 step")
    run.add_argument("--adapt", action="store_true",
                     help="keep learning on the device with the bundle's online learner")
    run.add_argument("--save-every", type=int, default=0, metavar="N",
                     help="with --adapt: write a new bundle version every N readings and at "
                          "the end of the stream (0: only at the end)")
    run.add_argument("--no-rollback", action="store_true",
                     help="do not shadow the previous version or roll back to it")
    run.add_argument("--no-drift", action="store_true",
                     help="do not watch residuals for drift (watched only if river is installed)")
    run.add_argument("--monitor", default="{}", metavar="JSON",
                     help='rollback rule settings (tsforge.monitor.MonitorConfig), e.g. '
                          '\'{"window": 288, "rollback_margin": 0.1}\'')
    run.add_argument("--max-idle", type=float, default=None, metavar="SECONDS",
                     help="stop a tail/tcp/kafka input after this long without data")
    run.add_argument("--group", default=None, help="Kafka consumer group (kafka:// input)")
    verify = sub.add_parser("verify", help="check a bundle's checksums and print its index")
    verify.add_argument("model", help="bundle folder")
    verify.add_argument("--json", action="store_true", help="also print the index as JSON")
    return parser


def _header(service) -> list[str]:
    steps = [f"step_{h + 1}" for h in range(service.horizon)]
    return ["timestamp", "sensor", *steps] + [
        f"{side}_{lvl:g}_{s}" for lvl in service.interval_levels
        for side in ("lower", "upper") for s in steps]


def serve_rows(service, rows: Iterable[list[str]], emit: Callable[[list[str], dict], None],
               dead: IO[str], events: IO[str] | None = None, save_every: int = 0) -> int:
    """Serve every row ``timestamp,sensor,value[,covariates]``; return the dead-lettered count.

    ``emit(row, extra)`` writes one formatted forecast row; with ``save_every`` (and an
    adapting service) the learner is written as a new bundle version every that many
    readings and at the end; events go to ``events`` as JSON lines.
    """
    n_dead, n_seen, n_events = 0, 0, 0
    adapting = service.runtime.learner is not None

    def may_save() -> bool:
        return adapting and not service.rolled_back

    try:
        for lineno, row in enumerate(rows, start=1):
            if not row or row[0].strip().lower() in ("timestamp", "time", "ts"):
                continue
            try:
                if len(row) < 3:
                    raise ValueError("expected timestamp,sensor,value[,covariates...]")
                values = [float(v) for v in row[2:]]
                forecast = service.push(row[1], values[0], values[1:] or None)
            except (ValueError, TsforgeError) as exc:
                n_dead += 1
                dead.write(f"reading {lineno}: {exc}: {','.join(row)}\n")
                continue
            cells = [f"{v:.9g}" for v in forecast.mean]
            for lvl in service.interval_levels:
                band = forecast.intervals.get(lvl)
                for side in (0, 1):
                    cells += [f"{v:.9g}" for v in band[side]] if band else [""] * service.horizon
            emit([row[0], row[1], *cells], {"model_version": service.serving})
            n_seen += 1
            if save_every and n_seen % save_every == 0 and may_save():
                service.save()
            n_events = _flush_events(service, events, n_events)
        if service.runtime.learned and may_save():
            service.save()
    finally:
        _flush_events(service, events, n_events)
    return n_dead


def run_stream(model: str, source: IO[str], sink: IO[str], dead: IO[str], threads: int = 1,
               intervals: bool = False, **service_options: Any) -> int:
    """Serve the CSV lines of ``source`` with ``model`` (bundle or .onnx) and write CSV
    forecasts to ``sink``; return the number of dead-lettered lines.

    ``service_options`` go to :class:`~tsforge.runtime.service.EdgeService`.
    """
    from tsforge.runtime.service import EdgeService

    service = EdgeService(model, threads=threads, intervals=intervals, **service_options)
    writer = csv.writer(sink)
    writer.writerow(_header(service))
    n_dead = serve_rows(service, csv.reader(source), lambda row, _: writer.writerow(row), dead)
    sink.flush()
    return n_dead


def _run(args: argparse.Namespace, dead: IO[str], events: IO[str]) -> int:
    """The ``run`` command: open the input and output named on the command line and serve."""
    from tsforge.runtime.service import EdgeService
    from tsforge.runtime.sources import Sink, open_source

    service = EdgeService(args.model, threads=args.threads, intervals=args.intervals,
                          int8=args.int8, adapt=args.adapt, rollback=not args.no_rollback,
                          monitor=_json_object(args.monitor, "--monitor"),
                          drift=not args.no_drift)
    sink = Sink(args.output, _header(service))
    try:
        rows = open_source(args.input, max_idle=args.max_idle, group=args.group)
        return serve_rows(service, rows, sink.write, dead, events, args.save_every)
    finally:
        sink.close()


def _json_object(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag} is not valid JSON ({exc}); example: "
                          '\'{"window": 288}\'') from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object")
    return value


def _finite(value):
    """JSON-safe copy: non-finite floats (an infinite error ratio) become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _flush_events(service, events: IO[str] | None, done: int) -> int:
    if events is None:
        return done
    for event in service.events[done:]:
        events.write(json.dumps(_finite(event), default=str) + "\n")
        events.flush()
    return len(service.events)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tsforge-edge`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "verify":
            from tsforge.runtime.bundle import verify_bundle

            index = verify_bundle(args.model)
            print(f"OK: {args.model} verified (every checksum matches); version "
                  f"{index['version']}, serving {index['current']}, rollback "
                  f"{index['previous'] or 'none'}, model {index['model']}, sensor "
                  f"{index['sensor']}")
            if args.json:
                print(json.dumps({k: index[k] for k in ("version", "current", "previous",
                                                        "model", "sensor")}))
            return 0
        with contextlib.ExitStack() as stack:
            dead = stack.enter_context(open(args.dead_letter, "a")) if args.dead_letter \
                else sys.stderr
            events = stack.enter_context(open(args.events, "a")) if args.events else sys.stderr
            n_dead = _run(args, dead, events)
    except TsforgeError as exc:
        print(f"tsforge-edge: error: {exc}", file=sys.stderr)
        return 2
    if n_dead:
        where = args.dead_letter or "standard error"
        print(f"tsforge-edge: {n_dead} reading(s) sent to {where}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
