"""Validation and repair: ordering, duplicates, non-finite readings, regular grid.

Every repair is counted in a :class:`ValidationReport`; nothing is dropped silently.
Order of operations: out-of-order rows, duplicate timestamps, non-finite values,
then resampling to a regular grid (readings between grid points are aligned to
the nearest earlier grid point; empty slots are gaps, filled per policy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tsforge.data.csv import parse_freq
from tsforge.data.frame import SensorFrame
from tsforge.errors import ConfigError, DataError

_CHOICES = {
    "out_of_order": ("sort", "drop", "error"),
    "duplicates": ("mean", "first", "last", "error"),
    "nonfinite": ("interpolate", "hold", "drop", "error"),
    "gap_fill": ("interpolate", "hold", "nan"),
}


@dataclass(frozen=True)
class DataPolicy:
    """How :func:`prepare` repairs data (each choice is counted in the report).

    Attributes
    ----------
    out_of_order
        A row earlier than the row before it: ``sort`` the rows, ``drop`` it, or ``error``.
    duplicates
        Rows with the same timestamp: ``mean`` of them, ``first``, ``last``, or ``error``.
    nonfinite
        NaN/inf readings: ``interpolate`` linearly in time, ``hold`` the last value,
        ``drop`` rows with any, or ``error``.
    freq
        ``"auto"`` (median positive step), None (keep timestamps), or e.g. ``"5min"``.
    gap_fill
        Empty grid slots: ``interpolate``, ``hold`` or leave ``nan``.
    max_gap
        Gaps longer than this many steps are reported as long gaps.
    """

    out_of_order: str = "sort"
    duplicates: str = "mean"
    nonfinite: str = "interpolate"
    freq: str | None = "auto"
    gap_fill: str = "interpolate"
    max_gap: int | None = None

    def __post_init__(self) -> None:
        for key, valid in _CHOICES.items():
            if getattr(self, key) not in valid:
                raise ConfigError(
                    f"data policy {key}='{getattr(self, key)}' is not valid; "
                    f"choose one of: {', '.join(valid)}"
                )


@dataclass
class ValidationReport:
    """What :func:`prepare` found and did."""

    source: str
    n_rows_in: int
    n_rows_out: int
    sensors: list[str]
    freq: str | None
    nan: dict[str, int]
    inf: dict[str, int]
    duplicates: int
    out_of_order: int
    gaps: int
    missing_steps: int
    long_gaps: int
    filled: dict[str, int]
    dropped_rows: int
    actions: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing had to be repaired."""
        return not self.actions

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}

    def summary(self) -> str:
        lines = [
            f"validation of {self.source}",
            f"  rows in {self.n_rows_in}, rows out {self.n_rows_out}, "
            f"sensors {len(self.sensors)}, step {self.freq or 'irregular'}",
            f"  NaN {sum(self.nan.values())}, inf {sum(self.inf.values())}, duplicates "
            f"{self.duplicates}, out of order {self.out_of_order}, gaps {self.gaps} "
            f"({self.missing_steps} missing steps, {self.long_gaps} long)",
        ]
        lines += [f"  - {a}" for a in self.actions] or ["  - nothing to repair"]
        return "\n".join(lines)


def _format_step(step: np.timedelta64) -> str:
    ns = int(step.astype("timedelta64[ns]").astype(np.int64))
    for unit, size in (("d", 86400 * 10**9), ("h", 3600 * 10**9), ("min", 60 * 10**9),
                       ("s", 10**9), ("ms", 10**6)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def _fill(values: np.ndarray, t: np.ndarray, how: str) -> tuple[np.ndarray, int]:
    """Fill NaN in one column by linear interpolation in time or holding; count filled."""
    bad = np.isnan(values)
    n_bad = int(bad.sum())
    if n_bad == 0 or how == "nan":
        return values, 0
    good = np.flatnonzero(~bad)
    if good.size == 0:
        return values, 0
    out = values.copy()
    if how == "interpolate":
        out[bad] = np.interp(t[bad], t[good], values[good])
    else:  # hold the last value; leading NaN take the first valid value
        idx = np.where(~bad, np.arange(values.size), 0)
        np.maximum.accumulate(idx, out=idx)
        out = values[idx]
        out[: good[0]] = values[good[0]]
    return out, n_bad


def _carry_labels(frame: SensorFrame, time: np.ndarray) -> dict[str, np.ndarray]:
    """Label columns on the repaired timestamps: each row takes the largest label of the
    readings at or before it since the previous row (an event is never averaged away)."""
    if not frame.labels:
        return {}
    order = np.argsort(frame.time.astype("datetime64[ns]"), kind="stable")
    t_in = frame.time.astype("datetime64[ns]")[order].astype(np.int64)
    slot = np.clip(np.searchsorted(time.astype(np.int64), t_in, side="right") - 1, 0,
                   len(time) - 1)
    out = {}
    for name, lab in frame.labels.items():
        col = np.zeros(len(time))
        np.maximum.at(col, slot, np.nan_to_num(np.asarray(lab, dtype=np.float64)[order]))
        out[name] = col
    return out


def prepare(frame: SensorFrame, policy: DataPolicy | None = None) -> tuple[SensorFrame,
                                                                          ValidationReport]:
    """Repair and regularise ``frame`` per ``policy``; return it with its report."""
    policy = policy or DataPolicy()
    src = frame.source
    time = frame.time.astype("datetime64[ns]")
    values = frame.values.astype(np.float64, copy=True)
    n_in = len(time)
    if n_in == 0:
        raise DataError(f"{src}: no readings")
    actions: list[str] = []
    if frame.merged_duplicates:
        actions.append(f"averaged {frame.merged_duplicates} repeated (timestamp, sensor) "
                       "readings of the long layout")
    dropped = 0
    # Non-finite readings are counted as they arrive, before any repair.
    nan = {s: int(np.isnan(values[:, j]).sum()) for j, s in enumerate(frame.sensors)}
    inf = {s: int(np.isinf(values[:, j]).sum()) for j, s in enumerate(frame.sensors)}
    values[~np.isfinite(values)] = np.nan

    # 1. out-of-order rows
    ti = time.astype(np.int64)
    back = np.flatnonzero(np.diff(ti) < 0) + 1
    n_ooo = int(back.size)
    if n_ooo:
        if policy.out_of_order == "error":
            raise DataError(f"{src}: {n_ooo} timestamp(s) go backwards, first at data row "
                            f"{back[0] + 1} ({time[back[0]]}); set out_of_order='sort' or 'drop'")
        if policy.out_of_order == "sort":
            order = np.argsort(ti, kind="stable")
            time, values = time[order], values[order]
            actions.append(f"sorted {n_ooo} out-of-order row(s) into time order")
        else:
            keep = ti >= np.maximum.accumulate(ti)
            dropped += int((~keep).sum())
            time, values = time[keep], values[keep]
            actions.append(f"dropped {int((~keep).sum())} row(s) earlier than the row before")

    # 2. duplicate timestamps
    uniq, _start, counts = np.unique(time, return_index=True, return_counts=True)
    n_dup = int((counts - 1).sum())
    if n_dup:
        if policy.duplicates == "error":
            raise DataError(f"{src}: {n_dup} duplicate timestamp(s), e.g. {uniq[counts > 1][0]}; "
                            "set duplicates='mean', 'first' or 'last'")
        order = np.argsort(time, kind="stable")
        st, sv = time[order], values[order]
        s_uniq, s_start, s_counts = np.unique(st, return_index=True, return_counts=True)
        if policy.duplicates == "mean":
            with np.errstate(invalid="ignore"):
                sums = np.add.reduceat(np.nan_to_num(sv, nan=0.0), s_start, axis=0)
                cnt = np.add.reduceat(np.isfinite(sv).astype(float), s_start, axis=0)
                merged = np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan)
        elif policy.duplicates == "first":
            merged = sv[s_start]
        else:
            merged = sv[s_start + s_counts - 1]
        time, values = s_uniq, merged
        actions.append(f"merged {n_dup} duplicate-timestamp row(s) ({policy.duplicates})")

    # 3. non-finite readings
    filled = {s: 0 for s in frame.sensors}
    n_bad = int(np.isnan(values).sum())  # left after duplicates were merged
    if n_bad:
        if policy.nonfinite == "error":
            raise DataError(f"{src}: NaN/inf reading(s) (NaN {nan}, inf {inf}); "
                            "set nonfinite='interpolate', 'hold' or 'drop'")
        if policy.nonfinite == "drop":
            keep = np.all(np.isfinite(values), axis=1)
            dropped += int((~keep).sum())
            time, values = time[keep], values[keep]
            actions.append(f"dropped {int((~keep).sum())} row(s) with NaN/inf readings")
        else:
            t = time.astype(np.int64).astype(np.float64)
            for j, s in enumerate(frame.sensors):
                values[:, j], filled[s] = _fill(values[:, j], t, policy.nonfinite)
            n_filled = sum(filled.values())
            if n_filled:
                actions.append(f"filled {n_filled} NaN/inf reading(s) ({policy.nonfinite})")
            dead = [s for j, s in enumerate(frame.sensors) if not np.isfinite(values[:, j]).any()]
            if dead:
                actions.append(f"sensor(s) {dead} hold no finite reading at all: left empty "
                               "(nothing to fill from)")

    # 4. regular grid
    gaps = missing = long_gaps = 0
    step = None
    if policy.freq is not None and len(time) > 1:
        steps = np.diff(time.astype(np.int64))
        if policy.freq == "auto":
            step_ns = int(np.median(steps[steps > 0])) if np.any(steps > 0) else 0
        else:
            step_ns = int(parse_freq(policy.freq).astype(np.int64))
        if step_ns > 0:
            step = np.timedelta64(step_ns, "ns")
            t0 = time[0].astype(np.int64)
            slot = (time.astype(np.int64) - t0) // step_ns
            n_slots = int(slot[-1]) + 1
            grid = np.full((n_slots, values.shape[1]), np.nan)
            occupied = np.zeros(n_slots, dtype=bool)
            aligned = int(np.sum((time.astype(np.int64) - t0) % step_ns != 0))
            collided = len(slot) - np.unique(slot).size
            # later readings in a slot win; collisions are counted
            grid[slot] = values
            occupied[slot] = True
            if aligned:
                actions.append(f"aligned {aligned} off-grid reading(s) to the earlier grid point")
            if collided:
                actions.append(f"kept the last of {collided + np.unique(slot).size} readings "
                               f"sharing {np.unique(slot).size} grid slots ({collided} replaced)")
            empty = ~occupied
            missing = int(empty.sum())
            if missing:
                edges = np.diff(np.concatenate(([0], empty.astype(np.int8), [0])))
                lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
                gaps = int(lengths.size)
                long_gaps = int((lengths > policy.max_gap).sum()) if policy.max_gap else 0
                tg = np.arange(n_slots, dtype=np.float64)
                for j, s in enumerate(frame.sensors):
                    grid[:, j], n = _fill(grid[:, j], tg, policy.gap_fill)
                    filled[s] += n
                actions.append(f"filled {missing} missing step(s) in {gaps} gap(s) "
                               f"({policy.gap_fill})"
                               + (f"; {long_gaps} gap(s) longer than {policy.max_gap} steps"
                                  if long_gaps else ""))
            time = (t0 + np.arange(n_slots, dtype=np.int64) * step_ns).astype("datetime64[ns]")
            values = grid

    out = SensorFrame(time=time, values=values, sensors=list(frame.sensors), source=src,
                      freq=step, units=dict(frame.units), skipped=list(frame.skipped),
                      labels=_carry_labels(frame, time))
    report = ValidationReport(
        source=src, n_rows_in=n_in, n_rows_out=len(time), sensors=list(frame.sensors),
        freq=_format_step(step) if step is not None else None, nan=nan, inf=inf,
        duplicates=n_dup + frame.merged_duplicates, out_of_order=n_ooo, gaps=gaps,
        missing_steps=missing, long_gaps=long_gaps, filled=filled, dropped_rows=dropped,
        actions=actions,
    )
    return out, report
