"""The selection policy: regime profile -> model family, with the reason in plain words.

The rules are read top to bottom; the first that applies picks the family.  The
same table is rendered into ``docs/selection.md`` by :func:`rule_table_markdown`
(a test keeps the two identical).

=====  ===================================================  ======================
rule   when                                                 family (default)
=====  ===================================================  ======================
R0     the sensor has an override                           the override
R1     history shorter than ``min_history`` readings        ``short_history`` (esn)
R2     fast drift: residual alarms per 1k readings          ``fast_online`` (uoro)
       >= ``fast_drift_rate``
R3     persistent drift: residual alarms per 1k readings    online[0] (esn)
       >= ``drift_rate``, or not stationary after the
       chain (ADF p > 0.05 or KPSS p < 0.05)
R4     long dependence (PACF order > ``long_dependence``)   fixed_feedback (dsf_gru)
       and a stable regime (spectral radius < ``max_radius``)
R5     otherwise (short dependence, stable regime)          windowed (mlp)
=====  ===================================================  ======================

Why two online rules: the echo state network learns its readout by recursive
least squares with forgetting factor 0.999, a memory of about 1,000 readings; when
alarms come faster than one per 200 readings that memory holds several regimes at
once, and UORO's gradient steps track the change faster (measured in
``benchmarks/selection_regret.py``, see ``docs/selection.md``).

Every family name is a registry name, and every role is configurable
(:class:`PolicyConfig`): the online candidates are a list so that new online
learners join by configuration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tsforge.errors import ConfigError
from tsforge.selection.profile import RegimeProfile

#: The roles a family plays in the policy.
ROLES = ("windowed", "fixed_feedback", "online", "fast_online", "short_history")


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds and the family of each role.

    Attributes
    ----------
    min_history
        Fewer readings than this: too short to train a windowed or recurrent model
        by batch; the short-history family learns from the stream instead.
    drift_rate
        Residual alarms per 1,000 warm-up readings from which drift counts as persistent.
    fast_drift_rate
        Residual alarms per 1,000 readings from which drift counts as fast (a change
        every 200 readings or less): the ``fast_online`` family takes over.
    long_dependence
        PACF order above which a windowed model's window would have to be long;
        the fixed-feedback recurrent family carries the memory in its state instead.
    max_radius
        Spectral radius of the fitted AR model below which the regime counts as stable.
    windowed, fixed_feedback, short_history, fast_online
        Registry names of those roles.
    online
        Online candidates, best first: R3 picks the first; a live switch away from an
        online family tries the windowed family, a switch to online the first candidate.
    """

    min_history: int = 300
    drift_rate: float = 2.0
    fast_drift_rate: float = 5.0
    long_dependence: int = 24
    max_radius: float = 1.0
    windowed: str = "mlp"
    fixed_feedback: str = "dsf_gru"
    online: tuple[str, ...] = ("esn", "uoro", "rtrl")
    fast_online: str = "uoro"
    short_history: str = "esn"

    def __post_init__(self) -> None:
        from tsforge.models.registry import MODELS

        names = [self.windowed, self.fixed_feedback, self.short_history, self.fast_online,
                 *self.online]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            raise ConfigError(f"policy names unknown model(s) {unknown}; valid names: "
                              f"{', '.join(MODELS)}")
        if not self.online:
            raise ConfigError("policy needs at least one online candidate, e.g. online=('uoro',)")

    def family(self, role: str) -> str:
        if role == "online":
            return self.online[0]
        return str(getattr(self, role))


@dataclass(frozen=True)
class Decision:
    """The family picked for one sensor and why.

    Attributes
    ----------
    sensor, family, role, rule
        Sensor name, registry name picked, its role and the rule (``"R2"``) that fired.
    explanation
        One sentence for the user: ``"picked uoro: 4.1 drift alarms per 1k readings; ..."``.
    profile
        The :class:`RegimeProfile` the decision was taken on.
    """

    sensor: str
    family: str
    role: str
    rule: str
    explanation: str
    profile: RegimeProfile = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"sensor": self.sensor, "family": self.family, "role": self.role,
                "rule": self.rule, "explanation": self.explanation,
                "profile": self.profile.to_dict()}


#: (rule, condition, role) rows of the documented table.
RULES: list[tuple[str, str, str]] = [
    ("R0", "the sensor has an override", "the override"),
    ("R1", "history shorter than `min_history` readings", "short_history"),
    ("R2", "fast drift: residual alarms per 1k warm-up readings >= `fast_drift_rate`",
     "fast_online"),
    ("R3", "persistent drift: residual alarms per 1k warm-up readings >= `drift_rate`, or "
           "not stationary after the transform chain (ADF p > 0.05 or KPSS p < 0.05)", "online"),
    ("R4", "long dependence (PACF order > `long_dependence`) and a stable regime (AR "
           "spectral radius < `max_radius`)", "fixed_feedback"),
    ("R5", "otherwise: short dependence, stable regime", "windowed"),
]


def rule_table_markdown(config: PolicyConfig | None = None) -> str:
    """The rule table as Markdown, with the thresholds and families of ``config``."""
    c = config or PolicyConfig()
    values = {f"`{f.name}`": f"`{f.name}`={getattr(c, f.name)}"
              for f in dataclasses.fields(c) if isinstance(getattr(c, f.name), int | float)}
    lines = ["| rule | when | role | family |", "| --- | --- | --- | --- |"]
    for rule, when, role in RULES:
        for key, val in values.items():
            when = when.replace(key, val)
        family = "as given" if role == "the override" else f"`{c.family(role)}`"
        lines.append(f"| {rule} | {when} | {role} | {family} |")
    return "\n".join(lines)


def _facts(p: RegimeProfile, with_drift: bool = True) -> str:
    drift = f"; {p.drift_rate:.1f} drift alarms per 1k readings" if with_drift else ""
    return (f"ADF p={p.adf_pvalue:.2f} after {_short_chain(p)}, KPSS p={p.kpss_pvalue:.2f}; "
            f"PACF order {p.pacf_order}; spectral radius {p.spectral_radius:.2f}{drift}")


_GERUNDS = {"difference": "differencing", "deseasonalize": "deseasonalizing"}


def _short_chain(p: RegimeProfile) -> str:
    kinds = [_GERUNDS.get(s["kind"], s["kind"]) for s in p.transforms if s.get("kind") != "scale"]
    return " + ".join(kinds) if kinds else ("scaling" if p.transforms else "the pipeline chain")


def choose(profile: RegimeProfile, config: PolicyConfig | None = None,
           override: str | None = None) -> Decision:
    """Apply the rule table to ``profile`` (see the module docstring).

    Parameters
    ----------
    profile
        What :func:`~tsforge.selection.profile.profile_series` measured.
    config
        Thresholds and families (default :class:`PolicyConfig`).
    override
        Registry name forced for this sensor (rule R0), or None.
    """
    c = config or PolicyConfig()
    p = profile

    def decide(rule: str, role: str, family: str, why: str, drift: bool = True) -> Decision:
        text = f"picked {family}: {why}; {_facts(p, drift)}"
        return Decision(p.sensor, family, role, rule, text, p)

    if override:
        from tsforge.models.registry import MODELS

        if override not in MODELS:
            raise ConfigError(f"override '{override}' for sensor '{p.sensor}' is not a model; "
                              f"valid names: {', '.join(MODELS)}")
        return decide("R0", "override", override, "set by the user for this sensor")
    if p.n < c.min_history:
        return decide("R1", "short_history", c.short_history,
                      f"only {p.n} readings of history (< {c.min_history}), too few to train "
                      "by batch, it learns from the stream")
    if p.drift_rate >= c.fast_drift_rate:
        return decide("R2", "fast_online", c.fast_online,
                      f"{p.drift_rate:.1f} drift alarms per 1k readings (>= "
                      f"{c.fast_drift_rate:g}), a change every {1000 / p.drift_rate:.0f} "
                      "readings, the model must track it step by step", drift=False)
    unstationary = p.stationarity != "stationary"
    if p.drift_rate >= c.drift_rate or unstationary:
        drifting = p.drift_rate >= c.drift_rate
        why = (f"{p.drift_rate:.1f} drift alarms per 1k readings (>= {c.drift_rate:g})"
               if drifting else
               f"still {p.stationarity} after {_short_chain(p)} (ADF p={p.adf_pvalue:.2f})")
        return decide("R3", "online", c.online[0], why + ", the regime keeps moving and the "
                      "model must keep learning", drift=not drifting)
    if p.pacf_order > c.long_dependence and p.spectral_radius < c.max_radius:
        return decide("R4", "fixed_feedback", c.fixed_feedback,
                      f"dependence of {p.pacf_order} lags (> {c.long_dependence}) in a stable, "
                      f"stationary regime, the recurrent state carries the memory")
    stable = "stable" if p.spectral_radius < c.max_radius else "near-unit-root"
    return decide("R5", "windowed", c.windowed,
                  f"short dependence ({p.pacf_order} lags <= {c.long_dependence}), "
                  f"{stable}, no persistent drift: a window covers it")
