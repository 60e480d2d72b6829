"""Regime profile, selection policy and the ``auto`` forecaster."""

from __future__ import annotations

import dataclasses
import doctest
import json
from pathlib import Path

import numpy as np
import pytest

import tsforge.selection.profile
from tsforge.errors import ConfigError
from tsforge.selection import PolicyConfig, RegimeProfile, choose, profile_series
from tsforge.selection.policy import rule_table_markdown
from tsforge.selection.synthetic import random_walk, seasonal_ar, white_noise

DOCS = Path(__file__).resolve().parents[1] / "docs" / "selection.md"
def _profile(**changes) -> RegimeProfile:
    base = RegimeProfile(sensor="s1", n=2000, transforms=[{"kind": "difference"},
                                                          {"kind": "scale"}],
                         chain="difference -> scale", adf_pvalue=0.001, kpss_pvalue=0.1,
                         stationarity="stationary", pacf_order=3, spectral_radius=0.6,
                         drift_rate=0.0)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("changes,rule,family", [
    ({}, "R5", "mlp"),
    ({"n": 120}, "R1", "esn"),
    ({"drift_rate": 6.2}, "R2", "uoro"),
    ({"drift_rate": 4.1}, "R3", "esn"),
    ({"stationarity": "non-stationary", "adf_pvalue": 0.31}, "R3", "esn"),
    ({"pacf_order": 73, "spectral_radius": 0.999}, "R4", "dsf_gru"),
    ({"pacf_order": 73, "spectral_radius": 1.01}, "R5", "mlp"),
])
def test_rule_table(changes, rule: str, family: str) -> None:
    d = choose(_profile(**changes))
    assert (d.rule, d.family) == (rule, family)
    assert d.explanation.startswith(f"picked {family}: ")


def test_explanations_give_the_evidence_in_plain_words() -> None:
    d = choose(_profile(drift_rate=4.1, adf_pvalue=0.31))
    assert "4.1 drift alarms per 1k readings" in d.explanation
    assert d.explanation.startswith("picked esn: 4.1 drift alarms per 1k readings")
    assert "ADF p=0.31 after differencing" in d.explanation
    d = choose(_profile(stationarity="non-stationary", adf_pvalue=0.31))
    assert "still non-stationary after differencing (ADF p=0.31)" in d.explanation


def test_override_and_configured_families() -> None:
    d = choose(_profile(drift_rate=9.0), override="esn")
    assert (d.rule, d.family) == ("R0", "esn")
    with pytest.raises(ConfigError, match="valid names"):
        choose(_profile(), override="prophet")
    cfg = PolicyConfig(online=("uoro", "esn"), windowed="tcn", fast_online="rtrl")
    assert choose(_profile(drift_rate=3.0), cfg).family == "uoro"
    assert choose(_profile(drift_rate=9.0), cfg).family == "rtrl"
    assert choose(_profile(), cfg).family == "tcn"
    with pytest.raises(ConfigError, match="unknown model"):
        PolicyConfig(online=("ptncn_typo",))


def test_docs_carry_the_rule_table() -> None:
    assert rule_table_markdown() in DOCS.read_text()


def test_profile_measures_the_regimes() -> None:
    fast = "adwin,page_hinkley"
    wn = profile_series(white_noise(500), sensor="wn", detectors=fast)
    assert (wn.stationarity, wn.pacf_order) == ("stationary", 0)
    assert wn.spectral_radius < 0.1 and wn.drift_rate == 0.0
    rw = profile_series(random_walk(500), sensor="rw", detectors=fast)
    assert [s["kind"] for s in rw.transforms] == ["difference", "scale"]
    assert rw.stationarity == "stationary"  # after differencing
    sar = profile_series(seasonal_ar(1000), sensor="sar", transforms=[{"kind": "scale"}],
                         detectors=fast)
    assert sar.pacf_order >= 72 and 0.9 < sar.spectral_radius < 1.0
    assert choose(sar).family == "dsf_gru"
    assert RegimeProfile.from_dict(json.loads(json.dumps(sar.to_dict()))).to_dict() == \
        sar.to_dict()


def test_profile_docstring_example() -> None:
    assert doctest.testmod(tsforge.selection.profile).failed == 0


def test_analyze_cli_shows_profile_and_recommendation(tmp_path, capsys) -> None:
    from tsforge.cli import main

    n = 600
    stamps = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
    csv = tmp_path / "plant.csv"
    rows = [f"{t},{a:.6f},{b:.6f}" for t, a, b in
            zip(stamps.astype(str), white_noise(n), random_walk(n))]
    csv.write_text("timestamp,flow,level\n" + "\n".join(rows) + "\n")
    out_json = tmp_path / "a.json"
    code = main(["analyze", str(csv), "--family", "level=uoro", "--json", str(out_json),
                 "--plots", str(tmp_path / "plots"), "--details"])
    text = capsys.readouterr().out
    assert code == 0
    assert "flow: regime profile of" in text and "recommendation (R" in text
    assert "recommendation (R0): picked uoro: set by the user" in text
    sensors = json.loads(out_json.read_text())["sensors"]
    assert sensors["level"]["recommendation"]["family"] == "uoro"
    assert sensors["flow"]["regime"]["pacf_order"] == 0
    assert (tmp_path / "plots" / "flow_drift.png").stat().st_size > 0
    assert main(["analyze", str(csv), "--family", "pump=uoro"]) == 2  # unknown sensor
