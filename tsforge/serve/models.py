"""The models a worker serves: fitted at start-up from a warm-up history, or loaded.

Sensors configured alike (same family, parameters and transform setting after
``[sensors.NAME]`` overrides) form a *group* served by one exported ONNX model,
so that one onnxruntime call per time step serves the whole group.  Each sensor
keeps its own transform statistics (fitted on its own warm-up history), its own
recurrent state and its own conformal intervals.  A sensor that needs a model
of its own gets a ``[sensors.NAME]`` table with different settings.

Layout of the model store (``[registry] path``, else ``<checkpoint>/models``)::

    <store>/<family>-<hash>/model.onnx     the exported streaming step
    <store>/<family>-<hash>/model.json     its manifest (checksum, config, chain)
    <store>/<family>-<hash>/sensors.json   {"sensors": {name: chain spec}}

With ``[registry] path`` each ``<store>/<family>-<hash>/`` is instead a model
registry whose champion is served (:mod:`tsforge.serve.versions`); a plain group
folder found there is still loaded as it is.

``family = "auto"`` serves the online aggregation of experts: ``auto`` is fitted
on the group's first sensor with servable candidates only (families with an
ONNX step) and exported as an aggregate (:mod:`tsforge.export.aggregate`)::

    <store>/auto-<hash>/aggregate.json                 the BOA state and the experts
    <store>/auto-<hash>/experts/<k>-<family>/model.onnx
    <store>/auto-<hash>/sensors.json                   {name: [chain spec per expert]}

served by :class:`~tsforge.engine.aggregate.AggregateEngine`; its version is the
first 12 hex digits of ``aggregate.json``'s SHA-256.  An aggregate is not kept in
a model registry (``[registry] path`` with ``family = "auto"`` is refused).

Every worker of a consumer group must see the same store (a shared volume),
so that all of them serve the same model versions.  Fitting needs the library's
``all`` extra (torch); loading an existing store needs numpy and onnxruntime only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsforge.errors import ConfigError
from tsforge.io_utils import atomic_write_bytes, sha256_file
from tsforge.pipeline.spec import PipelineSpec
from tsforge.runtime.artifact import AGGREGATE_MANIFEST

log = logging.getLogger("tsforge.serve")


@dataclass(frozen=True)
class ModelGroup:
    """One exported model (or aggregate, ``family`` "auto") and the sensors it serves.

    ``onnx_path`` is the ONNX step, or an aggregate's ``aggregate.json`` (then each
    sensor's entry in ``sensors`` holds one chain spec per expert).
    ``version`` is the first 12 hex digits of the ONNX file's SHA-256, or the
    registry version name when the group lives in a registry (``registry``, see
    :mod:`tsforge.serve.versions`): it changes whenever the model does, and it is
    part of every output key.
    """

    name: str
    family: str
    onnx_path: Path
    version: str
    sensors: dict[str, list[dict[str, Any]]]
    registry: Path | None = None


def model_store(spec: PipelineSpec) -> Path:
    """Where the worker's models live (see the module docstring)."""
    if spec.registry.path:
        return Path(spec.registry.path)
    if spec.checkpoint.path:
        return Path(spec.checkpoint.path) / "models"
    raise ConfigError("no place for models: set [registry] path (or [checkpoint] path) in "
                      "the pipeline spec")


def prepare_models(spec: PipelineSpec) -> list[ModelGroup]:
    """Fit and export missing models from ``[model] history``; load the rest."""
    store = model_store(spec)
    if not spec.model.history:
        groups = load_groups(store)
        if not groups:
            raise ConfigError(
                f"no models in {store} and no warm-up history: set [model] history = "
                "'warmup.csv' (one column per sensor) to fit them at start-up, or point "
                "[registry] path at a folder of exported models")
        return groups
    frame = _read_history(spec.model.history)
    by_key: dict[str, list[str]] = {}
    settings: dict[str, tuple[str, dict[str, Any], str]] = {}
    for sensor in frame.sensors:
        family, params, transforms = spec.sensor(sensor)
        if family == "auto" and spec.registry.path:
            raise ConfigError(
                f"sensor '{sensor}': family = 'auto' (an aggregate of experts) is not served "
                "from a model registry; drop [registry] path and keep the models under "
                "[checkpoint] path, or give the sensor one family")
        key = json.dumps([family, params, transforms, spec.model.horizon,
                          spec.intervals.levels, spec.intervals.method], sort_keys=True)
        name = f"{family}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        by_key.setdefault(name, []).append(sensor)
        settings[name] = (family, params, transforms)
    groups = []
    for name, sensors in by_key.items():
        directory = store / name
        existing = _load_group(directory)
        if existing is not None and set(sensors) <= set(existing.sensors):
            groups.append(existing)
            continue
        if spec.registry.path and (existing is None or existing.registry is not None):
            from tsforge.serve.versions import fit_and_register

            groups.append(fit_and_register(directory, lambda tmp, n=name, s=sensors: _fit_group(
                spec, tmp, n, settings[n], frame, s)))
            continue
        fit = _fit_aggregate if settings[name][0] == "auto" else _fit_group
        groups.append(fit(spec, directory, name, settings[name], frame, sensors))
    return groups


def load_groups(store: Path) -> list[ModelGroup]:
    """Every model group found under ``store`` (registry groups: their champion)."""
    if not store.is_dir():
        return []
    found = (_load_group(d) for d in sorted(store.iterdir())
             if d.is_dir() and not d.name.startswith("."))
    return [g for g in found if g is not None]


def _load_group(directory: Path) -> ModelGroup | None:
    from tsforge.serve.versions import champion_group, is_registry

    if is_registry(directory):
        return champion_group(directory)
    aggregate, sensors_path = directory / AGGREGATE_MANIFEST, directory / "sensors.json"
    if aggregate.exists() and sensors_path.exists():
        sensors = json.loads(sensors_path.read_text())["sensors"]
        return ModelGroup(directory.name, "auto", aggregate, sha256_file(aggregate)[:12],
                          sensors)
    onnx_path, sensors_path = directory / "model.onnx", directory / "sensors.json"
    if not (onnx_path.exists() and sensors_path.exists()):
        return None
    manifest = json.loads(onnx_path.with_suffix(".json").read_text())
    sensors = json.loads(sensors_path.read_text())["sensors"]
    return ModelGroup(directory.name, manifest["model"], onnx_path, manifest["sha256"][:12],
                      sensors)


def _read_history(path: str) -> Any:
    from tsforge.data import prepare, read_csv

    if not Path(path).exists():
        raise ConfigError(f"[model] history = '{path}' does not exist; point it at a CSV "
                          "with one column per sensor (or a long sensor,value layout)")
    frame, _ = prepare(read_csv(path))
    return frame


def _fit_group(spec: PipelineSpec, directory: Path, name: str,
               setting: tuple[str, dict[str, Any], str], frame: Any,
               sensors: list[str]) -> ModelGroup:
    """Fit the group's model on its first sensor, export it, fit every sensor's chain."""
    from tsforge.export import export_onnx
    from tsforge.intervals import IntervalConfig
    from tsforge.models.registry import create
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.preprocess import analyze
    from tsforge.preprocess.transforms import TransformChain

    family, params, transforms = setting
    first = sensors[0]
    y = frame.column(first)
    chain = analyze(y, name=first).transforms if transforms == "auto" else []
    levels = spec.intervals.levels
    intervals = (IntervalConfig(levels=tuple(levels), method=spec.intervals.method)
                 if levels else None)
    log.info("fitting model", extra={"fields": {"group": name, "family": family,
                                                "sensors": len(sensors), "fit_on": first}})
    model = TransformedForecaster(create(family, horizon=spec.model.horizon, **params), chain,
                                  intervals=intervals).fit(y)
    report = export_onnx(model, directory / "model.onnx", sensor=first, parity_steps=300)
    kinds = model.chain_.to_spec()
    own = {s: TransformChain.from_spec(kinds).fit(frame.column(s)).to_spec() if kinds else []
           for s in sensors}
    atomic_write_bytes(directory / "sensors.json",
                       json.dumps({"family": family, "sensors": own}).encode())
    return ModelGroup(name, family, Path(report.onnx_path), report.sha256[:12], own)


def _fit_aggregate(spec: PipelineSpec, directory: Path, name: str,
                   setting: tuple[str, dict[str, Any], str], frame: Any,
                   sensors: list[str]) -> ModelGroup:
    """Fit ``auto`` (servable candidates) on the group's first sensor, export it as an
    aggregate, fit every sensor's chain of every expert."""
    from tsforge.export.aggregate import export_aggregate, fit_chains, servable_params
    from tsforge.intervals import IntervalConfig
    from tsforge.models.registry import create
    from tsforge.models.transformed import TransformedForecaster
    from tsforge.preprocess import analyze
    from tsforge.runtime.artifact import load_aggregate

    _, params, transforms = setting
    first = sensors[0]
    y = frame.column(first)
    params, dropped = servable_params(params)
    if transforms != "auto":
        params = {**params, "transforms": []}
    params.setdefault("period", analyze(y, name=first).period or 0)
    levels = spec.intervals.levels
    intervals = (IntervalConfig(levels=tuple(levels), method=spec.intervals.method)
                 if levels else None)
    log.info("fitting aggregate", extra={"fields": {
        "group": name, "experts": params["experts"], "left_out": dropped,
        "sensors": len(sensors), "fit_on": first}})
    model = TransformedForecaster(create("auto", horizon=spec.model.horizon, sensor=first,
                                         **params), [], intervals=intervals).fit(y)
    rep = export_aggregate(model, directory, sensor=first, dropped=dropped)
    log.info("aggregate exported", extra={"fields": {
        "group": name, "experts": rep.experts, "explanation": model.model.explain()}})
    aggregate = load_aggregate(directory)
    own = {s: fit_chains(aggregate, frame.column(s)) for s in sensors}
    atomic_write_bytes(directory / "sensors.json",
                       json.dumps({"family": "auto", "sensors": own}).encode())
    return ModelGroup(name, "auto", Path(rep.manifest_path), rep.sha256[:12], own)
