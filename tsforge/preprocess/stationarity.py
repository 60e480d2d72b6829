"""Stationarity analysis of a warm-up window and the transform chain it calls for.

:func:`analyze` settles, for one series, what a forecaster needs to know before it
learns (DESIGN.md §4): is the series stationary (ADF and KPSS together, since each
alone is weak: :func:`decide`), is there a season and how strong are trend and season
(:mod:`tsforge.preprocess.seasonality`), and which invertible chain makes it
stationary.  The chain is then applied and re-tested (``after``), so the
recommendation is checked, not assumed.  Every step leaves a plain-English line in
:attr:`StationarityReport.reasons`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.optional import require
from tsforge.preprocess import seasonality
from tsforge.preprocess.transforms import TransformChain

DECISIONS = ("stationary", "trend-stationary", "difference-stationary", "non-stationary")
#: Deseasonalize when STL's seasonal strength reaches this.  Below it the season
#: explains less than ~30 % of the seasonal-plus-remainder variance: subtracting a
#: fixed profile then removes little and its estimation noise is added to every reading.
SEASONAL_STRENGTH_MIN = 0.3
#: ... and when the mean per-phase profile (what deseasonalize subtracts) carries this
#: share of STL's seasonal variance: a cycle whose phase wanders leaves about 1/cycles
#: (AR(2) loop: 0.02-0.05), repeating seasons leave 0.16 (NAB ambient temperature) to 0.98.
PROFILE_SHARE_MIN = 0.1
#: Fewest readings ADF and KPSS are run on; below this their p-values mean little.
MIN_POINTS = 20
_KPSS_BOUNDS = (0.01, 0.10)  # statsmodels' KPSS table: p-values are clipped to these


@dataclass
class StationarityReport:
    """What :func:`analyze` found about one series and the chain it recommends.

    Attributes
    ----------
    name, n
        Series name and its total length.
    adf_stat, adf_pvalue, kpss_stat, kpss_pvalue
        ADF (null: unit root) and KPSS (null: level-stationary) on the analysis window.
        KPSS p-values are clipped by statsmodels' table to ``[0.01, 0.10]``.
    decision
        One of :data:`DECISIONS`, see :func:`decide`.
    period, season_acf
        Detected (or given) season length and the autocorrelation at that lag.
    seasonal_strength, trend_strength
        Hyndman & Athanasopoulos ``F_S`` (None without season) and ``F_T``, in [0, 1].
    transforms
        Recommended chain spec for :meth:`TransformChain.from_spec`.
    after
        ADF/KPSS p-values and decision after the chain, or None when not computed.
    reasons
        One plain-English line per step of the analysis.
    window
        Number of most recent points the tests ran on (``min(n, max_points)``).
    kpss_trend_pvalue
        KPSS with a linear trend (null: trend-stationary); separates trend- from
        non-stationary and chooses how the series is detrended for the ACF.
    alpha
        Significance level the decisions were taken at.
    """

    name: str
    n: int
    adf_stat: float
    adf_pvalue: float
    kpss_stat: float
    kpss_pvalue: float
    decision: str
    period: int | None
    season_acf: float | None
    seasonal_strength: float | None
    trend_strength: float | None
    transforms: list[dict[str, Any]]
    after: dict[str, Any] | None
    reasons: list[str] = field(default_factory=list)
    window: int = 0
    kpss_trend_pvalue: float | None = None
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (numpy scalars made Python, NaN made None)."""
        text = json.dumps(dataclasses.asdict(self), default=lambda o: o.item())  # numpy scalars
        return json.loads(text, parse_constant=lambda _: None)  # NaN, inf -> None

    def summary(self) -> str:
        """A short text block for logs and notebooks."""
        window = f" (tests on the last {self.window})" if self.window < self.n else ""
        season = "none"
        if self.period is not None:
            season = f"period {self.period} (acf {self.season_acf or 0:.2f}, F_S "
            season += f"{self.seasonal_strength or 0:.2f})"
        lines = [
            f"{self.name}: {self.n} points{window}",
            f"  ADF  stat {self.adf_stat:.3f}  {_fmt_p(self.adf_pvalue)}",
            f"  KPSS stat {self.kpss_stat:.3f}  {_fmt_p(self.kpss_pvalue, _KPSS_BOUNDS)}",
            f"  decision: {self.decision}",
            f"  season: {season}; trend strength F_T {self.trend_strength or 0:.2f}",
            "  chain: " + " -> ".join(_describe_step(s) for s in self.transforms),
        ]
        if self.after is not None:
            lines.append(
                f"  after: ADF {_fmt_p(self.after['adf_pvalue'])}, KPSS "
                f"{_fmt_p(self.after['kpss_pvalue'], _KPSS_BOUNDS)} -> {self.after['decision']}"
            )
        lines.append("  why:")
        lines.extend(f"    - {r}" for r in self.reasons)
        return "\n".join(lines)


@dataclass(frozen=True)
class UnitRootResult:
    """ADF and KPSS (level and trend) on one series, with the combined decision."""

    adf_stat: float
    adf_pvalue: float
    kpss_stat: float
    kpss_pvalue: float
    kpss_trend_pvalue: float
    decision: str
    reason: str


def decide(adf_p: float, kpss_p: float, kpss_trend_p: float, alpha: float) -> tuple[str, str]:
    """Combine ADF and KPSS into one of :data:`DECISIONS` and say why.

    A test "rejects" when its p-value is below ``alpha``.

    - ADF rejects, KPSS does not: ``"stationary"``.
    - ADF does not, KPSS rejects: ``"difference-stationary"`` (unit root).
    - Neither rejects: inconclusive (too little data to tell), treated as
      ``"difference-stationary"``: differencing a stationary series costs little (the
      model sees a moving-average term), while an undetected unit root makes every
      forecast drift.
    - Both reject: the series has no unit root but is not level-stationary.  KPSS with
      a linear trend decides: not rejected gives ``"trend-stationary"``, rejected gives
      ``"non-stationary"`` (level shifts, changing variance or long memory).

    The recommended chain differences in all but the first case: the chain offers no
    detrend step, and differencing is the invertible way to remove a trend that also
    survives trend changes online.

    Examples
    --------
    >>> decide(0.41, 0.01, 0.01, 0.05)[0]
    'difference-stationary'
    """
    adf, kps = f"ADF {_fmt_p(adf_p)}", f"KPSS {_fmt_p(kpss_p, _KPSS_BOUNDS)}"
    kpt = f"KPSS-trend {_fmt_p(kpss_trend_p, _KPSS_BOUNDS)}"
    if adf_p < alpha and kpss_p >= alpha:
        return "stationary", f"{adf} (unit root rejected) and {kps} (stationarity kept): stationary"
    if adf_p >= alpha:
        return "difference-stationary", (
            f"{adf} (unit root not rejected) and {kps} (stationarity rejected): difference once"
            if kpss_p < alpha
            else f"{adf} and {kps}: neither test rejects, inconclusive; treated as difference-"
            "stationary (differencing a stationary series is cheap, missing a unit root is "
            "not): difference once"
        )
    if kpss_trend_p >= alpha:
        return "trend-stationary", (
            f"{adf} (unit root rejected) but {kps} (level stationarity rejected) and {kpt} "
            "(trend stationarity kept): stationary around a trend; difference once, the "
            "chain's invertible way to remove a trend"
        )
    return "non-stationary", (
        f"{adf} (unit root rejected) but {kps} and {kpt} (level and trend stationarity "
        "rejected): breaks, changing variance or long memory; difference once"
    )


def unit_root_tests(y: np.ndarray, alpha: float = 0.05) -> UnitRootResult:
    """Run ADF (constant, lag by AIC) and KPSS (constant and trend, automatic lags).

    KPSS p-values come from a table and are clipped to ``[0.01, 0.10]``; statsmodels'
    warning about the clipping is silenced because the bound is kept and shown as
    ``p<=0.01`` or ``p>=0.10``.
    """
    st = require("statsmodels.tsa.stattools", "stationarity tests (ADF, KPSS)")
    sm_exc = require("statsmodels.tools.sm_exceptions", "stationarity tests (ADF, KPSS)")
    y = np.asarray(y, dtype=np.float64)
    adf = st.adfuller(y, regression="c", autolag="AIC", **_tuple_result(st.adfuller))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sm_exc.InterpolationWarning)
        kpss_c = st.kpss(y, regression="c", nlags="auto", **_tuple_result(st.kpss))
        kpss_ct = st.kpss(y, regression="ct", nlags="auto", **_tuple_result(st.kpss))
    stats = [float(v) for v in (adf[0], adf[1], kpss_c[0], kpss_c[1], kpss_ct[1])]
    return UnitRootResult(*stats, *decide(stats[1], stats[3], stats[4], alpha))


def analyze(
    y: Any,
    *,
    period: int | None = None,
    max_period: int | None = None,
    alpha: float = 0.05,
    max_points: int = 5000,
    name: str = "series",
) -> StationarityReport:
    """Test stationarity, find the season and recommend an invertible transform chain.

    Everything runs on the warm-up window, the ``max_points`` most recent readings:
    what a deployed model is fitted on, and short enough for ADF's lag search to stay
    fast (22,695 points analyse in well under a second).

    Parameters
    ----------
    y
        One finite series (array-like).  Repair NaN first (``tsforge.data.prepare``).
    period
        Known season length (skips detection); two full periods must fit the window.
    max_period
        Longest season searched; default ``min(window // 3, 1000)``.
    alpha
        Significance level of ADF and KPSS.  KPSS p-values are clipped to
        ``[0.01, 0.10]``, so use ``0.01 < alpha <= 0.10``.
    max_points
        Length of the warm-up window.
    name
        Series name, carried into the report.

    Returns
    -------
    StationarityReport
        Tests, decision, season, strengths, recommended chain and its check.

    Raises
    ------
    DataError
        The series is not 1-D, has non-finite values or fewer than 20 points.
    ConfigError
        A parameter is out of range (the message gives the valid range).

    Examples
    --------
    >>> import numpy as np
    >>> report = analyze(np.cumsum(np.random.default_rng(0).normal(size=500)), name="walk")
    >>> report.decision, [step["kind"] for step in report.transforms]
    ('difference-stationary', ['difference', 'scale'])
    >>> report.after["decision"]
    'stationary'
    """
    y = _check_input(y, name, alpha, max_points)
    w = y[-max_points:]
    reasons: list[str] = []
    if w.size < y.size:
        reasons.append(f"tests ran on the most recent {w.size} of {y.size} points (warm-up window)")
    if np.ptp(w) == 0.0:
        return _constant_report(name, y.size, w, reasons, alpha)

    tests = unit_root_tests(w, alpha)
    reasons.append(tests.reason)

    detrend = seasonality.choose_detrend(tests.decision, tests.kpss_trend_pvalue, alpha)
    period, season_acf, notes = seasonality.find_season(
        w, period=period, max_period=max_period, detrend=detrend
    )
    reasons += notes
    dec = seasonality.decompose(w, period)
    chain, notes = _recommend(w, tests, dec, alpha)
    reasons += notes
    after = _check_chain(w, chain, alpha)
    reasons.append(
        f"after {' -> '.join(_describe_step(s) for s in chain)}: ADF "
        f"{_fmt_p(after['adf_pvalue'])}, KPSS {_fmt_p(after['kpss_pvalue'], _KPSS_BOUNDS)}: "
        f"{after['decision']}"
    )
    undifferenced = all(step["kind"] != "difference" for step in chain)
    if after["decision"] != "stationary" and undifferenced and after["adf_pvalue"] < alpha:
        reasons.append("KPSS still rejects after the chain: the slow wander of the level "
                       "kept on purpose (no unit root by ADF), not a failed chain")
    elif after["decision"] != "stationary":
        reasons.append(
            f"the chain did not pass both tests; at alpha={alpha} one stationary series in "
            f"{round(1 / alpha)} fails by chance: check the plot before differencing again"
        )
    return StationarityReport(
        name=name,
        n=int(y.size),
        adf_stat=tests.adf_stat,
        adf_pvalue=tests.adf_pvalue,
        kpss_stat=tests.kpss_stat,
        kpss_pvalue=tests.kpss_pvalue,
        decision=tests.decision,
        period=None if period is None else int(period),
        season_acf=season_acf,
        seasonal_strength=dec.seasonal_strength,
        trend_strength=dec.trend_strength,
        transforms=chain,
        after=after,
        reasons=reasons,
        window=int(w.size),
        kpss_trend_pvalue=tests.kpss_trend_pvalue,
        alpha=float(alpha),
    )


def _recommend(
    w: np.ndarray, tests: UnitRootResult, dec: seasonality.Decomposition, alpha: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Chain spec: deseasonalize a strong, repeating season; difference unless stationary.

    After deseasonalizing, only a unit root (ADF not rejecting) calls for a difference:
    a deseasonalized series whose level wanders slowly (ADF rejects, KPSS rejects too)
    forecasts better undifferenced.
    """
    chain: list[dict[str, Any]] = []
    notes: list[str] = []
    needs_difference = tests.decision != "stationary"
    m, f_s, share = dec.period, dec.seasonal_strength or 0.0, dec.profile_share or 0.0
    if m is not None and f_s >= SEASONAL_STRENGTH_MIN and share >= PROFILE_SHARE_MIN:
        chain.append({"kind": "deseasonalize", "period": int(m)})
        deseasoned = unit_root_tests(w - dec.seasonal, alpha)
        needs_difference = deseasoned.adf_pvalue >= alpha
        notes.append(
            f"STL seasonal strength F_S={f_s:.2f} >= {SEASONAL_STRENGTH_MIN}, {share:.0%} of it "
            f"a repeating profile, {w.size // m} full periods: deseasonalize({m}) first"
        )
        if needs_difference or deseasoned.decision == "stationary":
            notes.append("deseasonalized: " + deseasoned.reason)
        else:
            notes.append(
                f"deseasonalized: ADF {_fmt_p(deseasoned.adf_pvalue)} rejects a unit root, KPSS "
                f"{_fmt_p(deseasoned.kpss_pvalue, _KPSS_BOUNDS)} rejects level stationarity: the "
                "level wanders slowly, which a model's window follows; not differenced "
                "(differencing it adds noise to every input: ETTh1 loads, h=12, MASE 0.72-0.81 "
                "undifferenced against 0.87-1.01 differenced)"
            )
    elif m is not None:
        notes.append(
            f"season not subtracted: STL seasonal strength F_S={f_s:.2f} (needs "
            f">= {SEASONAL_STRENGTH_MIN}), repeating profile {share:.0%} of it (needs "
            f">= {PROFILE_SHARE_MIN:.0%}; less is a cycle that drifts, not a season)"
        )
    if needs_difference:
        chain.append({"kind": "difference"})
    chain.append({"kind": "scale"})
    notes.append("scale last so the model sees zero mean and unit variance")
    return chain, notes


def _check_chain(w: np.ndarray, chain: list[dict[str, Any]], alpha: float) -> dict[str, Any]:
    """Fit the chain on the window, transform it and re-run the tests."""
    z = TransformChain.from_spec(chain).fit(w).transform(w)
    z = z[np.isfinite(z)]
    if z.size < MIN_POINTS or np.ptp(z) == 0.0:
        return {"adf_pvalue": math.nan, "kpss_pvalue": math.nan, "decision": "stationary"}
    res = unit_root_tests(z, alpha)
    return {"adf_pvalue": res.adf_pvalue, "kpss_pvalue": res.kpss_pvalue, "decision": res.decision}


def _constant_report(
    name: str, n: int, w: np.ndarray, reasons: list[str], alpha: float
) -> StationarityReport:
    """Report for a constant window: the tests are undefined, a constant is stationary."""
    reasons.append(
        f"the last {w.size} readings are all {w[0]:g}: ADF and KPSS are undefined for a "
        "constant; treated as stationary (check the sensor is not stuck)"
    )
    return StationarityReport(
        name=name, n=int(n), adf_stat=math.nan, adf_pvalue=math.nan, kpss_stat=math.nan,
        kpss_pvalue=math.nan, decision="stationary", period=None, season_acf=None,
        seasonal_strength=None, trend_strength=0.0, transforms=[{"kind": "scale"}],
        after=None, reasons=reasons, window=int(w.size), kpss_trend_pvalue=math.nan,
        alpha=float(alpha),
    )  # fmt: skip


def _check_input(y: Any, name: str, alpha: float, max_points: int) -> np.ndarray:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), typically 0.05; got {alpha}")
    if int(max_points) < MIN_POINTS:
        raise ConfigError(f"max_points must be >= {MIN_POINTS}, got {max_points}")
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"analyze('{name}'): expected one series (1-D), got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise DataError(
            f"analyze('{name}'): {bad.size} non-finite values (first at index {bad[0]}); "
            "repair them first (tsforge.data.prepare with a nonfinite policy)"
        )
    if arr.size < MIN_POINTS:
        raise DataError(f"analyze('{name}'): need at least {MIN_POINTS} readings, got {arr.size}")
    return arr


def _tuple_result(func: Any) -> dict[str, bool]:
    """``result_object=False`` where statsmodels accepts it (>= 0.15), to keep tuples quiet."""
    return {"result_object": False} if "result_object" in inspect.signature(func).parameters else {}


def _fmt_p(p: float | None, bounds: tuple[float, float] | None = None) -> str:
    """``p=0.097``; ``p<=0.01`` / ``p>=0.10`` at a table bound; ``p<0.001`` when tiny."""
    if p is None or not math.isfinite(p):
        return "p=n/a"
    if bounds is not None and p <= bounds[0]:
        return f"p<={bounds[0]:.2f}"
    if bounds is not None and p >= bounds[1]:
        return f"p>={bounds[1]:.2f}"
    return f"p={p:.3f}" if p >= 0.001 else "p<0.001"


def _describe_step(step: dict[str, Any]) -> str:
    return f"{step['kind']}({step['period']})" if "period" in step else step["kind"]
