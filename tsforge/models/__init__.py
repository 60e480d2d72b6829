"""Forecaster families behind one protocol (:class:`~tsforge.models.base.Forecaster`)."""

from tsforge.models.base import Forecast, Forecaster, ForecasterConfig, load_forecaster
from tsforge.models.registry import MODELS, available, create, model_class

__all__ = [
    "MODELS",
    "Forecast",
    "Forecaster",
    "ForecasterConfig",
    "available",
    "create",
    "load_forecaster",
    "model_class",
]
