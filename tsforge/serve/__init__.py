"""The production Kafka service (``tsforge serve``).

A worker is a consumer-group member: start more workers with the same
``[kafka] group_id`` and Kafka shares the input topic's partitions among them.
See ``docs/kafka.md`` for the configuration, the delivery guarantees and the
metrics.

>>> from tsforge.serve import serve               # doctest: +SKIP
"""

from tsforge.serve.checkpoint import Checkpoint, CheckpointStore
from tsforge.serve.engine import ForecastBlock, OnnxEngine
from tsforge.serve.models import ModelGroup, prepare_models
from tsforge.serve.output import encode, forecast_id
from tsforge.serve.service import Service, build_service, configure_logging, serve
from tsforge.serve.worker import PollReport, Worker

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "ForecastBlock",
    "ModelGroup",
    "OnnxEngine",
    "PollReport",
    "Service",
    "Worker",
    "build_service",
    "configure_logging",
    "encode",
    "forecast_id",
    "prepare_models",
    "serve",
]
