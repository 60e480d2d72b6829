"""Live comparison of champion, previous version and shadow challenger.

The :class:`Monitor` is a plain object fed once per reading with the forecast errors
of every model it watches (keyed by registry version), optional interval hits of the
champion and optional drift alarms (computed elsewhere, e.g. by a river detector, and
passed in as data).  It returns :class:`~tsforge.monitor.events.MonitorEvent` objects;
the caller applies ``promote``/``rollback`` to the registry or to its served model.
It imports numpy only, so the torch-free edge runtime and the Kafka service use the
very same rule as the library pipeline.

The rule (``docs/registry.md`` explains it with an example):

- **rollback** when, over the last ``window`` paired readings, the champion's MAE is
  more than ``rollback_margin`` above the previous version's *and* a paired test of
  that margin (``|e_champion| > (1 + margin) |e_previous|`` on average) is significant
  at ``alpha``, at each of ``patience`` consecutive readings;
- **promote** the challenger when, in the same way, its MAE is more than
  ``promote_margin`` below the champion's, significantly, for ``patience`` readings;
- **hysteresis**: an alarm clears only below ``rollback_margin * clear_fraction``; no
  switch for ``cooldown`` readings after a switch; a rolled-back version is never
  re-promoted; the windows restart after every switch.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tsforge.errors import ConfigError
from tsforge.monitor.events import MonitorConfig, MonitorEvent
from tsforge.monitor.stats import paired_test

log = logging.getLogger("tsforge.monitor")

ROLES = ("champion", "previous", "challenger")


class Monitor:
    """Sliding-window monitor with a significance-checked, hysteretic switching rule.

    Parameters
    ----------
    champion
        Version currently served.
    previous
        Version served before it (the rollback target), if still available.
    challenger
        Version run in shadow on the same stream (promotion candidate), if any.
    config
        The rule's settings.
    clock
        Seconds for ``seconds_since_alarm`` (``time.monotonic`` by default).

    Examples
    --------
    >>> mon = Monitor("v2", previous="v1", config=MonitorConfig(window=50, min_readings=20,
    ...               patience=5, cooldown=0))
    >>> events = []
    >>> for t in range(200):
    ...     events += mon.observe({"v2": 2.0 + (t % 3), "v1": 1.0 + (t % 2)})
    >>> [e.kind for e in events], mon.champion
    (['alarm', 'rollback'], 'v1')
    """

    def __init__(
        self,
        champion: str,
        previous: str | None = None,
        challenger: str | None = None,
        config: MonitorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or MonitorConfig()
        self.clock = clock
        self.champion = champion
        self.previous = previous
        self.challenger = challenger
        self.rejected: set[str] = set()
        self.events: list[MonitorEvent] = []
        self.step = 0
        self._check_roles()
        self._reset_windows(since_switch=self.config.cooldown)

    # ------------------------------------------------------------------ roles
    def _check_roles(self) -> None:
        named = [v for v in (self.champion, self.previous, self.challenger) if v is not None]
        if len(set(named)) != len(named):
            raise ConfigError(f"champion, previous and challenger must differ, got {named}")

    def set_challenger(self, version: str | None) -> None:
        """Start (or stop, with None) shadowing ``version``; its window starts empty."""
        if version is not None and version in self.rejected:
            raise ConfigError(
                f"version '{version}' was rolled back by this monitor and is not promoted again; "
                "register a new version instead"
            )
        self.challenger = version
        self._check_roles()
        self._err["challenger"][:] = np.nan
        self._streak["promote"] = 0

    def set_previous(self, version: str | None) -> None:
        """Name the rollback target (e.g. the registry's next champion in history)."""
        self.previous = version
        self._check_roles()
        self._err["previous"][:] = np.nan
        self._streak["rollback"] = 0

    # ------------------------------------------------------------------ state
    def _reset_windows(self, since_switch: int = 0) -> None:
        w = self.config.window
        self._err = {role: np.full(w, np.nan) for role in ROLES}
        self._cov = np.full(w, np.nan)
        self._drift = np.zeros(w, dtype=bool)
        self._pos = 0
        self._filled = 0
        self._since_switch = since_switch
        self._streak = {"rollback": 0, "promote": 0, "worse": 0}
        self._alarm: dict[str, Any] | None = None
        self._held = False
        self._last_drift = -(10**9)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume (plain arrays plus one JSON string)."""
        meta = {
            "champion": self.champion, "previous": self.previous,
            "challenger": self.challenger, "rejected": sorted(self.rejected),
            "step": self.step, "pos": self._pos, "filled": self._filled,
            "since_switch": self._since_switch, "streak": self._streak,
            "held": self._held, "last_drift": self._last_drift,
            "alarm": None if self._alarm is None else {
                k: v for k, v in self._alarm.items() if k != "clock"},
        }
        out = {f"err/{r}": self._err[r].copy() for r in ROLES}
        out.update(cov=self._cov.copy(), drift=self._drift.copy(),
                   meta=np.array(json.dumps(meta)))
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` (the alarm's wall clock restarts at load time)."""
        meta = json.loads(str(state["meta"]))
        self.champion, self.previous = meta["champion"], meta["previous"]
        self.challenger, self.rejected = meta["challenger"], set(meta["rejected"])
        self._reset_windows()
        for r in ROLES:
            self._err[r] = np.asarray(state[f"err/{r}"], dtype=np.float64).copy()
        self._cov = np.asarray(state["cov"], dtype=np.float64).copy()
        self._drift = np.asarray(state["drift"], dtype=bool).copy()
        self.step, self._pos, self._filled = meta["step"], meta["pos"], meta["filled"]
        self._since_switch, self._streak = meta["since_switch"], dict(meta["streak"])
        self._held, self._last_drift = meta["held"], meta["last_drift"]
        if meta["alarm"] is not None:
            self._alarm = {**meta["alarm"], "clock": self.clock()}

    # ------------------------------------------------------------------ feeding
    def observe(
        self,
        errors: Mapping[str, float],
        *,
        covered: bool | float | None = None,
        drift: bool = False,
        timestamp: float | None = None,
    ) -> list[MonitorEvent]:
        """Feed one reading; return the events it triggered (usually none).

        Parameters
        ----------
        errors
            Forecast error (forecast minus reading, any sign) of each watched version on
            this reading, keyed by version name.  Missing or non-finite values are
            recorded as gaps and excluded from the paired statistics; versions the
            monitor does not watch are ignored.
        covered
            Whether the reading fell inside the champion's interval (None: unknown).
        drift
            A drift detector fired on the champion's errors at this reading.
        timestamp
            Stream time of the reading (copied into the events).
        """
        self.step += 1
        self._since_switch += 1
        i = self._pos
        for role in ROLES:
            version = getattr(self, role)
            value = errors.get(version, np.nan) if version is not None else np.nan
            try:
                value = float(value)
            except (TypeError, ValueError):
                value = np.nan
            self._err[role][i] = value if math.isfinite(value) else np.nan
        self._cov[i] = np.nan if covered is None else float(covered)
        self._drift[i] = bool(drift)
        if drift:
            self._last_drift = self.step
        self._pos = (i + 1) % self.config.window
        self._filled = min(self._filled + 1, self.config.window)
        out = self._decide(timestamp)
        for event in out:
            self.events.append(event)
            log.info("monitor %s: %s", event.kind, event.to_json())
        return out

    def observe_batch(
        self,
        errors: Mapping[str, Sequence[float] | np.ndarray],
        *,
        covered: Sequence[float] | np.ndarray | None = None,
        drift: Sequence[bool] | np.ndarray | None = None,
        timestamps: Sequence[float] | np.ndarray | None = None,
    ) -> list[MonitorEvent]:
        """Feed a batch of readings (arrays of equal length); decisions stay per reading.

        After a switch inside the batch the following readings are attributed by
        version name, so errors of every model that ran should be passed.
        """
        arrays = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in errors.items()}
        lengths = {a.shape[0] for a in arrays.values()}
        if len(lengths) > 1:
            raise ConfigError(f"error arrays of a batch must have one length, got {lengths}")
        n = lengths.pop() if lengths else 0
        out: list[MonitorEvent] = []
        for t in range(n):
            out += self.observe(
                {k: a[t] for k, a in arrays.items()},
                covered=None if covered is None else covered[t],
                drift=False if drift is None else bool(drift[t]),
                timestamp=None if timestamps is None else float(timestamps[t]),
            )
        return out

    # ------------------------------------------------------------------ the rule
    def metrics(self) -> dict[str, float | None]:
        """Windowed MAEs, ratios, coverage and drift count at the current reading."""
        m: dict[str, float | None] = {}
        champ = self._err["champion"]
        m["mae_champion"] = _mae(champ)
        for role in ("previous", "challenger"):
            other = self._err[role]
            pair = np.isfinite(champ) & np.isfinite(other)
            n = int(pair.sum())
            m[f"pairs_{role}"] = float(n)
            m[f"mae_{role}"] = _mae(other[pair]) if n else None
            m[f"mae_champion_vs_{role}"] = _mae(champ[pair]) if n else None
        m["ratio_champion_previous"] = _ratio(m["mae_champion_vs_previous"], m["mae_previous"])
        m["ratio_challenger_champion"] = _ratio(m["mae_challenger"],
                                                m["mae_champion_vs_challenger"])
        cov = self._cov[np.isfinite(self._cov)]
        m["coverage"] = float(cov.mean()) if cov.size else None
        m["coverage_readings"] = float(cov.size)
        m["drift_alarms_in_window"] = float(self._drift.sum())
        m["readings_since_switch"] = float(self._since_switch)
        return m

    def _decide(self, timestamp: float | None) -> list[MonitorEvent]:
        cfg = self.config
        m = self.metrics()
        out: list[MonitorEvent] = []
        ratio_rb = m["ratio_champion_previous"]
        enough_rb = self.previous is not None and (m["pairs_previous"] or 0) >= cfg.min_readings
        worse = enough_rb and ratio_rb is not None and ratio_rb > 1.0 + cfg.rollback_margin
        self._streak["worse"] = self._streak.get("worse", 0) + 1 if worse else 0
        cov_low = (cfg.coverage_level is not None and m["coverage"] is not None
                   and m["coverage_readings"] >= cfg.min_readings
                   and m["coverage"] < cfg.coverage_level - cfg.coverage_tolerance)
        drifting = self.step - self._last_drift < cfg.patience
        if self._alarm is None and (worse or cov_low or drifting):
            causes = [c for c, on in (("champion worse than previous", worse),
                                      ("interval coverage low", cov_low),
                                      ("drift detected", drifting)) if on]
            self._alarm = {"step": self.step, "clock": self.clock(), "cause": ", ".join(causes)}
            self._held = False
            out.append(self._event("alarm", f"alarm: {', '.join(causes)}; {_summary(m)}", m,
                                   timestamp))
        cooling = self._since_switch <= cfg.cooldown
        res = None
        if worse:
            res = paired_test(cfg.test, self._err["champion"], self._err["previous"],
                              1.0 + cfg.rollback_margin)
        significant = res is not None and res.p_value < cfg.alpha
        self._streak["rollback"] = self._streak["rollback"] + 1 if significant else 0
        if res is not None:
            m.update(test_statistic=res.statistic, p_value=res.p_value, test_pairs=float(res.n))
        if self._streak["rollback"] >= cfg.patience and not cooling:
            reason = (f"rollback {self.champion} -> {self.previous}: champion MAE "
                      f"{_pct(ratio_rb)} of previous (> {1 + cfg.rollback_margin:.0%}) and "
                      f"{cfg.test} test p < {cfg.alpha:g} for {self._streak['rollback']} "
                      f"consecutive readings (now p={res.p_value:.2g} over {res.n} pairs)")
            out.append(self._switch("rollback", self.previous, reason, m, timestamp))
            return out
        blocked = (cooling and significant) or self._streak["worse"] >= cfg.patience
        if res is not None and blocked and not self._held:
            if cooling:
                why = f"in cooldown ({self._since_switch}/{cfg.cooldown} readings)"
            elif not significant:
                why = f"{cfg.test} test p={res.p_value:.2g} >= {cfg.alpha:g}"
            else:
                why = (f"significant for {self._streak['rollback']} of {cfg.patience} "
                       "consecutive readings so far")
            self._held = True
            out.append(self._event("hold", f"champion MAE {_pct(ratio_rb)} of previous but "
                                   f"{why}; keeping {self.champion}", m, timestamp))
        if self._alarm is not None and not worse and not cov_low and not drifting:
            exit_level = 1.0 + cfg.rollback_margin * cfg.clear_fraction
            if ratio_rb is None or ratio_rb <= exit_level:
                out.append(self._event("hold", f"alarm ({self._alarm['cause']}) cleared; keeping "
                                       f"{self.champion}; {_summary(m)}", m, timestamp))
                self._alarm = None
        ratio_pr = m["ratio_challenger_champion"]
        better = (self.challenger is not None and ratio_pr is not None
                  and (m["pairs_challenger"] or 0) >= cfg.min_readings
                  and ratio_pr < 1.0 - cfg.promote_margin)
        res = None
        if better:
            res = paired_test(cfg.test, self._err["champion"], self._err["challenger"],
                              1.0 / (1.0 - cfg.promote_margin))
        significant = res is not None and res.p_value < cfg.alpha
        self._streak["promote"] = self._streak["promote"] + 1 if significant else 0
        if self._streak["promote"] >= cfg.patience and not cooling and res is not None:
            m.update(test_statistic=res.statistic, p_value=res.p_value, test_pairs=float(res.n))
            reason = (f"promote {self.challenger} over {self.champion}: challenger MAE "
                      f"{_pct(ratio_pr)} of champion (< {1 - cfg.promote_margin:.0%}) and "
                      f"{cfg.test} test p < {cfg.alpha:g} for {self._streak['promote']} "
                      f"consecutive readings (now p={res.p_value:.2g} over {res.n} pairs)")
            out.append(self._switch("promote", self.challenger, reason, m, timestamp))
        return out

    def _event(self, kind: str, reason: str, m: dict[str, float | None],
               timestamp: float | None, to_version: str | None = None) -> MonitorEvent:
        alarm = self._alarm
        return MonitorEvent(
            kind=kind, step=self.step, reason=reason, from_version=self.champion,
            to_version=to_version or self.champion,
            readings_since_alarm=None if alarm is None else self.step - alarm["step"],
            seconds_since_alarm=None if alarm is None else self.clock() - alarm["clock"],
            metrics=dict(m), timestamp=timestamp,
        )

    def _switch(self, kind: str, target: str | None, reason: str, m: dict[str, float | None],
                timestamp: float | None) -> MonitorEvent:
        event = self._event(kind, reason, m, timestamp, to_version=target)
        if kind == "rollback":
            self.rejected.add(self.champion)
            self.champion, self.previous = str(target), None
        else:
            self.previous, self.champion, self.challenger = self.champion, str(target), None
        self._reset_windows()
        return event


def _mae(values: np.ndarray) -> float | None:
    v = values[np.isfinite(values)]
    return float(np.abs(v).mean()) if v.size else None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None:
        return None
    if den == 0.0:
        return math.inf if num > 0 else 1.0
    return num / den


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.0%}"


def _summary(m: dict[str, float | None]) -> str:
    parts = [f"{k}={v:.4g}" for k, v in m.items()
             if v is not None and k.startswith(("mae_", "ratio_", "coverage"))]
    return ", ".join(parts)
