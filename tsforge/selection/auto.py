"""``auto``: an online aggregation of model families, with weights that follow drift.

At ``fit`` (history in engineering units: ``auto`` applies each expert's own
transform chain, see :mod:`tsforge.selection.experts`):

1. the regime profile of the transformed history (:meth:`AutoForecaster.plan`)
   decides which candidates are worth their cost: ``dsf_gru`` only where the
   profile says long memory (policy rule R4), batch-trained families only with
   ``min_history`` readings (R1), seasonal naive only with a season;
2. the candidates are fitted on the first ``1 - validation`` of the history and
   streamed through the rest, chronologically; the aggregation rule
   (:mod:`tsforge.aggregation`, BOA) learns its weights on that stream, and
   candidates whose validation MAE is above ``prune`` times the best are dropped
   (at most ``max_experts`` stay);
3. the kept experts are refitted on the whole history; the weights learned on
   the validation stream (with the share floor) are the starting prior.

While streaming, each reading updates every expert (online families learn) and
the weights of every horizon step; a river drift detector on the aggregate's
one-step residual restarts the weights (:meth:`Aggregator.restart`) so they move
to the experts that fit the new regime within tens of readings.  ``decision``
explains which families carry the weight now and why; ``weight_history`` and
``restarts`` feed the plots of ``backtest`` and the PoC report.

Intervals: the pipeline's wrapper puts the same adaptive conformal rule
(:mod:`tsforge.intervals`) on the aggregate as on any family.  ONNX: the
aggregate is not one ONNX step (one chain per expert; statsmodels experts have
none); :mod:`tsforge.export.aggregate` exports each servable expert's own step and
the BOA state, and :class:`~tsforge.engine.aggregate.AggregateEngine` serves them
on the edge box and in the Kafka service.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np

from tsforge.aggregation import AggregationConfig, Aggregator, summary
from tsforge.drift import DriftMonitor
from tsforge.errors import ConfigError, DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.preprocess.transforms import TransformChain
from tsforge.selection import experts as ex
from tsforge.selection.policy import Decision, PolicyConfig, choose
from tsforge.selection.profile import RegimeProfile, profile_series

#: statsmodels experts: a cheaper likelihood search and refit schedule (ETS fits on a
#: 24-season cost about 90 s on a loaded 2-core machine at statsmodels' defaults).
PEER_SIZING: dict[str, Any] = {"maxiter": 20, "max_window": 1000, "refit_every": 1000}
#: Candidate families, cheapest first; names not registered are skipped.
CANDIDATES = "naive,seasonal_naive,ets,linear,esn,uoro,mlp,dsf_gru"


@dataclasses.dataclass(frozen=True)
class AutoConfig(ForecasterConfig):
    """Attributes
    ----------
    period
        Season length the pipeline found (0: none); passed to families that take one.
    family
        Override: this registry family alone (no aggregation), rule R0.
    experts
        Candidate families, a comma list of registry names.
    transforms
        Chain spec for the trained experts (None: the stationarity analysis of the history).
    validation
        Share of the history streamed to score and weigh the candidates (0: none).
    prune
        Drop candidates whose validation MAE exceeds this multiple of the best.
    max_experts
        Most experts kept after validation (best first).
    loss, share
        Aggregation loss (``"absolute"``: MAE) and the share floor of a restart.
    restart_gap
        Fewest readings between two restarts of the weights.
    windowed, fixed_feedback, short_history, fast_online, online
        Families of each policy role (``plan``, which prunes the candidates).
    min_history, drift_rate, fast_drift_rate, long_dependence, max_radius
        Policy thresholds (:class:`~tsforge.selection.policy.PolicyConfig`).
    params
        Hyper-parameters per family, e.g. ``{"mlp": {"window": 96}}``.
    detectors
        Drift detectors on the aggregate's residual, a comma list.
    sensor
        Name written into alarms and explanations.
    """

    period: int = 0
    family: str = ""
    experts: str = CANDIDATES
    transforms: list[dict[str, Any]] | None = None
    validation: float = 0.2
    prune: float = 1.5
    max_experts: int = 5
    loss: str = "absolute"
    share: float = 0.3
    restart_gap: int = 200
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
    detectors: str = "adwin,page_hinkley"
    sensor: str = "series"


class AutoForecaster(Forecaster):
    """Online BOA aggregation of the families that survive fit-time pruning."""

    name = "auto"
    Config: ClassVar[type[ForecasterConfig]] = AutoConfig
    online = True
    exportable = False
    #: Each expert applies its own chain; ``auto`` sees engineering units.
    uses_transforms: ClassVar[bool] = False

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
        if not 0 <= cfg.validation < 0.9 or cfg.prune < 1 or cfg.max_experts < 1:
            raise ConfigError("auto needs 0 <= validation < 0.9, prune >= 1 and max_experts >= 1"
                              f", got {cfg.validation}, {cfg.prune}, {cfg.max_experts}")
        AggregationConfig(n_experts=1, loss=cfg.loss, share=cfg.share)  # validates both
        self.experts_: list[Any] = []
        self.agg_: Aggregator | None = None
        self.decision_: Decision | None = None
        self.screening_: list[dict[str, Any]] = []
        self.restarts_: list[dict[str, Any]] = []

    @classmethod
    def test_params(cls) -> dict[str, Any]:
        from tsforge.models.registry import model_class

        names = ("linear", "esn")
        params = {n: model_class(n).test_params() for n in names}
        return {"experts": "naive,linear,esn", "params": params, "validation": 0.25,
                "restart_gap": 50}

    # ------------------------------------------------------------------ views
    @property
    def expert_names(self) -> list[str]:
        return [e.model.name for e in self.experts_]

    @property
    def weights(self) -> np.ndarray:
        """Current weights ``(H, K)`` of the experts in :attr:`expert_names`."""
        if self.agg_ is None:
            raise DataError("model 'auto' is not fitted: call fit() first")
        return self.agg_.weights

    @property
    def family(self) -> str | None:
        """The families carrying the weight one step ahead, e.g. ``"esn 0.61, ets 0.39"``."""
        return None if self.agg_ is None else summary(self.expert_names, self.weights[0])

    @property
    def decision(self) -> Decision | None:
        """The fit-time profile and the live explanation of the weights."""
        if self.decision_ is None:
            return None
        return dataclasses.replace(self.decision_, explanation=self.explain())

    @property
    def alarms(self) -> list[Any]:
        return list(self.monitor_.alarms) if hasattr(self, "monitor_") else []

    @property
    def restarts(self) -> list[dict[str, Any]]:
        """Weight restarts so far: reading index, alarm and weights before/after."""
        return list(self.restarts_)

    def explain(self) -> str:
        """Which families carry the weight now and why, in one paragraph."""
        if self.agg_ is None:
            return ""
        names, w = self.expert_names, self.weights[0]
        text = f"aggregate of {len(names)} families, weights 1 step ahead: {summary(names, w)}"
        if self.restarts_:
            last = self.restarts_[-1]
            before = np.asarray(last["weights_before"])
            gain = int(np.argmax(w - before))
            text += (f"; weights moved to {names[gain]} ({before[gain]:.2f} -> {w[gain]:.2f}) "
                     f"after the drift alarm at reading {last['index']} ({last['alarm']}), "
                     f"{len(self.restarts_)} restart(s) in all")
        else:
            text += "; no drift alarm since fit: the weights are those learned on the stream"
        dropped = [s for s in self.screening_ if not s["kept"]]
        kept = [s for s in self.screening_ if s["kept"]]
        if kept:
            text += "; validation MAE " + ", ".join(f"{s['name']} {s['mae']:.3g}" for s in kept)
        if dropped:
            text += "; pruned at fit: " + "; ".join(f"{s['name']} ({s['why']})" for s in dropped)
        return text

    # ------------------------------------------------------------------ policy
    def family_params(self, family: str, profile: RegimeProfile | None = None) -> dict[str, Any]:
        """Hyper-parameters ``family`` is built with: the family's defaults (windows that
        reach a season through seasonal lags, training budgeted by optimiser steps),
        a cheaper schedule for statsmodels experts (:data:`PEER_SIZING`), overridden by
        ``params[family]``.  ``profile`` is accepted for callers that size a family by
        the policy's decision; the sizing does not depend on it."""
        from tsforge.models.registry import model_class

        fields = model_class(family).Config.__dataclass_fields__
        params = {k: v for k, v in PEER_SIZING.items() if k in fields}
        return {**params, **(self.config.params or {}).get(family, {})}

    def plan(self, y: Any) -> Decision:
        """The policy's decision on history ``y`` (transformed), without fitting."""
        cfg = self.config
        y_arr = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64)
        profile = profile_series(y_arr, sensor=cfg.sensor, transforms=None,
                                 period=cfg.period or None, detectors=cfg.detectors or None)
        return choose(profile, self.policy, override=cfg.family or None)

    def candidates(self, decision: Decision,
                   n_history: int) -> tuple[list[str], list[dict[str, Any]]]:
        """Families worth fitting on this profile and history length, and the ones left
        out with the reason."""
        from tsforge.models.registry import MODELS

        cfg, p = self.config, decision.profile
        if cfg.family:
            return [cfg.family], []
        names = [n.strip() for n in cfg.experts.split(",") if n.strip()]
        keep, out = [], []
        for n in names:
            why = ""
            if n not in MODELS:
                why = "not registered"
            elif n == "seasonal_naive" and cfg.period < 2:
                why = "no season"
            elif n in ex.BATCH_TRAINED and n_history < cfg.min_history:
                why = f"{n_history} readings < min_history {cfg.min_history}"
            elif n == self.policy.fixed_feedback and decision.rule != "R4":
                why = (f"no long memory (PACF order {p.pacf_order} <= {cfg.long_dependence} "
                       "or unstable regime)")
            (out.append({"name": n, "kept": False, "mae": float("nan"), "why": why})
             if why else keep.append(n))
        return keep, out

    # ------------------------------------------------------------------ fitting
    def _build(self, name: str, chain: list[dict[str, Any]], profile: RegimeProfile) -> Any:
        cfg = self.config
        params = {"horizon": cfg.horizon, "seed": cfg.seed,
                  **self.family_params(name, profile)}
        if cfg.period > 1:
            params.setdefault("period", cfg.period)
        return ex.build(name, params, chain)

    def _chain(self, y: np.ndarray) -> list[dict[str, Any]]:
        if self.config.transforms is not None:
            return list(self.config.transforms)
        from tsforge.preprocess import analyze

        return analyze(y, name=self.config.sensor).transforms

    def _fit_all(self, names: list[str], y: np.ndarray, X: np.ndarray,
                 chain: list[dict[str, Any]], profile: RegimeProfile) -> tuple[list[Any],
                                                                               list[dict]]:
        fitted, failed = [], []
        for n in names:
            e = self._build(n, chain, profile)
            try:
                e.fit(y, X)
            except (DataError, ConfigError, ValueError, np.linalg.LinAlgError) as exc:
                failed.append({"name": n, "kept": False, "mae": float("nan"),
                               "why": f"could not be fitted: {exc}"})
                continue
            fitted.append(e)
        return fitted, failed

    def fit(self, y: Any, X: Any = None) -> AutoForecaster:
        """Profile, prune, score on the inner validation split, refit, start the weights."""
        y_arr, X_arr = self._check_fit_input(y, X)
        cfg = self.config
        chain = self._chain(y_arr)
        z = np.asarray(TransformChain.from_spec(chain).fit(y_arr).transform(y_arr))
        decision = self.plan(z[np.isfinite(z)])
        names, screening = self.candidates(decision, len(y_arr))
        n_val = int(len(y_arr) * cfg.validation)
        scale = float(np.mean(np.abs(np.diff(y_arr)))) if len(y_arr) > 1 else 1.0
        scale = scale if np.isfinite(scale) and scale > 0 else 1.0
        prior = None
        if n_val >= max(20, 2 * cfg.horizon) and len(names) > 1:
            cut = len(y_arr) - n_val
            fitted, failed = self._fit_all(names, y_arr[:cut], X_arr[:cut], chain,
                                           decision.profile)
            screening += failed
            if not fitted:
                raise DataError(f"auto: no candidate could be fitted ({failed})")
            agg, mae = self._screen(fitted, y_arr[cut:], X_arr[cut:], scale)
            order = [i for i in np.argsort(mae) if np.isfinite(mae[i])][: cfg.max_experts]
            best = mae[order[0]]
            keep = sorted(i for i in order if mae[i] <= cfg.prune * best)
            for i, e in enumerate(fitted):
                why = ("kept" if i in keep else
                       f"validation MAE {mae[i]:.3g} > {cfg.prune:g} x best {best:.3g}"
                       if mae[i] > cfg.prune * best else f"beyond max_experts={cfg.max_experts}")
                screening.append({"name": e.model.name, "kept": i in keep,
                                  "mae": float(mae[i]), "why": why})
            names = [fitted[i].model.name for i in keep]
            w = agg.weights[:, keep].mean(axis=0)
            prior = (1 - cfg.share) * w / w.sum() + cfg.share / len(keep)
        experts, failed = self._fit_all(names, y_arr, X_arr, chain, decision.profile)
        screening += failed
        if not experts:
            raise DataError(f"auto: no candidate could be fitted ({screening})")
        if prior is not None and len(experts) != len(prior):
            prior = None  # a refit failed: start uniform
        self.experts_ = experts
        self.agg_ = Aggregator(AggregationConfig(len(experts), cfg.horizon, cfg.loss, scale,
                                                 share=cfg.share), prior)
        self.decision_ = dataclasses.replace(decision, family="auto", role="aggregate",
                                             rule="aggregate")
        self.screening_ = screening
        self.monitor_ = DriftMonitor(cfg.sensor, cfg.detectors or None)
        self.restarts_ = []
        self.n_seen_ = 0
        self.last_restart_ = -cfg.restart_gap
        self._cache = None
        return self

    def _screen(self, fitted: list[Any], y: np.ndarray, X: np.ndarray,
                scale: float) -> tuple[Aggregator, np.ndarray]:
        """Stream the validation part through the candidates and a fresh aggregator."""
        cfg = self.config
        agg = Aggregator(AggregationConfig(len(fitted), cfg.horizon, cfg.loss, scale,
                                           share=cfg.share))
        preds = np.empty((len(y), cfg.horizon, len(fitted)))
        for t in range(len(y)):
            preds[t] = ex.forecasts(fitted)
            agg.push(preds[t])
            agg.update(y[t])
            for e in fitted:
                e.learn_one(y[t], X[t])
        return agg, ex.validation_errors(preds, y)

    # ------------------------------------------------------------------ streaming
    def _agg(self) -> Aggregator:
        if self.agg_ is None:
            raise DataError("model 'auto' is not fitted: call fit() first")
        return self.agg_

    @property
    def expert_forecasts(self) -> np.ndarray:
        """The experts' forecasts ``(H, K)`` from the current state (cached per reading)."""
        cache = getattr(self, "_cache", None)
        if cache is None or cache[0] != self.n_seen_:
            cache = (self.n_seen_, ex.forecasts(self.experts_))
            self._cache = cache
        return cache[1]

    def forecast(self) -> Forecast:
        agg = self._agg()
        mean = agg.combine(self.expert_forecasts)
        # no expert has a finite forecast: carry the last reading (never NaN downstream)
        return Forecast(mean=np.where(np.isfinite(mean), mean, self._last_y()))

    def _last_y(self) -> float:
        for e in self.experts_:
            if e.model.name == "naive":
                return float(e.forecast().mean[0])
        return float(getattr(self, "last_y_", 0.0))

    def _step(self, y: float, x: np.ndarray | None, learn: bool) -> None:
        x_arr = self._check_step_input(x)
        agg = self._agg()
        experts = self.expert_forecasts
        agg.push(experts)
        if learn and np.isfinite(y):
            err = float(y - agg.combine(experts)[0])
            agg.update(y)
            if np.isfinite(err):
                self._watch(err)
        else:
            agg.update(float("nan"))  # ages the pending forecasts, scores nothing
        for e in self.experts_:
            (e.learn_one if learn else e.update)(y, x_arr)
        if np.isfinite(y):
            self.last_y_ = float(y)
        self.n_seen_ += 1

    def _watch(self, err: float) -> None:
        """Feed the drift detector; restart the weights on an alarm (at most every gap)."""
        before = len(self.monitor_.alarms)
        self.monitor_.update(residual=err)
        fired = self.monitor_.alarms[before:]
        if fired and self.n_seen_ - self.last_restart_ >= self.config.restart_gap:
            agg = self._agg()
            self.restarts_.append({"index": self.n_seen_, "alarm": fired[0].detector,
                                   "weights_before": agg.weights[0].tolist()})
            agg.restart()
            self.last_restart_ = self.n_seen_

    def learn_one(self, y: float, x: np.ndarray | None = None) -> None:
        """Score the pending forecasts, update the weights, let every expert learn."""
        self._step(y, x, learn=True)

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        """Advance every expert without learning; the weights are not updated."""
        self._step(y, x, learn=False)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        if self.agg_ is None or self.decision_ is None:
            return {}
        meta = {"experts": [ex.expert_meta(e) for e in self.experts_],
                "decision": self.decision_.to_dict(), "screening": self.screening_,
                "restarts": self.restarts_, "monitor": self.monitor_.state(),
                "n_seen": self.n_seen_, "last_restart": self.last_restart_,
                "last_y": getattr(self, "last_y_", 0.0)}
        state = {"auto/meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8).copy()}
        state.update({f"agg/{k}": v for k, v in self.agg_.state_dict().items()})
        for i, e in enumerate(self.experts_):
            state.update({f"expert{i}/{k}": v for k, v in e.model.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if "auto/meta" not in state:
            return
        meta = json.loads(bytes(np.asarray(state["auto/meta"], dtype=np.uint8)).decode())
        self.experts_ = []
        for i, m in enumerate(meta["experts"]):
            prefix = f"expert{i}/"
            sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            self.experts_.append(ex.restore(m, sub, self.n_covariates_))
        self.agg_ = Aggregator.from_state({k[4:]: v for k, v in state.items()
                                           if k.startswith("agg/")})
        d = meta["decision"]
        self.decision_ = Decision(d["sensor"], d["family"], d["role"], d["rule"],
                                  d["explanation"], RegimeProfile.from_dict(d["profile"]))
        self.screening_, self.restarts_ = meta["screening"], meta["restarts"]
        self.monitor_ = DriftMonitor(self.config.sensor, self.config.detectors or None)
        self.monitor_.load_state(meta["monitor"])
        self.n_seen_, self.last_restart_ = int(meta["n_seen"]), int(meta["last_restart"])
        self.last_y_ = float(meta["last_y"])
        self._cache = None
