"""Choosing the model family per sensor: regime profile, policy, the ``auto`` forecaster.

``profile_series`` measures a sensor's regime (stationarity after the transform
chain, season, dependence length, stability, drift rate); ``choose`` maps it to a
registry family with an explanation; ``AutoForecaster`` (registry name ``"auto"``)
does both at ``fit`` and switches family live on persistent drift.
"""

from tsforge.selection.policy import RULES, Decision, PolicyConfig, choose, rule_table_markdown
from tsforge.selection.profile import RegimeProfile, profile_series
from tsforge.selection.switching import SwitchEvent

__all__ = ["RULES", "Decision", "PolicyConfig", "RegimeProfile", "SwitchEvent", "choose",
           "profile_series", "rule_table_markdown"]
