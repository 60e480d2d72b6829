"""Kafka source and sink on kafka-python, plus topic helpers.

:class:`KafkaSource` is a consumer-group member: Kafka assigns it partitions of
the input topic and moves them to other members when workers come and go; the
callbacks registered with :meth:`KafkaSource.on_rebalance` run inside ``poll``
at those moments, which is where a worker saves or loads per-partition state.
Auto-commit is off: offsets are committed only by :meth:`KafkaSource.commit`.

:class:`KafkaSink` is a producer whose :meth:`KafkaSink.flush` returns only when
every queued message is acknowledged by the brokers (``acks="all"``) and raises
:class:`~tsforge.connectors.base.SinkError` when one was not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tsforge.connectors.base import ClosedError, RawBatch, RebalanceCallback, SinkError

from tsforge.optional import require


def _kafka() -> Any:
    return require("kafka", "the Kafka connector")


class KafkaSource:
    """Read ``topic`` as a member of consumer group ``group_id``.

    Parameters
    ----------
    bootstrap_servers
        ``host:port`` of one or more brokers.
    topic, group_id
        Input topic and consumer group; workers sharing ``group_id`` share the partitions.
    max_poll_records, auto_offset_reset
        As in kafka-python; ``auto_offset_reset`` applies to partitions with no
        committed offset and no checkpoint.
    session_timeout_ms, max_poll_interval_ms, heartbeat_interval_ms
        Group liveness: a worker that stops heart-beating is dropped after the
        session timeout and its partitions move; the poll interval also bounds how
        long a rebalance waits for members to rejoin.
    consumer_options
        Any further ``KafkaConsumer`` keyword (security, SASL, fetch sizes).
    """

    def __init__(self, bootstrap_servers: list[str] | str, topic: str, group_id: str, *,
                 max_poll_records: int = 5000, auto_offset_reset: str = "earliest",
                 session_timeout_ms: int = 10000, max_poll_interval_ms: int = 30000,
                 heartbeat_interval_ms: int = 1000,
                 consumer_options: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self.options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers, "group_id": group_id,
            "enable_auto_commit": False, "auto_offset_reset": auto_offset_reset,
            "max_poll_records": max_poll_records, "session_timeout_ms": session_timeout_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "fetch_max_bytes": 64 << 20, "max_partition_fetch_bytes": 8 << 20,
            # Reconnect within a second of the broker's return (the client's default
            # back-off grows to 30 s, longer than a typical outage).
            "reconnect_backoff_max_ms": 1000,
            **(consumer_options or {}),
        }
        self._callbacks: tuple[RebalanceCallback, RebalanceCallback,
                               RebalanceCallback] | None = None
        self._consumer: Any = None
        self._closed = False

    def _open(self) -> Any:
        if self._closed:
            raise ClosedError(f"KafkaSource({self.topic}) is closed")
        if self._consumer is None:
            kafka = _kafka()
            self._consumer = kafka.KafkaConsumer(**self.options)
            listener = _Listener(self._callbacks) if self._callbacks else None
            self._consumer.subscribe([self.topic], listener=listener)
        return self._consumer

    def on_rebalance(self, assigned: RebalanceCallback, revoked: RebalanceCallback,
                     lost: RebalanceCallback | None = None) -> None:
        if self._consumer is not None:
            raise RuntimeError("register rebalance callbacks before the first poll")
        self._callbacks = (assigned, revoked, lost or revoked)

    def poll(self, timeout_s: float) -> RawBatch:
        consumer = self._open()
        polled = consumer.poll(timeout_ms=int(timeout_s * 1000))
        if not polled:
            return RawBatch.empty(self.topic)
        values: list[bytes] = []
        parts: list[np.ndarray] = []
        offsets: list[np.ndarray] = []
        for tp, records in polled.items():
            values.extend([r.value for r in records])
            parts.append(np.full(len(records), tp.partition, dtype=np.int32))
            offsets.append(np.fromiter((r.offset for r in records), np.int64, len(records)))
        return RawBatch(values, np.concatenate(parts), np.concatenate(offsets), self.topic)

    def assignment(self) -> list[int]:
        """Partitions currently assigned to this member."""
        return sorted(tp.partition for tp in self._open().assignment())

    def lag(self) -> dict[int, int]:
        """Messages between our position and the end of each assigned partition."""
        if self._consumer is None or self._closed:
            return {}
        out = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is not None:
                out[tp.partition] = max(0, end - self._consumer.position(tp))
        return out

    def seek(self, partition: int, offset: int) -> None:
        kafka = _kafka()
        self._open().seek(kafka.TopicPartition(self.topic, partition), int(offset))

    def offset_range(self, partition: int) -> tuple[int, int | None]:
        """``(first offset, end offset)`` of ``partition``; end is None before a fetch.

        The end is the high watermark of the last fetch response for the partition
        (since its assignment), not a ListOffsets answer: some Kafka-protocol brokers
        (Tansu) answer "latest" with the start of the last record batch.
        """
        kafka = _kafka()
        tp = kafka.TopicPartition(self.topic, partition)
        consumer = self._open()
        end = consumer.highwater(tp)
        return int(consumer.beginning_offsets([tp])[tp]), None if end is None else int(end)

    def probe(self, timeout_s: float = 5.0) -> None:
        """Ask the broker for the end offsets of the assigned partitions; raises
        ``KafkaTimeoutError`` when it does not answer within ``timeout_s``."""
        consumer = self._open()
        tps = list(consumer.assignment()) or [  # out of the group: the topic's partitions
            _kafka().TopicPartition(self.topic, p)
            for p in sorted(consumer.partitions_for_topic(self.topic) or [])]
        if tps:
            consumer.end_offsets(tps, timeout_ms=int(timeout_s * 1000))

    def committed(self, partition: int) -> int | None:
        """The group's committed offset of ``partition`` (None: never committed)."""
        kafka = _kafka()
        offset = self._open().committed(kafka.TopicPartition(self.topic, partition))
        return None if offset is None else int(offset)

    def commit(self, positions: dict[int, int], *, wait: bool = True) -> None:
        """Commit ``positions``; ``wait=False`` sends the commit without blocking.

        Inside a rebalance callback the commit must not block (kafka-python runs
        the callbacks on its network thread); there the checkpoint, written
        first, is what the next owner resumes from.
        """
        if not positions:
            return
        kafka = _kafka()
        from kafka.structs import OffsetAndMetadata

        offsets = {kafka.TopicPartition(self.topic, p): OffsetAndMetadata(int(o), "", -1)
                   for p, o in positions.items()}
        if wait:
            self._open().commit(offsets)
        else:
            self._open().commit_async(offsets)

    def close(self) -> None:
        if self._consumer is not None and not self._closed:
            self._consumer.close(autocommit=False)
        self._closed = True


class _Listener:
    """kafka-python rebalance listener forwarding partition numbers to two callbacks."""

    def __init__(self, callbacks: tuple[RebalanceCallback, RebalanceCallback,
                                        RebalanceCallback]) -> None:
        self.assigned, self.revoked, self.lost = callbacks

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.revoked(sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned(sorted(tp.partition for tp in assigned))

    def on_partitions_lost(self, lost: Any) -> None:
        """Membership was lost: another member may own these already, so no checkpoint."""
        self.lost(sorted(tp.partition for tp in lost))


# kafka-python checks isinstance(listener, ConsumerRebalanceListener) (an ABC).
def _register_listener() -> None:
    try:
        from kafka import ConsumerRebalanceListener
    except ImportError:  # pragma: no cover - kafka-python missing
        return
    ConsumerRebalanceListener.register(_Listener)


_register_listener()


class KafkaSink:
    """Produce keyed messages to ``topic``; ``flush`` waits for every acknowledgement.

    Parameters
    ----------
    bootstrap_servers, topic
        Where to write.
    acks
        ``"all"`` (default) waits for every in-sync replica: a flushed forecast
        survives a broker failure.
    linger_ms, batch_size
        Producer batching (throughput against latency).
    flush_timeout_s
        Longest wait of one :meth:`flush`; the worker retries a flush that timed
        out while the broker is away (:mod:`tsforge.serve.outage`).
    producer_options
        Any further ``KafkaProducer`` keyword (security, compression).
    """

    def __init__(self, bootstrap_servers: list[str] | str, topic: str, *, acks: Any = "all",
                 linger_ms: int = 5, batch_size: int = 1 << 20, flush_timeout_s: float = 10.0,
                 producer_options: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self.options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers, "acks": acks, "linger_ms": linger_ms,
            "batch_size": batch_size, "max_request_size": 16 << 20,
            "reconnect_backoff_max_ms": 1000, "max_block_ms": 10000,
            **(producer_options or {}),
        }
        self.flush_timeout_s = flush_timeout_s
        self._producer: Any = None
        # Queued messages: (future, key, value, headers), kept until acknowledged so
        # that a message the producer gave up on can be sent again.
        self._pending: list[tuple[Any, bytes | None, bytes, Any]] = []
        self._closed = False

    def open(self) -> Any:
        """Connect the producer now (the worker does so at start-up, not on the first send)."""
        if self._closed:
            raise ClosedError(f"KafkaSink({self.topic}) is closed")
        if self._producer is None:
            self._producer = _kafka().KafkaProducer(**self.options)
        return self._producer

    def send(self, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]] | None = None) -> None:
        self._pending.append(self._queue(key, value, headers))

    def send_many(self, keys: list[bytes], values: list[bytes]) -> None:
        """Queue many unheaded messages (the forecast path's hot loop)."""
        send, topic = self.open().send, self.topic
        done = 0
        try:
            for k, v in zip(keys, values):
                self._pending.append((send(topic, value=v, key=k), k, v, None))
                done += 1
        except _kafka().errors.KafkaTimeoutError:  # no metadata: the broker is away
            self._pending.extend(self._queue(k, v, None)
                                 for k, v in zip(keys[done:], values[done:]))

    def _queue(self, key: bytes | None, value: bytes,
               headers: list[tuple[str, bytes]] | None) -> tuple[Any, bytes | None, bytes, Any]:
        """Hand one message to the producer; future None if it could not take it now."""
        try:
            future = self.open().send(self.topic, value=value, key=key, headers=headers)
        except _kafka().errors.KafkaTimeoutError:
            future = None
        return (future, key, value, headers)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every acknowledgement; raise :class:`SinkError` if some are missing.

        Messages still in flight stay queued; when the producer gave up on some,
        it is replaced and every unacknowledged message is queued again on the new
        one, so calling ``flush`` again (after the broker is back) delivers them;
        nothing is dropped (a message may then be delivered twice: same key).
        """
        producer = self.open()
        self._pending = [self._queue(*m[1:]) if m[0] is None else m for m in self._pending]
        try:
            producer.flush(timeout=self.flush_timeout_s if timeout_s is None else timeout_s)
        except _kafka().errors.KafkaTimeoutError:
            pass  # the unacknowledged messages are counted below
        pending = self._pending
        waiting = [m for m in pending if m[0] is None or not m[0].is_done]
        failed = [m for m in pending if m[0] is not None and m[0].is_done and m[0].failed()]
        if not waiting and not failed:
            self._pending = []
            return
        first = failed[0][0].exception if failed else "no acknowledgement in time"
        if failed:
            # The producer gave up on these; it may be in a state it cannot leave (an
            # idempotent producer whose broker lost its sequence numbers): start a
            # new one and queue every unacknowledged message on it.
            self._producer.close(timeout=0)
            self._producer = None
            self._pending = [(None, *m[1:]) for m in waiting + failed]
        else:
            self._pending = waiting
        raise SinkError(f"{len(waiting) + len(failed)} of {len(pending)} message(s) to topic "
                        f"'{self.topic}' were not acknowledged (first error: {first}); "
                        "they stay queued and offsets were not committed")

    def close(self) -> None:
        if self._producer is not None and not self._closed:
            try:
                self.flush()
            finally:
                self._producer.close(timeout=5)
        self._closed = True


def create_topics(bootstrap_servers: list[str] | str, topics: dict[str, int]) -> None:
    """Create ``{name: partitions}`` topics that do not exist yet (replication 1)."""
    kafka = _kafka()
    from kafka.admin import NewTopic

    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name, n, 1) for name, n in topics.items() if name not in existing]
        if new:
            admin.create_topics(new)
    finally:
        admin.close()


def read_topic(bootstrap_servers: list[str] | str, topic: str, *,
               timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every message now in ``topic`` (all partitions, from the start), outside any group.

    Each is a dict with ``key``, ``value``, ``headers``, ``partition`` and ``offset``;
    used to inspect forecast and dead-letter topics.
    """
    import time

    kafka = _kafka()
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap_servers,
                                   enable_auto_commit=False, group_id=None)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [kafka.TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading topic '{topic}' took over {timeout_s} s")
            for tp, records in consumer.poll(timeout_ms=200).items():
                out.extend({"key": r.key, "value": r.value, "headers": list(r.headers or []),
                            "partition": tp.partition, "offset": r.offset} for r in records)
        return out
    finally:
        consumer.close(autocommit=False)
