"""The columnar engine serves the numbers the per-sensor runtime served (recorded fixture).

``tests/fixtures/engine_parity`` holds a GRU step (deseasonalize -> difference ->
scale chain, one covariate, 80/95 % intervals whose windows wrap), its Kafka model
group and an edge bundle that rolls back, with the forecasts, half-widths and
rollback events each serving path returned for a 5-sensor stream (NaN/inf
readings included) before the engine existed
(``tests/fixtures/record_engine_parity.py``).  Every path must reproduce them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "engine_parity"
sys.path.insert(0, str(FIXTURE.parent))
from record_engine_parity import serve_all  # noqa: E402

RTOL = 1e-6


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    root = tmp_path_factory.mktemp("parity") / "engine_parity"
    shutil.copytree(FIXTURE, root)
    ref = dict(np.load(root / "outputs.npz"))
    return ref, serve_all(root, ref["y"], ref["x"], ref["edge_nab"])


@pytest.mark.parametrize("key", ["many_mean", "many_half", "many_state", "one_mean",
                                 "one_lo95", "kafka_mean", "kafka_half", "edge_mean",
                                 "edge_hi80"])
def test_same_numbers_as_the_per_sensor_runtime(served: tuple[dict, dict], key: str) -> None:
    ref, new = served
    np.testing.assert_array_equal(np.isnan(new[key]), np.isnan(ref[key]))
    np.testing.assert_allclose(new[key], ref[key], rtol=RTOL, atol=1e-9)


def test_same_rollback_decisions(served: tuple[dict, dict]) -> None:
    ref, new = served
    keep = ("event", "sensor", "step", "from_version", "to_version")
    a = [{k: e[k] for k in keep} for e in json.loads(str(ref["edge_events"]))]
    b = [{k: e[k] for k in keep} for e in json.loads(str(new["edge_events"]))]
    assert a == b and any(e["event"] == "rollback" for e in a)


def test_checkpoint_of_the_per_sensor_runtime_resumes(served: tuple[dict, dict]) -> None:
    """Per-sensor state saved by the earlier runtime loads and serves on identically."""
    from tsforge.runtime import StreamingRuntime

    ref, _ = served
    names = [f"s{i}" for i in range(5)]
    rt = StreamingRuntime(FIXTURE / "gru" / "model.onnx")
    for s in names:
        rt.load_sensor_state_dict(s, {k.split("/", 2)[2]: v for k, v in ref.items()
                                      if k.startswith(f"ckpt/{s}/")})
    T = ref["y"].shape[1]
    out = np.stack([rt.push_many(names, ref["y"][:, t], ref["x"][:, t, None])
                    for t in range(T // 2, T)])
    np.testing.assert_allclose(out, ref["resume_mean"], rtol=RTOL, atol=1e-9)
