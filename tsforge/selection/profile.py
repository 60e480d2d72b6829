"""The regime profile of one sensor: what the selection policy decides from.

:func:`profile_series` measures, on the warm-up window and after the transform
chain (what the model will actually see):

- stationarity: ADF and KPSS p-values and their joint decision
  (:func:`tsforge.preprocess.stationarity.unit_root_tests`);
- seasonality: season length and STL strength from :func:`tsforge.preprocess.analyze`,
  and the autocorrelation left at that lag after the chain;
- dependence length: the partial-autocorrelation order, chosen by BIC from the PACF
  (Durbin-Levinson: the innovation variance of AR(k) is the variance times
  ``prod(1 - pacf_j**2)`` over j <= k, so every order is scored at once; BIC rather
  than "last significant lag" because an over-differenced series has a PACF that
  decays like 1/k and would look endlessly long), and the lag at which the ACF decays
  below ``3 / sqrt(n)``;
- stability: the spectral radius of an AR(p) model fitted by least squares
  (companion-matrix eigenvalues; >= 1 means explosive or a unit root left);
- drift rate: river's detectors run over the inputs and over the AR model's one-step
  residuals; alarms per 1,000 readings (:mod:`tsforge.drift`).

Each step leaves a plain-English line in :attr:`RegimeProfile.reasons`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsforge.drift import Alarm, scan
from tsforge.errors import DataError
from tsforge.optional import require
from tsforge.preprocess.transforms import TransformChain

#: PACF/ACF significance bar, in units of 1/sqrt(n).
SIGNIFICANCE = 3.0
#: Fewest readings profiled with tests; shorter histories get a minimal profile.
MIN_PROFILE = 60


@dataclass
class RegimeProfile:
    """What :func:`profile_series` measured about one sensor.

    Attributes
    ----------
    sensor, n
        Sensor name and number of readings profiled (the warm-up window).
    transforms, chain
        Transform chain applied before profiling (spec and one-line description).
    adf_pvalue, kpss_pvalue, stationarity
        Tests after the chain and their decision (``"stationary"``, ...).
    period, seasonal_strength, season_acf
        Season length, STL strength on the raw window and ACF at ``period`` after the chain.
    pacf_order, acf_decay, dependence
        Partial-autocorrelation order, lag where the ACF falls below the bar, and the
        dependence length the policy uses (the PACF order).
    ar_order, spectral_radius
        Order of the fitted AR model and the largest modulus of its companion eigenvalues.
    drift_rate, input_drift_rate
        Alarms per 1,000 readings on the AR residuals and on the inputs (warm-up).
    live_drift_rate
        Residual alarms per 1,000 streamed readings, filled in while streaming.
    alarms
        The warm-up alarms (index relative to the start of the window).
    reasons
        One line per measurement.
    """

    sensor: str
    n: int
    transforms: list[dict[str, Any]]
    chain: str
    adf_pvalue: float = math.nan
    kpss_pvalue: float = math.nan
    stationarity: str = "unknown"
    period: int | None = None
    seasonal_strength: float | None = None
    season_acf: float | None = None
    pacf_order: int = 0
    acf_decay: int = 0
    dependence: int = 0
    ar_order: int = 0
    spectral_radius: float = math.nan
    drift_rate: float = 0.0
    input_drift_rate: float = 0.0
    live_drift_rate: float | None = None
    alarms: list[Alarm] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def stationary(self) -> bool:
        return self.stationarity == "stationary"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (NaN made None)."""
        text = json.dumps(dataclasses.asdict(self), default=float)
        return json.loads(text, parse_constant=lambda _: None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegimeProfile:
        """Inverse of :meth:`to_dict` (None back to NaN for the float figures)."""
        data = dict(data)
        data["alarms"] = [Alarm.from_dict(a) for a in data.get("alarms", [])]
        for key in ("adf_pvalue", "kpss_pvalue", "spectral_radius"):
            if data.get(key) is None:
                data[key] = math.nan
        return cls(**data)

    def summary(self) -> str:
        """A short text block for logs and the CLI."""
        season = "none" if self.period is None else (
            f"period {self.period}, F_S {self.seasonal_strength or 0:.2f}, "
            f"ACF after chain {self.season_acf if self.season_acf is not None else math.nan:.2f}")
        live = "" if self.live_drift_rate is None else f", live {self.live_drift_rate:.1f}"
        return "\n".join([
            f"{self.sensor}: regime profile of {self.n} readings after {self.chain}",
            f"  stationarity: ADF p={self.adf_pvalue:.3f}, KPSS p={self.kpss_pvalue:.3f} -> "
            f"{self.stationarity}",
            f"  season: {season}",
            f"  dependence: PACF order {self.pacf_order}, ACF decays by lag {self.acf_decay}",
            f"  stability: AR({self.ar_order}) spectral radius {self.spectral_radius:.3f}",
            f"  drift: {self.drift_rate:.1f} residual / {self.input_drift_rate:.1f} input alarms "
            f"per 1k readings (warm-up{live})",
        ])


def profile_series(
    y: Any,
    *,
    sensor: str = "series",
    transforms: str | list[dict[str, Any]] | None = "auto",
    period: int | None = None,
    detectors: Any = None,
    max_points: int = 2000,
    max_lag: int = 200,
) -> RegimeProfile:
    """Measure the regime of one series on its last ``max_points`` readings.

    Parameters
    ----------
    y
        Finite 1-D history in engineering units (or already transformed, see
        ``transforms``).
    sensor
        Name carried into the profile and the alarms.
    transforms
        ``"auto"``: the chain :func:`tsforge.preprocess.analyze` recommends; a chain
        spec; or None when ``y`` is already transformed (as inside a pipeline).
    period
        Known season length (``"auto"`` detects it; with None transforms, the one
        the pipeline found).
    detectors
        Drift detector specs (see :class:`tsforge.drift.DriftMonitor`).
    max_points, max_lag
        Warm-up window length and the longest lag examined.

    Examples
    --------
    >>> from tsforge.selection.synthetic import ar_short
    >>> p = profile_series(ar_short(600), sensor="ar2", detectors="adwin")
    >>> p.stationarity, p.pacf_order, round(p.spectral_radius, 2)
    ('stationary', 2, 0.53)
    """
    y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
    if y.ndim != 1:
        raise DataError(f"profile of '{sensor}' needs a 1-D series, got shape {y.shape}")
    reasons: list[str] = []
    finite = np.isfinite(y)
    if transforms is None and not finite.all():
        # a transformed history starts with the chain's warm-up (NaN after differencing)
        reasons.append(f"{int((~finite).sum())} non-finite transformed values left out")
        y = y[finite]
    elif not finite.all():
        raise DataError(f"profile of '{sensor}' needs a finite series; repair NaN first "
                        "with tsforge.data.prepare")
    w = y[-max_points:]
    seasonal_strength = None
    if transforms == "auto":
        from tsforge.preprocess import analyze

        if w.size < 20 or np.ptp(w) == 0.0:
            chain_spec: list[dict[str, Any]] = [{"kind": "scale"}] if np.ptp(w) else []
        else:
            report = analyze(w, period=period, name=sensor)
            chain_spec, period = report.transforms, report.period
            seasonal_strength = report.seasonal_strength
    else:
        chain_spec = list(transforms or [])
    chain = TransformChain.from_spec(chain_spec)
    z = chain.fit(w).transform(w) if chain_spec else w.copy()
    z = z[np.isfinite(z)]
    described = chain.describe() if chain_spec else "the pipeline's transform chain"
    prof = RegimeProfile(sensor=sensor, n=int(z.size), transforms=chain_spec, chain=described,
                         period=period, seasonal_strength=seasonal_strength, reasons=reasons)
    if z.size < MIN_PROFILE or np.ptp(z) == 0.0:
        reasons.append(f"only {z.size} usable readings (needs {MIN_PROFILE}): no tests run")
        return prof
    _stationarity(prof, z)
    _dependence(prof, z, max_lag)
    resid = _stability(prof, z)
    _drift(prof, z, resid, detectors)
    return prof


def _stationarity(prof: RegimeProfile, z: np.ndarray) -> None:
    from tsforge.preprocess.stationarity import unit_root_tests

    tests = unit_root_tests(z)
    prof.adf_pvalue, prof.kpss_pvalue = tests.adf_pvalue, tests.kpss_pvalue
    prof.stationarity = tests.decision
    prof.reasons.append(f"after {prof.chain}: ADF p={tests.adf_pvalue:.3f}, KPSS "
                        f"p={tests.kpss_pvalue:.3f}: {tests.decision}")


def _dependence(prof: RegimeProfile, z: np.ndarray, max_lag: int) -> None:
    st = require("statsmodels.tsa.stattools", "regime profile (ACF/PACF)")
    nlags = int(min(max_lag, z.size // 4))
    bar = SIGNIFICANCE / math.sqrt(z.size)
    acf = np.asarray(st.acf(z, nlags=nlags, fft=True))
    pacf = np.asarray(st.pacf(z, nlags=nlags, method="ywm"))
    k = np.arange(nlags + 1)
    innovation = np.cumprod(np.r_[1.0, 1.0 - np.clip(pacf[1:], -0.999, 0.999) ** 2])
    bic = z.size * np.log(innovation) + k * math.log(z.size)
    prof.pacf_order = int(np.argmin(bic))
    below = np.flatnonzero(np.abs(acf[1:]) < bar)
    prof.acf_decay = int(below[0]) if below.size else nlags
    prof.dependence = prof.pacf_order
    if prof.period is not None and prof.period <= nlags:
        prof.season_acf = float(acf[prof.period])
    prof.reasons.append(
        f"dependence: BIC on the PACF picks order {prof.pacf_order} (of {nlags} lags); the ACF "
        f"falls below {SIGNIFICANCE:g}/sqrt(n)={bar:.3f} at lag {prof.acf_decay}")


def _stability(prof: RegimeProfile, z: np.ndarray) -> np.ndarray:
    """Fit AR(p) by least squares; spectral radius of its companion matrix; residuals."""
    p = int(max(1, min(prof.pacf_order, 100, z.size // 10)))
    lags = np.column_stack([z[p - k - 1: z.size - k - 1] for k in range(p)])  # (T-p, p)
    design = np.column_stack([lags, np.ones(len(lags))])
    coef, *_ = np.linalg.lstsq(design, z[p:], rcond=None)
    companion = np.zeros((p, p))
    companion[0] = coef[:p]
    companion[1:, :-1] = np.eye(p - 1)
    prof.ar_order = p
    prof.spectral_radius = float(np.max(np.abs(np.linalg.eigvals(companion))))
    prof.reasons.append(f"stability: AR({p}) fitted by least squares has spectral radius "
                        f"{prof.spectral_radius:.3f}"
                        + (" (>= 1: not stable)" if prof.spectral_radius >= 1 else ""))
    return np.concatenate([np.full(p, np.nan), z[p:] - design @ coef])


def _drift(prof: RegimeProfile, z: np.ndarray, resid: np.ndarray,
           detectors: Any) -> None:
    mon = scan(z, prof.sensor, detectors, residuals=resid)
    prof.alarms = list(mon.alarms)
    prof.drift_rate = mon.rate_per_1k("residual")
    prof.input_drift_rate = mon.rate_per_1k("input")
    prof.reasons.append(
        f"drift: {mon.count('residual')} alarms on the AR residuals and {mon.count('input')} "
        f"on the inputs in {z.size} readings ({prof.drift_rate:.1f} and "
        f"{prof.input_drift_rate:.1f} per 1k)")
