"""Exception types.  Every message says what was wrong and what to do about it."""

from __future__ import annotations


class TsforgeError(Exception):
    """Base class of every error tsforge raises on purpose."""


class DataError(TsforgeError, ValueError):
    """Input data cannot be used as given (file, column, row or value named in the message)."""


class ConfigError(TsforgeError, ValueError):
    """A configuration key or value is invalid; the message lists the valid choices."""


class ArtifactError(TsforgeError):
    """A model file or bundle is missing, truncated, tampered with or of the wrong kind."""


class MissingDependencyError(TsforgeError, ImportError):
    """An optional dependency is needed for this feature; the message names the extra to install."""
