"""Shadow + rollback as a stage of the engine: versions side by side, the Monitor decides.

A model group served with earlier (or candidate) versions beside its champion runs
every version's :class:`~tsforge.engine.group.GroupEngine` on the same readings
(each with its own per-sensor state, so a version switched to is warm).  Each
reading's one-step errors of all versions (the forecasts each issued for it) go,
in arrival order, to the library's :class:`~tsforge.monitor.Monitor`: roll back
when the champion's windowed error is worse than the previous version's by the
configured margin, significantly, for ``patience`` readings; promote a challenger
by the mirror rule.  A switch applies from the reading that triggered it; the
version switched away from by a rollback stops running.  This is the one place
the rule is wired to serving: the Kafka worker, the edge box and the library's
``MonitoredServing`` all call :meth:`ShadowStage.serve`.

The versions are fed a whole block in batched calls; only the rule runs per
reading.  ``gaps=True`` feeds the monitor every reading (an error it cannot
score is a gap in its windows); otherwise readings without a finite error of
every version are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsforge.engine.group import GroupEngine
from tsforge.monitor.events import MonitorConfig, MonitorEvent
from tsforge.monitor.monitor import Monitor


@dataclass
class ShadowResult:
    """What the champion served, row for row, and the monitor's events.

    ``mean`` ``(n, H)``, ``half`` ``(n, L, H)``, ``version`` ``(n,)`` the version
    that served each row; ``events`` ``(row, sensor, event)`` in order.
    """

    mean: np.ndarray
    half: np.ndarray
    version: np.ndarray
    events: list[tuple[int, str, MonitorEvent]] = field(default_factory=list)


def previous_rows(idx: np.ndarray) -> np.ndarray:
    """For each row, the row before it of the same sensor (-1 for a sensor's first)."""
    n = idx.shape[0]
    order = np.argsort(idx, kind="stable")
    ranked = idx[order]
    same = np.zeros(n, dtype=bool)
    same[1:] = ranked[1:] == ranked[:-1]
    prev_sorted = np.where(same, np.r_[-1, order[:-1]], -1)
    out = np.empty(n, dtype=np.intp)
    out[order] = prev_sorted
    return out


class ShadowStage:
    """Versions of one model group and the monitor's rule (see the module docstring).

    Parameters
    ----------
    engines
        Version name -> its engine (champion, previous, challenger as present).
    champion, previous, challenger
        Roles of the versions for the :class:`~tsforge.monitor.Monitor`.
    config
        The rule's settings.
    on_switch
        Called with each rollback/promotion event as it happens (record it in a
        registry or a bundle); serving switches whatever it does.
    gaps
        Feed the monitor every reading (see the module docstring).
    """

    def __init__(self, engines: dict[str, GroupEngine], champion: str,
                 previous: str | None = None, challenger: str | None = None,
                 config: MonitorConfig | None = None, *,
                 on_switch: Callable[[MonitorEvent], Any] | None = None,
                 gaps: bool = False) -> None:
        self.engines = dict(engines)
        self.monitor = Monitor(champion, previous, challenger, config)
        self.on_switch = on_switch
        self.gaps = gaps

    @property
    def champion(self) -> str:
        return self.monitor.champion

    @property
    def active(self) -> GroupEngine:
        """The engine whose forecasts are served."""
        return self.engines[self.champion]

    def _before(self, eng: GroupEngine, idx: np.ndarray, level: int | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """One-step forecasts (and half-widths at ``level``) pending for sensors ``idx``."""
        fc = np.where(eng.has_fc[idx], eng.last_fc[idx, 0], np.nan)
        if level is None or eng.conformal is None:
            return fc, None
        return fc, eng.conformal.q[idx, 0, level]

    def serve(self, sensors: list[str], values: np.ndarray, *, drift: Any = None,
              timestamps: Any = None) -> ShadowResult:
        """Serve readings ``values`` ``(n, C)`` of ``sensors`` (rows in arrival order)."""
        n = values.shape[0]
        y = values[:, 0]
        level = self.monitor.config.coverage_level
        runs: dict[str, tuple[Any, np.ndarray, np.ndarray | None]] = {}
        prev = None
        for name, eng in self.engines.items():
            idx = eng.indices(sensors)
            if prev is None:
                prev = previous_rows(idx)
            lvl = (eng.levels.index(level) if level in eng.levels else None)
            fc0, q0 = self._before(eng, idx, lvl)
            res = eng.serve(idx, values)
            first = prev < 0
            fc = np.where(first, fc0, res.mean[prev, 0])
            q = None if q0 is None else np.where(first, q0, res.half[prev, lvl, 0])
            runs[name] = (res, fc - y, q)
        H, L = self.active.H, len(self.active.levels)
        out = ShadowResult(np.empty((n, H)), np.empty((n, L, H)), np.empty(n, dtype=object))
        switch_rows = [0]
        served = [self.champion]
        for r in range(n):
            if len(self.engines) < 2 and not self.gaps:
                break
            errs = {v: float(runs[v][1][r]) for v in self.engines}
            if not self.gaps and not (np.isfinite(y[r]) and all(map(np.isfinite,
                                                                  errs.values()))):
                continue
            q = runs[self.champion][2]
            covered = (None if q is None or not np.isfinite(q[r]) else
                       bool(abs(runs[self.champion][1][r]) <= q[r]))
            for event in self.monitor.observe(
                    errs, covered=covered, drift=False if drift is None else bool(drift[r]),
                    timestamp=None if timestamps is None else float(timestamps[r])):
                out.events.append((r, sensors[r], event))
                if not event.switches:
                    continue
                if self.on_switch is not None:
                    self.on_switch(event)
                if event.kind == "rollback":
                    self.engines.pop(event.from_version, None)
                switch_rows.append(r)
                served.append(self.champion)
        switch_rows.append(n)
        for a, b, name in zip(switch_rows[:-1], switch_rows[1:], served, strict=True):
            res = runs[name][0]
            out.mean[a:b], out.half[a:b], out.version[a:b] = res.mean[a:b], res.half[a:b], name
        return out
