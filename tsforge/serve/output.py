"""Forecast messages: keys that make duplicates detectable, JSON values.

Every forecast has the id ``"{sensor}|{ts}|{step}|{version}"``: the sensor, the
timestamp of the reading it follows (epoch ms), the horizon step (1..H) and the
model version.  Replaying a reading under the same model gives the same id (and
the same numbers), so a consumer drops duplicates by id.

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
    forecasts inside (``sensor|ts[i]|k|version``), not by the message key::

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


def forecast_id(sensor: str, ts: int, step: int, version: str) -> str:
    """The id of one forecast (see the module docstring)."""
    return f"{sensor}|{ts}|{step}|{version}"


def _num(x: float) -> str:
    return repr(x) if math.isfinite(x) else "null"


def encode(sensors: np.ndarray, ts: np.ndarray, block: ForecastBlock,
           levels: tuple[float, ...], layout: str = "step") -> tuple[list[bytes], list[bytes]]:
    """Kafka keys and JSON values of every forecast of ``block`` (rows of a batch)."""
    names = sensors.tolist()
    stamps = ts.tolist()
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
            head = f'"sensor":{quoted[s]},"ts":{t},"version":"{v}"'
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
            values.append((f'{{"sensor":{quoted[s]},"ts":{t},"version":"{v}",'
                           f'"mean":[{ms}],"intervals":{{{iv}}}}}').encode())
    elif layout == "batch":
        return _encode_batch(sensors, ts, block, levels, have)
    else:
        raise ValueError(f"output layout {layout!r} unknown; valid: {', '.join(LAYOUTS)}")
    return keys, values


def _encode_batch(sensors: np.ndarray, ts: np.ndarray, block: ForecastBlock,
                  levels: tuple[float, ...], have: np.ndarray) -> tuple[list[bytes], list[bytes]]:
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
        keys.append(f"{name}|{stamps[0]}-{stamps[-1]}|{version}".encode())
        values.append(json.dumps(body).encode())
    return keys, values
