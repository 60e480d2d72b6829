"""Declarative pipelines: one TOML file says where readings come from, how each sensor
is modelled, and where forecasts go.

>>> from tsforge.pipeline import load_spec            # doctest: +SKIP
>>> spec = load_spec("pipelines/factory-csv-poc.toml")  # doctest: +SKIP
"""

from tsforge.pipeline.spec import (
    CheckpointSpec,
    DriftSpec,
    IntervalSpec,
    KafkaSpec,
    MetricsSpec,
    ModelSpec,
    MonitorSpec,
    OutputSpec,
    PipelineSpec,
    RegistrySpec,
    SensorSpec,
    SourceSpec,
    load_spec,
    parse_spec,
)

__all__ = [
    "CheckpointSpec",
    "DriftSpec",
    "IntervalSpec",
    "KafkaSpec",
    "MetricsSpec",
    "ModelSpec",
    "MonitorSpec",
    "OutputSpec",
    "PipelineSpec",
    "RegistrySpec",
    "SensorSpec",
    "SourceSpec",
    "load_spec",
    "parse_spec",
]
