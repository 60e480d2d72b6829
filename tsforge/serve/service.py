"""``tsforge serve``: build a Kafka worker from a pipeline spec and run it.

>>> from tsforge.pipeline import load_spec                     # doctest: +SKIP
>>> from tsforge.serve import serve                            # doctest: +SKIP
>>> serve(load_spec("pipelines/kafka-production.toml"))        # doctest: +SKIP

SIGTERM and SIGINT stop the loop gracefully: the batch in hand is finished,
produced and acknowledged, every owned partition is checkpointed and committed,
then the connections close.  Logs are one JSON object per line on stderr.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from tsforge.errors import ConfigError
from tsforge.pipeline.spec import PipelineSpec
from tsforge.serve.checkpoint import CheckpointStore
from tsforge.serve.engine import OnnxEngine
from tsforge.serve.metrics import Health, MetricsServer, WorkerMetrics
from tsforge.serve.models import prepare_models
from tsforge.serve.worker import Worker

log = logging.getLogger("tsforge.serve")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": round(record.created, 3), "level": record.levelname.lower(),
               "logger": record.name, "event": record.getMessage(),
               **getattr(record, "fields", {})}
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Structured logs for the ``tsforge.serve`` logger on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    monitor = logging.getLogger("tsforge.monitor")  # the rollback rule's alarms and holds
    monitor.handlers[:] = [handler]
    monitor.setLevel(level)
    monitor.propagate = False
    client = logging.getLogger("kafka")  # the client's own warnings, in the same format
    client.handlers[:] = [handler]
    client.setLevel(logging.WARNING)
    client.propagate = False


@dataclass
class Service:
    """A worker and what runs beside it (metrics server)."""

    worker: Worker
    metrics: WorkerMetrics
    health: Health
    server: MetricsServer | None

    def close(self) -> None:
        self.worker.close()
        if self.server is not None:
            self.server.close()


def check_kafka_spec(spec: PipelineSpec) -> None:
    """Errors for a spec that cannot run as a Kafka service, naming the key to fix."""
    where = str(spec.origin or "pipeline spec")
    if spec.use != "kafka":
        raise ConfigError(f"{where}: use = {spec.use!r}; `tsforge serve` runs use = 'kafka' "
                          "pipelines (`tsforge run` runs the others)")
    k = spec.kafka
    if not k.bootstrap_servers:
        raise ConfigError(f"{where}: [kafka] bootstrap_servers is empty; give host:port of "
                          "your brokers or pass --bootstrap-servers")
    for key in ("input_topic", "output_topic", "dead_letter_topic", "group_id"):
        if not getattr(k, key):
            raise ConfigError(f"{where}: [kafka] {key} must not be empty")
    if k.input_topic in (k.output_topic, k.dead_letter_topic):
        raise ConfigError(f"{where}: [kafka] input_topic must differ from output_topic and "
                          "dead_letter_topic (the service would read its own output)")
    for key in ("max_poll_records", "poll_timeout_ms", "max_message_bytes",
                "session_timeout_ms", "max_poll_interval_ms"):
        if getattr(k, key) <= 0:
            raise ConfigError(f"{where}: [kafka] {key} must be > 0, got {getattr(k, key)}")
    if not 0 <= spec.metrics.port <= 65535:
        raise ConfigError(f"{where}: [metrics] port must be in 0..65535 (0: off), "
                          f"got {spec.metrics.port}")
    if not k.outage_limit_seconds > 0:
        raise ConfigError(f"{where}: [kafka] outage_limit_seconds must be > 0, "
                          f"got {k.outage_limit_seconds}")
    if spec.checkpoint.every_seconds < 0:
        raise ConfigError(f"{where}: [checkpoint] every_seconds must be >= 0")


def monitor_config(spec: PipelineSpec) -> Any:
    """The rollback rule when a registry is configured and ``[monitor]`` is on, else None."""
    if not (spec.registry.path and spec.monitor.enabled):
        return None
    from tsforge.monitor import MonitorConfig

    try:
        return MonitorConfig.from_dict(dict(spec.monitor.params))
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{spec.origin or 'pipeline spec'}: [monitor] params: {exc}") from exc


def build_service(spec: PipelineSpec, *, bootstrap_servers: list[str] | None = None,
                  client_options: dict[str, Any] | None = None) -> Service:
    """Models, engine, Kafka connectors, checkpoints and metrics for ``spec``."""
    from tsforge.connectors import DeadLetterSink, KafkaSink, KafkaSource, make_decoder

    if bootstrap_servers:
        spec = spec.replace(kafka=_replace(spec.kafka, bootstrap_servers=bootstrap_servers))
    check_kafka_spec(spec)
    k = spec.kafka
    if spec.model.online_learning:
        from tsforge.serve.online import OnlineEngine

        engine: Any = OnlineEngine(spec)
    else:
        engine = OnnxEngine(prepare_models(spec), intervals=bool(spec.intervals.levels),
                            monitor=monitor_config(spec))
    decoder = make_decoder(k.decoder, channels=engine.channels,
                           max_bytes=k.max_message_bytes)
    source = KafkaSource(k.bootstrap_servers, k.input_topic, k.group_id,
                         max_poll_records=k.max_poll_records,
                         auto_offset_reset=k.auto_offset_reset,
                         session_timeout_ms=k.session_timeout_ms,
                         max_poll_interval_ms=k.max_poll_interval_ms,
                         consumer_options=client_options)
    sink = KafkaSink(k.bootstrap_servers, k.output_topic, producer_options=client_options)
    dead = DeadLetterSink(KafkaSink(k.bootstrap_servers, k.dead_letter_topic,
                                    producer_options=client_options))
    store = (CheckpointStore(spec.checkpoint.path, topic=k.input_topic, group_id=k.group_id)
             if spec.checkpoint.path else None)
    metrics = WorkerMetrics()
    health = Health(stale_after_s=max(60.0, 2 * k.max_poll_interval_ms / 1000))
    drift = None
    if spec.drift.detectors:
        from tsforge.serve.engine import KafkaDrift

        drift = KafkaDrift(spec.drift, metrics)
    worker = Worker(source, decoder, engine, sink, dead, store,
                    layout=k.output_layout, checkpoint_every_s=spec.checkpoint.every_seconds,
                    poll_timeout_s=k.poll_timeout_ms / 1000, metrics=metrics, health=health,
                    drift=drift, validate=spec.validate,
                    outage_limit_s=k.outage_limit_seconds,
                    auto_offset_reset=k.auto_offset_reset)
    server = (MetricsServer(metrics, health, host=spec.metrics.host, port=spec.metrics.port)
              if spec.metrics.port else None)
    return Service(worker, metrics, health, server)


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


def serve(spec: PipelineSpec, *, bootstrap_servers: list[str] | None = None,
          stop: threading.Event | None = None, max_seconds: float | None = None) -> dict:
    """Run a worker until SIGTERM/SIGINT, ``stop`` is set or ``max_seconds`` pass.

    Returns totals: polls, messages, readings, dead letters, forecast messages.
    """
    stop = stop or threading.Event()
    service = build_service(spec, bootstrap_servers=bootstrap_servers)
    previous = _install_signals(stop)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    totals = {"polls": 0, "messages": 0, "readings": 0, "dead_letters": 0, "forecasts": 0}
    log.info("worker started", extra={"fields": {
        "topic": spec.kafka.input_topic, "group": spec.kafka.group_id,
        "models": [g.name for g in service.worker.engine.groups],
        "metrics_port": service.server.port if service.server else None}})
    try:
        def should_stop() -> bool:
            return stop.is_set() or (deadline is not None and time.monotonic() > deadline)

        for report in service.worker.run(should_stop):
            totals["polls"] += 1
            totals["messages"] += report.messages
            totals["readings"] += report.readings
            totals["dead_letters"] += report.dead_letters
            totals["forecasts"] += report.forecasts
    except Exception as exc:  # an error of the service itself: say why, then exit non-zero
        log.error("worker stopping on a service error", extra={"fields": {
            "error": f"{type(exc).__name__}: {exc}", **totals}})
        raise
    finally:
        service.close()
        _restore_signals(previous)
        log.info("worker stopped", extra={"fields": totals})
    return totals


def _install_signals(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
