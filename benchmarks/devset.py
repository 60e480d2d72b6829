"""The development series the accuracy benchmarks run on, read from ``../shared/datasets``.

Series (each skipped cleanly when its file is absent):

- ETTh1 (hourly transformer data): the target ``OT`` and the six load columns
  HUFL, HULL, MUFL, MULL, LUFL, LULL, each as its own univariate series, season 24;
- NAB ``realKnownCause``: every CSV's ``value`` column, season = readings per day at
  the file's median step (288 at 5 min, 48 at 30 min, 24 at 1 h);
- SKAB ``anomaly-free``: each of the eight sensor channels (1 s sampling, no
  daily season inside a few thousand readings, so season 1).

Readings are taken in file order as recorded: no regridding, sorting or gap
filling (NAB machine temperature repeats one hour; SKAB has small gaps), because
a streaming forecaster sees them that way.  The files are read at run time and
never copied into the repository (SKAB is GPL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsforge.data import read_csv

#: ``<repo>/../shared/datasets``, the default location of the development data.
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ETT_COLUMNS = ("OT", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL")
DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class Series:
    """One development series: ``name`` (``source/column``), readings and season length."""

    name: str
    values: np.ndarray
    period: int


def _readings_per_day(times: np.ndarray) -> int:
    steps = np.diff(times.astype("datetime64[ns]").astype(np.int64)) / 1e9
    steps = steps[steps > 0]
    if steps.size == 0:
        return 1
    per_day = round(DAY_SECONDS / float(np.median(steps)))
    return per_day if per_day >= 2 else 1


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} non-finite readings; the development files "
                         "are expected to be complete (check the copy under shared/datasets)")
    return values


def ett(root: Path) -> list[Series]:
    path = root / "ett" / "ETTh1.csv"
    if not path.exists():
        return []
    frame = read_csv(path)
    return [Series(f"ETTh1/{c}", _finite(c, frame.column(c)), 24) for c in ETT_COLUMNS]


def nab(root: Path) -> list[Series]:
    folder = root / "nab" / "realKnownCause"
    out = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        frame = read_csv(path)
        name = f"NAB/{path.stem}"
        out.append(Series(name, _finite(name, frame.column("value")),
                          _readings_per_day(frame.time)))
    return out


def skab(root: Path) -> list[Series]:
    path = root / "skab" / "anomaly-free" / "anomaly-free.csv"
    if not path.exists():
        return []
    frame = read_csv(path)
    return [Series(f"SKAB/{c.replace(' ', '_')}", _finite(c, frame.column(c)), 1)
            for c in frame.sensors]


def development_series(root: Path = DEFAULT_ROOT) -> list[Series]:
    """All development series found under ``root``, in a fixed order (ETT, NAB, SKAB)."""
    return ett(root) + nab(root) + skab(root)
