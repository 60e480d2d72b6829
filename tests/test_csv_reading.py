"""Any factory CSV reads: text and label columns, units, regional dates, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tsforge.data import prepare, read_csv, read_folder
from tsforge.errors import DataError

STEEL = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "steel"
         / "Steel_industry_data.csv")
SKAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "skab" / "valve1" / "0.csv"


def write(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_text_columns_are_skipped_and_never_parsed_when_not_wanted(tmp_path):
    text = ("\ufeffdate,Usage_kWh,Load_Type,notes\n01/01/2018 00:15,3.17,Light_Load,1\n"
            "01/01/2018 00:30,4.0,Light_Load,oops\n13/01/2018 00:45,5.0,Heavy_Load,2\n")
    path = write(tmp_path, text)
    # 'notes' mixes numbers and text: read as a sensor it is an error that names the cell
    with pytest.raises(DataError, match=r"'notes', line 3: 'oops' is not a number.*--columns"):
        read_csv(path)
    frame = read_csv(path, columns=["Usage_kWh"])  # only what is asked for is parsed
    assert frame.sensors == ["Usage_kWh"] and frame.unit("Usage_kWh") == "kWh"
    assert str(frame.time[2]).startswith("2018-01-13T00:45")  # day-first found by itself
    whole = read_csv(write(tmp_path, text.replace("oops", "3"), "y.csv"))
    assert whole.sensors == ["Usage_kWh", "notes"] and whole.skipped == ["Load_Type"]


def test_label_columns_are_kept_out_of_the_sensors_and_survive_repair(tmp_path):
    text = ("datetime;Pressure;anomaly;changepoint\n2020-03-09 10:00:00;1.0;0;0\n"
            "2020-03-09 10:00:02;;1;1\n2020-03-09 10:00:01;1.2;0;0\n2020-03-09 10:00:03;1.3;1;0\n")
    frame = read_csv(write(tmp_path, text))
    assert frame.sensors == ["Pressure"] and set(frame.labels) == {"anomaly", "changepoint"}
    fixed, rep = prepare(frame)
    assert rep.out_of_order == 1 and len(fixed) == 4
    np.testing.assert_array_equal(fixed.labels["anomaly"], [0, 0, 1, 1])  # sorted with rows
    np.testing.assert_array_equal(fixed.labels["changepoint"], [0, 0, 1, 0])
    # labels= names label columns that do not carry one of the usual names
    tagged = read_csv(write(tmp_path, "t,a,flag\n2024-01-01,1,0\n2024-01-02,2,1\n", "w.csv"),
                      labels=["flag"])
    assert tagged.sensors == ["a"] and tagged.labels["flag"].tolist() == [0, 1]


def test_units_from_the_caller_and_from_column_names(tmp_path):
    path = write(tmp_path, "time,Temperature [°C],CO2(tCO2),OT,Usage\n2024-01-01,1,2,3,4\n")
    frame = read_csv(path, units={"OT": "°C"})
    assert frame.units == {"Temperature [°C]": "°C", "CO2(tCO2)": "tCO2", "OT": "°C"}
    assert frame.unit("Usage") == ""  # unknown: no unit rather than a wrong one
    fixed, _ = prepare(frame)
    assert fixed.unit("OT") == "°C"


def test_timestamp_errors_name_column_value_and_flag(tmp_path):
    with pytest.raises(DataError, match=r"column 'when'.*'2024-13-45 99:00'.*--time-format"):
        read_csv(write(tmp_path, "when,x\n2024-13-45 99:00,1\n2024-13-46 99:00,2\n"))
    ambiguous = write(tmp_path, "date,x\n01/02/2018 00:15,1\n02/02/2018 00:15,2\n", "a.csv")
    with pytest.raises(DataError, match=r"day-first and month-first.*--time-format"):
        read_csv(ambiguous)
    frame = read_csv(ambiguous, time_format="%m/%d/%Y %H:%M")
    assert str(frame.time[1]).startswith("2018-02-02")
    # every day <= 12, but only day-first gives a clock that ticks every 6 hours
    days = "".join(f"{d:02d}/01/2018 {h:02d}:00,{d}\n" for d in (1, 2, 3) for h in (0, 6, 12, 18))
    regular = read_csv(write(tmp_path, "date,x\n" + days, "r.csv"))
    assert np.all(np.diff(regular.time) == np.timedelta64(6, "h"))


def test_malformed_quote_and_separator_name_the_flag(tmp_path):
    path = write(tmp_path, 'timestamp,x\n2024-01-01,"1\n2024-01-02,2\n')
    with pytest.raises(DataError, match=r"quote.*--separator"):
        read_csv(path)
    semi = write(tmp_path, "timestamp|x|y\n2024-01-01|1|2\n2024-01-02|3|4\n", "p.csv")
    assert read_csv(semi, separator="|").sensors == ["x", "y"]


def test_all_nan_sensor_is_reported_as_empty_not_as_filled(tmp_path):
    path = write(tmp_path, "timestamp,dead,ok\n" + "".join(
        f"2024-01-01 00:{m:02d},,{m}\n" for m in range(30)))
    _frame, rep = prepare(read_csv(path))
    assert not any("filled" in a and "NaN" in a for a in rep.actions)
    assert any("'dead'" in a and "no finite reading" in a for a in rep.actions)


def test_read_folder_parses_only_wanted_columns(tmp_path):
    write(tmp_path, "date,a,kind\n2024-01-01,1,x\n2024-01-02,2,y\n", "one.csv")
    write(tmp_path, "timestamp,sensor,value\n2024-01-01,a,1\n2024-01-01,b,5\n"
          "2024-01-02,a,2\n2024-01-02,b,6\n", "two.csv")
    files = read_folder(tmp_path, columns=["a"])
    assert [f.frame.sensors for f in files] == [["a"], ["a"]]
    with pytest.raises(DataError, match="in no CSV file"):
        read_folder(tmp_path, columns=["nope"])


@pytest.mark.skipif(not STEEL.exists(), reason="../shared/datasets not available")
def test_steel_plant_file_reads_with_and_without_columns():
    frame = read_csv(STEEL)
    assert frame.skipped == ["WeekStatus", "Day_of_week", "Load_Type"]
    assert "Usage_kWh" in frame.sensors and frame.unit("Usage_kWh") == "kWh"
    fixed, rep = prepare(frame)
    assert rep.freq == "15min" and len(fixed) == 35040
    assert read_csv(STEEL, columns=["Usage_kWh"]).sensors == ["Usage_kWh"]


@pytest.mark.skipif(not SKAB.exists(), reason="../shared/datasets not available")
def test_skab_labels_are_not_sensors():
    frame = read_csv(SKAB)
    assert "anomaly" not in frame.sensors and "changepoint" not in frame.sensors
    assert frame.labels["anomaly"].sum() > 0
