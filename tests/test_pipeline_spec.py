"""The pipeline spec: strict validation with errors that name the key and the valid values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsforge.errors import ConfigError
from tsforge.pipeline import load_spec, parse_spec

SPEC = """
name = "plant"
use = "csv"

[source]
path = "data"

[model]
family = "mlp"
horizon = 12
params = { window = 48 }

[sensors.temperature]
family = "uoro"
params = { hidden = 8 }

[sensors.pressure]
transforms = "none"
"""


def test_valid_spec_parses_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plant.toml"
    path.write_text(SPEC)
    spec = load_spec(path)
    assert spec.name == "plant" and spec.use == "csv" and spec.origin == path
    assert Path(spec.source.path) == (tmp_path / "data").resolve()
    assert spec.model.horizon == 12 and spec.intervals.levels == [0.8, 0.95]
    assert spec.sensor("temperature") == ("uoro", {"hidden": 8}, "auto")
    assert spec.sensor("pressure") == ("mlp", {"window": 48}, "none")
    assert spec.sensor("flow") == ("mlp", {"window": 48}, "auto")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"name": "x", "use": "cloud"}, ["use = 'cloud'", "csv, kafka, edge"]),
        ({"name": "x", "use": "csv", "modle": {}}, ["unknown key(s) ['modle']", "model"]),
        ({"name": "x", "use": "csv", "model": {"famly": "mlp"}},
         ["[model]", "['famly']", "family, horizon"]),
        ({"name": "x", "use": "csv", "model": {"family": "gpt"}},
         ["[model] family = 'gpt'", "auto", "uoro"]),
        ({"name": "x", "use": "csv", "model": {"horizon": "12"}}, ["horizon must be int"]),
        ({"name": "x", "use": "csv", "model": {"horizon": 0}}, ["horizon must be >= 1"]),
        ({"name": "x", "use": "kafka", "kafka": {"auto_offset_reset": "middle"}},
         ["auto_offset_reset", "'earliest', 'latest'"]),
        ({"name": "x", "use": "csv", "sensors": {"t": {"family": "nope"}}},
         ["[sensors.t] family = 'nope'"]),
        ({"name": "x", "use": "csv", "intervals": {"levels": [0.9, 95]}}, ["levels", "(0, 1)"]),
        ({"use": "csv"}, ["'name' is required"]),
    ],
)
def test_wrong_config_names_the_key_and_the_valid_values(table: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_spec(table)
    for word in words:
        assert word in str(err.value)


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\nuse = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(bad)
    with pytest.raises(ConfigError, match="cannot read pipeline spec"):
        load_spec(tmp_path / "absent.toml")
