"""Versioned model store on the local filesystem (numpy + onnxruntime only).

>>> from tsforge.registry import Registry               # doctest: +SKIP
>>> reg = Registry("models-registry")                  # doctest: +SKIP
>>> reg.register(onnx="mlp.onnx", metrics={"mae": 0.4})  # doctest: +SKIP
>>> reg.promote("v0001"); reg.rollback()               # doctest: +SKIP
"""

from tsforge.registry.layout import STAGES, RegistryCorruptError
from tsforge.registry.lock import RegistryLockedError
from tsforge.registry.names import validate_version
from tsforge.registry.recover import RecoveryReport, check_registry, recover_registry
from tsforge.registry.store import Registry, VersionInfo

__all__ = [
    "STAGES",
    "RecoveryReport",
    "Registry",
    "RegistryCorruptError",
    "RegistryLockedError",
    "VersionInfo",
    "check_registry",
    "recover_registry",
    "validate_version",
]
