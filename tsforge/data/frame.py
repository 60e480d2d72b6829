"""The in-memory sensor table: timestamps plus one float column per sensor."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tsforge.errors import DataError


@dataclass
class SensorFrame:
    """Readings of several sensors on shared timestamps.

    Attributes
    ----------
    time
        ``datetime64[ns]`` timestamps, naive (tz-aware input is converted to UTC).
    values
        float64 array ``(T, n_sensors)``; NaN where a reading is missing.
    sensors
        Sensor (column) names.
    source
        File or description, used in error messages.
    freq
        Step of the regular grid once prepared, else None.
    units
        Unit of each sensor where known (``{"OT": "°C"}``), for plot axes and tables.
    labels
        Event-label columns kept out of the sensors (SKAB's ``anomaly``,
        ``changepoint``), one value per row.
    skipped
        Text columns of the file that were not read as sensors.
    """

    time: np.ndarray
    values: np.ndarray
    sensors: list[str]
    source: str = "<memory>"
    freq: np.timedelta64 | None = None
    #: Long-layout rows that repeated a (timestamp, sensor) pair and were averaged on read.
    merged_duplicates: int = 0
    units: dict[str, str] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def _index(self, name: str) -> int:
        try:
            return self.sensors.index(name)
        except ValueError:
            raise DataError(
                f"{self.source}: no sensor '{name}'; valid names: {', '.join(self.sensors)}"
            ) from None

    def column(self, name: str) -> np.ndarray:
        """Values of one sensor (a view)."""
        return self.values[:, self._index(name)]

    def select(self, names: list[str]) -> SensorFrame:
        idx = [self._index(n) for n in names]
        return replace(self, values=self.values[:, idx], sensors=list(names))

    def slice(self, start: int, stop: int) -> SensorFrame:
        return replace(self, time=self.time[start:stop], values=self.values[start:stop],
                       labels={k: v[start:stop] for k, v in self.labels.items()})

    def unit(self, name: str) -> str:
        """The unit of sensor ``name``, or ``""`` when unknown."""
        return self.units.get(name, "")

    def to_pandas(self) -> Any:
        from tsforge.optional import require

        pd = require("pandas", "converting to pandas")
        return pd.DataFrame(self.values, index=pd.DatetimeIndex(self.time, name="timestamp"),
                            columns=self.sensors)
