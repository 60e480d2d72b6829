"""Plot a series with its drift alarms and family switches marked (matplotlib, PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.drift.base import Alarm

#: Marker colour per detector.
COLORS = {"adwin": "tab:red", "page_hinkley": "tab:orange", "kswin": "tab:purple"}


def mark_drift(ax: Any, x: np.ndarray, alarms: Sequence[tuple[int, str, str]],
               switches: Sequence[int] = (), offset: int = 0) -> None:
    """Draw alarms (thin lines, one colour per detector; dotted for input alarms) and
    switches (thick dashed black) on ``ax``; indices are shifted by ``offset`` into ``x``."""
    labelled: set[str] = set()
    for index, detector, signal in alarms:
        i = index + offset
        if not 0 <= i < len(x):
            continue
        label = f"{detector} ({signal})"
        ax.axvline(x[i], color=COLORS.get(detector, "tab:gray"), lw=0.8, alpha=0.7,
                   ls=":" if signal == "input" else "-",
                   label=None if label in labelled else label)
        labelled.add(label)
    for n, index in enumerate(switches):
        i = index + offset
        if 0 <= i < len(x):
            ax.axvline(x[i], color="black", lw=2.0, ls="--",
                       label="family switch" if n == 0 else None)


def plot_drift(y: np.ndarray, alarms: Sequence[Alarm], path: str | Path, *,
               switches: Sequence[int] = (), time: np.ndarray | None = None,
               offset: int = 0, title: str = "Drift alarms") -> Path:
    """Plot ``y`` with ``alarms`` (their ``index`` shifted by ``offset``) and switches."""
    from tsforge.plotting import _pyplot

    plt = _pyplot()
    y = np.asarray(y, dtype=np.float64)
    x = np.arange(len(y)) if time is None else np.asarray(time)
    fig, ax = plt.subplots(figsize=(11, 3.5), constrained_layout=True)
    ax.plot(x, y, color="black", lw=0.8, label="series")
    if 0 < offset < len(x):
        ax.axvspan(x[offset], x[-1], color="tab:blue", alpha=0.08, label="watched window")
    mark_drift(ax, x, [(a.index, a.detector, a.signal) for a in alarms], switches, offset)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7)
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
