"""Reading, validation and repair of sensor data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsforge.data import DataPolicy, from_pandas, prepare, read_csv
from tsforge.demo import bundled_csv
from tsforge.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

GOLDEN = """timestamp,a,b
2024-01-01 00:00:00,1.0,10
2024-01-01 00:01:00,NaN,11
2024-01-01 00:02:00,3.0,inf
2024-01-01 00:02:00,5.0,13
2024-01-01 00:05:00,6.0,16
2024-01-01 00:04:00,5.5,15
"""


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_golden_series_counts_every_repair(tmp_path):
    frame, rep = prepare(read_csv(write(tmp_path, GOLDEN)))
    assert (rep.n_rows_in, rep.out_of_order, rep.duplicates) == (6, 1, 1)
    assert rep.nan == {"a": 1, "b": 0} and rep.inf == {"a": 0, "b": 1}
    assert (rep.gaps, rep.missing_steps, rep.freq) == (1, 1, "1min")
    np.testing.assert_allclose(frame.column("a"), [1.0, 2.5, 4.0, 4.75, 5.5, 6.0])
    # b: duplicate 00:02 = mean(inf→dropped, 13) = 13; 00:03 gap interpolated
    np.testing.assert_allclose(frame.column("b"), [10, 11, 13, 14, 15, 16])
    assert not rep.clean and len(rep.actions) == 4
    assert "sorted 1" in rep.summary()


@pytest.mark.parametrize("key,value,match", [
    ("out_of_order", "error", "go backwards"),
    ("duplicates", "error", "duplicate"),
    ("nonfinite", "error", "NaN/inf"),
])
def test_error_policies_raise_with_advice(tmp_path, key, value, match):
    with pytest.raises(DataError, match=match):
        prepare(read_csv(write(tmp_path, GOLDEN)), DataPolicy(**{key: value}))


def test_drop_and_hold_policies(tmp_path):
    frame, rep = prepare(read_csv(write(tmp_path, GOLDEN)),
                         DataPolicy(out_of_order="drop", nonfinite="drop", freq=None))
    assert rep.dropped_rows == 2 and len(frame) == 3  # row 00:04 and the NaN row
    frame, _ = prepare(read_csv(write(tmp_path, GOLDEN)), DataPolicy(gap_fill="hold"))
    assert frame.column("a")[4] == 5.5


def test_bad_policy_value_lists_choices():
    with pytest.raises(ConfigError, match="interpolate, hold, drop, error"):
        DataPolicy(nonfinite="zero")


def test_long_layout_pivots_and_counts_repeats(tmp_path):
    text = ("ts,sensor,value\n1700000000000,p1,1\n1700000000000,p2,2\n"
            "1700000060000,p1,3\n1700000060000,p1,5\n1700000060000,p2,4\n")
    frame = read_csv(write(tmp_path, text))
    assert frame.sensors == ["p1", "p2"] and frame.merged_duplicates == 1
    np.testing.assert_array_equal(frame.values, [[1, 2], [4, 4]])
    assert str(frame.time[0]) == "2023-11-14T22:13:20.000000000"  # epoch ms
    _, rep = prepare(frame)
    assert rep.duplicates == 1


def test_timestamp_formats(tmp_path):
    iso = read_csv(write(tmp_path, "time,x\n2022-03-27T01:00:00+01:00,1\n"
                                   "2022-03-27T03:00:00+02:00,2\n"))
    assert np.diff(iso.time)[0] == np.timedelta64(1, "h")  # DST offsets converted to UTC
    epoch_s = read_csv(write(tmp_path, "t,x\n1600000000,1\n1600000300,2\n"))
    assert str(epoch_s.time[1]) == "2020-09-13T12:31:40.000000000"
    custom = read_csv(write(tmp_path, "date;x\n31/12/2018 23:45;1\n"), time_format="%d/%m/%Y %H:%M")
    assert str(custom.time[0]).startswith("2018-12-31T23:45")


def test_bad_files_name_file_line_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"line 3.*'abc' is not a number"):
        read_csv(write(tmp_path, "timestamp,x\n2024-01-01,1\n2024-01-02,abc\n"))
    with pytest.raises(DataError, match=r"line 3.*time_format"):
        read_csv(write(tmp_path, "timestamp,x\n2024-01-01,1\nyesterday,2\n"))
    with pytest.raises(DataError, match="file not found"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="empty"):
        read_csv(write(tmp_path, ""))
    with pytest.raises(DataError, match="valid names"):
        read_csv(write(tmp_path, "timestamp,x\n2024-01-01,1\n")).column("y")


def test_pandas_inputs():
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="Europe/Berlin")
    frame = from_pandas(pd.Series([1.0, 2.0, 3.0, 4.0], index=idx, name="temp"))
    assert frame.sensors == ["temp"] and str(frame.time[0]) == "2023-12-31T23:00:00.000000000"
    df = pd.DataFrame({"timestamp": idx.tz_localize(None), "a": [1, 2, 3, 4], "b": [4, 3, 2, 1]})
    assert from_pandas(df).values.shape == (4, 2)
    assert from_pandas(df).to_pandas()["b"].iloc[0] == 4


def test_bundled_nab_file_repairs_its_repeated_hour():
    frame, rep = prepare(read_csv(bundled_csv()))
    assert rep.duplicates == 12 and rep.out_of_order == 1 and rep.freq == "5min"
    assert rep.missing_steps == 0 and np.all(np.isfinite(frame.values))


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/datasets not available")
def test_real_files_read():
    ett, rep = prepare(read_csv(SHARED / "ett" / "ETTh1.csv"))
    assert ett.sensors[-1] == "OT" and rep.clean and rep.freq == "1h"
    skab = read_csv(SHARED / "skab" / "valve1" / "0.csv")  # ';'-separated
    assert "Accelerometer1RMS" in skab.sensors
    _flow, rep = prepare(read_csv(SHARED / "river" / "water-flow.csv"))
    assert rep.gaps == 10
