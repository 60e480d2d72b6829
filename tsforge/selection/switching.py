"""Live switching: a challenger family trained on recent readings, tried in shadow.

When residual drift persists (``alarms`` residual alarms within ``window``
readings), :class:`~tsforge.selection.auto.AutoForecaster` trains a challenger of
another family on the most recent readings and runs it beside the incumbent for
``trial`` readings.  The challenger takes over when its mean absolute one-step
error is below ``margin`` times the incumbent's; either way the outcome is a
:class:`SwitchEvent`, logged and handed to every subscribed listener (a model
registry, a monitor or a rollback rule consumes it there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SwitchEvent:
    """The outcome of one challenger trial.

    Attributes
    ----------
    index
        Reading index (since ``fit``) at which the trial ended.
    sensor
        Sensor name.
    incumbent, challenger
        Registry names of the family in service and of the one tried.
    switched
        True when the challenger took over.
    incumbent_mae, challenger_mae
        Mean absolute one-step errors of both over the trial (transformed units).
    alarms
        Residual drift alarms in the window that started the trial.
    started
        Reading index at which the trial started.
    reason
        The decision in plain words.
    """

    index: int
    sensor: str
    incumbent: str
    challenger: str
    switched: bool
    incumbent_mae: float
    challenger_mae: float
    alarms: int
    started: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwitchEvent:
        return cls(**data)


def trial_verdict(incumbent: str, challenger: str, inc_mae: float, ch_mae: float,
                  margin: float, alarms: int, window: int, trial: int) -> tuple[bool, str]:
    """Whether the challenger wins, and the sentence that says why."""
    switched = ch_mae < margin * inc_mae
    ratio = ch_mae / inc_mae if inc_mae > 0 else float("inf")
    evidence = (f"{alarms} residual drift alarms in {window} readings; over the next {trial} "
                f"readings {challenger} had MAE {ch_mae:.3f} vs {incumbent} {inc_mae:.3f} "
                f"(ratio {ratio:.2f}, switch below {margin:g})")
    if switched:
        return True, f"switched {incumbent} -> {challenger}: {evidence}"
    return False, f"kept {incumbent}: {evidence}"
