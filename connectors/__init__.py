"""Sources and sinks of readings (installed as ``tsforge.connectors``).

>>> from tsforge.connectors import JsonDecoder, MemorySource  # doctest: +SKIP
>>> from tsforge.connectors import KafkaSource, KafkaSink     # doctest: +SKIP

The Kafka classes import kafka-python only when first used.
"""

from tsforge.connectors.base import (
    ClosedError,
    DeadLetterSink,
    Decoder,
    RawBatch,
    ReadingBatch,
    Rejected,
    Sink,
    SinkError,
    Source,
    dead_letter_record,
)
from tsforge.connectors.json_decoder import DECODERS, JsonDecoder, make_decoder
from tsforge.connectors.kafka import KafkaSink, KafkaSource, create_topics, read_topic
from tsforge.connectors.memory import JsonlFileSink, JsonlFileSource, MemorySink, MemorySource

__all__ = [
    "DECODERS",
    "ClosedError",
    "DeadLetterSink",
    "Decoder",
    "JsonDecoder",
    "JsonlFileSink",
    "JsonlFileSource",
    "KafkaSink",
    "KafkaSource",
    "MemorySink",
    "MemorySource",
    "RawBatch",
    "ReadingBatch",
    "Rejected",
    "Sink",
    "SinkError",
    "Source",
    "create_topics",
    "dead_letter_record",
    "make_decoder",
    "read_topic",
]
