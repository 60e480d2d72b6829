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
    producer_options
        Any further ``KafkaProducer`` keyword (security, compression).
    """

    def __init__(self, bootstrap_servers: list[str] | str, topic: str, *, acks: Any = "all",
                 linger_ms: int = 5, batch_size: int = 1 << 20,
                 producer_options: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self.options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers, "acks": acks, "linger_ms": linger_ms,
            "batch_size": batch_size, "max_request_size": 16 << 20,
            **(producer_options or {}),
        }
        self._producer: Any = None
        self._pending: list[Any] = []
        self._closed = False

    def _open(self) -> Any:
        if self._closed:
            raise ClosedError(f"KafkaSink({self.topic}) is closed")
        if self._producer is None:
            self._producer = _kafka().KafkaProducer(**self.options)
        return self._producer

    def send(self, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]] | None = None) -> None:
        self._pending.append(self._open().send(self.topic, value=value, key=key,
                                               headers=headers))

    def send_many(self, keys: list[bytes], values: list[bytes]) -> None:
        """Queue many unheaded messages (the forecast path's hot loop)."""
        send, topic = self._open().send, self.topic
        self._pending.extend([send(topic, value=v, key=k) for k, v in zip(keys, values)])

    def flush(self, timeout_s: float = 60.0) -> None:
        producer = self._open()
        producer.flush(timeout=timeout_s)
        pending, self._pending = self._pending, []
        failed = [f for f in pending if not f.is_done or f.failed()]
        if failed:
            first = failed[0].exception if failed[0].is_done else "no acknowledgement in time"
            raise SinkError(f"{len(failed)} of {len(pending)} message(s) to topic "
                            f"'{self.topic}' were not acknowledged (first error: {first}); "
                            "offsets were not committed, so they will be processed again")

    def close(self) -> None:
        if self._producer is not None and not self._closed:
            self.flush()
            self._producer.close()
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
