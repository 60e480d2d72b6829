"""Torch-free streaming runtime: numpy + onnxruntime only.

>>> from tsforge.runtime import StreamingRuntime  # doctest: +SKIP
>>> rt = StreamingRuntime("model.onnx")           # doctest: +SKIP
>>> rt.push("pump-3", 71.2)                       # doctest: +SKIP
"""

from tsforge.runtime.artifact import Artifact, load_artifact
from tsforge.runtime.streaming import StreamingRuntime

__all__ = ["Artifact", "StreamingRuntime", "load_artifact"]
