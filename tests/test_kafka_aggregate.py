"""``family = "auto"`` in the Kafka service: the aggregate of experts, end to end on the
real broker, and the model store it is fitted into."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kafka", reason="kafka-python is not installed: pip install 'tsforge[all]'")

from test_kafka_serve import (
    check_against_reference,
    expected_ids,
    forecasts,
    produce,
    run_in_process,
    write_config,
)
from tsforge.connectors import create_topics, read_topic

from tsforge.errors import ConfigError

AUTO = ('family = "auto"',
        'params = { experts = "naive,seasonal_naive,ets,linear", prune = 100.0, '
        "restart_gap = 50, params = { linear = { window = 8 } } }")


def _config(tmp_path: Path, bootstrap: str, name: str, served) -> Path:
    return write_config(tmp_path / f"{name}.toml", bootstrap, name, served, registry=False,
                        model=(*AUTO, f'history = "{served.history_csv}"'))


def test_auto_serves_the_aggregate_of_experts_end_to_end(kafka_broker, served_models,
                                                         tmp_path):
    from tsforge.engine.aggregate import AggregateEngine
    from tsforge.pipeline import load_spec
    from tsforge.serve import OnnxEngine
    from tsforge.serve.models import prepare_models

    name = "agg-e2e"
    cfg = _config(tmp_path, kafka_broker, name, served_models)
    groups = prepare_models(load_spec(cfg))  # what the worker loads at start-up
    (group,) = groups
    assert group.family == "auto" and group.onnx_path.name == "aggregate.json"
    assert set(group.sensors) == set(served_models.sensors)
    engine = OnnxEngine(groups).engines[group.name]
    assert isinstance(engine, AggregateEngine)
    # ets has no ONNX step; seasonal naive is kept only where the history has a season
    # (the bundled fallback series has none), so the kept experts depend on the data
    assert "ets" not in engine.families and {"naive", "linear"} <= set(engine.families)
    assert all(len(chains) == engine.K for chains in group.sensors.values())  # one per expert

    create_topics(kafka_broker, {f"{name}-in": 2, f"{name}-out": 2, f"{name}-dlq": 1})
    n = produce(kafka_broker, f"{name}-in", served_models, 0, 120)
    done, _ = run_in_process(cfg, kafka_broker, n)
    assert done["readings"] == n and done["dead"] == 0
    by_id = forecasts(kafka_broker, f"{name}-out")
    assert set(by_id) == expected_ids(served_models, 0, 120, group.version)
    store = dataclasses.replace(served_models, store=group.onnx_path.parent.parent)
    check_against_reference(store, by_id, 120)  # one uninterrupted pass of the aggregate
    msg = next(iter(by_id.values()))[0]
    assert np.isfinite(msg["mean"]) and msg["version"] == group.version
    assert read_topic(kafka_broker, f"{name}-dlq") == []


def test_an_aggregate_is_not_kept_in_a_model_registry(served_models, tmp_path):
    from tsforge.pipeline import parse_spec
    from tsforge.serve.models import prepare_models

    spec = parse_spec({"name": "x", "use": "kafka",
                       "model": {"family": "auto", "horizon": 2,
                                 "history": str(served_models.history_csv)},
                       "registry": {"path": str(tmp_path / "reg")}})
    with pytest.raises(ConfigError, match="drop \\[registry\\] path"):
        prepare_models(spec)
