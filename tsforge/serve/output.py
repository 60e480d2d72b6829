"""Forecast messages: keys that make duplicates detectable, JSON values.

Every forecast has the id ``"{sensor}|{ts}{tag}|{step}|{version}"``: the sensor,
the timestamp of the reading it follows (epoch ms), the horizon step (1..H) and
the model version.  ``tag`` is empty for a reading whose timestamp is after the
sensor's previous one (the normal case).  Otherwise it names the reading, so that
two forecasts with different numbers never share an id:

``#P.O``
    the reading's timestamp is not after the sensor's previous reading (a
    duplicate or out-of-order timestamp): partition ``P``, offset ``O`` of its
    message.  Its forecasts follow the state the reading left, so they differ
    from those of the earlier reading with that timestamp.
``~rP.O``
    the sensor's state restarted fresh at offset ``O`` of partition ``P``
    because no checkpoint of the partition could be read (see
    :mod:`tsforge.serve.checkpoint`); every later forecast of the sensor carries
    it (its state differs from an uninterrupted run's).

Replaying a reading under the same model and state gives the same id and the
same numbers, so a consumer drops duplicates by id.

Layouts (``[kafka] output_layout``):

``"step"`` (default)
    One message per forecast step; the Kafka key is the id::

        {"id": "pump-3|1700000000000|1|3f2a9c1b7d4e", "sensor": "pump-3",
         "ts": 1700000000000, "step": 1, "version": "3f2a9c1b7d4e", "mean": 71.9,
         "intervals": {"0.8": [71.1, 72.7], "0.95": [70.6, 73.2]}}

``"reading"``
    One message per reading with all H steps (H times fewer messages); the Kafka
    key is ``"{sensor}|{ts}|{version}"`` and step ``k``'s id is built as above::

        {"sensor": "pump-3", "ts": 1700000000000, "version": "3f2a9c1b7d4e",
         "mean": [71.9, 72.0], "intervals": {"0.8": [[71.1, 71.0], [72.7, 73.0]]}}

``"batch"``
    One message per sensor and poll with all its readings' forecasts, for
    throughput (the producer sends a few messages per poll instead of one per
    forecast).  The Kafka key is ``"{sensor}|{first ts}-{last ts}|{version}"``;
    after a restart the poll boundaries differ, so deduplicate by the ids of the
    forecasts inside (``sensor|ts[i]tags[i]|k|version``; ``tags`` is present only
    when a reading has one), not by the message key::

        {"sensor": "pump-3", "version": "3f2a9c1b7d4e", "ts": [1700000000000, ...],
         "mean": [[71.9, 72.0], ...],
         "intervals": {"0.8": [[[71.1, 71.0], [72.7, 73.0]], ...]}}

    where ``intervals[level][i]`` is ``[lower, upper]`` of reading ``i`` (null
    while warming up).

``intervals`` is ``{}`` while a sensor's conformal intervals warm up.
"""

from __future__ import annotations

import json
import math

import numpy as np

from tsforge.serve.engine import ForecastBlock

LAYOUTS = ("step", "reading", "batch")


def forecast_id(sensor: str, ts: int, step: int, version: str, tag: str = "") -> str:
    """The id of one forecast (see the module docstring)."""
    return f"{sensor}|{ts}{tag}|{step}|{version}"


def _num(x: float) -> str:
    return repr(x) if math.isfinite(x) else "null"


def encode(sensors: np.ndarray, ts: np.ndarray, block: ForecastBlock,
           levels: tuple[float, ...], layout: str = "step",
           tags: list[str] | None = None) -> tuple[list[bytes], list[bytes]]:
    """Kafka keys and JSON values of every forecast of ``block`` (rows of a batch).

    ``tags`` (one per row, see the module docstring) are appended to the
    timestamps of the ids; None: no row has one.
    """
    names = sensors.tolist()
    stamps = ts.tolist() if tags is None else [f"{t}{g}" for t, g in zip(ts.tolist(), tags)]
    plain = ts.tolist()
    versions = block.version.tolist()
    mean = block.mean.tolist()
    H = block.mean.shape[1]
    quoted = {s: json.dumps(s) for s in set(names)}
    have = ~np.isnan(block.half).any(axis=(1, 2)) if levels else np.zeros(len(names), bool)
    lo = (block.mean[:, None, :] - block.half).tolist() if levels else None
    hi = (block.mean[:, None, :] + block.half).tolist() if levels else None
    lv = [repr(float(v)) for v in levels]
    keys: list[bytes] = []
    values: list[bytes] = []
    if layout == "step":
        for i, (s, t, v, m) in enumerate(zip(names, stamps, versions, mean)):
            head = f'"sensor":{quoted[s]},"ts":{plain[i]},"version":"{v}"'
            for k in range(H):
                fid = f"{s}|{t}|{k + 1}|{v}"
                if have[i]:
                    iv = ",".join(f'"{lv[j]}":[{_num(lo[i][j][k])},{_num(hi[i][j][k])}]'
                                  for j in range(len(lv)))
                else:
                    iv = ""
                keys.append(fid.encode())
                values.append((f'{{"id":{json.dumps(fid)},{head},"step":{k + 1},'
                               f'"mean":{_num(m[k])},"intervals":{{{iv}}}}}').encode())
    elif layout == "reading":
        for i, (s, t, v, m) in enumerate(zip(names, stamps, versions, mean)):
            ms = ",".join(_num(x) for x in m)
            if have[i]:
                iv = ",".join(f'"{lv[j]}":[[{",".join(_num(x) for x in lo[i][j])}],'
                              f'[{",".join(_num(x) for x in hi[i][j])}]]'
                              for j in range(len(lv)))
            else:
                iv = ""
            keys.append(f"{s}|{t}|{v}".encode())
            values.append((f'{{"sensor":{quoted[s]},"ts":{plain[i]},"version":"{v}",'
                           f'"mean":[{ms}],"intervals":{{{iv}}}}}').encode())
    elif layout == "batch":
        return _encode_batch(sensors, ts, block, levels, have, tags)
    else:
        raise ValueError(f"output layout {layout!r} unknown; valid: {', '.join(LAYOUTS)}")
    return keys, values


def _encode_batch(sensors: np.ndarray, ts: np.ndarray, block: ForecastBlock,
                  levels: tuple[float, ...], have: np.ndarray,
                  tags: list[str] | None = None) -> tuple[list[bytes], list[bytes]]:
    keys: list[bytes] = []
    values: list[bytes] = []
    if not len(sensors):
        return keys, values
    names, inverse = np.unique(sensors, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
    for j, name in enumerate(names.tolist()):
        rows = order[bounds[j]:bounds[j + 1]]
        stamps = ts[rows].tolist()
        version = block.version[rows[0]]
        intervals = {}
        for li, level in enumerate(levels):
            lo = block.mean[rows] - block.half[rows, li]
            hi = block.mean[rows] + block.half[rows, li]
            intervals[repr(float(level))] = [[a, b] if ok else None for a, b, ok in
                                             zip(lo.tolist(), hi.tolist(), have[rows])]
        mean = block.mean[rows]
        body = {"sensor": name, "version": version, "ts": stamps,
                "mean": mean.tolist() if np.isfinite(mean).all()
                else np.where(np.isfinite(mean), mean, None).tolist(),
                "intervals": intervals}
        if tags is not None and any(tags[r] for r in rows.tolist()):
            body["tags"] = [tags[r] for r in rows.tolist()]
        keys.append(f"{name}|{stamps[0]}-{stamps[-1]}|{version}".encode())
        values.append(json.dumps(body).encode())
    return keys, values


class IdTags:
    """The per-reading id tags of the module docstring, and what they need to stay stable.

    Per sensor it remembers the last timestamp forecast and the ``~r`` tag of a
    fresh restart; both travel in the partition's checkpoint (:meth:`extra` /
    :meth:`restore`), so a replay after a crash tags the same readings the same way.
    """

    def __init__(self) -> None:
        self.last_ts: dict[str, int] = {}
        self.lineage: dict[str, str] = {}
        #: Partitions restarted with fresh state (no readable checkpoint).
        self.cold: set[int] = set()

    def tags(self, sensors: np.ndarray, ts: np.ndarray, partitions: np.ndarray,
             offsets: np.ndarray) -> list[str] | None:
        """One tag per reading (in arrival order), or None when every tag is empty."""
        last, lineage, cold = self.last_ts, self.lineage, self.cold
        out: list[str] = []
        tagged = False
        for s, t, p, o in zip(sensors.tolist(), ts.tolist(), partitions.tolist(),
                              offsets.tolist()):
            prev = last.get(s)
            if prev is None and p in cold:
                lineage[s] = f"~r{p}.{o}"
            tag = lineage.get(s, "")
            if prev is not None and t <= prev:
                tag += f"#{p}.{o}"
            else:
                last[s] = t
            out.append(tag)
            tagged = tagged or bool(tag)
        return out if tagged else None

    def extra(self, sensors: list[str]) -> dict[str, dict]:
        """What a checkpoint keeps of ``sensors`` (JSON)."""
        return {"last_ts": {s: self.last_ts[s] for s in sensors if s in self.last_ts},
                "lineage": {s: self.lineage[s] for s in sensors if s in self.lineage}}

    def restore(self, extra: dict) -> None:
        """Take back what :meth:`extra` saved (a checkpoint's ``extra``)."""
        self.last_ts.update({str(s): int(t) for s, t in extra.get("last_ts", {}).items()})
        self.lineage.update({str(s): str(g) for s, g in extra.get("lineage", {}).items()})

    def drop(self, sensors: list[str]) -> None:
        for s in sensors:
            self.last_ts.pop(s, None)
            self.lineage.pop(s, None)
