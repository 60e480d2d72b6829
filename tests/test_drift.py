"""Drift detection: river's detectors fire at the golden indices on fixed-seed regimes."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import tsforge.drift.detectors
import tsforge.drift.monitor
from tsforge.drift import Alarm, DriftMonitor, RiverDetector, scan
from tsforge.errors import ConfigError
from tsforge.selection.synthetic import REGIMES, suite

#: (regime, detector) -> reading indices at which river's detector fires on the raw
#: 2,000-reading stream with tsforge's default parameters.
GOLDEN_INPUT: dict[tuple[str, str], list[int]] = {
    ("white_noise", "adwin"): [],
    ("white_noise", "page_hinkley"): [1434],
    ("white_noise", "kswin"): [1131],
    ("ar_short", "adwin"): [],
    ("ar_short", "kswin"): [],
    ("seasonal_ar", "adwin"): [],
    ("random_walk", "kswin"): [226, 426, 626, 828, 1028, 1228, 1428, 1628, 1828],
    ("abrupt_drift", "adwin"): [95, 159, 255, 415, 831, 895, 959, 1023, 1087, 1215, 1631,
                                1695, 1759, 1823, 1887, 1951],
    ("abrupt_drift", "kswin"): [199, 411, 821, 1028, 1617, 1881],
    ("gradual_drift", "adwin"): [95, 415, 1375, 1535, 1631],
    ("gradual_drift", "page_hinkley"): [31, 61, 306, 1279, 1373, 1513, 1556, 1623, 1823],
    ("gradual_drift", "kswin"): [1388, 1624],
    ("variance_change", "adwin"): [1055, 1535],
    ("variance_change", "kswin"): [348, 601],
}

#: On the AR(1) innovations of ``variance_change`` (noise x3 at reading 1000), watched
#: as a residual signal by the default monitor: (index, detector).
GOLDEN_RESIDUAL = [(1023, "adwin"), (1035, "kswin"), (1043, "page_hinkley"),
                   (1527, "page_hinkley"), (1861, "page_hinkley")]


@pytest.fixture(scope="module")
def streams() -> dict[str, np.ndarray]:
    return suite(2000)


@pytest.mark.parametrize("regime,detector", list(GOLDEN_INPUT))
def test_detectors_fire_at_golden_indices(streams, regime: str, detector: str) -> None:
    mon = scan(streams[regime], regime, detector)
    assert [a.index for a in mon.alarms] == GOLDEN_INPUT[(regime, detector)]
    assert all(a.detector == detector and a.signal == "input" for a in mon.alarms)


def test_variance_change_fires_on_the_residual_signal(streams) -> None:
    y = streams["variance_change"]
    innovations = y - 0.5 * np.r_[0.0, y[:-1]]
    mon = DriftMonitor("pump", signals=("residual",))
    for v in innovations:
        mon.update(residual=float(v))
    assert [(a.index, a.detector) for a in mon.alarms] == GOLDEN_RESIDUAL
    first = mon.alarms[0]
    assert first.sensor == "pump" and first.signal == "residual"
    assert first.statistic_name == "window mean" and first.statistic > 0.8  # mean |e| rose
    ph = next(a for a in mon.alarms if a.detector == "page_hinkley")
    assert ph.statistic > 50.0  # above Page-Hinkley's threshold
    ks = next(a for a in mon.alarms if a.detector == "kswin")
    assert ks.statistic_name == "KS p-value" and ks.statistic <= 1e-4


def test_alarms_carry_timestamps_and_reach_listeners() -> None:
    heard: list[Alarm] = []
    mon = DriftMonitor("s1", "page_hinkley", signals=("input",))
    mon.subscribe(heard.append)
    x = np.r_[np.zeros(300), np.full(300, 3.0)]
    for i, v in enumerate(x):
        mon.update(input=float(v), timestamp=f"t{i}")
    assert [(a.index, a.timestamp) for a in heard] == [(317, "t317")]
    assert Alarm.from_dict(heard[0].to_dict()) == heard[0]
    assert "page_hinkley on input of 's1'" in heard[0].describe()
    assert mon.rate_per_1k("input") == pytest.approx(1000 / 600)


def test_non_finite_signals_are_skipped_not_fed() -> None:
    mon = DriftMonitor("s1", "adwin")
    mon.update(input=float("nan"), residual=float("inf"))
    mon.update(input=1.0, residual=None)
    assert mon.n_seen == 2
    assert mon.state()["segment_values"] == {"input": [1.0], "residual": []}


def test_monitor_state_round_trip_resumes_exactly(streams) -> None:
    y = streams["abrupt_drift"]
    a = DriftMonitor("s", segment=700)
    for v in y[:1000]:
        a.update(input=float(v), residual=float(v))
    b = DriftMonitor("s", segment=700)
    b.load_state(a.state())
    for v in y[1000:]:
        a.update(input=float(v), residual=float(v))
        b.update(input=float(v), residual=float(v))
    assert a.alarms == b.alarms and len(a.alarms) > 20


def test_bad_detector_configuration_is_explained() -> None:
    with pytest.raises(ConfigError, match="valid kinds: adwin, page_hinkley, kswin"):
        RiverDetector("cusum")
    with pytest.raises(ConfigError, match="bad parameters"):
        RiverDetector("adwin", threshold=3)
    with pytest.raises(ConfigError, match="unknown drift signal"):
        DriftMonitor("s", signals=("output",))
    with pytest.raises(ConfigError, match="'kind' key"):
        DriftMonitor("s", [{"delta": 0.1}])


def test_suite_is_fixed_seed() -> None:
    for name, gen in REGIMES.items():
        np.testing.assert_array_equal(gen(300), gen(300), err_msg=name)


@pytest.mark.parametrize("module", [tsforge.drift.detectors, tsforge.drift.monitor])
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
