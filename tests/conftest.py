"""Shared pytest fixtures."""

from kafka_broker import kafka_broker  # noqa: F401 - session fixture: a real Kafka-protocol broker
from serve_fixtures import served_models  # noqa: F401 - session fixture: fitted served models
