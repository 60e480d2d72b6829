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

``intervals`` is ``{}`` while a sensor's conformal intervals warm up.
"""

from __future__ import annotations

import json
import math

import numpy as np

from tsforge.serve.engine import ForecastBlock

LAYOUTS = ("step", "reading")


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
    else:
        raise ValueError(f"output layout {layout!r} unknown; valid: {', '.join(LAYOUTS)}")
    return keys, values
