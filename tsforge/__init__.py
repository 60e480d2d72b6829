"""tsforge: streaming time-series forecasting for industrial sensor data.

``import tsforge`` is cheap and needs only numpy: heavy dependencies (torch,
statsmodels, river, polars, kafka-python) load in the modules that use them.

The main entry points:

- :func:`tsforge.forecast` takes a pandas or polars DataFrame and returns the forecasts
  with their prediction intervals as a DataFrame of the same library;
- :func:`tsforge.data.read_csv` and :func:`tsforge.data.prepare` read and validate sensor data;
- :func:`tsforge.preprocess.analyze` tests stationarity and recommends invertible transforms;
- :func:`tsforge.models.create` builds a forecaster from its registry name;
- :func:`tsforge.backtest.backtest` streams a held-out tail through forecasters and scores them;
- :func:`tsforge.export.export_onnx` writes a streaming-step ONNX artifact;
- :class:`tsforge.runtime.StreamingRuntime` serves such an artifact with numpy and onnxruntime only.
"""

from tsforge._version import __version__
from tsforge.errors import ConfigError, DataError, MissingDependencyError, TsforgeError


def forecast(data: object, **kwargs: object) -> object:
    """Forecast every sensor of a pandas or polars DataFrame: see :func:`tsforge.api.forecast`
    (imported on first use so that ``import tsforge`` stays light)."""
    from tsforge.api import forecast as _forecast

    return _forecast(data, **kwargs)


__all__ = [
    "ConfigError",
    "DataError",
    "MissingDependencyError",
    "TsforgeError",
    "__version__",
    "forecast",
]
