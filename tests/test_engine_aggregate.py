"""An exported ``auto`` served by the engine: parity with the library, batching, state."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from tsforge.api import fit_calibrated
from tsforge.engine.aggregate import AggregateEngine
from tsforge.errors import ArtifactError, ConfigError
from tsforge.export.aggregate import export_aggregate, fit_chains, servable_params
from tsforge.models.registry import model_class
from tsforge.runtime.artifact import load_aggregate

SHIFT = 1200  # the level shift of the stream


def _series(n: int = 1500, seed: int = 0, shift: float = 6.0) -> np.ndarray:
    """A daily season on a slow walk, with a level shift at ``SHIFT``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(n) + \
        np.cumsum(0.02 * rng.standard_normal(n))
    y[SHIFT:] += shift
    return y


def auto_params() -> dict:
    """Servable, fast experts (the test sizing of ``linear``)."""
    return {"experts": "naive,seasonal_naive,linear,ets",
            "params": {"linear": model_class("linear").test_params()},
            "prune": 100.0, "restart_gap": 50}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """``auto`` fitted on the first 900 readings (intervals calibrated on the last 30 %)
    and exported; the library model keeps streaming in the tests that take it."""
    params, dropped = servable_params(auto_params())
    assert dropped == ["ets"] and params["experts"] == "naive,seasonal_naive,linear"
    model = fit_calibrated(_series()[:900], model="auto", params=params, horizon=3,
                           calibration=0.3)
    out = tmp_path_factory.mktemp("aggregate") / "auto"
    rep = export_aggregate(model, out, sensor="s1", dropped=dropped)
    assert rep.experts == ["naive", "seasonal_naive", "linear"]
    assert rep.parity_max_abs_error < 1e-4
    return model, out


def _engine(out: Path, **kw: object) -> AggregateEngine:
    return AggregateEngine(load_aggregate(out), **kw)


def test_the_served_aggregate_follows_the_library_model_through_a_drift_restart(
        exported: tuple) -> None:
    """Same experts (frozen families: naive, seasonal naive, linear), weights learning
    on both sides: the engine's forecasts and intervals are the library's to float32
    precision, and the weights restart at the same reading after the level shift."""
    model, out = exported
    model = copy.deepcopy(model)
    eng = _engine(out)
    i = eng.sensor_index("s1")
    y = _series()[900:]
    gap, half_gap = 0.0, 0.0
    for v in y:
        model.learn_one(v)
        want = model.forecast()
        got = eng.step_one(i, v)
        gap = max(gap, float(np.abs(got - want.mean).max()))
        if want.intervals:
            _, hi = want.intervals[0.8]
            half_gap = max(half_gap, float(np.abs(hi - want.mean - eng.half_widths(i)[0]).max()))
    assert gap < 1e-4 and half_gap < 1e-4, (gap, half_gap)
    lib = model.model.restarts
    assert lib and [r["index"] for r in lib] == [r["index"] for r in eng.restarts]
    assert SHIFT - 900 <= eng.restarts[0]["index"] - 270 < SHIFT - 900 + 60
    np.testing.assert_allclose(eng.weights(i), model.model.weights, atol=1e-4)


def _rows(n_sensors: int, t: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Interleaved readings of several sensors (a Kafka poll), with NaN holes."""
    rng = np.random.default_rng(seed)
    names = [f"m{j}" for j in range(n_sensors)]
    series = np.stack([_series(t, seed=j + 10, shift=3.0 + j)[:t] * (1 + 0.3 * j)
                       for j in range(n_sensors)])
    series[:, 1:][rng.random((n_sensors, t - 1)) < 0.03] = np.nan
    sensor = np.repeat(np.arange(n_sensors), t)
    step = np.tile(np.arange(t), n_sensors)
    order = np.lexsort((rng.random(sensor.size), step))  # time order, shuffled within a step
    return names, sensor[order], series[sensor[order], step[order]]


def test_serving_many_sensors_at_once_equals_serving_them_one_reading_at_a_time(
        exported: tuple) -> None:
    _, out = exported
    names, sensor, values = _rows(6, 400, seed=1)
    history = _series(300, seed=5)
    batch, single = _engine(out), _engine(out)
    for eng in (batch, single):
        for s in names[:3]:  # half with their own chains, half served cold
            eng.add_sensor(s, fit_chains(eng.artifact, history))
        eng.indices(names)
    got = np.concatenate([batch.serve(batch.indices([names[j] for j in sensor[a:a + 37]]),
                                      values[a:a + 37, None]).mean
                          for a in range(0, len(values), 37)])
    want = np.stack([single.step_one(single.index[names[j]], v)
                     for j, v in zip(sensor.tolist(), values.tolist(), strict=True)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert np.isfinite(got).all()
    for s in names:
        np.testing.assert_allclose(batch.weights(batch.index[s]), single.weights(single.index[s]),
                                   rtol=0, atol=1e-12)
    # a shift of 3 + j (j-th sensor) in serving restarts the weights of the sensors
    assert {r["sensor"] for r in batch.restarts} >= set(names[2:])


def test_every_sensor_in_order_is_served_as_in_any_other_order(exported: tuple) -> None:
    """One reading of every sensor in index order takes the contiguous path (views of the
    BOA, expert and interval arrays); shuffled, the gathering one: the same numbers."""
    _, out = exported
    names, sensor, values = _rows(5, 300, seed=2)
    block = values.reshape(300, 5)
    rows = sensor.reshape(300, 5)
    ordered, shuffled = _engine(out), _engine(out)
    for eng in (ordered, shuffled):
        eng.indices(names)
    in_order = np.arange(5)
    for t in range(300):
        by_index = block[t][np.argsort(rows[t])]  # readings of m0..m4
        a = ordered.serve(in_order, by_index[:, None])
        perm = rows[t]  # the same readings, in the shuffled arrival order
        b = shuffled.serve(perm, block[t][:, None])
        np.testing.assert_array_equal(a.mean[perm], b.mean)
        np.testing.assert_array_equal(a.half[perm], b.half)
    for i in range(5):
        np.testing.assert_array_equal(ordered.weights(i), shuffled.weights(i))
    assert [r["index"] for r in ordered.restarts] == [r["index"] for r in shuffled.restarts]
    assert ordered.restarts and np.isfinite(ordered.half_widths(0)).all()


def test_a_sensor_state_round_trips_through_a_checkpoint(exported: tuple,
                                                         tmp_path: Path) -> None:
    from tsforge.serve.checkpoint import CheckpointStore

    _, out = exported
    y = _series(700, seed=3)
    y[350] = np.nan
    a = _engine(out)
    i = a.add_sensor("p", fit_chains(a.artifact, y[:300]))
    for v in y[:400]:
        a.step_one(i, v)
    store = CheckpointStore(tmp_path, topic="t", group_id="g")  # the Kafka worker's file
    store.save(0, 400, {"p": ("v1", a.state_dict(i))})
    state = store.load(0).sensors["p"][1]
    b = _engine(out)
    j = b.sensor_index("p")
    b.load_state_dict(j, state)
    for v in y[400:]:
        np.testing.assert_allclose(b.step_one(j, v), a.step_one(i, v), rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.half_widths(j), a.half_widths(i), equal_nan=True)
    assert a.counts[i, 1] == 1  # the NaN reading was imputed by the experts
    other = {k: v for k, v in state.items() if not k.startswith("expert2/")}
    with pytest.raises(Exception, match="another model version"):
        b.load_state_dict(j, other)


def test_a_new_sensor_starts_from_the_exported_weights_and_a_nan_scores_nothing(
        exported: tuple) -> None:
    _, out = exported
    eng = _engine(out)
    i = eng.sensor_index("fresh")
    np.testing.assert_allclose(eng.weights(i), eng.new_prior)
    assert eng.step_one(i, float("nan")) is None  # nothing to impute from: rejected
    assert eng.counts[i, 0] == 0
    eng.step_one(i, 10.0)
    eng.step_one(i, 10.5)
    before = int(eng.agg.n_updates[i])
    assert eng.step_one(i, float("nan")) is not None  # imputed by the experts
    assert int(eng.agg.n_updates[i]) == before  # ... the aggregator scored nothing


def test_a_tampered_expert_or_a_non_servable_expert_is_refused(exported: tuple,
                                                               tmp_path: Path) -> None:
    import shutil

    _, out = exported
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    manifest = folder / "experts" / "1-seasonal_naive" / "model.json"
    manifest.write_text(manifest.read_text().replace('"horizon": 3', '"horizon": 4'))
    with pytest.raises(ArtifactError, match="modified after export"):
        load_aggregate(folder)
    with pytest.raises(ConfigError, match="no ONNX step"):
        servable_params({"experts": "ets,arima"})


def test_the_engine_detectors_restart_by_segment_as_the_library_monitor_does() -> None:
    """The aggregate's residual detectors (the engine's drift stage) raise the alarms the
    library's monitor raises, across segment restarts and a replayed history."""
    from tsforge.drift import DriftMonitor
    from tsforge.engine.drift import DriftStage

    rng = np.random.default_rng(4)
    err = np.r_[rng.normal(0, 1, 700), rng.normal(0, 4, 300), rng.normal(0, 1, 800)]
    mon = DriftMonitor("s", "adwin,page_hinkley", segment=250)
    lib = [i for i, e in enumerate(err) if mon.update(residual=float(e))]
    cut = 620  # the engine continues the monitor's history from here
    mon2 = DriftMonitor("s", "adwin,page_hinkley", segment=250)
    for e in err[:cut]:
        mon2.update(residual=float(e))
    stage = DriftStage(("adwin", "page_hinkley"), ("abs_residual",), segment=250)
    stage.replay("s", "abs_residual", mon2.state()["segment_values"]["residual"])
    stage.record(["s"], [0.0])
    got = []
    for i in range(cut, len(err)):
        if stage.update(["s"], [float(err[i])], [0.0]):
            got.append(i)
    assert got and got == [i for i in lib if i >= cut]
