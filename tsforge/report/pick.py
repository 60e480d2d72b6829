"""The family a study trains for one sensor, and why.

``family = "auto"`` applies the regime rule below to what the training part showed;
any registry name overrides it (the explanation then says so).  The rule follows
DESIGN §6: a series whose readings keep shifting (many drift alarms on the training
part) gets an online learner that adapts while it serves; a stable one gets a
windowed network whose window covers the season (or the dependence the ACF shows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tsforge.report.alarms import run_detector

#: ADWIN alarms per 1000 training readings above which the series counts as drifting.
DRIFT_RATE_ONLINE = 2.0
#: Window bounds of the windowed family (readings).
MIN_WINDOW, MAX_WINDOW = 24, 288


@dataclass
class FamilyPick:
    """The picked family with its parameters, the measurements and the reasons.

    Attributes
    ----------
    family, params
        Registry name and hyper-parameters given to it.
    reasons
        Plain-English lines ("picked esn because ...").
    profile
        The measured regime figures the rule looked at.
    overridden
        True when the family was named in the configuration, not picked.
    """

    family: str
    params: dict[str, Any]
    reasons: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    overridden: bool = False

    def explain(self) -> str:
        return f"{self.family}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def regime_profile(y_train: np.ndarray, stationarity: Any) -> dict[str, Any]:
    """Figures of the training part that the rule reads."""
    z = np.asarray(y_train, dtype=np.float64)
    z = (z - z.mean()) / (z.std() or 1.0)
    alarms = run_detector("adwin", z)
    return {
        "readings": int(z.size),
        "decision": stationarity.decision,
        "after_chain": (stationarity.after or {}).get("decision"),
        "period": stationarity.period,
        "seasonal_strength": stationarity.seasonal_strength,
        "trend_strength": stationarity.trend_strength,
        "adwin_alarms": len(alarms),
        "alarms_per_1000": 1000.0 * len(alarms) / max(z.size, 1),
    }


def pick_family(y_train: np.ndarray, stationarity: Any, *, family: str = "auto",
                params: dict[str, Any] | None = None) -> FamilyPick:
    """Pick the family for one sensor from its training part and stationarity report."""
    params = dict(params or {})
    profile = regime_profile(y_train, stationarity)
    if family != "auto":
        return FamilyPick(family, params, [f"set in the configuration (family = '{family}')"],
                          profile, overridden=True)
    rate = profile["alarms_per_1000"]
    reasons = [f"the training part is {profile['decision']}; after the transform chain "
               f"it is {profile['after_chain'] or 'not re-tested'}"]
    if rate > DRIFT_RATE_ONLINE:
        reasons.append(f"ADWIN raised {profile['adwin_alarms']} alarms on the readings "
                       f"({rate:.1f} per 1000 > {DRIFT_RATE_ONLINE}): the level keeps "
                       "shifting, so an echo state network that keeps learning online "
                       "(recursive least squares) follows it")
        return FamilyPick("esn", _accepted("esn", params, reasons), reasons, profile)
    period = profile["period"]
    window = int(np.clip(2 * period if period else MIN_WINDOW * 2, MIN_WINDOW, MAX_WINDOW))
    reasons.append(f"ADWIN raised {profile['adwin_alarms']} alarms ({rate:.1f} per 1000 <= "
                   f"{DRIFT_RATE_ONLINE}): a stable regime, so a windowed network trained "
                   f"on the history (lag MLP)")
    why = f"two seasons of {period}" if period else "no season found, the default"
    reasons.append(f"window {window} readings: {why}, within [{MIN_WINDOW}, {MAX_WINDOW}]")
    chosen = {"window": window, **_accepted("mlp", params, reasons)}
    return FamilyPick("mlp", chosen, reasons, profile)


def _accepted(family: str, params: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """The configured ``params`` the picked family takes; the others are named in ``reasons``."""
    from tsforge.models.registry import model_class

    fields = model_class(family).Config.__dataclass_fields__
    dropped = sorted(k for k in params if k not in fields)
    if dropped:
        reasons.append(f"configured parameter(s) {dropped} do not apply to {family} "
                       "and were not used")
    return {k: v for k, v in params.items() if k in fields}
