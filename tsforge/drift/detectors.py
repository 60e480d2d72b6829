"""river's ADWIN, Page-Hinkley and KSWIN behind the :class:`~tsforge.drift.base.DriftDetector`
protocol.

The wrappers build the river object lazily (river loads on the first detector
made, not on ``import tsforge``), forward ``update`` and ``drift_detected``, and
read the statistic that drove the decision:

- ADWIN: the mean of the adaptive window after the cut (and its width);
- Page-Hinkley: the larger of the two cumulative-sum statistics (compared with
  ``threshold``);
- KSWIN: the p-value of the Kolmogorov-Smirnov test (compared with ``alpha``).

Configuration is a spec ``{"kind": "adwin", "delta": 0.002}``; the defaults in
:data:`DEFAULTS` were chosen on the synthetic regimes of
:mod:`tsforge.selection.synthetic` so that white noise raises no alarm in
10,000 readings (see ``docs/selection.md``).
"""

from __future__ import annotations

import math
from typing import Any

from tsforge.errors import ConfigError
from tsforge.optional import require

#: Detector kind -> (river class name, default parameters).
DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "adwin": ("ADWIN", {"delta": 0.002}),
    "page_hinkley": ("PageHinkley", {"min_instances": 30, "delta": 0.005, "threshold": 50.0}),
    "kswin": ("KSWIN", {"alpha": 0.0001, "window_size": 200, "stat_size": 50, "seed": 0}),
}

DetectorSpec = str | dict[str, Any]


class RiverDetector:
    """One river change detector, with its statistic.

    Parameters
    ----------
    kind
        ``"adwin"``, ``"page_hinkley"`` or ``"kswin"``.
    **params
        river parameters, overriding :data:`DEFAULTS` (e.g. ``delta`` for ADWIN,
        ``threshold`` for Page-Hinkley, ``alpha`` for KSWIN).

    Examples
    --------
    >>> det = RiverDetector("page_hinkley")
    >>> fired = []
    >>> for i in range(400):
    ...     det.update(0.0 if i < 200 else 3.0)
    ...     if det.drift_detected:
    ...         fired.append(i)
    >>> fired
    [217]
    """

    def __init__(self, kind: str, **params: Any) -> None:
        if kind not in DEFAULTS:
            raise ConfigError(
                f"unknown drift detector '{kind}'; valid kinds: {', '.join(DEFAULTS)}")
        self.kind = kind
        self.params = {**DEFAULTS[kind][1], **params}
        self._river: Any = None
        self.reset()

    def reset(self) -> None:
        drift = require("river.drift", "drift detection")
        cls = getattr(drift, DEFAULTS[self.kind][0])
        try:
            self._river = cls(**self.params)
        except TypeError as exc:
            raise ConfigError(
                f"bad parameters {self.params} for drift detector '{self.kind}' ({exc}); see "
                f"river.drift.{DEFAULTS[self.kind][0]} for the valid ones") from None

    def update(self, value: float) -> None:
        self._river.update(float(value))

    @property
    def drift_detected(self) -> bool:
        return bool(self._river.drift_detected)

    @property
    def river(self) -> Any:
        """The river detector itself (until :meth:`reset`): the serving engine's drift
        stage feeds it directly, a Python call per value less than :meth:`update`."""
        return self._river

    def statistic(self) -> tuple[str, float]:
        r = self._river
        if self.kind == "adwin":
            return "window mean", float(r.estimation)
        if self.kind == "page_hinkley":
            up = getattr(r, "_sum_increase", math.nan) - getattr(r, "_min_increase", math.nan)
            down = getattr(r, "_max_decrease", math.nan) - getattr(r, "_sum_decrease", math.nan)
            return "PH statistic", float(max(up, down))
        return "KS p-value", float(getattr(r, "p_value", math.nan))

    def extra(self) -> dict[str, float]:
        """Secondary figures for the alarm (ADWIN's window width)."""
        if self.kind == "adwin":
            return {"width": float(self._river.width)}
        return {}

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params}

    def __repr__(self) -> str:
        return f"RiverDetector({self.to_spec()})"


def make_detector(spec: DetectorSpec) -> RiverDetector:
    """Build a detector from ``"adwin"`` or ``{"kind": "adwin", "delta": 0.01}``."""
    if isinstance(spec, str):
        return RiverDetector(spec)
    if not isinstance(spec, dict) or "kind" not in spec:
        raise ConfigError(
            f"drift detector spec {spec!r} must be a kind name or a dict with a 'kind' key, "
            f"e.g. {{'kind': 'adwin', 'delta': 0.002}}; kinds: {', '.join(DEFAULTS)}")
    params = {k: v for k, v in spec.items() if k != "kind"}
    return RiverDetector(str(spec["kind"]), **params)


def parse_detectors(text: str | list[DetectorSpec] | None) -> list[DetectorSpec]:
    """``"adwin,kswin"`` or a list of specs -> list of specs (None: all three defaults)."""
    if text is None:
        return list(DEFAULTS)
    if isinstance(text, str):
        specs: list[DetectorSpec] = [t.strip() for t in text.split(",") if t.strip()]
    else:
        specs = list(text)
    for spec in specs:
        make_detector(spec) if not isinstance(spec, str) else _check_kind(spec)
    return specs


def _check_kind(kind: str) -> None:
    if kind not in DEFAULTS:
        raise ConfigError(f"unknown drift detector '{kind}'; valid kinds: {', '.join(DEFAULTS)}")
