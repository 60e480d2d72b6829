"""DataFrames in and out: tsforge.forecast, from_polars/from_frame, BacktestResult.to_frame,
Forecaster.with_intervals, and the README's Python examples (run as written)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import tsforge
from tsforge.data import from_frame, from_pandas, from_polars
from tsforge.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def wide_pandas(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = 20 + np.sin(np.arange(n) / 10) + rng.normal(0, 0.1, n)
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="5min"),
                         "temp": y, "flow": 2 * y})


def as_polars(df: pd.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({c: df[c].to_numpy() for c in df.columns})


@pytest.mark.parametrize("library", ["pandas", "polars"])
@pytest.mark.parametrize("layout", ["wide", "long"])
def test_forecast_returns_a_frame_of_the_same_library(library, layout):
    df = wide_pandas()
    if layout == "long":
        df = df.melt(id_vars="timestamp", var_name="sensor", value_name="value")
    data = as_polars(df) if library == "polars" else df
    out = tsforge.forecast(data, horizon=3, model="naive")
    assert type(out).__module__.split(".")[0] == library
    if library == "polars":  # without pyarrow: column by column
        out = pd.DataFrame({c: out[c].to_numpy() for c in out.columns})
    assert list(out.columns) == ["timestamp", "sensor", "step", "mean", "lower_80", "upper_80",
                                 "lower_95", "upper_95"]
    assert sorted(set(out["sensor"])) == ["flow", "temp"] and len(out) == 6
    temp = out[out["sensor"] == "temp"]
    assert list(temp["timestamp"]) == list(pd.date_range("2024-01-02 09:20", periods=3,
                                                         freq="5min"))
    last = wide_pandas()["temp"].iloc[-1]
    np.testing.assert_allclose(temp["mean"], last)  # naive repeats the last reading
    assert (temp["lower_95"] < temp["lower_80"]).all() and (temp["lower_80"] < last).all()
    assert (temp["upper_95"] > temp["upper_80"]).all() and (temp["upper_80"] > last).all()


def test_intervals_cover_what_they_claim():
    """The naive model's one-step intervals, issued at the end of a noisy level, hold
    about their level of the readings that follow (ground truth: the next 2,000)."""
    rng = np.random.default_rng(3)
    y = 10 + rng.normal(0, 1.0, 4000)
    df = pd.DataFrame({"timestamp": pd.date_range("2024", periods=4000, freq="1min"), "x": y})
    out = tsforge.forecast(df.iloc[:2000], horizon=1, model="naive")
    errors = np.abs(y[2001:] - y[2000:-1])  # what a one-step naive forecast misses by
    for level, lo, hi in ((80, 0.75, 0.88), (95, 0.93, 0.99)):
        half = float(out[f"upper_{level}"].iloc[0] - out["mean"].iloc[0])
        assert lo < float(np.mean(errors < half)) < hi, (level, half)


def test_from_polars_and_clear_messages_for_the_wrong_library():
    df = wide_pandas(50)
    frame = from_polars(as_polars(df), units={"temp": "°C"})
    assert frame.sensors == ["temp", "flow"] and frame.unit("temp") == "°C"
    assert from_frame(df).values.shape == (50, 2)
    with pytest.raises(DataError, match="from_polars"):
        from_pandas(as_polars(df))
    with pytest.raises(DataError, match="from_pandas"):
        from_polars(df)
    long = df.melt(id_vars="timestamp", var_name="sensor", value_name="value")
    assert from_pandas(long).sensors == ["temp", "flow"]  # text columns need no pyarrow


def test_bare_model_gives_intervals_once_its_conformal_state_exists():
    from tsforge.models import create

    y = wide_pandas(300)["temp"].to_numpy()
    model = create("naive", horizon=2).with_intervals().fit(y[:200])
    assert model.forecast().intervals == {}  # no residuals yet: no interval claimed
    for v in y[200:]:
        model.learn_one(v)
    f = model.forecast()
    lo, hi = f.intervals[0.95]
    assert lo.shape == (2,) and np.all(lo < f.mean) and np.all(f.mean < hi)


def test_backtest_to_frame_has_timestamps_and_intervals():
    from tsforge.backtest import backtest

    df = wide_pandas(300)
    result = backtest(df["temp"].to_numpy(), models=["naive"], horizon=2)
    table = result.to_frame(df["timestamp"].to_numpy())
    n = len(result.actual)
    assert len(table) == n + (n - 1)
    one = table[table["step"] == 1]
    np.testing.assert_allclose(one["actual"], result.actual)
    assert one["timestamp"].iloc[0] == df["timestamp"].iloc[result.test_start]
    two = table[table["step"] == 2]
    # the 2-step forecast issued at reading i is for reading i + 1
    assert two["timestamp"].iloc[0] == df["timestamp"].iloc[result.test_start + 1]
    np.testing.assert_allclose(two["mean"].iloc[0], result.predictions["naive"][0, 1])
    assert {"lower_80", "upper_95"} <= set(table.columns)
    assert type(result.to_frame(like=pl.DataFrame())).__module__.startswith("polars")


def test_readme_python_examples_run(monkeypatch, capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)  # the README's own code
    out = capsys.readouterr().out
    assert "lower_95" in out and "polars" in out
