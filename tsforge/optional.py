"""Import optional dependencies with an error that names the extra to install.

The edge runtime must import with numpy and onnxruntime alone, so every other
third-party package is imported through :func:`require` at the place it is used.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tsforge.errors import MissingDependencyError

# Which pip extra provides each optional module.
_EXTRA_OF = {
    "torch": "all",
    "onnx": "all",
    "statsmodels": "all",
    "river": "all",
    "pandas": "all",
    "polars": "all",
    "kafka": "all",
    "matplotlib": "all",
    "tqdm": "all",
    "prometheus_client": "all",
}


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` explaining how to get it.

    Parameters
    ----------
    module
        Dotted module name, e.g. ``"statsmodels.tsa.stattools"``.
    feature
        What the caller was trying to do, used in the error message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top, "all")
        raise MissingDependencyError(
            f"{feature} needs the Python package '{top}', which is not installed. "
            f"Install it with: pip install 'tsforge[{extra}]'"
        ) from exc
