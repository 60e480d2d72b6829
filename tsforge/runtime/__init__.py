"""Torch-free streaming runtime: numpy + onnxruntime only.

>>> from tsforge.runtime import EdgeService      # doctest: +SKIP
>>> svc = EdgeService("bundle/", adapt=True)       # doctest: +SKIP
>>> svc.push("pump-3", 71.2).mean                  # doctest: +SKIP
"""

from tsforge.runtime.artifact import Artifact, load_artifact
from tsforge.runtime.bundle import Bundle, load_bundle, verify_bundle
from tsforge.runtime.service import EdgeService
from tsforge.runtime.streaming import StreamingRuntime

__all__ = ["Artifact", "Bundle", "EdgeService", "StreamingRuntime", "load_artifact",
           "load_bundle", "verify_bundle"]
