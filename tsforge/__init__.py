"""tsforge: streaming time-series forecasting for industrial sensor data.

``import tsforge`` is cheap and needs only numpy: heavy dependencies (torch,
statsmodels, river, polars, kafka-python) load in the modules that use them.

The main entry points:

- :func:`tsforge.data.read_csv` and :func:`tsforge.data.prepare` read and validate sensor data;
- :func:`tsforge.preprocess.analyze` tests stationarity and recommends invertible transforms;
- :func:`tsforge.models.create` builds a forecaster from its registry name;
- :func:`tsforge.backtest.backtest` streams a held-out tail through forecasters and scores them;
- :func:`tsforge.export.export_onnx` writes a streaming-step ONNX artifact;
- :class:`tsforge.runtime.StreamingRuntime` serves such an artifact with numpy and onnxruntime only.
"""

from tsforge._version import __version__
from tsforge.errors import ConfigError, DataError, MissingDependencyError, TsforgeError

__all__ = [
    "ConfigError",
    "DataError",
    "MissingDependencyError",
    "TsforgeError",
    "__version__",
]
