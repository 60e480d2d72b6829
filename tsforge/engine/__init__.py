"""The one serving engine: columnar, numpy + onnxruntime only (DESIGN.md section 7).

:class:`GroupEngine` serves one exported model to all sensors of its group; the
adapters (:mod:`tsforge.runtime` for the edge box and the library,
:mod:`tsforge.serve` for Kafka) only translate their transport to its arrays.
"""

from tsforge.engine.group import GroupEngine, StepResult
from tsforge.engine.latency import LatencyHistogram

__all__ = ["GroupEngine", "LatencyHistogram", "StepResult"]
