"""In-process and JSON-lines file connectors.

:class:`MemorySource`/:class:`MemorySink` keep messages in lists (replaying a
recorded stream, tests, notebooks); :class:`JsonlFileSource`/:class:`JsonlFileSink`
read and append one message per line of a file, the file-based pair a PoC uses
where no broker exists.  Both behave like one-partition Kafka topics: offsets are
line/list positions and ``commit`` remembers the position a restart resumes from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tsforge.connectors.base import ClosedError, RawBatch, RebalanceCallback, jsonl_line


class MemorySource:
    """A one-partition source over a list of message bytes.

    Parameters
    ----------
    messages
        The stream, in order; may be appended to while the source is in use.
    max_records
        Messages per poll.
    committed
        The offset store; pass the same dict to a new source to resume where the
        previous one committed (as a restarted consumer resumes from Kafka).
    """

    def __init__(self, messages: list[bytes], *, max_records: int = 5000,
                 topic: str = "memory", committed: dict[int, int] | None = None) -> None:
        self.messages = messages
        self.max_records = max_records
        self.topic = topic
        self.position = 0
        self.committed: dict[int, int] = {} if committed is None else committed
        self._assigned: RebalanceCallback | None = None
        self._started = False
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise ClosedError(f"{type(self).__name__} is closed")

    def on_rebalance(self, assigned: RebalanceCallback, revoked: RebalanceCallback,
                     lost: RebalanceCallback | None = None) -> None:
        self._assigned = assigned

    def poll(self, timeout_s: float) -> RawBatch:
        self._check()
        if not self._started:
            self._started = True
            self.position = self.committed.get(0, self.position)
            if self._assigned is not None:
                self._assigned([0])  # may seek
        end = min(len(self.messages), self.position + self.max_records)
        values = self.messages[self.position:end]
        offsets = np.arange(self.position, end, dtype=np.int64)
        self.position = end
        return RawBatch(list(values), np.zeros(len(values), np.int32), offsets, self.topic)

    def seek(self, partition: int, offset: int) -> None:
        self._check()
        self.position = int(offset)

    def commit(self, positions: dict[int, int], *, wait: bool = True) -> None:
        self._check()
        self.committed.update(positions)

    def close(self) -> None:
        self._closed = True


class MemorySink:
    """Collects ``(key, value, headers)`` tuples in :attr:`messages`; flush is immediate."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []
        self._closed = False

    def send(self, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]] | None = None) -> None:
        if self._closed:
            raise ClosedError("MemorySink is closed")
        self.messages.append((key, value, list(headers or [])))

    def flush(self) -> None:
        if self._closed:
            raise ClosedError("MemorySink is closed")

    def close(self) -> None:
        self._closed = True


class JsonlFileSource(MemorySource):
    """A one-partition source over the lines of a text file (one message per line).

    Commits are kept in ``<path>.offset`` so a restarted reader resumes after the
    last committed line.  ``envelope=True`` reads a file written by
    :class:`JsonlFileSink` (each line's ``value`` is the message).
    """

    def __init__(self, path: str | Path, *, max_records: int = 5000,
                 envelope: bool = False) -> None:
        self.path = Path(path)
        lines = self.path.read_bytes().splitlines()
        if envelope:
            lines = [json.loads(ln)["value"].encode("latin-1") for ln in lines if ln.strip()]
        self.offset_path = self.path.with_name(self.path.name + ".offset")
        committed = ({0: int(self.offset_path.read_text())} if self.offset_path.exists()
                     else {})
        super().__init__([ln for ln in lines if ln.strip()], max_records=max_records,
                         topic=str(self.path), committed=committed)

    def commit(self, positions: dict[int, int], *, wait: bool = True) -> None:
        super().commit(positions, wait=wait)
        from tsforge.io_utils import atomic_write_bytes

        atomic_write_bytes(self.offset_path, str(self.committed[0]).encode())


class JsonlFileSink:
    """Appends each message as a JSON line ``{"key", "value", "headers"}``; fsync on flush."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def send(self, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]] | None = None) -> None:
        if self._fh.closed:
            raise ClosedError(f"JsonlFileSink({self.path}) is closed")
        self._fh.write(jsonl_line(key, value, headers) + "\n")

    def flush(self) -> None:
        if self._fh.closed:
            raise ClosedError(f"JsonlFileSink({self.path}) is closed")
        import os

        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            self._fh.close()

    @staticmethod
    def read(path: str | Path) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
        """The messages a sink wrote to ``path``, as sent."""
        out = []
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            out.append((None if d["key"] is None else d["key"].encode("latin-1"),
                        d["value"].encode("latin-1"),
                        [(k, v.encode("latin-1")) for k, v in d["headers"]]))
        return out
