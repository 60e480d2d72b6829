"""``auto``: the forecaster that picks its family by the regime policy and switches live.

At ``fit`` it profiles the history it is given (already transformed by the
pipeline's chain, see :func:`~tsforge.selection.profile.profile_series`), applies
the policy (:func:`~tsforge.selection.policy.choose`), builds and fits the picked
registry family and then delegates the forecaster protocol to it: forecasts,
state, ONNX streaming core.  ``decision`` says what was picked and why.

While streaming, ``learn_one`` feeds a :class:`~tsforge.drift.DriftMonitor` with
the input and the one-step residual.  When residual alarms persist it trains a
challenger of another family on the recent readings and tries it in shadow
(:mod:`tsforge.selection.switching`); ``switches`` logs every switch and
``events`` every trial, and :meth:`AutoForecaster.subscribe` hands each event to
a listener (registry, monitor).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from tsforge.drift import DriftMonitor
from tsforge.errors import ConfigError, DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.selection.policy import Decision, PolicyConfig, choose
from tsforge.selection.profile import RegimeProfile, profile_series
from tsforge.selection.switching import SwitchEvent, trial_verdict

#: Batch size of batch-trained families: histories of a few thousand readings give
#: only a handful of optimiser steps per epoch at the families' default of 256
#: (measured in benchmarks/selection_regret.py: MLP MASE 1.10 -> 0.87 on ar_short).
SIZING: dict[str, Any] = {"batch_size": 32}


@dataclasses.dataclass(frozen=True)
class AutoConfig(ForecasterConfig):
    """Attributes
    ----------
    period
        Season length the pipeline found (0: none); passed to families that take one.
    family
        Override: a registry name used whatever the profile says (rule R0).
    windowed, fixed_feedback, short_history, fast_online, online
        Families of each role (``online`` is a comma list of candidates, best first).
    min_history, drift_rate, fast_drift_rate, long_dependence, max_radius
        Policy thresholds (:class:`~tsforge.selection.policy.PolicyConfig`).
    params
        Hyper-parameters per family, e.g. ``{"mlp": {"window": 96}}``.
    detectors
        Drift detectors on both signals as a comma list (empty: the monitor's defaults).
    sensor
        Name written into alarms and events.
    switching
        Try challengers when residual drift persists.
    switch_alarms, switch_window
        Persistent drift: this many residual alarms within this many readings.
    trial, margin
        Shadow trial length, and the error ratio the challenger must beat.
    recent
        Readings kept to train a challenger on.
    cooldown
        Readings after a trial before the next may start.
    """

    period: int = 0
    family: str = ""
    windowed: str = "mlp"
    fixed_feedback: str = "dsf_gru"
    short_history: str = "esn"
    fast_online: str = "uoro"
    online: str = "esn,uoro,rtrl"
    min_history: int = 300
    drift_rate: float = 2.0
    fast_drift_rate: float = 5.0
    long_dependence: int = 24
    max_radius: float = 1.0
    params: dict[str, dict[str, Any]] | None = None
    detectors: str = ""
    sensor: str = "series"
    switching: bool = True
    switch_alarms: int = 2
    switch_window: int = 500
    trial: int = 200
    margin: float = 0.85
    recent: int = 600
    cooldown: int = 500


class AutoForecaster(Forecaster):
    """Picks a family per sensor by the regime policy; switches on persistent drift."""

    name = "auto"
    Config: ClassVar[type[ForecasterConfig]] = AutoConfig
    exportable = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        cfg = self.config
        self.policy = PolicyConfig(
            min_history=cfg.min_history, drift_rate=cfg.drift_rate,
            fast_drift_rate=cfg.fast_drift_rate, fast_online=cfg.fast_online,
            long_dependence=cfg.long_dependence, max_radius=cfg.max_radius,
            windowed=cfg.windowed, fixed_feedback=cfg.fixed_feedback,
            short_history=cfg.short_history,
            online=tuple(s.strip() for s in cfg.online.split(",") if s.strip()))
        if cfg.trial < 10 or cfg.recent < 50 or not 0 < cfg.margin <= 1:
            raise ConfigError("auto needs trial >= 10, recent >= 50 and 0 < margin <= 1, got "
                              f"trial={cfg.trial}, recent={cfg.recent}, margin={cfg.margin}")
        self._listeners: list[Callable[[SwitchEvent], None]] = []
        self.model_: Forecaster | None = None
        self.challenger_: Forecaster | None = None
        self.decision_: Decision | None = None
        self.events_: list[SwitchEvent] = []

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        from tsforge.models.registry import model_class

        names = ("mlp", "dsf_gru", "esn", "uoro", "rtrl")
        return {"params": {n: model_class(n).test_params() for n in names},
                "detectors": "adwin,page_hinkley", "recent": 200, "trial": 50}

    # ------------------------------------------------------------------ views
    @property
    def online(self) -> bool:  # type: ignore[override]
        """Whether the family in service learns per reading."""
        return bool(self.model_ is not None and self.model_.online)

    @property
    def family(self) -> str | None:
        """Registry name of the family in service."""
        return None if self.model_ is None else self.model_.name

    @property
    def decision(self) -> Decision | None:
        """The policy's decision at ``fit`` (family, explanation, profile)."""
        return self.decision_

    @property
    def switches(self) -> list[SwitchEvent]:
        """Live switches so far (trials the challenger won)."""
        return [e for e in self.events_ if e.switched]

    @property
    def events(self) -> list[SwitchEvent]:
        """Every challenger trial so far, won or lost."""
        return list(self.events_)

    @property
    def alarms(self) -> list[Any]:
        """Drift alarms raised while streaming."""
        return list(self.monitor_.alarms) if hasattr(self, "monitor_") else []

    def subscribe(self, listener: Callable[[SwitchEvent], None]) -> None:
        """Call ``listener(event)`` after every challenger trial (switch or not)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ protocol
    def family_params(self, family: str, profile: RegimeProfile | None = None) -> dict[str, Any]:
        """Hyper-parameters ``family`` is built with: sizing for the history lengths a
        pipeline sees (:data:`SIZING`; a window twice the measured dependence, at least
        24), overridden by ``params[family]``."""
        from tsforge.models.registry import model_class

        fields = model_class(family).Config.__dataclass_fields__
        params = {k: v for k, v in SIZING.items() if k in fields}
        if "window" in fields and profile is not None:
            params["window"] = int(min(96, max(24, 2 * profile.dependence)))
        return {**params, **(self.config.params or {}).get(family, {})}

    def _build(self, family: str) -> Forecaster:
        from tsforge.models.registry import create, model_class

        cfg = self.config
        profile = self.decision_.profile if self.decision_ is not None else None
        params = {"horizon": cfg.horizon, "seed": cfg.seed,
                  **self.family_params(family, profile)}
        fields = model_class(family).Config.__dataclass_fields__
        if "period" in fields and cfg.period:
            params.setdefault("period", cfg.period)
        if "progress" in fields:
            params.setdefault("progress", False)
        return create(family, **params)

    def _new_monitor(self) -> DriftMonitor:
        return DriftMonitor(self.config.sensor, self.config.detectors or None)

    def plan(self, y: Any) -> Decision:
        """The decision ``fit`` would take on history ``y`` (transformed), without fitting."""
        cfg = self.config
        y_arr = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
        profile = profile_series(y_arr, sensor=cfg.sensor, transforms=None,
                                 period=cfg.period or None, detectors=cfg.detectors or None)
        return choose(profile, self.policy, override=cfg.family or None)

    def fit(self, y: Any, X: Any = None) -> AutoForecaster:
        """Profile ``y``, pick the family by the policy and fit it."""
        y_arr, X_arr = self._check_fit_input(y, X)
        cfg = self.config
        decision = self.plan(y_arr)
        self.decision_ = decision
        model = self._build(decision.family)
        try:
            model.fit(y_arr, X_arr)
        except (DataError, ConfigError) as exc:
            fallback = self.policy.short_history
            if decision.family == fallback:
                raise
            decision = dataclasses.replace(
                decision, family=fallback, role="short_history",
                explanation=f"picked {fallback}: {decision.family} could not be fitted "
                            f"({exc}); fell back. Policy said: {decision.explanation}")
            model = self._build(fallback)
            model.fit(y_arr, X_arr)
        self.model_, self.decision_, self.challenger_ = model, decision, None
        self.events_ = []
        self.monitor_ = self._new_monitor()
        self.recent_y_ = y_arr[-cfg.recent:].copy()
        self.recent_X_ = X_arr[-cfg.recent:].copy()
        self.n_seen_ = 0
        self.last_trial_ = -cfg.cooldown
        self.trial_ = {"start": 0, "n": 0, "inc": 0.0, "ch": 0.0, "alarms": 0}
        return self

    def _fitted_model(self) -> Forecaster:
        if self.model_ is None:
            raise DataError("model 'auto' is not fitted: call fit() first")
        return self.model_

    def forecast(self) -> Forecast:
        return self._fitted_model().forecast()

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        """Advance the family in service (and a challenger on trial) without learning."""
        x_arr = self._check_step_input(x)
        self._fitted_model().update(y, x_arr)
        if self.challenger_ is not None:
            self.challenger_.update(y, x_arr)

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        """Learn one reading, watch drift, and run or start a challenger trial."""
        x_arr = self._check_step_input(x)
        model = self._fitted_model()
        err = float(y - model.forecast().mean[0])
        if self.challenger_ is not None:
            ch_err = float(y - self.challenger_.forecast().mean[0])
            self.trial_["n"] += 1
            self.trial_["inc"] += abs(err)
            self.trial_["ch"] += abs(ch_err)
            self.challenger_.learn_one(y, x_arr)
        model.learn_one(y, x_arr)
        self.monitor_.update(input=float(y), residual=err)
        if self.decision_ is not None:
            self.decision_.profile.live_drift_rate = self.monitor_.rate_per_1k("residual")
        keep = self.config.recent
        self.recent_y_ = np.append(self.recent_y_, y)[-keep:]
        self.recent_X_ = np.vstack([self.recent_X_, x_arr[None]])[-keep:]
        self.n_seen_ += 1
        if self.challenger_ is not None and self.trial_["n"] >= self.config.trial:
            self._conclude_trial()
        elif self.config.switching and self.challenger_ is None:
            self._maybe_start_trial()

    # ------------------------------------------------------------------ switching
    def _challenger_family(self) -> str:
        if self._fitted_model().online:
            return self.policy.windowed
        return self.policy.online[0]

    def _maybe_start_trial(self) -> None:
        cfg = self.config
        if self.n_seen_ - self.last_trial_ < cfg.cooldown:
            return
        alarms = self.monitor_.count("residual", since=self.n_seen_ - cfg.switch_window)
        if alarms < cfg.switch_alarms:
            return
        challenger = self._build(self._challenger_family())
        try:
            challenger.fit(self.recent_y_, self.recent_X_)
        except (DataError, ConfigError):
            self.last_trial_ = self.n_seen_  # too little recent data: wait a cooldown
            return
        self.challenger_ = challenger
        self.trial_ = {"start": self.n_seen_, "n": 0, "inc": 0.0, "ch": 0.0, "alarms": alarms}

    def _conclude_trial(self) -> None:
        cfg, t = self.config, self.trial_
        incumbent, challenger = self._fitted_model(), self.challenger_
        assert challenger is not None
        inc_mae, ch_mae = t["inc"] / t["n"], t["ch"] / t["n"]
        switched, reason = trial_verdict(incumbent.name, challenger.name, inc_mae, ch_mae,
                                         cfg.margin, int(t["alarms"]), cfg.switch_window,
                                         cfg.trial)
        event = SwitchEvent(index=self.n_seen_, sensor=cfg.sensor, incumbent=incumbent.name,
                            challenger=challenger.name, switched=switched,
                            incumbent_mae=inc_mae, challenger_mae=ch_mae,
                            alarms=int(t["alarms"]), started=int(t["start"]), reason=reason)
        if switched:
            self.model_ = challenger
        self.challenger_ = None
        self.last_trial_ = self.n_seen_
        self.events_.append(event)
        for listener in self._listeners:
            listener(event)

    # ------------------------------------------------------------------ export
    def streaming_core(self) -> Any:
        return self._fitted_model().streaming_core()

    def stream_state(self) -> np.ndarray:
        return self._fitted_model().stream_state()

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        if self.model_ is None or self.decision_ is None:
            return {}
        meta = {
            "family": self.model_.name,
            "family_config": self.model_.get_params(),
            "challenger": None if self.challenger_ is None else self.challenger_.name,
            "challenger_config": None if self.challenger_ is None
            else self.challenger_.get_params(),
            "decision": self.decision_.to_dict(),
            "events": [e.to_dict() for e in self.events_],
            "monitor": self.monitor_.state(),
            "n_seen": self.n_seen_, "last_trial": self.last_trial_, "trial": self.trial_,
        }
        state = {"auto/meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8).copy(),
                 "auto/recent_y": self.recent_y_.copy(), "auto/recent_X": self.recent_X_.copy()}
        state.update({f"model/{k}": v for k, v in self.model_.state_dict().items()})
        if self.challenger_ is not None:
            state.update({f"challenger/{k}": v for k, v in self.challenger_.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        from tsforge.models.registry import create

        meta = json.loads(bytes(np.asarray(state["auto/meta"], dtype=np.uint8)).decode())

        def restore(prefix: str, name: str, config: dict[str, Any]) -> Forecaster:
            model = create(name, **config)
            model.n_covariates_ = self.n_covariates_
            n = len(prefix)
            model.load_state_dict({k[n:]: v for k, v in state.items() if k.startswith(prefix)})
            return model

        self.model_ = restore("model/", meta["family"], meta["family_config"])
        self.challenger_ = (None if meta["challenger"] is None else
                            restore("challenger/", meta["challenger"], meta["challenger_config"]))
        d = meta["decision"]
        self.decision_ = Decision(d["sensor"], d["family"], d["role"], d["rule"],
                                  d["explanation"], RegimeProfile.from_dict(d["profile"]))
        self.events_ = [SwitchEvent.from_dict(e) for e in meta["events"]]
        self.monitor_ = self._new_monitor()
        self.monitor_.load_state(meta["monitor"])
        self.n_seen_, self.last_trial_ = int(meta["n_seen"]), int(meta["last_trial"])
        self.trial_ = dict(meta["trial"])
        self.recent_y_ = np.asarray(state["auto/recent_y"], dtype=np.float64).copy()
        self.recent_X_ = np.asarray(state["auto/recent_X"], dtype=np.float64).copy()
