"""Model groups kept as versions of a :class:`~tsforge.registry.Registry`.

With ``[registry] path`` set, each model group of the service (see
:mod:`tsforge.serve.models`) is a registry of its own at ``<path>/<group>``:
the worker serves that registry's champion, and a model fitted at start-up is
registered there as a new version and promoted.  A version holds the exported
ONNX step and, in its ``extra`` metadata, the per-sensor transform chains
(``{"sensors": {name: chain spec}}``), so that every worker of the consumer
group serves exactly the same model and statistics.  The version name
(``v0001``, ...) is the model version in every output key.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tsforge.errors import ConfigError
from tsforge.registry import Registry
from tsforge.registry.layout import STATE_FILE

log = logging.getLogger("tsforge.serve")


def is_registry(directory: Path) -> bool:
    """True when ``directory`` is a registry (it holds the registry's state file)."""
    return (directory / STATE_FILE).exists()


def load_version(registry: Registry, name: str, version: str | None = None) -> Any:
    """The :class:`~tsforge.serve.models.ModelGroup` of ``version`` (default: champion).

    The version's files are verified against their checksums first.
    """
    from tsforge.serve.models import ModelGroup

    info = registry.verify(version)
    sensors = info.extra.get("sensors")
    if info.onnx_path is None or not isinstance(sensors, dict):
        raise ConfigError(
            f"registry {registry.root} version '{info.name}' was not registered by "
            "`tsforge serve` (it needs an ONNX file and extra={'sensors': {name: chain}}); "
            "promote a version the service registered, or remove the folder to refit")
    return ModelGroup(name, info.family, info.onnx_path, info.name, sensors,
                      registry=registry.root)


def champion_group(directory: Path) -> Any:
    """The champion of the registry at ``directory``, or None when it has none yet."""
    if not is_registry(directory):
        return None
    registry = Registry(directory, create=False)
    if registry.champion is None:
        return None
    return load_version(registry, directory.name)


def fit_and_register(directory: Path, fit: Any) -> Any:
    """Fit a group with ``fit(tmpdir)`` (returns a ModelGroup), register and promote it.

    The model is exported into a temporary folder beside the registry, registered
    (files copied and checksummed by the registry) and the folder removed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    registry = Registry(directory)
    tmp = Path(tempfile.mkdtemp(prefix=".fit-", dir=directory.parent))
    try:
        fitted = fit(tmp)
        info = registry.register(onnx=fitted.onnx_path, family=fitted.family,
                                 extra={"sensors": fitted.sensors, "group": directory.name},
                                 notes="fitted at start-up by tsforge serve")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    registry.promote(info.name, reason="fitted at start-up")
    log.info("model registered", extra={"fields": {"group": directory.name,
                                                   "version": info.name,
                                                   "registry": str(directory)}})
    return load_version(registry, directory.name, info.name)
