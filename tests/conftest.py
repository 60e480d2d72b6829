"""Shared pytest fixtures."""

from kafka_broker import kafka_broker  # noqa: F401 - session fixture: a real Kafka-protocol broker
