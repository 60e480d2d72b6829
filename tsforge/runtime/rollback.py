"""On-device rollback: score the current and the previous model on the live stream.

The bundle keeps the previous version; the runtime runs it in the shadow of the
current one (same readings, its own per-sensor state) and, when each reading
arrives, scores both models' one-step forecasts made before it.  A decision rule
sees the paired absolute errors and says when to switch back.

:class:`ErrorRatioRule` is the rule used on the device: over the last ``window``
paired errors (pooled over sensors, at least ``min_pairs``), roll back when the
current model's mean absolute error exceeds the previous one's by ``ratio``.
It is one-way: once rolled back, the box serves the previous version until a new
bundle version is installed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ErrorRatioRule:
    """Roll back when ``MAE(current) > ratio * MAE(previous)`` over the last ``window`` pairs."""

    window: int = 200
    min_pairs: int = 50
    ratio: float = 1.25
    pairs: deque = field(default_factory=deque)

    def update(self, err_current: float, err_previous: float) -> bool:
        """Add one paired error; return True when the rule says roll back."""
        self.pairs.append((err_current, err_previous))
        while len(self.pairs) > self.window:
            self.pairs.popleft()
        if len(self.pairs) < self.min_pairs:
            return False
        cur, prev = np.mean(np.asarray(self.pairs), axis=0)
        return bool(cur > self.ratio * prev)

    def summary(self) -> dict[str, float]:
        if not self.pairs:
            return {"pairs": 0}
        cur, prev = np.mean(np.asarray(self.pairs), axis=0)
        return {"pairs": len(self.pairs), "mae_current": float(cur), "mae_previous": float(prev)}


class RollbackGuard:
    """Pairs the live errors of the current and the previous runtime and applies ``rule``.

    Parameters
    ----------
    current, previous
        :class:`~tsforge.runtime.streaming.StreamingRuntime` of each version.
    rule
        Any object with ``update(err_current, err_previous) -> bool`` and
        ``summary() -> dict``.
    """

    def __init__(self, current: Any, previous: Any, rule: Any = None) -> None:
        self.current, self.previous = current, previous
        self.rule = rule if rule is not None else ErrorRatioRule()
        self.rolled_back = False
        self.event: dict[str, Any] | None = None

    @property
    def active(self) -> Any:
        """The runtime whose forecasts are served."""
        return self.previous if self.rolled_back else self.current

    def observe(self, sensor: str, y: float) -> None:
        """Score both models' pending one-step forecasts of ``sensor`` against reading ``y``."""
        if self.rolled_back or not np.isfinite(y):
            return
        a, b = self.current.sensors.get(sensor), self.previous.sensors.get(sensor)
        if a is None or b is None or a.last_forecast is None or b.last_forecast is None:
            return
        err_cur = abs(y - float(a.last_forecast[0]))
        err_prev = abs(y - float(b.last_forecast[0]))
        if self.rule.update(err_cur, err_prev):
            self.rolled_back = True
            self.event = {"event": "rollback", "sensor": sensor, **self.rule.summary()}
