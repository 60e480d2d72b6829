"""Where the edge runtime reads readings and writes forecasts (standard library only,
plus kafka-python when it is installed and a ``kafka://`` address is used).

Readings are rows ``timestamp, sensor, value[, covariate...]``:

=====================  ==============================================================
``-``                  standard input, CSV lines
``PATH``               a CSV file, read once
``tail:PATH``          a CSV file followed like ``tail -F -n 0``: lines appended after
                       start (a restart does not replay old readings), then each
                       file that replaces it (rotation) from its first line
``tcp://HOST:PORT``    listen on a local socket; clients send CSV lines, one client
                       after another
``kafka://HOST:PORT/TOPIC``  a Kafka topic; values are CSV lines or JSON objects
                       ``{"sensor", "ts", "value", "covariates"?}``
=====================  ==============================================================

Forecasts go to ``-`` (standard output), a CSV ``PATH`` (appended to, with a header
when the file is new) or ``kafka://HOST:PORT/TOPIC`` (JSON values keyed by sensor).
With ``max_idle`` seconds, a following source (tail, socket, Kafka) stops after that
long without data; without it, it runs until the process is stopped.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tsforge.errors import ConfigError, MissingDependencyError

POLL_SECONDS = 0.1


def _kafka_address(uri: str) -> tuple[str, str]:
    rest = uri[len("kafka://"):]
    server, _, topic = rest.partition("/")
    if not server or not topic:
        raise ConfigError(f"Kafka address {uri!r} must look like kafka://HOST:PORT/TOPIC")
    return server, topic


def _kafka() -> Any:
    try:
        import kafka
    except ImportError as exc:
        raise MissingDependencyError(
            "kafka:// sources and sinks need kafka-python on this box: pip install kafka-python"
        ) from exc
    return kafka


def _csv_rows(lines: Iterator[str]) -> Iterator[list[str]]:
    for line in lines:
        line = line.strip()
        if line:
            yield next(csv.reader([line]))


def _tail(path: Path, max_idle: float | None) -> Iterator[str]:
    """Lines appended to ``path`` after the start; reopens it when replaced or truncated."""
    fh, inode, idle, buf = None, None, 0.0, ""
    at_start = True
    while max_idle is None or idle < max_idle:
        if fh is None and path.exists():
            # kept open across polls; closed on rotation and at the end
            fh, inode = open(path, newline=""), path.stat().st_ino  # noqa: SIM115
            if at_start:
                fh.seek(0, os.SEEK_END)
        at_start = False
        chunk = fh.read() if fh else ""
        if chunk:
            idle, buf = 0.0, buf + chunk
            *lines, buf = buf.split("\n")
            yield from lines
            continue
        try:
            st = path.stat()
            if fh is not None and (st.st_ino != inode or st.st_size < fh.tell()):
                fh.close()
                fh = None  # rotated or truncated: start the new file from its beginning
                continue
        except FileNotFoundError:
            pass
        time.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
    if fh is not None:
        fh.close()


def _tcp(address: str, max_idle: float | None) -> Iterator[str]:
    host, _, port = address.rpartition(":")
    server = socket.create_server((host or "127.0.0.1", int(port)))
    server.settimeout(POLL_SECONDS)
    idle = 0.0
    try:
        while max_idle is None or idle < max_idle:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                idle += POLL_SECONDS
                continue
            idle = 0.0
            with conn, conn.makefile("r", newline="") as fh:
                yield from fh
    finally:
        server.close()


def _kafka_rows(uri: str, max_idle: float | None, group: str | None) -> Iterator[list[str]]:
    server, topic = _kafka_address(uri)
    consumer = _kafka().KafkaConsumer(
        topic, bootstrap_servers=server, group_id=group, auto_offset_reset="earliest",
        consumer_timeout_ms=int(max_idle * 1000) if max_idle else float("inf"),
    )
    try:
        for msg in consumer:
            yield decode_message(msg.value)
    finally:
        consumer.close()


def decode_message(value: bytes) -> list[str]:
    """A Kafka value as a row: JSON ``{"sensor","ts","value","covariates"?}`` or a CSV line."""
    text = value.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
            covs = obj.get("covariates") or []
            return [str(obj.get("ts", obj.get("timestamp", ""))), str(obj["sensor"]),
                    str(obj["value"]), *[str(c) for c in covs]]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            return [text]  # a one-field row: the runtime dead-letters it with the reason
    return next(csv.reader([text]), [text])


def open_source(uri: str, *, max_idle: float | None = None,
                group: str | None = None) -> Iterator[list[str]]:
    """Rows of readings from ``uri`` (see the module docstring for the forms)."""
    if uri == "-":
        return _csv_rows(sys.stdin)
    if uri.startswith("tail:"):
        return _csv_rows(_tail(Path(uri[5:]), max_idle))
    if uri.startswith("tcp://"):
        return _csv_rows(_tcp(uri[6:], max_idle))
    if uri.startswith("kafka://"):
        _kafka()
        return _kafka_rows(uri, max_idle, group)
    if not os.path.exists(uri):
        raise ConfigError(f"input {uri!r} does not exist; use '-', a CSV path, tail:PATH, "
                          "tcp://HOST:PORT or kafka://HOST:PORT/TOPIC")
    return _csv_rows(open(uri, newline=""))


class Sink:
    """Writes forecast rows as CSV (standard output or a file) or JSON to a Kafka topic."""

    def __init__(self, uri: str, header: list[str]) -> None:
        self.header = header
        self._producer = self._topic = None
        self._fh: IO[str] | None = None
        if uri.startswith("kafka://"):
            server, self._topic = _kafka_address(uri)
            self._producer = _kafka().KafkaProducer(bootstrap_servers=server)
            return
        new = uri == "-" or not os.path.exists(uri) or os.path.getsize(uri) == 0
        # closed by close(): the sink lives as long as the stream
        self._fh = sys.stdout if uri == "-" else open(uri, "a", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._fh)
        if new:
            self._writer.writerow(header)

    def write(self, row: list[str], extra: dict[str, Any] | None = None) -> None:
        """One forecast row (already formatted cells, in ``header`` order)."""
        if self._producer is None:
            self._writer.writerow(row)
            if self._fh is sys.stdout:
                self._fh.flush()  # a pipe downstream sees each forecast as it is made
            return
        record = dict(zip(self.header, row))
        value = {"ts": record.pop("timestamp"), "sensor": record.pop("sensor"),
                 **{k: (float(v) if v != "" else None) for k, v in record.items()},
                 **(extra or {})}
        self._producer.send(self._topic, key=value["sensor"].encode(),
                            value=json.dumps(value).encode())

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush()
            self._producer.close()
        elif self._fh is not None:
            self._fh.flush()
            if self._fh is not sys.stdout:
                self._fh.close()

