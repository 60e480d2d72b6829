"""The model registry: one visible table from registry name to implementation.

Entries are ``"module:Class"`` strings so that listing or validating names does
not import torch.  Pipelines, the CLI and the conformance tests go through
:func:`create` and :func:`available`; they never import a model class directly.
"""

from __future__ import annotations

import importlib
from typing import Any

from tsforge.errors import ConfigError
from tsforge.models.base import Forecaster

#: Registry name -> "module:Class".  Add new families here, in one place.
MODELS: dict[str, str] = {
    # simple baselines
    "naive": "tsforge.models.baselines:Naive",
    "seasonal_naive": "tsforge.models.baselines:SeasonalNaive",
    # feed-forward windowed
    "linear": "tsforge.models.linear:LinearForecaster",
    "mlp": "tsforge.models.mlp:LagMLP",
    "tcn": "tsforge.models.tcn:TCNForecaster",
    # recurrent baselines trained with BPTT
    "rnn": "tsforge.models.recurrent:RNNForecaster",
    "gru": "tsforge.models.recurrent:GRUForecaster",
    "lstm": "tsforge.models.recurrent:LSTMForecaster",
    "stable_rnn": "tsforge.models.stability:StableRNNForecaster",
    # fixed-feedback (DSF) training of recurrent stacks
    "dsf_rnn": "tsforge.models.dsf.forecasters:DSFRNNForecaster",
    "dsf_gru": "tsforge.models.dsf.forecasters:DSFGRUForecaster",
    "dsf_lstm": "tsforge.models.dsf.forecasters:DSFLSTMForecaster",
    "diag_ssm": "tsforge.models.dsf.forecasters:DiagSSMForecaster",
    # online recurrent learners (no BPTT)
    "rtrl": "tsforge.models.online.learners:RTRLForecaster",
    "uoro": "tsforge.models.online.learners:UOROForecaster",
    "esn": "tsforge.models.online.esn:EchoStateForecaster",
    "ptncn": "tsforge.models.online.ptncn:PTNCNForecaster",
    # peer baselines, wrapped (river: online; statsmodels: refitted on a schedule)
    "snarimax": "tsforge.models.snarimax:SNARIMAX",
    "holt_winters": "tsforge.models.holt_winters:HoltWinters",
    "ets": "tsforge.models.ets:ETS",
    "arima": "tsforge.models.arima:ARIMA",
    # picks one of the families above per sensor by the regime policy (docs/selection.md)
    "auto": "tsforge.selection.auto:AutoForecaster",
}


def available() -> list[str]:
    """Registry names in the order of :data:`MODELS`."""
    return list(MODELS)


def model_class(name: str) -> type[Forecaster]:
    """Return the class registered as ``name``."""
    try:
        target = MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model '{name}'; valid names: {', '.join(available())}"
        ) from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls


def create(name: str, **params: Any) -> Forecaster:
    """Build the forecaster registered as ``name`` with hyper-parameters ``params``.

    Unknown names and parameters raise :class:`~tsforge.errors.ConfigError` listing
    the valid ones.
    """
    return model_class(name)(**params)
