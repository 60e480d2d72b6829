"""One conformance suite over every connector pair (source + sink).

Each pair must: deliver what was sent, in order, with increasing offsets; let a
new source resume after the last commit; route undecodable messages to a dead
letter sink with the reason and the original bytes; and refuse use after close.
The Kafka pair runs against the session's real broker (tests/kafka_broker.py).
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
from tsforge.connectors import (
    ClosedError,
    DeadLetterSink,
    JsonDecoder,
    JsonlFileSink,
    JsonlFileSource,
    MemorySink,
    MemorySource,
    RawBatch,
    Sink,
    Source,
)

_names = itertools.count()


class MemoryPair:
    """Sink and source over one shared list (plus a shared offset store)."""

    def __init__(self, tmp_path: Path) -> None:
        self.sink_obj = MemorySink()
        self.committed: dict[int, int] = {}

    def sink(self) -> Sink:
        return self.sink_obj

    def source(self) -> Source:
        return MemorySource([v for _, v, _ in self.sink_obj.messages], max_records=7,
                            committed=self.committed)

    def sent(self, sink: Sink) -> list[tuple[bytes | None, bytes, list]]:
        return list(sink.messages)


class FilePair:
    """JSON-lines file sink and the source reading what it wrote."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / f"stream-{next(_names)}.jsonl"

    def sink(self) -> Sink:
        return JsonlFileSink(self.path)

    def source(self) -> Source:
        return JsonlFileSource(self.path, max_records=7, envelope=True)

    def sent(self, sink: Sink) -> list[tuple[bytes | None, bytes, list]]:
        return JsonlFileSink.read(self.path)


class KafkaPair:
    """KafkaSink and KafkaSource on a fresh one-partition topic and group."""

    def __init__(self, tmp_path: Path, bootstrap: str) -> None:
        from tsforge.connectors import create_topics

        n = next(_names)
        self.bootstrap, self.topic, self.group = bootstrap, f"conf-{n}", f"conf-{n}"
        create_topics(bootstrap, {self.topic: 1})

    def sink(self) -> Sink:
        from tsforge.connectors import KafkaSink

        return KafkaSink(self.bootstrap, self.topic)

    def source(self) -> Source:
        from tsforge.connectors import KafkaSource

        return KafkaSource(self.bootstrap, self.topic, self.group, max_poll_records=7,
                           session_timeout_ms=10000, max_poll_interval_ms=6000)

    def sent(self, sink: Sink) -> list[tuple[bytes | None, bytes, list]]:
        from tsforge.connectors import read_topic

        return [(m["key"], m["value"], m["headers"])
                for m in read_topic(self.bootstrap, self.topic)]


@pytest.fixture(params=["memory", "file", "kafka"])
def pair(request, tmp_path):
    if request.param == "memory":
        return MemoryPair(tmp_path)
    if request.param == "file":
        return FilePair(tmp_path)
    return KafkaPair(tmp_path, request.getfixturevalue("kafka_broker"))


def read(source: Source, n: int, timeout: float = 30.0) -> RawBatch:
    """Poll ``source`` until ``n`` messages arrived; return them as one batch."""
    values, parts, offsets = [], [], []
    deadline = time.monotonic() + timeout
    while len(values) < n:
        assert time.monotonic() < deadline, f"only {len(values)} of {n} messages arrived"
        batch = source.poll(0.2)
        values += batch.values
        parts += batch.partitions.tolist()
        offsets += batch.offsets.tolist()
    import numpy as np

    return RawBatch(values, np.asarray(parts, np.int32), np.asarray(offsets, np.int64))


MESSAGES = [json.dumps({"sensor": "s", "ts": i, "value": i / 2}).encode() for i in range(20)]


def test_round_trip_in_order_and_resume_after_commit(pair):
    sink = pair.sink()
    for i, m in enumerate(MESSAGES):
        sink.send(f"k{i}".encode(), m)
    sink.flush()
    sent = pair.sent(sink)
    assert [v for _, v, _ in sent] == MESSAGES
    assert [k for k, _, _ in sent] == [f"k{i}".encode() for i in range(len(MESSAGES))]
    sink.close()
    source = pair.source()
    first = read(source, 12)
    assert first.values == MESSAGES[:len(first.values)]
    assert (first.offsets[1:] > first.offsets[:-1]).all()
    source.commit({0: int(first.offsets[11]) + 1})
    source.close()
    again = pair.source()
    rest = read(again, len(MESSAGES) - 12)
    assert rest.values == MESSAGES[12:]  # resumed after the commit, nothing lost
    again.close()


def test_bad_messages_go_to_dead_letters_with_reason_and_bytes(pair, tmp_path):
    sink = pair.sink()
    bad = [b"{broken", b'{"sensor": "s", "ts": 1, "value": "high"}', b'{"ts": 3}']
    stream = MESSAGES[:3] + bad + MESSAGES[3:5]
    for m in stream:
        sink.send(None, m)
    sink.close()
    source = pair.source()
    batch = read(source, len(stream))
    source.close()
    readings, rejected = JsonDecoder().decode(batch)
    assert len(readings) == 5 and len(rejected) == 3
    dead_store = MemorySink()
    dead = DeadLetterSink(dead_store)
    dead.send_rejected(batch, rejected)
    dead.flush()
    assert [v for _, v, _ in dead_store.messages] == bad
    for _, _, headers in dead_store.messages:
        h = dict(headers)
        assert h["reason"] and int(h["source_offset"]) >= 0


def test_use_after_close_is_refused(pair):
    sink = pair.sink()
    sink.send(None, MESSAGES[0])
    sink.close()
    sink.close()  # closing twice is harmless
    with pytest.raises(ClosedError):
        sink.send(None, MESSAGES[1])
    with pytest.raises(ClosedError):
        sink.flush()
    source = pair.source()
    read(source, 1)
    source.close()
    with pytest.raises(ClosedError):
        source.poll(0.1)
    with pytest.raises(ClosedError):
        source.commit({0: 1})
