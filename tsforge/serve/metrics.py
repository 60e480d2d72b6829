"""Prometheus metrics and the health endpoint of a worker.

One small HTTP server on ``[metrics] port`` (9108 by default) answers
``GET /metrics`` (Prometheus text format, prometheus-client) and ``GET /healthz``
(JSON; 200 while the worker polls, 503 once it has not polled for
``stale_after_s`` seconds or has stopped; 200 with ``"status": "degraded"`` while
the broker is unreachable and the worker waits for it).  Each worker has its own collector
registry, so several workers can live in one process (tests).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tsforge.optional import require


class WorkerMetrics:
    """The worker's counters and gauges (names prefixed ``tsforge_``)."""

    def __init__(self) -> None:
        pc = require("prometheus_client", "serve metrics")
        self.registry = pc.CollectorRegistry()
        r = self.registry
        self.readings = pc.Counter("tsforge_readings", "Valid readings forecast", registry=r)
        self.forecasts = pc.Counter("tsforge_forecast_messages",
                                    "Forecast messages produced and acknowledged", registry=r)
        self.readings_per_second = pc.Gauge(
            "tsforge_readings_per_second", "Readings per second over the last poll", registry=r)
        self.dead_letters = pc.Counter("tsforge_dead_letters",
                                       "Messages sent to the dead-letter topic", registry=r)
        self.lag = pc.Gauge("tsforge_consumer_lag", "Messages behind the end of the partition",
                            ["partition"], registry=r)
        self.latency = pc.Histogram(
            "tsforge_batch_latency_seconds",
            "Poll to acknowledged forecasts, per batch (forecast latency)", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.drift_alarms = pc.Counter("tsforge_drift_alarms", "Drift alarms raised",
                                       ["sensor", "detector"], registry=r)
        self.model_version = pc.Gauge("tsforge_model_version_info",
                                      "Model versions served (value 1)",
                                      ["group", "family", "version"], registry=r)
        self.rollbacks = pc.Counter("tsforge_rollbacks",
                                    "Automatic rollbacks to the previous registry version",
                                    ["group", "from_version", "to_version"], registry=r)
        self.checkpoints = pc.Counter("tsforge_checkpoints",
                                      "Checkpoints written with their offsets committed",
                                      registry=r)
        self.partitions = pc.Gauge("tsforge_assigned_partitions", "Partitions assigned",
                                   registry=r)
        self.quarantined = pc.Counter("tsforge_checkpoints_quarantined",
                                      "Unreadable checkpoint files renamed aside", registry=r)
        self.offset_resets = pc.Counter(
            "tsforge_offset_resets", "Start offsets outside the partition reset by "
            "auto_offset_reset", ["partition"], registry=r)
        self.broker_retries = pc.Counter(
            "tsforge_broker_retries", "Produce/commit attempts retried while the broker "
            "was unreachable", ["operation"], registry=r)
        self.degraded = pc.Gauge("tsforge_degraded",
                                 "1 while the broker is unreachable and the worker waits",
                                 registry=r)

    def exposition(self) -> bytes:
        pc = require("prometheus_client", "serve metrics")
        return pc.generate_latest(self.registry)


class Health:
    """What ``/healthz`` reports; the worker loop updates it."""

    def __init__(self, stale_after_s: float = 60.0, degraded_after_s: float = 10.0) -> None:
        self.stale_after_s = stale_after_s
        #: A poll that has not returned for this long means the client waits for the
        #: broker (or a rebalance): reported as degraded until stale.
        self.degraded_after_s = degraded_after_s
        self.last_poll = time.monotonic()
        self.running = True
        self.partitions: list[int] = []
        self.readings = 0
        #: Why the worker is waiting for the broker (None: it is not).
        self.degraded: str | None = None
        self.degraded_since = 0.0

    def set_degraded(self, reason: str | None) -> None:
        """Enter (reason) or leave (None) the degraded state."""
        if reason is not None and self.degraded is None:
            self.degraded_since = time.monotonic()
        self.degraded = reason

    def report(self) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        age = now - self.last_poll
        body: dict[str, Any] = {"seconds_since_poll": round(age, 3),
                                "partitions": self.partitions, "readings": self.readings}
        if self.running and self.degraded is not None:
            # Alive and waiting for the broker: not a reason to restart the worker.
            return 200, {"status": "degraded", "reason": self.degraded,
                         "degraded_seconds": round(now - self.degraded_since, 3), **body}
        if self.running and self.degraded_after_s < age < self.stale_after_s:
            return 200, {"status": "degraded", "reason": f"no poll returned for {age:.0f} s "
                         "(the Kafka client is waiting for the broker or a rebalance)",
                         "degraded_seconds": round(age, 3), **body}
        ok = self.running and age < self.stale_after_s
        return (200 if ok else 503), {
            "status": "ok" if ok else ("stopped" if not self.running else "stale"), **body}


class MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` on a daemon thread until :meth:`close`."""

    def __init__(self, metrics: WorkerMetrics, health: Health, *, host: str = "0.0.0.0",
                 port: int = 9108) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    code, body, ctype = 200, outer.metrics.exposition(), "text/plain"
                elif self.path.startswith("/healthz"):
                    code, payload = outer.health.report()
                    body, ctype = json.dumps(payload).encode(), "application/json"
                else:
                    code, body, ctype = 404, b"try /metrics or /healthz\n", "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.metrics = metrics
        self.health = health
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="tsforge-metrics")
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
