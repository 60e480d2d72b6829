"""A proof-of-concept study of a folder of factory CSVs, one stage function per step.

For every sensor of every file: validate (:func:`tsforge.data.read_folder`), test
stationarity and decompose the training part (:func:`tsforge.preprocess.analyze`),
pick a family (:func:`tsforge.report.pick.pick_family`), backtest it against naive
and seasonal naive with conformal intervals (:func:`tsforge.backtest.backtest`),
export it to ONNX and stream the held-out part through the torch-free runtime
(latency, agreement with the library), and watch readings and forecast errors with
drift detectors.  The notebook calls the stages one at a time; ``tsforge report``
and ``tsforge run`` call :func:`run_study`.  All settings come from a
:class:`~tsforge.pipeline.PipelineSpec` (``use = "csv"``), so a study is described
by one TOML file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsforge.data import PreparedFile, read_folder
from tsforge.errors import ConfigError
from tsforge.report import figures
from tsforge.report.alarms import DriftTimeline, detector_specs, watch
from tsforge.report.pick import FamilyPick, pick_family

#: Readings per day, used for the seasonal-naive baseline when no season is detected.
DAY_SECONDS = 86400
#: Baselines every picked family is measured against.
BASELINES = ("naive", "seasonal_naive")


@dataclass
class SensorStudy:
    """Everything the study found about one sensor (figures as PNG bytes)."""

    file: str
    sensor: str
    time: np.ndarray
    y: np.ndarray
    stationarity: Any
    pick: FamilyPick
    backtest: Any
    drift: DriftTimeline
    export: Any = None
    covariates: list[str] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)
    events: list[tuple[Any, Any, str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """``file/sensor``: unique across a folder."""
        return f"{self.file}/{self.sensor}"

    def score(self, model: str) -> Any:
        """The backtest score of ``model``."""
        return next(s for s in self.backtest.scores if s.model == model)

    def best_baseline(self) -> Any:
        """The better (lower MASE) of the simple baselines."""
        return min((s for s in self.backtest.scores if s.model in BASELINES),
                   key=lambda s: s.mase)

    def event_alarms(self) -> list[dict[str, Any]]:
        """Each known event inside the studied period with the alarms raised during it."""
        t0, t1 = self.time[0], self.time[-1]
        out = []
        for start, end, label in self.events:
            if end < t0 or start > t1:
                continue
            inside = [a for a in self.drift.alarms if start <= self.time[a.index] <= end]
            out.append({"label": label, "start": str(start)[:16], "end": str(end)[:16],
                        "input_alarms": sum(a.signal == "input" for a in inside),
                        "residual_alarms": sum(a.signal == "residual" for a in inside)})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "sensor": self.sensor, "readings": len(self.y),
            "stationarity": self.stationarity.to_dict(), "pick": self.pick.to_dict(),
            "backtest": self.backtest.to_json(), "drift": self.drift.to_dict(),
            "events": self.event_alarms(), "covariates": self.covariates,
            "export": self.export.to_dict() if self.export is not None else None,
            "runtime": self.runtime,
        }


@dataclass
class Study:
    """The study of a whole folder."""

    name: str
    source: str
    files: list[PreparedFile]
    sensors: list[SensorStudy]
    settings: dict[str, Any]
    seconds: float = 0.0

    def __iter__(self) -> Iterator[SensorStudy]:
        return iter(self.sensors)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "settings": self.settings,
                "seconds": self.seconds,
                "files": [{"file": f.name, "validation": f.report.to_dict()} for f in self.files],
                "sensors": [s.to_dict() for s in self.sensors]}


def load(spec: Any, *, last: int | None = None) -> list[PreparedFile]:
    """Read and validate the file or folder of ``[source] path``."""
    src = spec.source
    if not src.path:
        raise ConfigError(f"{spec.origin or 'pipeline spec'}: [source] path is empty; set it "
                          "to a CSV file or a folder of CSVs")
    return read_folder(src.path, columns=src.columns or None, time_col=src.time_column or None,
                       time_format=src.time_format or None, last=last,
                       separator=src.separator or None, units=src.units or None)


def baseline_period(frame: Any, detected: int | None, n_train: int) -> int:
    """Season of the seasonal-naive baseline: the detected one, else one day of readings
    (the plant engineer's "same time yesterday") when two days fit in the
    training part, else 1."""
    if detected:
        return int(detected)
    if frame.freq is not None:
        step = frame.freq.astype("timedelta64[s]").astype(np.int64)
        if step > 0 and DAY_SECONDS % step == 0 and 2 * (DAY_SECONDS // step) <= n_train:
            return int(DAY_SECONDS // step)
    return 1


def calendar_covariates(time: np.ndarray, transforms: list[dict[str, Any]], enabled: bool = True
                        ) -> tuple[np.ndarray | None, list[str]]:
    """Hour-of-day and day-of-week covariates (sin, cos) for a sensor, and their names.

    Given when the timestamps resolve the cycles
    (:func:`~tsforge.preprocess.calendar.calendar_cycles`) and the chain leaves the
    season in: a ``deseasonalize`` step
    already subtracts the daily profile, and on the ETTh1 loads the covariates then
    changed MASE by under 2 % either way, while on OT (no season subtracted) they took
    the linear model from 0.626 to 0.554 (docs/accuracy.md).
    """
    from tsforge.preprocess.calendar import calendar_features

    if not enabled or any(step["kind"] == "deseasonalize" for step in transforms):
        return None, []
    X, names = calendar_features(time)
    return (X, names) if names else (None, [])


def backtest_sensor(y: np.ndarray, pick: FamilyPick, spec: Any, *, transforms: list[Any],
                    period: int, export_to: Path | None = None, sensor: str = "target",
                    X: np.ndarray | None = None, aggregate: bool = False) -> tuple[Any, Any]:
    """Backtest the picked family beside naive and seasonal naive; export it after fitting.

    ``X`` holds covariates aligned with ``y`` (e.g. :func:`calendar_covariates`); the
    baselines ignore them.  ``aggregate`` also backtests ``auto``, the online
    aggregation of the candidate families (its weights over time become a figure).

    Returns the :class:`~tsforge.backtest.BacktestResult` and the
    :class:`~tsforge.export.ExportReport` (None when ``export_to`` is None).
    """
    from tsforge.backtest import backtest
    from tsforge.intervals import IntervalConfig

    exported: dict[str, Any] = {}

    def export_after_fit(model: Any) -> None:
        # peers (statsmodels, river) have no ONNX step: they are backtested, not exported
        if (export_to is not None and model.name == pick.family and model.model.exportable
                and "report" not in exported):
            from tsforge.export import export_onnx

            exported["report"] = export_onnx(model, export_to, sensor=sensor, parity_steps=500)

    models: list[Any] = ["naive", ("seasonal_naive", {"period": period})]
    if pick.family not in BASELINES:
        models.append((pick.family, pick.params))
    if aggregate and pick.family != "auto":
        models.append(("auto", {"sensor": sensor, "transforms": transforms}))
    intervals = IntervalConfig(levels=tuple(spec.intervals.levels), method=spec.intervals.method)
    result = backtest(y, X, models=models, horizon=spec.model.horizon,
                      train_fraction=spec.model.train_fraction, transforms=transforms,
                      period=period, on_fitted=export_after_fit, intervals=intervals)
    return result, exported.get("report")


def runtime_check(export: Any, result: Any, family: str, sensor: str,
                  X_test: np.ndarray | None = None) -> dict[str, Any]:
    """Stream the held-out readings through the torch-free runtime from the exported state.

    Returns onnxruntime's per-step latency (p50, p99 in µs) and, for a frozen model,
    the largest difference between the runtime's forecasts and the library's (the
    runtime must reproduce them; an online model keeps learning in the library but
    not on the edge, so there the difference is expected and not reported).
    """
    from tsforge.runtime import StreamingRuntime

    runtime = StreamingRuntime(export.onnx_path)
    preds = result.predictions[family]
    actual = result.actual
    gap = 0.0
    for i in range(len(actual) - 1):
        x = None if X_test is None else X_test[i]
        forecast = runtime.push(sensor, float(actual[i]), x)
        gap = max(gap, float(np.max(np.abs(forecast - preds[i + 1]))))
    online = next(s.online for s in result.scores if s.model == family)
    return {"steps": len(actual) - 1, "p50_us": runtime.latency.percentile_us(50),
            "p99_us": runtime.latency.percentile_us(99),
            "max_abs_diff_vs_library": None if online else gap, "online": online}


def study_sensor(prepared: PreparedFile, sensor: str, spec: Any, *,
                 export_dir: Path | None = None, aggregate: bool = False) -> SensorStudy:
    """Run every stage for one sensor of one prepared file."""
    from tsforge.preprocess import analyze

    frame, y = prepared.frame, prepared.frame.column(sensor)
    key = f"{prepared.name}/{sensor}"
    n_train = int(len(y) * spec.model.train_fraction)
    stat = analyze(y[:n_train], name=key)
    family, params, transform_mode = spec.sensor(sensor)
    pick = pick_family(y[:n_train], stat, family=family, params=params, sensor=key,
                       detectors=detector_specs(spec.drift.detectors, spec.drift.params))
    transforms = stat.transforms if transform_mode == "auto" else []
    period = baseline_period(frame, stat.period, n_train)
    X, covariates = calendar_covariates(frame.time, transforms, spec.model.calendar)
    if covariates:
        pick.reasons.append(f"calendar covariates {', '.join(covariates)} given to every "
                            "model (the chain leaves the daily season in)")
    onnx = None if export_dir is None else export_dir / f"{prepared.name}__{sensor}.onnx"
    result, export = backtest_sensor(y, pick, spec, transforms=transforms, period=period,
                                     export_to=onnx, sensor=key, X=X, aggregate=aggregate)
    X_test = None if X is None else X[result.test_start:]
    runtime = (runtime_check(export, result, pick.family, key, X_test)
               if export is not None else {})
    if export is None and onnx is not None:
        runtime = {"note": f"{pick.family} has no ONNX streaming step; it is backtested only"}
    one_step = result.predictions[pick.family][:, 0]
    timeline = watch(y, result.test_start, one_step, transforms=transforms,
                     detectors=spec.drift.detectors, signals=spec.drift.signals,
                     params=spec.drift.params, sensor=key, time=frame.time)
    t, unit = frame.time, frame.unit(sensor)
    figs = {
        "decomposition": figures.decomposition_png(
            y[:n_train], stat, time=t[:n_train], title=f"{key}: STL decomposition "
            "of the training part", unit=unit, step=frame.freq),
        "forecast": figures.forecast_png(result, pick.family, time=t, title=key, unit=unit,
                                         events=prepared.events),
        "drift": figures.drift_png(y, timeline, time=t, title=key, events=prepared.events,
                                   unit=unit),
    }
    if "auto" in result.weights:
        figs["weights"] = figures.weights_png(result, time=t, title=key, unit=unit)
    return SensorStudy(file=prepared.name, sensor=sensor, time=t, y=y, stationarity=stat,
                       pick=pick, backtest=result, drift=timeline, export=export,
                       covariates=covariates, runtime=runtime, figures=figs,
                       events=list(prepared.events))


def run_study(spec: Any, *, last: int | None = None, export_dir: str | Path | None = None,
              log: Callable[[str], None] | None = None, aggregate: bool = False) -> Study:
    """Study every sensor of every file named by ``spec`` (see the module docstring).

    Parameters
    ----------
    spec
        A :class:`~tsforge.pipeline.PipelineSpec` with ``use = "csv"``.
    last
        Keep only the last ``last`` readings of each file (a quick look).
    export_dir
        Folder for the ONNX files of the picked models; None skips export and the
        runtime check.
    log
        Called with one line per stage (e.g. ``print``).
    aggregate
        Also backtest ``auto``, the online aggregation of families, and plot its weights.
    """
    say = log or (lambda _text: None)
    t0 = time.perf_counter()
    files = load(spec, last=last)
    out = Path(export_dir) if export_dir is not None else None
    sensors = []
    for prepared in files:
        say(prepared.report.summary())
        for sensor in prepared.frame.sensors:
            t1 = time.perf_counter()
            s = study_sensor(prepared, sensor, spec, export_dir=out, aggregate=aggregate)
            sensors.append(s)
            say(f"{s.key}: picked {s.pick.family}; MASE {s.score(s.pick.family).mase:.3f} vs "
                f"{s.best_baseline().model} {s.best_baseline().mase:.3f}; "
                f"{s.drift.count()} drift alarm(s) ({time.perf_counter() - t1:.1f} s)")
    settings = {"horizon": spec.model.horizon, "train_fraction": spec.model.train_fraction,
                "family": spec.model.family, "levels": list(spec.intervals.levels),
                "interval_method": spec.intervals.method, "drift": list(spec.drift.detectors),
                "last": last}
    return Study(name=spec.name, source=spec.source.path, files=files, sensors=sensors,
                 settings=settings, seconds=time.perf_counter() - t0)
