"""Keeping one bad message from stopping its partition.

A poison message is one whose decoding, validation or forecasting raises, or
whose value is physically impossible.  The worker must neither crash on it (the
restarted worker would read the same offset and crash again, and the valid
readings behind it would never be forecast) nor drop it silently: it goes to
the dead-letter topic with the reason, and the rest of the poll is served.

- :func:`decode_isolating`: a decoder that raises on a whole poll is run again
  message by message; the messages that still raise are rejected with the error.
- :class:`RangeCheck`: ``[validate]`` ranges; a reading outside its sensor's
  ``[low, high]`` is rejected (or clipped, ``policy = "clip"``).
- :func:`step_isolating`: when the engine raises on a poll, every sensor of the
  poll gets its state from before the poll back and the readings are forecast
  one by one; a reading that raises is rejected and its sensor's state restored,
  so the state is as if the reading had never arrived (as on a replay).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from tsforge.connectors.base import RawBatch, ReadingBatch, Rejected

log = logging.getLogger("tsforge.serve")


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def concat_readings(parts: list[ReadingBatch]) -> ReadingBatch:
    """Rows of several batches, in order (``index`` kept as given)."""
    return ReadingBatch(np.concatenate([p.sensor for p in parts]),
                        np.concatenate([p.ts for p in parts]),
                        np.concatenate([p.values for p in parts]),
                        np.concatenate([p.index for p in parts]))


def decode_isolating(decoder: Any, raw: RawBatch) -> tuple[ReadingBatch, Rejected]:
    """``decoder.decode(raw)``; if that raises, each message on its own (see module doc)."""
    try:
        return decoder.decode(raw)
    except Exception as exc:
        log.warning("decoder raised on a poll; decoding message by message",
                    extra={"fields": {"error": _error(exc), "messages": len(raw)}})
    rejected = Rejected()
    parts: list[ReadingBatch] = []
    for i in range(len(raw)):
        one = RawBatch([raw.values[i]], raw.partitions[i:i + 1], raw.offsets[i:i + 1],
                       raw.topic)
        try:
            good, bad = decoder.decode(one)
        except Exception as exc:
            rejected.add(i, f"decoder failed: {_error(exc)}")
            continue
        if len(bad):
            rejected.add(i, bad.reasons[0])
        elif len(good):
            parts.append(dataclasses.replace(good, index=np.full(len(good), i)))
    if not parts:
        return decoder.decode(RawBatch.empty(raw.topic)), rejected
    return concat_readings(parts), rejected


class RangeCheck:
    """The ``[validate]`` physical ranges (:class:`~tsforge.pipeline.spec.ValidateSpec`)."""

    def __init__(self, spec: Any = None) -> None:
        self.default = (-np.inf, np.inf) if spec is None else tuple(map(float, spec.range))
        self.per_sensor = {} if spec is None else {s: spec.bounds(s) for s in spec.sensors}
        self.clip = spec is not None and spec.policy == "clip"
        self.active = bool(self.per_sensor) or self.default != (-np.inf, np.inf)
        self.clipped = 0

    def apply(self, good: ReadingBatch, rejected: Rejected) -> ReadingBatch:
        """``good`` without the readings out of range (added to ``rejected``), or clipped."""
        if not self.active or not len(good):
            return good
        lo = np.full(len(good), self.default[0])
        hi = np.full(len(good), self.default[1])
        for sensor, (a, b) in self.per_sensor.items():
            mine = good.sensor == sensor
            lo[mine], hi[mine] = a, b
        v = good.values
        out = ((v < lo[:, None]) | (v > hi[:, None])).any(axis=1)
        if not out.any():
            return good
        if self.clip:
            self.clipped += int(out.sum())
            return dataclasses.replace(good, values=np.clip(v, lo[:, None], hi[:, None]))
        for r in np.flatnonzero(out).tolist():
            rejected.add(int(good.index[r]),
                         f"value {v[r].tolist()} outside the physical range "
                         f"[{lo[r]:g}, {hi[r]:g}] of sensor '{good.sensor[r]}' "
                         "([validate] range / sensors)")
        return good.take(~out)


def _concat_blocks(blocks: list[Any]) -> Any:
    """Row-wise concatenation of forecast blocks (any dataclass of row arrays)."""
    first = blocks[0]
    return type(first)(**{f.name: np.concatenate([getattr(b, f.name) for b in blocks])
                          for f in dataclasses.fields(first)})


def step_isolating(engine: Any, good: ReadingBatch,
                   rejected: Rejected) -> tuple[ReadingBatch, Any]:
    """``engine.step(good)``, keeping a reading that raises out of the state (module doc)."""
    sensors = np.unique(good.sensor).tolist()
    saved = {s: engine.sensor_state(s) for s in sensors}
    try:
        return good, engine.step(good)
    except Exception as exc:
        log.warning("forecast raised on a poll; forecasting reading by reading",
                    extra={"fields": {"error": _error(exc), "readings": len(good)}})
    for s, state in saved.items():
        engine.load_sensor_state(s, state)
    keep: list[int] = []
    blocks = [engine.step(good.take(np.zeros(0, np.int64)))]
    for i in range(len(good)):
        one = good.take(np.array([i]))
        sensor = one.sensor[0]
        before = engine.sensor_state(sensor)
        try:
            blocks.append(engine.step(one))
        except Exception as exc:
            engine.load_sensor_state(sensor, before)
            rejected.add(int(good.index[i]), f"forecast failed: {_error(exc)}")
            continue
        keep.append(i)
    return good.take(np.asarray(keep, np.int64)), _concat_blocks(blocks)
