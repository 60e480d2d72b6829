"""The family a study trains for one sensor, and why.

The regime profile (:func:`tsforge.selection.profile_series`) is measured on the
training part after the sensor's transform chain, and the documented policy
(:func:`tsforge.selection.choose`, the rule table in ``docs/selection.md``) maps it to a
registry family: the same decision the ``auto`` forecaster takes in production.  A
family named in the configuration overrides the policy (rule R0) and the
explanation says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class FamilyPick:
    """The picked family with its parameters, the regime profile and the reasons.

    Attributes
    ----------
    family, params
        Registry name and the hyper-parameters given to it.
    rule, role
        The policy rule that fired (``"R2"``) and the family's role (``"online"``).
    explanation
        The policy's sentence: ``"picked uoro: ..."``.
    reasons
        The profile's measurements in words, then any configuration note.
    profile
        The regime profile as a plain dict (:meth:`RegimeProfile.to_dict`).
    overridden
        True when the family was named in the configuration, not picked.
    """

    family: str
    params: dict[str, Any]
    rule: str
    role: str
    explanation: str
    reasons: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    overridden: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def profile_rows(self) -> list[tuple[str, Any]]:
        """The profile figures a reader compares with the policy's thresholds."""
        keys = ("n", "chain", "stationarity", "adf_pvalue", "kpss_pvalue", "period",
                "pacf_order", "acf_decay", "spectral_radius", "drift_rate", "input_drift_rate")
        return [(k, self.profile.get(k)) for k in keys]


def pick_family(y_train: np.ndarray, stationarity: Any, *, family: str = "auto",
                params: dict[str, Any] | None = None, sensor: str = "series",
                detectors: Any = None) -> FamilyPick:
    """Profile the training part and apply the selection policy.

    Parameters
    ----------
    y_train
        The training part in engineering units.
    stationarity
        Its :class:`~tsforge.preprocess.StationarityReport`: the transform chain and
        season the profile is measured under.
    family
        ``"auto"`` (the policy decides) or a registry name (override).
    params
        Configured hyper-parameters; those the picked family does not take are left
        out and named in the reasons (a trained family's ``epochs`` means nothing
        to an echo state network).
    sensor
        Name carried into the profile.
    detectors
        Drift detector specs for the profile's drift rate (None: the defaults).
    """
    from tsforge.selection import choose, profile_series

    profile = profile_series(np.asarray(y_train, dtype=np.float64), sensor=sensor,
                             transforms=stationarity.transforms, period=stationarity.period,
                             detectors=detectors)
    decision = choose(profile, override=None if family == "auto" else family)
    reasons = list(profile.reasons)
    chosen = _accepted(decision.family, dict(params or {}), reasons)
    return FamilyPick(family=decision.family, params=chosen, rule=decision.rule,
                      role=decision.role, explanation=decision.explanation, reasons=reasons,
                      profile=profile.to_dict(), overridden=decision.rule == "R0")


def _accepted(family: str, params: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """The configured ``params`` the family takes; the others are named in ``reasons``."""
    from tsforge.models.registry import model_class

    fields = model_class(family).Config.__dataclass_fields__
    dropped = sorted(k for k in params if k not in fields)
    if dropped:
        reasons.append(f"configured parameter(s) {dropped} do not apply to {family} "
                       "and were not used")
    return {k: v for k, v in params.items() if k in fields}
