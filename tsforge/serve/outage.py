"""Riding out broker outages: retry produce and commit with back-off, up to a limit.

The worker runs every broker call whose failure would otherwise stop it
(connecting the producers, flushing forecasts and dead letters, committing
offsets) through :meth:`BrokerGuard.call`.  While the broker is unreachable the
call is retried with exponential back-off (0.2 s doubling to 5 s), ``/healthz``
reports ``"degraded"`` with the reason and ``tsforge_degraded`` is 1.  Nothing is
committed meanwhile, so nothing is lost: the readings in hand are produced once
the broker answers.  An outage longer than ``limit_s`` raises
:class:`BrokerUnavailable`, which stops the worker with a non-zero exit for the
orchestrator to restart it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tsforge.connectors.base import SinkError
from tsforge.errors import TsforgeError

log = logging.getLogger("tsforge.serve")
T = TypeVar("T")


class BrokerUnavailable(TsforgeError):
    """The broker stayed unreachable longer than ``[kafka] outage_limit_seconds``."""


def _retryable() -> tuple[type[BaseException], ...]:
    """Errors that mean "the broker is not answering now" (not a bug, not a config error)."""
    out: list[type[BaseException]] = [SinkError, ConnectionError, TimeoutError]
    try:
        from kafka import errors as ke

        names = ("KafkaConnectionError", "NoBrokersAvailable", "KafkaTimeoutError",
                 "NodeNotReadyError", "RequestTimedOutError", "BrokerNotAvailableError")
        out += [getattr(ke, n) for n in names if hasattr(ke, n)]  # names vary by version
        out += [c for c in vars(ke).values() if isinstance(c, type)
                and issubclass(c, ke.KafkaError) and getattr(c, "retriable", False)]
    except ImportError:  # pragma: no cover - kafka-python missing
        pass
    return tuple(out)


class BrokerGuard:
    """Retry broker calls through an outage (see the module docstring).

    Parameters
    ----------
    limit_s
        Longest outage survived, measured from the first failed attempt.
    health, metrics
        Updated while waiting (``degraded``), may be None.
    sleep
        Injected for tests.
    """

    def __init__(self, limit_s: float = 300.0, *, health: Any = None, metrics: Any = None,
                 first_wait_s: float = 0.2, max_wait_s: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit_s = float(limit_s)
        self.health = health
        self.metrics = metrics
        self.first_wait_s = first_wait_s
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        self.retryable = _retryable()
        self.outages = 0

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """``fn()``; retried while it raises a broker error, up to ``limit_s``."""
        started: float | None = None
        wait = self.first_wait_s
        while True:
            try:
                out = fn()
            except self.retryable as exc:
                now = time.monotonic()
                if started is None:
                    started = now
                    self.outages += 1
                    log.warning("broker unreachable; waiting for it", extra={"fields": {
                        "operation": operation, "error": _short(exc),
                        "limit_s": self.limit_s}})
                waited = now - started
                if waited >= self.limit_s:
                    self._degraded(None)
                    raise BrokerUnavailable(
                        f"the Kafka broker did not answer for {waited:.0f} s during "
                        f"{operation} (last error: {_short(exc)}); [kafka] "
                        f"outage_limit_seconds = {self.limit_s:g} passed, stopping so the "
                        "orchestrator restarts the worker; nothing was committed after "
                        "the last acknowledged batch") from exc
                self._degraded(f"{operation}: {_short(exc)}")
                if self.metrics is not None:
                    self.metrics.broker_retries.labels(operation).inc()
                self.sleep(min(wait, max(0.0, self.limit_s - waited)))
                wait = min(wait * 2, self.max_wait_s)
                continue
            if started is not None:
                log.warning("broker back; resuming", extra={"fields": {
                    "operation": operation,
                    "outage_s": round(time.monotonic() - started, 1)}})
                self._degraded(None)
            return out

    def _degraded(self, reason: str | None) -> None:
        if self.health is not None:
            self.health.set_degraded(reason)
            if reason is not None:
                self.health.last_poll = time.monotonic()  # alive, waiting: not stale
        if self.metrics is not None:
            self.metrics.degraded.set(0 if reason is None else 1)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
