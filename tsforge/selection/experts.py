"""The experts of ``auto``: registry families, each behind its own transform chain.

``auto`` sees readings in engineering units.  Every expert is a registry family
wrapped in a :class:`~tsforge.models.transformed.TransformedForecaster` without
intervals: trained families get the chain the stationarity analysis recommends,
baselines and statsmodels peers (``uses_transforms = False``) the raw readings,
exactly as each of them is used on its own.  This module builds the experts,
scores them on the inner validation split, and saves/restores them as arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsforge.models.base import Forecaster
from tsforge.models.transformed import TransformedForecaster
from tsforge.preprocess.transforms import Scale, TransformChain

#: Families trained by batch: they need ``min_history`` readings (policy rule R1).
BATCH_TRAINED = ("mlp", "dsf_gru", "tcn", "gru", "lstm", "rnn", "linear")


def build(name: str, params: dict[str, Any], chain: list[dict[str, Any]]) -> TransformedForecaster:
    """Registry family ``name`` with ``params`` behind ``chain`` (no intervals)."""
    from tsforge.models.registry import create, model_class

    fields = model_class(name).Config.__dataclass_fields__
    params = {k: v for k, v in params.items() if k in fields}
    if "progress" in fields:
        params.setdefault("progress", False)
    return TransformedForecaster(create(name, **params), chain, intervals=None)


def forecasts(experts: list[TransformedForecaster]) -> np.ndarray:
    """The experts' mean forecasts, shape ``(H, K)`` (NaN for an expert that fails)."""
    cols = []
    for e in experts:
        try:
            f = np.asarray(e.forecast().mean, dtype=np.float64)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            f = np.full(e.horizon, np.nan)
        cols.append(np.where(np.isfinite(f), f, np.nan))
    return np.column_stack(cols)


def validation_errors(preds: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Mean absolute error per expert of forecasts ``(T, H, K)`` against ``actual`` (T,).

    ``preds[t, h]`` targets ``actual[t + h]``; targets past the end are not scored,
    nor are NaN forecasts (an expert with no finite forecast scores inf).
    """
    n, h, k = preds.shape
    total, count = np.zeros(k), np.zeros(k)
    for j in range(h):
        err = np.abs(preds[: n - j, j, :] - actual[j:, None])
        ok = np.isfinite(err)
        total += np.where(ok, err, 0.0).sum(axis=0)
        count += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def expert_meta(e: TransformedForecaster) -> dict[str, Any]:
    """What restores an expert besides its model's arrays (JSON-ready)."""
    return {"name": e.model.name, "config": e.model.get_params(),
            "chain": e.chain_.to_spec(), "transforms": e.transforms,
            "covariate_scales": [s.to_spec() for s in e.covariate_scales_],
            "last_x": None if e.last_x_ is None else e.last_x_.tolist(),
            "n_imputed": e.n_imputed_}


def restore(meta: dict[str, Any], state: dict[str, np.ndarray],
            n_covariates: int | None) -> TransformedForecaster:
    """Rebuild an expert from :func:`expert_meta` and its model's ``state_dict``."""
    from tsforge.models.registry import create

    model: Forecaster = create(meta["name"], **meta["config"])
    model.n_covariates_ = n_covariates
    model.load_state_dict(state)
    e = TransformedForecaster(model, meta["transforms"], intervals=None)
    e.chain_ = TransformChain.from_spec(meta["chain"])
    e.covariate_scales_ = [Scale(s["mean"], s["std"]) for s in meta["covariate_scales"]]
    e.last_x_ = None if meta["last_x"] is None else np.asarray(meta["last_x"], dtype=np.float64)
    e.n_imputed_ = int(meta["n_imputed"])
    return e
