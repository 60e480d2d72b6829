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

Faults.  Any exception on one message's path (decode, ``[validate]`` range,
transform, model) sends that message to the dead-letter sink with the reason
(:mod:`tsforge.serve.poison`).  Produce and commit calls ride out broker outages
up to ``outage_limit_s`` (:mod:`tsforge.serve.outage`).  An unreadable
checkpoint is quarantined and the previous generation used
(:mod:`tsforge.serve.checkpoint`); a start offset outside the partition (topic
recreated, retention) is reset by ``auto_offset_reset``.  Only errors of the
service itself (broker gone past the limit, checkpoint volume, configuration)
stop the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsforge.connectors.base import DeadLetterSink, Decoder, RawBatch, Sink, Source
from tsforge.errors import ArtifactError
from tsforge.serve.checkpoint import Checkpoint, CheckpointStore
from tsforge.serve.engine import OnnxEngine
from tsforge.serve.metrics import Health, WorkerMetrics
from tsforge.serve.outage import BrokerGuard
from tsforge.serve.output import IdTags, encode
from tsforge.serve.poison import RangeCheck, decode_isolating, step_isolating

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
    validate
        ``[validate]`` physical ranges (:class:`~tsforge.pipeline.spec.ValidateSpec`);
        None: no range check.
    outage_limit_s
        Longest broker outage survived before :class:`~tsforge.serve.outage.BrokerUnavailable`.
    auto_offset_reset
        Where a partition whose start offset is out of range continues.
    """

    def __init__(self, source: Source, decoder: Decoder, engine: OnnxEngine | Any, sink: Sink,
                 dead_letters: DeadLetterSink, checkpoints: CheckpointStore | None, *,
                 layout: str = "step", checkpoint_every_s: float = 10.0,
                 poll_timeout_s: float = 0.5, metrics: WorkerMetrics | None = None,
                 health: Health | None = None, drift: Any = None, validate: Any = None,
                 outage_limit_s: float = 300.0, auto_offset_reset: str = "earliest") -> None:
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
        self.ranges = RangeCheck(validate)
        self.ids = IdTags()
        self.auto_offset_reset = auto_offset_reset
        self.guard = BrokerGuard(outage_limit_s, health=health, metrics=metrics)
        self._unchecked: dict[int, int | None] = {}  # assigned, start offset not checked yet
        self.probe_every_s = 5.0
        self._broker_seen = time.monotonic()
        source.on_rebalance(self._on_assigned, self._on_revoked, self._on_lost)
        if metrics is not None:
            for g in engine.groups:
                metrics.model_version.labels(g.name, g.family, g.version).set(1)
        self._connect_sinks()

    def _connect_sinks(self) -> None:
        """Connect the producers now, not on the first send (waiting out an outage)."""
        for sink in (self.sink, getattr(self.dead_letters, "sink", None)):
            connect = getattr(sink, "open", None)
            if connect is not None:
                self.guard.call("connect producer", connect)

    # ------------------------------------------------------------------ rebalance
    def _on_assigned(self, partitions: list[int]) -> None:
        for p in partitions:
            self.owned.add(p)
            ckpt = self._restore(p)
            # Checked after the poll returns: the client cannot block inside a callback.
            self._unchecked[p] = None if ckpt is None else ckpt.offset
        self._set_partitions()

    def _restore(self, p: int) -> Checkpoint | None:
        """Load partition ``p``'s newest usable checkpoint and seek to its offset."""
        if self.checkpoints is None:
            log.info("partition assigned", extra={"fields": {"partition": p,
                                                             "checkpoint": None}})
            return None
        ckpt, quarantined = self.checkpoints.recover(p, self._apply)
        if quarantined:
            if self.metrics is not None:
                self.metrics.quarantined.inc(len(quarantined))
            if ckpt is None:
                self.ids.cold.add(p)
                log.warning("no readable checkpoint; the partition resumes from the "
                            "committed offset with fresh sensor state (ids tagged ~r)",
                            extra={"fields": {"partition": p,
                                              "quarantined": [str(q) for q in quarantined]}})
            else:
                log.warning("resuming from the previous checkpoint generation; readings "
                            "since are replayed", extra={"fields": {
                                "partition": p, "offset": ckpt.offset,
                                "quarantined": [str(q) for q in quarantined]}})
        if ckpt is None:
            log.info("partition assigned", extra={"fields": {"partition": p,
                                                             "checkpoint": None}})
            return None
        self.seek_to(p, ckpt.offset)
        log.info("partition assigned", extra={"fields": {
            "partition": p, "checkpoint_offset": ckpt.offset,
            "sensors_restored": sum(s in self.sensor_partition for s in ckpt.sensors)}})
        return ckpt

    def _apply(self, ckpt: Checkpoint) -> None:
        """Load a checkpoint's sensor states; raises (nothing half-loaded) if one does not fit."""
        loaded: list[str] = []
        try:
            for sensor, (version, state) in ckpt.sensors.items():
                if not self.engine.knows(np.asarray([sensor]))[0]:
                    continue
                if version != self.engine.version(sensor):
                    log.warning("model changed since checkpoint; sensor state restarts",
                                extra={"fields": {"sensor": sensor, "saved": version,
                                                  "now": self.engine.version(sensor)}})
                    self.engine.drop_sensor(sensor)
                    continue
                loaded.append(sensor)
                self.engine.load_sensor_state(sensor, state)
            self.ids.restore(ckpt.extra)
        except Exception:
            for sensor in loaded:
                self.engine.drop_sensor(sensor)
            self.ids.drop(loaded)
            raise
        for sensor in loaded:
            self.sensor_partition[sensor] = ckpt.partition

    def _check_starts(self, raw: RawBatch) -> RawBatch:
        """Reset start offsets outside their partition's range by ``auto_offset_reset``.

        Run for newly assigned partitions after each poll, until the broker has
        reported the partition's end (in a fetch response).  A checkpoint or a
        committed offset past the end means the topic was recreated (or the broker
        lost it); one before the start, that retention removed the messages.  Such
        a partition continues at its first (``earliest``) or end (``latest``)
        offset; whatever this poll read from it is dropped (read again after the
        seek).  Until checked, a partition's messages are not processed.
        """
        unchecked, self._unchecked = self._unchecked, {}
        offset_range = getattr(self.source, "offset_range", None)
        if offset_range is None:
            return raw
        reset: list[int] = []
        for p, saved in unchecked.items():
            if p not in self.owned:
                continue
            try:
                start = saved if saved is not None else self.source.committed(p)
                if start is None:
                    continue
                first, end = offset_range(p)
            except Exception as exc:  # no answer now: the client's own reset still applies
                log.warning("offset range check skipped", extra={"fields": {
                    "partition": p, "error": f"{type(exc).__name__}: {exc}"[:300]}})
                continue
            if end is None:  # no fetch response yet: check after the next poll
                if not (raw.partitions == p).any():  # (messages came: the start was valid)
                    self._unchecked[p] = start
                continue
            if first <= start <= end:
                continue
            to = first if self.auto_offset_reset == "earliest" else end
            log.warning("start offset outside the partition; reset by auto_offset_reset",
                        extra={"fields": {"partition": p, "offset": start, "first": first,
                                          "end": end, "reset_to": to,
                                          "auto_offset_reset": self.auto_offset_reset}})
            if self.metrics is not None:
                self.metrics.offset_resets.labels(str(p)).inc()
            self.seek_to(p, to)
            reset.append(p)
        if reset and len(raw):
            raw = raw.take(~np.isin(raw.partitions, reset))
        return raw

    def seek_to(self, p: int, offset: int) -> None:
        """Continue partition ``p`` at ``offset`` (the sensors keep their state)."""
        self.source.seek(p, offset)
        self.positions[p] = offset

    def _drop_already_applied(self, raw: RawBatch) -> RawBatch:
        """Drop messages before a partition's position: the sensors' state holds them.

        After a rebalance the client may deliver a partition from its committed
        offset although the worker resumed its state from a later checkpoint (a
        crash between the checkpoint and the commit); feeding those readings again
        would apply them twice to the state.  They were forecast and acknowledged
        before, so they are skipped (and logged).
        """
        pos = self.positions
        behind = np.fromiter((pos.get(p, -1) for p in raw.partitions.tolist()), np.int64,
                             len(raw))
        stale = raw.offsets < behind
        if not stale.any():
            return raw
        for p in np.unique(raw.partitions[stale]).tolist():
            mine = stale & (raw.partitions == p)
            log.warning("messages before the restored position skipped (already in the "
                        "state)", extra={"fields": {
                            "partition": p, "first": int(raw.offsets[mine].min()),
                            "position": pos[p], "skipped": int(mine.sum())}})
        return raw.take(~stale)

    def _probe_when_idle(self) -> None:
        """While no message arrives, ask the broker every few seconds whether it is there,
        so an outage is noticed (``degraded``, the limit) even without traffic."""
        probe = getattr(self.source, "probe", None)
        if probe is None or not self.owned:
            return
        if time.monotonic() - self._broker_seen < self.probe_every_s:
            return
        self.guard.call("probe broker", probe)
        self._broker_seen = time.monotonic()

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
                self.ids.drop([sensor])
            self.ids.cold.discard(p)
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
                try:
                    self.checkpoints.save(p, self.positions[p], sensors,
                                          extra=self.ids.extra(list(sensors)))
                except OSError as exc:
                    raise ArtifactError(
                        f"cannot write the checkpoint of partition {p} under "
                        f"{self.checkpoints.root} ({exc}); check the [checkpoint] path "
                        "volume (space, permissions)") from exc
        self._commit({p: self.positions[p] for p in parts}, wait=wait)
        self._dirty.difference_update(parts)
        self._last_checkpoint = time.monotonic()
        if self.metrics is not None:
            self.metrics.checkpoints.inc()

    def _commit(self, positions: dict[int, int], *, wait: bool) -> None:
        """Commit offsets, waiting out a broker outage (``wait``) up to the limit.

        A commit refused because the group rebalanced is not retried: the
        partitions belong to a new generation, which resumes from the checkpoint.
        """
        try:
            from kafka.errors import CommitFailedError
        except ImportError:  # pragma: no cover - kafka-python missing
            CommitFailedError = ()  # type: ignore[assignment]
        try:
            if wait:
                self.guard.call("commit", lambda: self.source.commit(positions, wait=True))
            else:
                self.source.commit(positions, wait=False)
        except CommitFailedError as exc:
            log.warning("commit refused (group rebalanced); the partitions' next owner "
                        "resumes from the checkpoint", extra={"fields": {
                            "positions": positions, "error": str(exc)[:300]}})
        except Exception as exc:
            if wait:
                raise
            log.warning("asynchronous commit failed; the checkpoint holds the offset",
                        extra={"fields": {"error": str(exc)[:300]}})

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
        if self._unchecked:
            raw = self._check_starts(raw)
        if len(raw):
            raw = self._drop_already_applied(raw)
        t0 = time.perf_counter()
        if self.health is not None:
            self.health.last_poll = time.monotonic()
        if len(raw) == 0:
            self._probe_when_idle()
            done = self._maybe_checkpoint()
            return PollReport(0, 0, 0, 0, time.perf_counter() - t0, done)
        good, rejected = decode_isolating(self.decoder, raw)
        known = self.engine.knows(good.sensor)
        if not known.all():
            for i, s in zip(good.index[~known].tolist(), good.sensor[~known].tolist()):
                rejected.add(i, f"unknown sensor '{s}': no model serves it; add its column to "
                                "the warm-up history ([model] history) and restart")
            good = good.take(known)
        good = self.ranges.apply(good, rejected)
        good, block = step_isolating(self.engine, good, rejected)
        take = getattr(self.engine, "take_switches", None)
        if take is not None and self.engine.switches:
            self._switched(take())
        tags = self.ids.tags(good.sensor, good.ts, raw.partitions[good.index],
                             raw.offsets[good.index])
        keys, values = encode(good.sensor, good.ts, block, self.engine.levels, self.layout,
                              tags)
        self._produce(raw, rejected, keys, values)
        # Everything of this poll is acknowledged: the offsets may advance.
        self.positions.update(raw.next_positions())
        self._dirty.update(int(p) for p in np.unique(raw.partitions))
        parts = raw.partitions[good.index]
        self.sensor_partition.update(zip(good.sensor.tolist(), parts.tolist()))
        if self.drift is not None:
            try:
                self.drift.update(good, block)
            except Exception as exc:  # monitoring must not stop the forecasts
                log.warning("drift update failed", extra={"fields": {
                    "error": f"{type(exc).__name__}: {exc}"[:300]}})
        done = self._maybe_checkpoint()
        seconds = time.perf_counter() - t0
        self._record(raw, len(good), len(rejected), len(keys), seconds)
        return PollReport(len(raw), len(good), len(rejected), len(keys), seconds, done)

    def _produce(self, raw: Any, rejected: Any, keys: list[bytes],
                 values: list[bytes]) -> None:
        """Send the forecasts and dead letters of a poll; wait (out an outage) for the acks."""
        send_many = getattr(self.sink, "send_many", None)
        if send_many is not None:
            send_many(keys, values)
        else:
            for k, v in zip(keys, values):
                self.sink.send(k, v)
        self.dead_letters.send_rejected(raw, rejected)
        self.guard.call("produce forecasts", self.sink.flush)
        self.guard.call("produce dead letters", self.dead_letters.flush)
        self._broker_seen = time.monotonic()

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
