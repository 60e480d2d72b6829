"""Walk-forward backtest: fit on the first part, then stream the rest one reading at a time.

At every step each model forecasts the next H readings from its current state,
with online conformal intervals (:mod:`tsforge.intervals`), then sees the reading
(online models learn from it, frozen models only update their state).  This is
the public contract for accuracy measurements: the keys of
:meth:`ModelScore.to_dict` are stable (keys are only ever added).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.intervals import DEFAULT_INTERVALS, IntervalConfig
from tsforge.metrics import (
    forecast_errors,
    interval_coverage,
    interval_width,
    mae,
    rmse,
    seasonal_naive_scale,
)
from tsforge.models.base import Forecaster, as_covariates
from tsforge.models.registry import create, model_class
from tsforge.models.transformed import TransformedForecaster

ModelSpec = str | tuple[str, dict[str, Any]] | Forecaster


@dataclass
class ModelScore:
    """Scores of one model in one backtest (keys of ``to_dict`` are a public contract).

    ``coverage`` and ``interval_width`` map a nominal level written as a string
    (``"0.95"``) to the share of readings inside the issued intervals and to their
    mean width in engineering units; both are empty when intervals are off.
    ``family`` is the registry family that produced the forecasts at the end (for
    ``auto``, the one the regime policy picked or switched to), ``explanation`` the
    policy's reason, ``switches`` the live switches and ``n_alarms`` the drift alarms
    raised while streaming (empty/0 for models that do not select themselves).
    """

    model: str
    mae: float
    rmse: float
    mase: float
    fit_seconds: float
    predict_us_per_step: float
    horizon: int
    n_train: int
    n_test: int
    online: bool
    transforms: list[dict[str, Any]]
    transform_chain: str
    mae_by_step: list[float] = field(default_factory=list)
    coverage: dict[str, float] = field(default_factory=dict)
    interval_width: dict[str, float] = field(default_factory=dict)
    family: str = ""
    explanation: str = ""
    switches: list[dict[str, Any]] = field(default_factory=list)
    n_alarms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BacktestResult:
    """All models' scores plus their forecasts for plotting.

    ``intervals[model][level]`` is ``(lower, upper)``, each shaped like the model's
    predictions ``(n_test, H)``, NaN where no interval was issued (warm-up).
    ``drift[model]`` lists the drift alarms and live switches of self-selecting
    models (``auto``) by index into ``actual``, for plots.
    """

    scores: list[ModelScore]
    actual: np.ndarray
    predictions: dict[str, np.ndarray]
    test_start: int
    period: int
    mase_scale: float
    intervals: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = field(
        default_factory=dict)
    #: model -> {"alarms": [(stream index, detector, signal)], "switches": [stream index]}
    #: (for ``auto`` the switches are the restarts of its weights)
    drift: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    #: model -> (expert names, weights one step ahead before each reading ``(n_test, K)``)
    #: for models that aggregate experts (``auto``)
    weights: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    #: model -> {expert name: its forecasts ``(n_test, H)``} for models that aggregate
    experts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: Warnings about the scores (a constant training part leaves MASE undefined).
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """A plain-text table of the scores, best MASE first, then any notes."""
        from tsforge.table import format_table

        rows = sorted(self.scores, key=lambda s: s.mase)
        levels = list(rows[0].coverage) if rows else []
        text = format_table(
            ["model", "MAE", "RMSE", "MASE", "fit s", "µs/step",
             *(f"cov@{lvl}" for lvl in levels)],
            [[s.model, s.mae, s.rmse, s.mase, s.fit_seconds, s.predict_us_per_step,
              *(s.coverage.get(lvl, float("nan")) for lvl in levels)] for s in rows],
            formats=[None, ".4f", ".4f", ".3f", ".2f", ".1f", *(".3f" for _ in levels)])
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])

    def to_frame(self, time: Any = None, *, like: Any = None) -> Any:
        """Every forecast of the backtest as a long DataFrame (pandas, or polars when
        ``like`` is a polars object): ``timestamp`` (the reading forecast), ``model``,
        ``step``, ``mean``, ``actual`` and ``lower_<level>``/``upper_<level>``.

        ``time`` holds the timestamps of the whole series (the streamed part starts at
        :attr:`test_start`); without it ``timestamp`` counts readings of the series.
        """
        from tsforge.api import level_name, to_library

        n = len(self.actual)
        x = (np.arange(len(self.actual) + self.test_start) if time is None
             else np.asarray(time))
        cols: dict[str, list[Any]] = {"timestamp": [], "model": [], "step": [], "mean": [],
                                      "actual": []}
        for name, preds in self.predictions.items():
            bands = self.intervals.get(name, {})
            for h in range(preds.shape[1]):
                target = np.arange(n - h) + h  # forecast issued at i for reading i + h
                cols["timestamp"] += list(x[self.test_start + target])
                cols["model"] += [name] * (n - h)
                cols["step"] += [h + 1] * (n - h)
                cols["mean"] += preds[: n - h, h].tolist()
                cols["actual"] += self.actual[target].tolist()
                for level, (lo, hi) in bands.items():
                    cols.setdefault(f"lower_{level_name(level)}", []).extend(lo[: n - h, h])
                    cols.setdefault(f"upper_{level_name(level)}", []).extend(hi[: n - h, h])
        if time is None:
            cols["timestamp"] = [int(v) for v in cols["timestamp"]]
            frame = to_library({k: v for k, v in cols.items() if k != "timestamp"}, like)
            return _with_index_column(frame, cols["timestamp"])
        return to_library(cols, like)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.scores]


def _with_index_column(frame: Any, index: list[int]) -> Any:
    """``frame`` with a first column ``reading`` (position in the series)."""
    if type(frame).__module__.split(".")[0] == "polars":
        import polars as pl

        return frame.insert_column(0, pl.Series("reading", index))
    frame.insert(0, "reading", index)
    return frame


def _build(spec: ModelSpec, horizon: int, period: int) -> Forecaster:
    if isinstance(spec, Forecaster):
        return spec
    name, params = (spec, {}) if isinstance(spec, str) else spec
    params = dict(params)
    params.setdefault("horizon", horizon)
    fields = model_class(name).Config.__dataclass_fields__
    if "period" in fields:
        params.setdefault("period", period)
    if "progress" in fields:
        params.setdefault("progress", False)
    return create(name, **params)


def backtest(
    y: Any,
    X: Any = None,
    *,
    models: list[ModelSpec],
    horizon: int = 1,
    train_fraction: float = 0.7,
    transforms: list[dict[str, Any]] | str = "auto",
    period: int | None = None,
    progress: bool = False,
    on_fitted: Callable[[TransformedForecaster], None] | None = None,
    intervals: IntervalConfig | None = DEFAULT_INTERVALS,
) -> BacktestResult:
    """Fit every model on the first ``train_fraction`` of ``y`` and stream the rest.

    Parameters
    ----------
    y
        Target series, finite (run :func:`tsforge.data.prepare` first).
    X
        Covariates, shape ``(T, k)``, or None.
    models
        Registry names, ``(name, params)`` pairs or forecaster instances.
    horizon
        Steps ahead forecast at every step (H).
    train_fraction
        Share of the series used for fitting; the rest is streamed.
    transforms
        Transform chain spec, or ``"auto"`` to use the stationarity analysis'
        recommendation on the training part.
    period
        Season length for seasonal naive and the MASE scale; detected when None.
    progress
        Show a progress bar per model.
    on_fitted
        Called with each wrapped model right after fitting, before streaming
        (e.g. to export it).
    intervals
        Conformal interval settings scored for every model (coverage and mean
        width per level), or None for point forecasts only.
    """
    y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
    X_arr = as_covariates(X, y.shape[0])
    if not 0.05 <= train_fraction <= 0.95:
        raise ConfigError(f"train_fraction must be in [0.05, 0.95], got {train_fraction}")
    if not models:
        raise ConfigError("no models to backtest")
    n_train = int(len(y) * train_fraction)
    if n_train < 10 or len(y) - n_train < 2:
        raise DataError(f"series of {len(y)} readings is too short to backtest")
    if transforms == "auto" or period is None:
        from tsforge.preprocess import analyze
        from tsforge.preprocess.stationarity import MIN_POINTS

        if n_train < MIN_POINTS:
            need = int(np.ceil(MIN_POINTS / train_fraction)) + 1
            raise DataError(
                f"series of {len(y)} readings: its training part ({train_fraction:.0%}) holds "
                f"{n_train}, and the stationarity analysis needs at least {MIN_POINTS}; give "
                f"at least {need} readings or a larger train fraction")

        report = analyze(y[:n_train], name="target")
        if transforms == "auto":
            transforms = report.transforms
        if period is None:
            period = report.period or 1
    assert not isinstance(transforms, str)

    scale = seasonal_naive_scale(y[:n_train], period)
    notes = []
    if not np.any(np.abs(np.diff(y[:n_train])) > 0):
        notes.append("the training part is constant: the seasonal-naive error that scales MASE "
                     "is 0, so MASE is undefined here (shown against a scale of 1, i.e. it "
                     "equals the MAE); compare MAE instead")
    actual = y[n_train:]
    scores, predictions, bands, drift, weights, experts = [], {}, {}, {}, {}, {}
    for spec in models:
        model = _build(spec, horizon, period)
        wrapped = TransformedForecaster(model, transforms, intervals=intervals)
        t0 = time.perf_counter()
        wrapped.fit(y[:n_train], X_arr[:n_train])
        fit_seconds = time.perf_counter() - t0
        if on_fitted is not None:
            on_fitted(wrapped)
        preds = np.empty((len(actual), model.horizon))
        levels = intervals.levels if intervals is not None else ()
        band = {lvl: (np.full_like(preds, np.nan), np.full_like(preds, np.nan))
                for lvl in levels}
        steps = _iterate(range(len(actual)), progress, f"stream {model.name}")
        names = list(getattr(model, "expert_names", []))
        w_hist = np.full((len(actual), len(names)), np.nan)
        e_hist = np.full((len(actual), model.horizon, len(names)), np.nan)
        t0 = time.perf_counter()
        for i in steps:
            f = wrapped.forecast()
            preds[i] = f.mean
            if names:
                w_hist[i] = model.weights[0]  # type: ignore[attr-defined]
                e_hist[i] = model.expert_forecasts  # type: ignore[attr-defined]
            for lvl, (lo, hi) in f.intervals.items():
                band[lvl][0][i], band[lvl][1][i] = lo, hi
            wrapped.learn_one(actual[i], X_arr[n_train + i])
        per_step = (time.perf_counter() - t0) / max(len(actual), 1) * 1e6
        selection = _selection_report(model)
        restarts = [r["index"] for r in getattr(model, "restarts", [])]
        if selection["n_alarms"] or selection["switches"] or restarts:
            drift[model.name] = {
                "alarms": [(a.index, a.detector, a.signal) for a in getattr(model, "alarms", [])],
                "switches": [e["index"] for e in selection["switches"]] + restarts}
        if names:
            weights[model.name] = (names, w_hist)
            experts[model.name] = {n: e_hist[:, :, k] for k, n in enumerate(names)}
        errors = forecast_errors(preds, actual)
        by_step = [mae(errors[:, h]) for h in range(model.horizon)]
        scores.append(
            ModelScore(
                model=model.name, mae=mae(errors), rmse=rmse(errors), mase=mae(errors) / scale,
                fit_seconds=fit_seconds, predict_us_per_step=per_step, horizon=model.horizon,
                n_train=n_train, n_test=len(actual), online=model.online,
                transforms=list(wrapped.transforms),
                transform_chain=wrapped.chain_.describe(), mae_by_step=by_step,
                coverage={f"{lvl:g}": interval_coverage(lo, hi, actual)
                          for lvl, (lo, hi) in band.items()},
                interval_width={f"{lvl:g}": interval_width(lo, hi)
                                for lvl, (lo, hi) in band.items()},
                **selection,
            )
        )
        predictions[model.name] = preds
        bands[model.name] = band
    return BacktestResult(scores, actual, predictions, n_train, period, scale, bands, drift,
                          weights, experts, notes)


def _selection_report(model: Forecaster) -> dict[str, Any]:
    """Family (for ``auto``: the families carrying the weight), explanation, switches and
    alarm count of a self-selecting model."""
    decision = getattr(model, "decision", None)
    return {
        "family": getattr(model, "family", None) or model.name,
        "explanation": decision.explanation if decision is not None else "",
        "switches": [e.to_dict() for e in getattr(model, "switches", [])],
        "n_alarms": len(getattr(model, "alarms", [])),
    }


def _iterate(iterable: Any, enabled: bool, desc: str) -> Any:
    from tsforge.progress import track

    return track(iterable, desc, "step", force=enabled)
