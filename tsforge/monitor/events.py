"""The monitor's configuration and the decision events it emits (plain dataclasses)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tsforge.errors import ConfigError
from tsforge.monitor.stats import TESTS

#: Kinds of :class:`MonitorEvent`, in the order an episode usually produces them.
EVENT_KINDS = ("alarm", "hold", "promote", "rollback")


@dataclass(frozen=True)
class MonitorConfig:
    """The documented switching rule (see ``docs/registry.md``).

    Attributes
    ----------
    window
        Sliding window of paired readings over which MAEs, coverage and the test run.
    min_readings
        Paired readings needed since the last switch before any switch is considered.
    rollback_margin
        Roll back when the champion's MAE exceeds the previous version's by more than
        this fraction (0.10 = 10 % worse) ...
    patience
        ... for this many consecutive readings (hysteresis: one bad reading never acts) ...
    alpha
        ... and the paired test (``test``) says the champion is worse at level ``alpha``.
    promote_margin
        Promote the shadow challenger when its MAE is lower than the champion's by more
        than this fraction for ``patience`` readings and the test is significant.
    test
        ``"dm"`` (Diebold-Mariano on absolute errors, Bartlett long-run variance) or
        ``"sign"`` (exact paired sign test).
    clear_fraction
        An alarm clears only once the excess error falls below
        ``rollback_margin * clear_fraction`` (a lower exit than entry threshold).
    cooldown
        Readings after a switch during which no further switch happens; a rolled-back
        version is never promoted again by the monitor.
    coverage_level, coverage_tolerance
        Nominal coverage of the interval hits passed to :meth:`Monitor.observe`; an
        alarm is raised when windowed coverage falls below ``level - tolerance``.
    """

    window: int = 288
    min_readings: int = 48
    rollback_margin: float = 0.10
    patience: int = 12
    alpha: float = 0.01
    promote_margin: float = 0.05
    test: str = "dm"
    clear_fraction: float = 0.5
    cooldown: int = 288
    coverage_level: float | None = None
    coverage_tolerance: float = 0.10

    def __post_init__(self) -> None:
        if self.window < 3 or not 3 <= self.min_readings <= self.window:
            raise ConfigError(
                f"need window >= 3 and 3 <= min_readings <= window, got window={self.window}, "
                f"min_readings={self.min_readings}"
            )
        if self.test not in TESTS:
            raise ConfigError(f"unknown test '{self.test}'; valid: {', '.join(TESTS)}")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.rollback_margin < 0 or not 0 <= self.promote_margin < 1:
            raise ConfigError("rollback_margin must be >= 0 and promote_margin in [0, 1)")
        if self.patience < 1 or self.cooldown < 0 or not 0 <= self.clear_fraction <= 1:
            raise ConfigError("need patience >= 1, cooldown >= 0 and clear_fraction in [0, 1]")
        if self.coverage_level is not None and not 0 < self.coverage_level < 1:
            raise ConfigError(f"coverage_level must be in (0, 1), got {self.coverage_level}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MonitorConfig:
        """Build from a mapping (e.g. a pipeline file), naming unknown keys."""
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ConfigError(f"unknown monitor setting(s) {unknown}; valid: {sorted(valid)}")
        return cls(**values)


@dataclass(frozen=True)
class MonitorEvent:
    """One decision of the monitor, with the evidence it was taken on.

    Attributes
    ----------
    kind
        ``"alarm"`` (an episode starts), ``"hold"`` (the rule was evaluated and chose not
        to switch, or an alarm cleared), ``"promote"`` or ``"rollback"``.
    step
        Index of the reading (1-based count of readings the monitor has seen).
    reason
        Human-readable sentence with the numbers behind the decision.
    from_version, to_version
        The champion before and after (equal for alarm/hold).
    readings_since_alarm, seconds_since_alarm
        Time from the alarm that opened the episode to this event (None without one);
        seconds by the monitor's clock (monotonic wall time by default).
    metrics
        Windowed figures: MAEs per role, ratio, test statistic and p-value, pairs, coverage.
    timestamp
        Stream timestamp of the reading, when the caller passed one.
    """

    kind: str
    step: int
    reason: str
    from_version: str | None
    to_version: str | None
    readings_since_alarm: int | None = None
    seconds_since_alarm: float | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    timestamp: float | None = None

    @property
    def switches(self) -> bool:
        """True for promote and rollback, the events that change the served version."""
        return self.kind in ("promote", "rollback")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """JSON text of the event; non-finite numbers become null."""
        return json.dumps(_clean(self.to_dict()), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MonitorEvent:
        return cls(**values)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
