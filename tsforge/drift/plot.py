"""Plot a series with its drift alarms and family switches marked (matplotlib, PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.drift.base import Alarm

#: Marker colour per detector.
COLORS = {"adwin": "tab:red", "page_hinkley": "tab:orange", "kswin": "tab:purple"}
#: Above this many alarms on one panel, alarm lines are drawn thin and light.
DENSE = 40


def mark_drift(ax: Any, x: np.ndarray, alarms: Sequence[tuple[int, str, str]],
               switches: Sequence[int] = (), offset: int = 0) -> None:
    """Draw alarms (a line across the panel and a triangle on its top edge, one colour per
    detector, dashed for input alarms) and switches (thick dashed black) on ``ax``;
    indices are shifted by ``offset`` into ``x``."""
    labelled: set[str] = set()
    shown = [(index + offset, detector, signal) for index, detector, signal in alarms
             if 0 <= index + offset < len(x)]
    counts: dict[str, int] = {}
    for _, detector, signal in shown:
        counts[f"{detector} ({signal})"] = counts.get(f"{detector} ({signal})", 0) + 1
    # a few alarms stand out; hundreds would hide the series, so they are drawn lighter
    lw, alpha = (1.6, 0.85) if len(shown) <= DENSE else (0.5, 0.35)
    for i, detector, signal in shown:
        label = f"{detector} ({signal})"
        color = COLORS.get(detector, "tab:gray")
        text = label if counts[label] == 1 else f"{label}: {counts[label]} alarms"
        ax.axvline(x[i], color=color, lw=lw, alpha=alpha, ls="--" if signal == "input" else "-",
                   label=None if label in labelled else text, zorder=3)
        ax.plot([x[i]], [1.0], marker="v", ms=9, color=color, clip_on=False, zorder=4,
                transform=ax.get_xaxis_transform())
        labelled.add(label)
    for n, index in enumerate(switches):
        i = index + offset
        if 0 <= i < len(x):
            ax.axvline(x[i], color="black", lw=2.4, ls="--",
                       label="family switch" if n == 0 else None, zorder=3)


def plot_drift(y: np.ndarray, alarms: Sequence[Alarm], path: str | Path, *,
               switches: Sequence[int] = (), time: np.ndarray | None = None,
               offset: int = 0, title: str = "Drift alarms", unit: str = "",
               name: str = "") -> Path:
    """Plot ``y`` with ``alarms`` (their ``index`` shifted by ``offset``) and switches.

    ``name`` and ``unit`` label the value axis (no unit shown when unknown).
    """
    from tsforge.report.figures import finish, new_figure, to_png, value_label

    y = np.asarray(y, dtype=np.float64)
    x = np.arange(len(y)) if time is None else np.asarray(time)
    fig, (ax,) = new_figure(1, 4.0)
    ax.plot(x, y, color="black", lw=0.8, label="series")
    if 0 < offset < len(x):
        ax.axvspan(x[offset], x[-1], color="tab:blue", alpha=0.08, label="watched window")
    mark_drift(ax, x, [(a.index, a.detector, a.signal) for a in alarms], switches, offset)
    ax.set_title(title, fontsize=11, pad=12)  # room for the alarm markers
    ax.set_ylabel(value_label(name or "reading", unit))
    ax.set_xlim(x[0], x[-1])
    finish([ax], x)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_png(fig))
    return path
