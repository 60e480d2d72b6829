"""The pipeline spec: a TOML file parsed into frozen dataclasses, strictly validated.

One file describes one of tsforge's three uses (``use = "csv" | "kafka" | "edge"``)::

    name = "factory-csv-poc"
    use = "csv"

    [source]                 # where readings come from
    path = "data/"           # a CSV file or a folder of CSVs (relative to this file)

    [model]                  # the default for every sensor
    family = "auto"          # a registry name (`tsforge models-available`) or "auto"
    horizon = 12

    [sensors.temperature]    # per-sensor overrides
    family = "uoro"

Every table is a dataclass below; each field's default is what an absent key means.
Unknown tables and keys, wrong types and values outside a field's choices raise
:class:`~tsforge.errors.ConfigError` naming the file, the key and the valid values.
Relative paths are resolved against the directory of the TOML file, so a pipeline
runs the same from any working directory.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsforge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

USES = ("csv", "kafka", "edge")


def _choices(*values: str) -> dict[str, tuple[str, ...]]:
    return {"choices": values}


@dataclass(frozen=True)
class SourceSpec:
    """Where readings come from (``use = "csv"`` or ``"edge"``).

    ``path`` is a CSV file or a folder of CSV files; ``time_column`` and ``time_format``
    as for ``tsforge analyze``; ``freq`` the resampling step (``"auto"``: the median
    step, ``"none"``: keep as is).  The edge runtime also reads ``"stdin"``.
    ``separator`` is the CSV separator (sniffed when empty); ``units`` maps sensors to
    their unit (``{ OT = "°C" }``) for plot axes and tables.
    """

    kind: str = field(default="csv", metadata=_choices("csv", "stdin", "socket", "kafka"))
    path: str = ""
    time_column: str = ""
    time_format: str = ""
    freq: str = "auto"
    columns: list[str] = field(default_factory=list)
    separator: str = ""
    units: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KafkaSpec:
    """The Kafka side of ``use = "kafka"`` (and of an edge box that reads Kafka)."""

    bootstrap_servers: list[str] = field(default_factory=lambda: ["localhost:9092"])
    input_topic: str = "sensor-readings"
    group_id: str = "tsforge"
    output_topic: str = "sensor-forecasts"
    dead_letter_topic: str = "sensor-readings-dlq"
    decoder: str = "json"
    auto_offset_reset: str = field(default="earliest", metadata=_choices("earliest", "latest"))
    max_poll_records: int = 5000
    poll_timeout_ms: int = 500
    max_message_bytes: int = 65536
    session_timeout_ms: int = 10000
    max_poll_interval_ms: int = 30000
    output_layout: str = field(default="step", metadata=_choices("step", "reading", "batch"))
    #: How long the broker may be unreachable (produce, commit) before the worker exits.
    outage_limit_seconds: float = 300.0


@dataclass(frozen=True)
class ModelSpec:
    """The model of every sensor unless a ``[sensors.NAME]`` table overrides it."""

    family: str = "auto"
    horizon: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    train_fraction: float = 0.7
    transforms: str = field(default="auto", metadata=_choices("auto", "none"))
    #: Warm-up history (CSV, one column per sensor) the served models are fitted on.
    history: str = ""
    #: Serve online families in the library, learning from every reading (tsforge serve).
    online_learning: bool = False
    #: Studies (tsforge report) give hour-of-day / day-of-week covariates where the
    #: timestamps resolve them and the chain leaves the season in.
    calendar: bool = True


@dataclass(frozen=True)
class SensorSpec:
    """Per-sensor overrides of ``[model]``; empty values mean "as in [model]"."""

    family: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    transforms: str = field(default="", metadata=_choices("", "auto", "none"))


@dataclass(frozen=True)
class DriftSpec:
    """River drift detectors watching the readings (``input``) and forecast residuals."""

    detectors: list[str] = field(default_factory=lambda: ["adwin", "page_hinkley"])
    signals: list[str] = field(default_factory=lambda: ["input", "residual"])
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IntervalSpec:
    """Online conformal prediction intervals (see :mod:`tsforge.intervals`)."""

    levels: list[float] = field(default_factory=lambda: [0.8, 0.95])
    method: str = field(default="aci", metadata=_choices("aci", "split"))


@dataclass(frozen=True)
class RegistrySpec:
    """The model registry directory (empty: no registry)."""

    path: str = ""


@dataclass(frozen=True)
class MonitorSpec:
    """Live-error monitor with automatic rollback; ``params`` go to the monitor's rule."""

    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointSpec:
    """Where per-sensor state is checkpointed, and how often (seconds)."""

    path: str = ""
    every_seconds: float = 10.0


@dataclass(frozen=True)
class ValidateSpec:
    """The physical range of readings (``use = "kafka"``).

    A reading with a value outside ``[low, high]`` (``range`` for every sensor,
    ``sensors = { NAME = [low, high] }`` per sensor) is sent to the dead-letter
    topic (``policy = "dead_letter"``) or clipped to the range (``"clip"``).
    ``range = [-inf, inf]`` turns the check off.
    """

    range: list[float] = field(default_factory=lambda: [-1e9, 1e9])
    sensors: dict[str, Any] = field(default_factory=dict)
    policy: str = field(default="dead_letter", metadata=_choices("dead_letter", "clip"))

    def bounds(self, sensor: str) -> tuple[float, float]:
        """``(low, high)`` of ``sensor``."""
        low, high = self.sensors.get(sensor, self.range)
        return float(low), float(high)


@dataclass(frozen=True)
class MetricsSpec:
    """Prometheus metrics and the health endpoint (``port = 0`` turns them off)."""

    port: int = 9108
    host: str = "0.0.0.0"


@dataclass(frozen=True)
class OutputSpec:
    """Where results go: a folder (csv use) or a file; ``report`` also writes HTML."""

    path: str = "tsforge-out"
    report: bool = True


@dataclass(frozen=True)
class PipelineSpec:
    """A whole pipeline; see the module docstring for the file format."""

    name: str
    use: str
    source: SourceSpec = field(default_factory=SourceSpec)
    kafka: KafkaSpec = field(default_factory=KafkaSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    sensors: dict[str, SensorSpec] = field(default_factory=dict)
    drift: DriftSpec = field(default_factory=DriftSpec)
    intervals: IntervalSpec = field(default_factory=IntervalSpec)
    registry: RegistrySpec = field(default_factory=RegistrySpec)
    monitor: MonitorSpec = field(default_factory=MonitorSpec)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    metrics: MetricsSpec = field(default_factory=MetricsSpec)
    validate: ValidateSpec = field(default_factory=ValidateSpec)
    output: OutputSpec = field(default_factory=OutputSpec)
    #: The file the spec was read from (None when parsed from a dict).
    origin: Path | None = None

    def sensor(self, name: str) -> tuple[str, dict[str, Any], str]:
        """``(family, params, transforms)`` for sensor ``name``, overrides applied."""
        over = self.sensors.get(name, SensorSpec())
        params = {**self.model.params, **over.params} if not over.family else dict(over.params)
        return (over.family or self.model.family, params,
                over.transforms or self.model.transforms)

    def replace(self, **changes: Any) -> PipelineSpec:
        """A copy with top-level fields replaced (used by command-line overrides)."""
        return dataclasses.replace(self, **changes)


# Tables whose value is a single dataclass.
_SECTIONS: dict[str, type] = {
    "source": SourceSpec,
    "kafka": KafkaSpec,
    "model": ModelSpec,
    "drift": DriftSpec,
    "intervals": IntervalSpec,
    "registry": RegistrySpec,
    "monitor": MonitorSpec,
    "checkpoint": CheckpointSpec,
    "metrics": MetricsSpec,
    "validate": ValidateSpec,
    "output": OutputSpec,
}
# Fields holding paths, resolved against the spec file's directory.
_PATH_FIELDS = {("source", "path"), ("registry", "path"), ("checkpoint", "path"),
                ("output", "path"), ("model", "history")}


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate the pipeline spec at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read pipeline spec {path}: {exc.strerror or exc}") from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the line it names") from exc
    return parse_spec(table, origin=path)


def parse_spec(table: dict[str, Any], origin: Path | None = None) -> PipelineSpec:
    """Validate an already-parsed TOML table (``origin`` is used in messages and paths)."""
    where = str(origin) if origin else "pipeline spec"
    valid_top = ["name", "use", "sensors", *_SECTIONS]
    unknown = sorted(set(table) - set(valid_top))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid top-level keys: "
                          f"{', '.join(valid_top)}")
    for key in ("name", "use"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise ConfigError(f"{where}: '{key}' is required and must be a string"
                              + (f"; one of {', '.join(USES)}" if key == "use" else ""))
    if table["use"] not in USES:
        raise ConfigError(f"{where}: use = {table['use']!r} is not valid; "
                          f"valid values: {', '.join(USES)}")
    base = origin.resolve().parent if origin else None
    sections = {name: _build(cls, table.get(name, {}), f"{where}: [{name}]",
                             base, name) for name, cls in _SECTIONS.items()}
    sensors_table = table.get("sensors", {})
    if not isinstance(sensors_table, dict):
        raise ConfigError(f"{where}: [sensors] must be a table of [sensors.NAME] tables")
    sensors = {str(name): _build(SensorSpec, body, f"{where}: [sensors.{name}]", base,
                                 "sensors") for name, body in sensors_table.items()}
    spec = PipelineSpec(name=table["name"], use=table["use"], sensors=sensors,
                        origin=origin, **sections)
    _check_families(spec, where)
    _check_ranges(spec.validate, where)
    return spec


def _check_ranges(validate: ValidateSpec, where: str) -> None:
    """Every range of ``[validate]`` is two numbers, low < high (inf allowed)."""
    named = [("range", validate.range)]
    named += [(f"sensors.{n}", r) for n, r in validate.sensors.items()]
    for key, r in named:
        ok = (isinstance(r, list) and len(r) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
              and float(r[0]) < float(r[1]))
        if not ok:
            raise ConfigError(f"{where}: [validate] {key} = {r!r} is not valid; give "
                              "[low, high] with low < high (use -inf/inf for no bound)")


def _check_families(spec: PipelineSpec, where: str) -> None:
    from tsforge.models.registry import available

    valid = ["auto", *available()]
    named = [("[model] family", spec.model.family)]
    named += [(f"[sensors.{n}] family", s.family) for n, s in spec.sensors.items() if s.family]
    for key, family in named:
        if family not in valid:
            raise ConfigError(f"{where}: {key} = {family!r} is not a model; valid values: "
                              f"{', '.join(valid)}")
    if spec.model.horizon < 1:
        raise ConfigError(f"{where}: [model] horizon must be >= 1, got {spec.model.horizon}")
    if not 0.0 < spec.model.train_fraction < 1.0:
        raise ConfigError(f"{where}: [model] train_fraction must be in (0, 1), "
                          f"got {spec.model.train_fraction}")
    for level in spec.intervals.levels:
        if not 0.0 < level < 1.0:
            raise ConfigError(f"{where}: [intervals] levels must each be in (0, 1), "
                              f"got {level}")


def _build(cls: type, body: Any, where: str, base: Path | None, section: str) -> Any:
    if not isinstance(body, dict):
        raise ConfigError(f"{where} must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: "
                          f"{', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in body.items():
        value = _coerce(value, hints[key], f"{where} {key}")
        choices = fields[key].metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{where} {key} = {value!r} is not valid; valid values: "
                              f"{', '.join(repr(c) for c in choices)}")
        if (section, key) in _PATH_FIELDS and value and base is not None:
            value = str((base / value).resolve()) if not Path(value).is_absolute() else value
        values[key] = value
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint (str, int, float, bool, list[X], dict)."""
    origin = typing.get_origin(hint)
    if origin in (list,):
        (item,) = typing.get_args(hint)
        if isinstance(value, str) and item is str:
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {item.__name__}, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if origin in (dict,):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return value
    if origin in (types.UnionType, typing.Union):  # pragma: no cover - not used by fields
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool) and (not isinstance(value, hint) or
                                            (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
    return value
