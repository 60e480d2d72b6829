"""The default message decoder: one JSON object per message.

Accepted messages::

    {"sensor": "pump-3", "ts": 1700000000000, "value": 71.2}
    {"sensor": "pump-3", "ts": "2023-11-14T22:13:20Z", "values": [71.2, 3.1]}

``ts`` is epoch milliseconds (integer) or an ISO-8601 string (no zone means UTC);
``value`` is one number, ``values`` a list of ``channels`` numbers (the target
first, then covariates).  Field names are configurable.

Speed: every message is parsed by the C JSON parser, then a whole poll is checked
at once on the columns (type sets, ``np.isfinite``).  Only when that check fails
is each message examined on its own, to name what is wrong with it; the bad ones
are returned with a reason and the good ones are decoded as usual.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np
from tsforge.connectors.base import RawBatch, ReadingBatch, Rejected

_NUM = (int, float)
_TS_MIN, _TS_MAX = -(2**63), 2**63 - 1


class _Bad:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class JsonDecoder:
    """Decode JSON sensor readings into columns (see the module docstring).

    Parameters
    ----------
    channels
        Values per reading (1 + covariates of the model); a reading with another
        count is rejected.
    max_bytes
        Larger messages are rejected unparsed (protects the worker's memory).
    sensor_field, ts_field, value_field, values_field
        Names of the JSON fields.
    allow_nonfinite
        Accept ``NaN``/``Infinity`` values (the runtime then imputes them);
        by default such a reading is a dead letter.

    >>> from tsforge.connectors.base import RawBatch
    >>> import numpy as np
    >>> raw = RawBatch([b'{"sensor": "a", "ts": 5, "value": 1.5}', b'{oops'],
    ...                np.zeros(2, np.int32), np.arange(2))
    >>> good, bad = JsonDecoder().decode(raw)
    >>> good.sensor.tolist(), good.values[:, 0].tolist(), bad.reasons[0][:12]
    (['a'], [1.5], 'invalid JSON')
    """

    def __init__(self, *, channels: int = 1, max_bytes: int = 65536,
                 sensor_field: str = "sensor", ts_field: str = "ts",
                 value_field: str = "value", values_field: str = "values",
                 allow_nonfinite: bool = False) -> None:
        self.channels = int(channels)
        self.max_bytes = int(max_bytes)
        self.sensor_field = sensor_field
        self.ts_field = ts_field
        self.value_field = value_field
        self.values_field = values_field
        self.allow_nonfinite = allow_nonfinite

    # ------------------------------------------------------------------ public
    def decode(self, batch: RawBatch) -> tuple[ReadingBatch, Rejected]:
        """Decode every message of ``batch``; see :class:`~tsforge.connectors.base.Decoder`."""
        objs = [self._load(v) for v in batch.values]
        fast = self._decode_fast(objs)
        if fast is not None:
            return fast, Rejected()
        return self._decode_slow(objs)

    # ------------------------------------------------------------------ parsing
    def _load(self, value: bytes) -> Any:
        if value is None:
            return _Bad("empty message (no value bytes)")
        if len(value) > self.max_bytes:
            return _Bad(f"message of {len(value)} bytes exceeds max_message_bytes="
                        f"{self.max_bytes}")
        try:
            return json.loads(value)
        except (ValueError, RecursionError) as exc:
            return _Bad(f"invalid JSON: {str(exc)[:200]}")

    def _decode_fast(self, objs: list[Any]) -> ReadingBatch | None:
        """Columns for a poll in which every message is well formed, else None."""
        n = len(objs)
        if n == 0 or self.channels != 1:
            return None if n else _empty(self.channels)
        if {type(o) for o in objs} != {dict}:
            return None
        sf, tf, vf = self.sensor_field, self.ts_field, self.value_field
        try:
            sensors = [o[sf] for o in objs]
            stamps = [o[tf] for o in objs]
            values = [o[vf] for o in objs]
        except KeyError:
            return None
        if {type(s) for s in sensors} != {str} or {type(t) for t in stamps} != {int}:
            return None
        if not {type(v) for v in values} <= {int, float}:
            return None
        try:  # an integer beyond float64 or a timestamp beyond int64 overflows here
            vals = np.asarray(values, dtype=np.float64)
            ts = np.asarray(stamps, dtype=np.int64)
        except (OverflowError, ValueError, TypeError):
            return None
        if not self.allow_nonfinite and not np.isfinite(vals).all():
            return None
        sensor = np.asarray(sensors)
        if (sensor == "").any():
            return None
        return ReadingBatch(sensor, ts, vals[:, None], np.arange(n))

    def _decode_slow(self, objs: list[Any]) -> tuple[ReadingBatch, Rejected]:
        rejected = Rejected()
        rows: list[int] = []
        sensors: list[str] = []
        stamps: list[int] = []
        values: list[list[float]] = []
        for i, obj in enumerate(objs):
            parsed = self._check(obj)
            if isinstance(parsed, _Bad):
                rejected.add(i, parsed.reason)
                continue
            rows.append(i)
            sensors.append(parsed[0])
            stamps.append(parsed[1])
            values.append(parsed[2])
        if not rows:
            return _empty(self.channels), rejected
        good = ReadingBatch(np.asarray(sensors), np.asarray(stamps, dtype=np.int64),
                            np.asarray(values, dtype=np.float64).reshape(len(rows), -1),
                            np.asarray(rows))
        return good, rejected

    def _check(self, obj: Any) -> tuple[str, int, list[float]] | _Bad:
        """One message's (sensor, ts_ms, values) or the reason it is unusable."""
        if isinstance(obj, _Bad):
            return obj
        if not isinstance(obj, dict):
            return _Bad(f"message is a JSON {type(obj).__name__}, expected an object with "
                        f"fields '{self.sensor_field}', '{self.ts_field}', '{self.value_field}'")
        sf, tf = self.sensor_field, self.ts_field
        for key in (sf, tf):
            if key not in obj:
                return _Bad(f"missing field '{key}'")
        sensor = obj[sf]
        if not isinstance(sensor, str) or not sensor:
            return _Bad(f"field '{sf}' must be a non-empty string, got {_show(sensor)}")
        ts = _timestamp_ms(obj[tf])
        if isinstance(ts, _Bad):
            return _Bad(f"field '{tf}': {ts.reason}")
        vals = self._values(obj)
        if isinstance(vals, _Bad):
            return vals
        return sensor, ts, vals

    def _values(self, obj: dict[str, Any]) -> list[float] | _Bad:
        vf, vsf = self.value_field, self.values_field
        if vf in obj:
            raw, where = [obj[vf]], vf
        elif vsf in obj:
            raw, where = obj[vsf], vsf
            if not isinstance(raw, list):
                return _Bad(f"field '{vsf}' must be a list of numbers, got {_show(raw)}")
        else:
            return _Bad(f"missing field '{vf}' (one number) or '{vsf}' (a list of numbers)")
        if len(raw) != self.channels:
            return _Bad(f"'{where}' has {len(raw)} number(s), the model expects "
                        f"{self.channels} (target first, then covariates)")
        out: list[float] = []
        for v in raw:
            if isinstance(v, bool) or not isinstance(v, _NUM):
                return _Bad(f"field '{where}' must hold numbers, got {_show(v)}")
            try:
                f = float(v)
            except OverflowError:
                return _Bad(f"field '{where}' holds an integer beyond the float64 range "
                            f"({_show(v)})")
            if not self.allow_nonfinite and not math.isfinite(f):
                return _Bad(f"field '{where}' is not finite ({f}); send a number or "
                            "leave the reading out")
            out.append(f)
        return out


def _timestamp_ms(ts: Any) -> int | _Bad:
    if isinstance(ts, bool):
        return _Bad(f"expected epoch milliseconds or ISO-8601, got {_show(ts)}")
    if isinstance(ts, int):
        if not _TS_MIN <= ts <= _TS_MAX:
            return _Bad(f"epoch milliseconds {_show(ts)} outside the int64 range")
        return ts
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return round(dt.timestamp() * 1000)
        except (ValueError, OverflowError, OSError):
            return _Bad(f"{ts[:40]!r} is not an ISO-8601 timestamp")
    return _Bad(f"expected epoch milliseconds (integer) or ISO-8601 string, got {_show(ts)}")


def _show(v: Any) -> str:
    """A short description of a JSON value for a reason (never raises)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**40:
        return f"int of about {int(v.bit_length() * 0.30103) + 1} digits"
    try:
        text = json.dumps(v) if not isinstance(v, float) else repr(v)
    except (ValueError, TypeError, RecursionError):
        text = "..."
    return f"{type(v).__name__} {text[:40]}"


def _empty(channels: int) -> ReadingBatch:
    return ReadingBatch(np.zeros(0, dtype="<U1"), np.zeros(0, np.int64),
                        np.zeros((0, channels)), np.zeros(0, np.int64))


#: Decoders by the name used in ``[kafka] decoder``.
DECODERS = {"json": JsonDecoder}


def make_decoder(name: str, **options: Any) -> Any:
    """The decoder named ``name``: a key of :data:`DECODERS` or ``"package.module:Class"``.

    A custom class is built with the same keyword options as :class:`JsonDecoder`
    (``channels``, ``max_bytes``) and must have a ``decode(RawBatch)`` method.
    """
    import importlib

    from tsforge.errors import ConfigError

    if name in DECODERS:
        return DECODERS[name](**options)
    if ":" not in name:
        raise ConfigError(f"[kafka] decoder = {name!r} is not valid; valid values: "
                          f"{', '.join(DECODERS)} or 'package.module:Class'")
    module, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"[kafka] decoder = {name!r} cannot be imported ({exc}); "
                          "check the module path and class name") from exc
    decoder = cls(**options)
    if not callable(getattr(decoder, "decode", None)):
        raise ConfigError(f"[kafka] decoder {name!r} has no decode(batch) method")
    return decoder
