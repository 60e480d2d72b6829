"""The protocols every connector implements: sources, sinks, decoders, dead letters.

A *source* hands out raw messages in batches (:class:`RawBatch`: the bytes plus
their partition and offset as arrays); a *decoder* turns a raw batch into
columns (:class:`ReadingBatch`: sensor ids, epoch-millisecond timestamps and a
``(n, C)`` float matrix of values) and names every message it cannot use; a
*sink* takes keyed byte messages and acknowledges them on ``flush``.  Nothing a
source delivers is dropped silently: it is either decoded into a reading or
handed to a :class:`DeadLetterSink` with the reason and the original bytes.

Positions are "the offset of the next message to read", per partition, as in
Kafka; a source commits positions only when asked, after the caller has made
the results of those messages durable (at-least-once delivery).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

#: Called with the partitions a source starts or stops reading.
RebalanceCallback = Callable[[list[int]], None]


@dataclass
class RawBatch:
    """Messages of one poll, in arrival order within each partition.

    ``values[i]`` are the bytes of message ``i``; ``partitions[i]`` and
    ``offsets[i]`` say where it came from.
    """

    values: list[bytes]
    partitions: np.ndarray  # (n,) int32
    offsets: np.ndarray  # (n,) int64
    topic: str = ""

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def empty(cls, topic: str = "") -> RawBatch:
        return cls([], np.zeros(0, np.int32), np.zeros(0, np.int64), topic)

    def take(self, keep: np.ndarray) -> RawBatch:
        """The messages where the boolean mask ``keep`` is true."""
        return RawBatch([v for v, k in zip(self.values, keep.tolist()) if k],
                        self.partitions[keep], self.offsets[keep], self.topic)

    def next_positions(self) -> dict[int, int]:
        """Per partition, the offset after the last message of this batch."""
        out: dict[int, int] = {}
        if len(self.values):
            for p in np.unique(self.partitions):
                out[int(p)] = int(self.offsets[self.partitions == p].max()) + 1
        return out


@dataclass
class ReadingBatch:
    """Decoded readings as columns.

    Attributes
    ----------
    sensor
        ``(n,)`` sensor ids (numpy unicode array).
    ts
        ``(n,)`` timestamps, epoch milliseconds (int64).
    values
        ``(n, C)`` float64: column 0 is the forecast target, the others covariates.
    index
        ``(n,)`` row of each reading in the :class:`RawBatch` it was decoded from
        (its partition and offset are found there).
    """

    sensor: np.ndarray
    ts: np.ndarray
    values: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, rows: np.ndarray) -> ReadingBatch:
        """The readings at ``rows`` (a boolean mask or integer indices)."""
        return ReadingBatch(self.sensor[rows], self.ts[rows], self.values[rows],
                            self.index[rows])


@dataclass
class Rejected:
    """Messages a decoder could not turn into readings: row in the raw batch and why."""

    index: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, i: int, reason: str) -> None:
        self.index.append(int(i))
        self.reasons.append(reason)

    def __len__(self) -> int:
        return len(self.index)


@runtime_checkable
class Decoder(Protocol):
    """Turns raw message bytes into columns; every unusable message is named with a reason."""

    def decode(self, batch: RawBatch) -> tuple[ReadingBatch, Rejected]:
        """Decode ``batch``; rows not in the result are in :class:`Rejected`."""
        ...


@runtime_checkable
class Source(Protocol):
    """Where raw messages come from."""

    def poll(self, timeout_s: float) -> RawBatch:
        """The next messages (possibly none) within ``timeout_s`` seconds."""
        ...

    def commit(self, positions: dict[int, int], *, wait: bool = True) -> None:
        """Record that every message before ``positions[p]`` of partition ``p`` is done.

        ``wait=False`` may return before the commit is durable (used inside
        rebalance callbacks, which must not block).
        """
        ...

    def seek(self, partition: int, offset: int) -> None:
        """Continue ``partition`` from ``offset`` (used to resume from a checkpoint)."""
        ...

    def on_rebalance(self, assigned: RebalanceCallback, revoked: RebalanceCallback,
                     lost: RebalanceCallback | None = None) -> None:
        """Register the callbacks run when partitions are assigned to or taken from us.

        ``lost`` runs when the membership itself was lost (the partitions may already
        belong to another member); it defaults to ``revoked``.
        """
        ...

    def close(self) -> None:
        """Release the connection; after ``close`` every method raises."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where keyed byte messages go."""

    def send(self, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]] | None = None) -> None:
        """Queue one message (not yet durable)."""
        ...

    def flush(self) -> None:
        """Block until every queued message is acknowledged, or raise :class:`SinkError`."""
        ...

    def close(self) -> None:
        """Flush and release; after ``close`` every method raises."""
        ...


class SinkError(RuntimeError):
    """A sink could not make queued messages durable (the caller must not commit)."""


class ClosedError(RuntimeError):
    """A connector was used after :meth:`close`."""


class DeadLetterSink:
    """Sends rejected messages, unchanged, to a sink with the reason in the headers.

    Headers: ``reason`` (UTF-8 text), ``source_topic``, ``source_partition`` and
    ``source_offset``; the message value is the original bytes, so a fixed
    message can be replayed as is.  ``count`` is the number sent so far.
    """

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.count = 0

    def send_rejected(self, batch: RawBatch, rejected: Rejected) -> None:
        """Send every message of ``rejected`` (rows of ``batch``)."""
        for i, reason in zip(rejected.index, rejected.reasons):
            self.send(batch.values[i], reason, batch.topic, int(batch.partitions[i]),
                      int(batch.offsets[i]))

    def send(self, value: bytes, reason: str, topic: str = "", partition: int = -1,
             offset: int = -1) -> None:
        # Reasons quote message content, which may hold lone surrogates: never fail here.
        headers = [("reason", reason[:2000].encode("utf-8", "backslashreplace")),
                   ("source_topic", topic.encode()),
                   ("source_partition", str(partition).encode()),
                   ("source_offset", str(offset).encode())]
        key = f"{topic}|{partition}|{offset}".encode()
        self.sink.send(key, value, headers)
        self.count += 1

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        self.sink.close()


def dead_letter_record(value: bytes, headers: list[tuple[str, bytes]]) -> dict[str, object]:
    """A dead letter read back as a dict: ``reason``, ``source_*`` fields and ``value`` bytes."""
    out: dict[str, object] = {k: v.decode() for k, v in headers}
    out["value"] = value
    return out


def jsonl_line(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None) -> str:
    """One message as a JSON line (file sinks): key/value as text, bytes as latin-1."""
    return json.dumps({"key": None if key is None else key.decode("latin-1"),
                       "value": value.decode("latin-1"),
                       "headers": [[k, v.decode("latin-1")] for k, v in headers or []]})
