"""Real sensor series and served models shared by the serve and connector tests.

Sensors are ETTh1 columns (``../shared/datasets/ett``) when that file is present,
else six disjoint stretches of the bundled NAB machine-temperature series.
Models are fitted once per session (a small echo state network) into a model
store that every worker of the tests loads without refitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

HISTORY = 600
STREAM = 400
ETT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ett" / "ETTh1.csv"


@dataclass
class ServedModels:
    """Where the fitted models are and the readings the tests stream."""

    store: Path
    history_csv: Path
    sensors: list[str]
    stream: dict[str, np.ndarray]  # sensor -> values after the history
    start_ms: int
    step_ms: int
    horizon: int


def _series() -> dict[str, np.ndarray]:
    import polars as pl

    n = HISTORY + STREAM
    if ETT.exists():
        df = pl.read_csv(ETT)
        return {c: df[c].to_numpy()[:n].astype(float)
                for c in ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "OT")}
    from tsforge.demo import bundled_csv

    y = pl.read_csv(bundled_csv())["value"].to_numpy().astype(float)
    return {f"machine-{i}": y[i * n:(i + 1) * n] for i in range(6)}


@pytest.fixture(scope="session")
def served_models(tmp_path_factory: pytest.TempPathFactory) -> ServedModels:
    """Fit an ESN per group on the history and export it (once per session)."""
    pytest.importorskip("torch", reason="fitting the served models needs torch")
    from tsforge.pipeline import parse_spec
    from tsforge.serve.models import prepare_models

    root = tmp_path_factory.mktemp("served")
    series = _series()
    step_ms = 3_600_000
    start_ms = 1_467_331_200_000
    history = root / "history.csv"
    import datetime as dt

    iso = ["timestamp," + ",".join(series)]
    for t in range(HISTORY):
        stamp = dt.datetime.fromtimestamp((start_ms + t * step_ms) / 1000, dt.timezone.utc)
        iso.append(stamp.strftime("%Y-%m-%d %H:%M:%S") + ","
                   + ",".join(repr(float(v[t])) for v in series.values()))
    history.write_text("\n".join(iso) + "\n")
    spec = parse_spec({"name": "fixture", "use": "kafka",
                       "model": {"family": "esn", "horizon": 2, "transforms": "auto",
                                 "params": {"reservoir": 32}, "history": str(history)},
                       "intervals": {"levels": [0.8]},
                       "registry": {"path": str(root / "models")}})
    prepare_models(spec)
    return ServedModels(store=root / "models", history_csv=history, sensors=list(series),
                        stream={k: v[HISTORY:] for k, v in series.items()},
                        start_ms=start_ms + HISTORY * step_ms, step_ms=step_ms, horizon=2)


def _off_by_a_season(chain: list[dict]) -> list[dict]:
    """``chain`` with a seasonal profile wrong by ±5 in turn: its own profile shifted, or a
    made-up period-2 profile in front when the chain has no seasonal step."""
    if not any(step.get("kind") == "deseasonalize" for step in chain):
        return [{"kind": "deseasonalize", "period": 2, "profile": [-5.0, 5.0]}, *chain]
    out = []
    for step in chain:
        if step.get("kind") == "deseasonalize":
            profile = np.asarray(step["profile"], dtype=float)
            step = {**step,
                    "profile": (profile + 5.0 * (-1.0) ** np.arange(len(profile))).tolist()}
        out.append(step)
    return out


def registry_with_bad_champion(served: ServedModels, root: Path) -> tuple[object, str, str]:
    """Copy the served registry to ``root``; register and promote a champion with wrong
    sensor statistics: ±5 added in turn to each sensor's seasonal profile, so consecutive
    readings are shifted apart by 10 and every forecast is off by about 10 whatever the
    model's readout (a wrong scale alone is harmless to a readout that forecasts the
    change).
    Returns (registry, bad, good)."""
    import shutil

    from tsforge.registry import Registry
    from tsforge.serve.models import load_groups

    shutil.copytree(served.store, root)
    (good,) = load_groups(root)
    registry = Registry(good.registry, create=False)
    chains = {s: _off_by_a_season(chain) for s, chain in good.sensors.items()}
    bad = registry.register(onnx=good.onnx_path, family=good.family,
                            extra={"sensors": chains, "group": good.name})
    registry.promote(bad.name)
    return registry, bad.name, good.version
