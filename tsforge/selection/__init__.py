"""Choosing the model family per sensor: regime profile, policy, the ``auto`` forecaster.

``profile_series`` measures a sensor's regime (stationarity after the transform
chain, season, dependence length, stability, drift rate); ``choose`` maps it to a
registry family with an explanation; ``AutoForecaster`` (registry name ``"auto"``)
profiles at ``fit`` to prune its candidate families, then combines the survivors' forecasts
with weights learned online (:mod:`tsforge.aggregation`).
"""

from tsforge.selection.policy import RULES, Decision, PolicyConfig, choose, rule_table_markdown
from tsforge.selection.profile import RegimeProfile, profile_series

__all__ = ["RULES", "Decision", "PolicyConfig", "RegimeProfile", "choose",
           "profile_series", "rule_table_markdown"]
