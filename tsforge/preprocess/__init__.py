"""Preprocessing: stationarity analysis and invertible transforms (DESIGN.md §4).

Importing this package needs numpy only; statsmodels and matplotlib load when
:func:`analyze` or :func:`plot_decomposition` is called.
"""

from tsforge.preprocess.plots import plot_decomposition
from tsforge.preprocess.stationarity import StationarityReport, analyze
from tsforge.preprocess.transforms import TransformChain, transform_from_spec

__all__ = [
    "StationarityReport",
    "TransformChain",
    "analyze",
    "plot_decomposition",
    "transform_from_spec",
]
