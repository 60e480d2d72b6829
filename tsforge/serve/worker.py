"""The worker loop: poll, decode, forecast, produce, acknowledge, checkpoint, commit.

Delivery is at-least-once.  For each poll the worker

1. decodes the messages into columns; undecodable, invalid and unknown-sensor
   messages go to the dead-letter sink with the reason and their original bytes;
2. forecasts every valid reading (batched model calls, :mod:`tsforge.serve.engine`);
3. produces the forecasts and the dead letters and waits until the sinks have
   acknowledged all of them;
4. every ``checkpoint_every_s`` seconds, and whenever partitions are revoked or
   the worker stops, writes each owned partition's sensor state with the offset
   reached (:mod:`tsforge.serve.checkpoint`) and only then commits that offset.

A worker that takes a partition over loads its checkpoint and seeks to the
checkpoint's offset, so no reading is left without forecasts; readings after
the last checkpoint are forecast again with the same ids (duplicates that a
consumer drops by key).  The loop itself is a generator: one report per poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsforge.connectors.base import DeadLetterSink, Decoder, Sink, Source
from tsforge.serve.checkpoint import CheckpointStore
from tsforge.serve.engine import OnnxEngine
from tsforge.serve.metrics import Health, WorkerMetrics
from tsforge.serve.output import encode

log = logging.getLogger("tsforge.serve")


@dataclass
class PollReport:
    """What one poll did."""

    messages: int
    readings: int
    dead_letters: int
    forecasts: int
    seconds: float
    checkpointed: bool


class Worker:
    """One consumer-group member serving forecasts (see the module docstring).

    Parameters
    ----------
    source, decoder, engine, sink, dead_letters
        Where readings come from, how they are decoded, how they are forecast
        (:class:`~tsforge.serve.engine.OnnxEngine`, or
        :class:`~tsforge.serve.online.OnlineEngine` for online learning), where
        forecasts and rejected messages go.
    checkpoints
        Per-partition state store; None keeps no state across workers (offsets
        are still committed only after acknowledgement).
    layout
        Output layout, see :mod:`tsforge.serve.output`.
    checkpoint_every_s
        Seconds between checkpoints (0: after every poll).  Longer means less I/O
        and a longer window of readings forecast twice after a crash.
    """

    def __init__(self, source: Source, decoder: Decoder, engine: OnnxEngine | Any, sink: Sink,
                 dead_letters: DeadLetterSink, checkpoints: CheckpointStore | None, *,
                 layout: str = "step", checkpoint_every_s: float = 10.0,
                 poll_timeout_s: float = 0.5, metrics: WorkerMetrics | None = None,
                 health: Health | None = None, drift: Any = None) -> None:
        self.source = source
        self.decoder = decoder
        self.engine = engine
        self.sink = sink
        self.dead_letters = dead_letters
        self.checkpoints = checkpoints
        self.layout = layout
        self.checkpoint_every_s = checkpoint_every_s
        self.poll_timeout_s = poll_timeout_s
        self.metrics = metrics
        self.health = health
        self.drift = drift
        self.owned: set[int] = set()
        self.positions: dict[int, int] = {}
        self.sensor_partition: dict[str, int] = {}
        self._last_checkpoint = time.monotonic()
        self._dirty: set[int] = set()
        self._closing = False
        source.on_rebalance(self._on_assigned, self._on_revoked, self._on_lost)
        if metrics is not None:
            for g in engine.groups:
                metrics.model_version.labels(g.name, g.family, g.version).set(1)

    # ------------------------------------------------------------------ rebalance
    def _on_assigned(self, partitions: list[int]) -> None:
        for p in partitions:
            self.owned.add(p)
            ckpt = self.checkpoints.load(p) if self.checkpoints is not None else None
            if ckpt is None:
                log.info("partition assigned", extra={"fields": {"partition": p,
                                                                 "checkpoint": None}})
                continue
            restored = 0
            for sensor, (version, state) in ckpt.sensors.items():
                if not self.engine.knows(np.asarray([sensor]))[0]:
                    continue
                self.sensor_partition[sensor] = p
                if version != self.engine.version(sensor):
                    log.warning("model changed since checkpoint; sensor state restarts",
                                extra={"fields": {"sensor": sensor, "saved": version,
                                                  "now": self.engine.version(sensor)}})
                    self.engine.drop_sensor(sensor)
                    continue
                self.engine.load_sensor_state(sensor, state)
                restored += 1
            self.source.seek(p, ckpt.offset)
            self.positions[p] = ckpt.offset
            log.info("partition assigned", extra={"fields": {
                "partition": p, "checkpoint_offset": ckpt.offset, "sensors_restored": restored}})
        self._set_partitions()

    def _on_revoked(self, partitions: list[int]) -> None:
        if self._closing:  # leaving the group in close(): run() has checkpointed already
            return
        mine = [p for p in partitions if p in self.owned]
        self.checkpoint(mine, wait=False)
        self._release(mine)
        log.info("partitions revoked", extra={"fields": {"partitions": mine}})

    def _on_lost(self, partitions: list[int]) -> None:
        # The group moved on without us: the new owner may have checkpointed past our
        # position already, so write nothing; it resumes from the last checkpoint.
        mine = [p for p in partitions if p in self.owned]
        self._release(mine)
        log.warning("partitions lost (membership expired); state dropped, the new owner "
                    "resumes from the last checkpoint", extra={"fields": {"partitions": mine}})

    def _release(self, mine: list[int]) -> None:
        for p in mine:
            for sensor in [s for s, q in self.sensor_partition.items() if q == p]:
                self.engine.drop_sensor(sensor)
                del self.sensor_partition[sensor]
            self.owned.discard(p)
            self.positions.pop(p, None)
            self._dirty.discard(p)
        self._set_partitions()

    def _set_partitions(self) -> None:
        if self.health is not None:
            self.health.partitions = sorted(self.owned)
        if self.metrics is not None:
            self.metrics.partitions.set(len(self.owned))

    # ------------------------------------------------------------------ checkpoint
    def checkpoint(self, partitions: list[int] | None = None, *, wait: bool = True) -> None:
        """Write the state of ``partitions`` (default: all owned), then commit their offsets.

        ``wait=False`` (inside a rebalance) sends the commit without waiting for it;
        the checkpoint on disk already holds the offset the next owner resumes from.
        """
        parts = [p for p in (sorted(self.owned) if partitions is None else partitions)
                 if p in self.positions]
        if not parts:
            return
        if self.checkpoints is not None:
            for p in parts:
                sensors = {s: (self.engine.version(s), self.engine.sensor_state(s))
                           for s, q in self.sensor_partition.items() if q == p}
                self.checkpoints.save(p, self.positions[p], sensors)
        self.source.commit({p: self.positions[p] for p in parts}, wait=wait)
        self._dirty.difference_update(parts)
        self._last_checkpoint = time.monotonic()
        if self.metrics is not None:
            self.metrics.checkpoints.inc()

    # ------------------------------------------------------------------ loop
    def run(self, stop: Callable[[], bool] = lambda: False) -> Iterator[PollReport]:
        """Poll until ``stop()`` is true, yielding one report per poll; then checkpoint."""
        try:
            while not stop():
                yield self.poll_once()
        finally:
            if self.health is not None:
                self.health.running = False
        self.checkpoint()

    def poll_once(self) -> PollReport:
        """Process one poll end to end (see the module docstring)."""
        raw = self.source.poll(self.poll_timeout_s)
        t0 = time.perf_counter()
        if self.health is not None:
            self.health.last_poll = time.monotonic()
        if len(raw) == 0:
            done = self._maybe_checkpoint()
            return PollReport(0, 0, 0, 0, time.perf_counter() - t0, done)
        good, rejected = self.decoder.decode(raw)
        known = self.engine.knows(good.sensor)
        if not known.all():
            for i, s in zip(good.index[~known].tolist(), good.sensor[~known].tolist()):
                rejected.add(i, f"unknown sensor '{s}': no model serves it; add its column to "
                                "the warm-up history ([model] history) and restart")
            good = good.take(known)
        block = self.engine.step(good)
        take = getattr(self.engine, "take_switches", None)
        if take is not None and self.engine.switches:
            self._switched(take())
        keys, values = encode(good.sensor, good.ts, block, self.engine.levels, self.layout)
        send_many = getattr(self.sink, "send_many", None)
        if send_many is not None:
            send_many(keys, values)
        else:
            for k, v in zip(keys, values):
                self.sink.send(k, v)
        self.dead_letters.send_rejected(raw, rejected)
        self.sink.flush()
        self.dead_letters.flush()
        # Everything of this poll is acknowledged: the offsets may advance.
        self.positions.update(raw.next_positions())
        self._dirty.update(int(p) for p in np.unique(raw.partitions))
        parts = raw.partitions[good.index]
        self.sensor_partition.update(zip(good.sensor.tolist(), parts.tolist()))
        if self.drift is not None:
            self.drift.update(good, block)
        done = self._maybe_checkpoint()
        seconds = time.perf_counter() - t0
        self._record(raw, len(good), len(rejected), len(keys), seconds)
        return PollReport(len(raw), len(good), len(rejected), len(keys), seconds, done)

    def _switched(self, switches: list[tuple[Any, Any, Any]]) -> None:
        """Log and count each rollback of the engine (see :mod:`tsforge.engine.shadow`)."""
        for old, new, event in switches:
            log.warning("model rolled back", extra={"fields": {
                "group": old.name, "from": old.version, "to": new.version,
                "reason": event.reason, "step": event.step, "metrics": event.metrics}})
            if self.metrics is not None:
                self.metrics.rollbacks.labels(old.name, old.version, new.version).inc()
                self.metrics.model_version.labels(old.name, old.family, old.version).set(0)
                self.metrics.model_version.labels(new.name, new.family, new.version).set(1)

    def _maybe_checkpoint(self) -> bool:
        if self._dirty and time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s:
            self.checkpoint(sorted(self._dirty & self.owned))
            return True
        return False

    def _record(self, raw: Any, n_good: int, n_bad: int, n_out: int, seconds: float) -> None:
        if self.health is not None:
            self.health.readings += n_good
        m = self.metrics
        if m is None:
            return
        m.readings.inc(n_good)
        m.forecasts.inc(n_out)
        m.dead_letters.inc(n_bad)
        m.latency.observe(seconds)
        m.readings_per_second.set(n_good / seconds if seconds > 0 else 0.0)
        lag = getattr(self.source, "lag", None)
        if lag is not None:
            for p, v in lag().items():
                m.lag.labels(str(p)).set(v)

    def close(self) -> None:
        """Release the source and sinks (call after :meth:`run` has finished)."""
        self._closing = True
        for closer in (self.sink.close, self.dead_letters.close, self.source.close):
            try:
                closer()
            except Exception as exc:
                log.warning("close failed", extra={"fields": {"error": str(exc)}})
