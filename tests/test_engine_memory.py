"""Serving a million readings leaves resident memory flat (no per-reading growth).

The per-sensor runtime appended every call's latency to a list; the engine keeps
latencies in a fixed-size histogram and all sensor state in preallocated arrays.
"""

from __future__ import annotations

import gc
import os

import numpy as np
from _linear_onnx import fit_ar, write_linear_ar

from tsforge.runtime import StreamingRuntime


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_million_readings_keep_memory_flat(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=600))
    path = write_linear_ar(tmp_path / "ar.onnx", *fit_ar(y, 4), sensor="s0")
    rt = StreamingRuntime(path)
    S, steps = 1000, 1000
    names = [f"s{i}" for i in range(S)]
    live = y[-1] + np.cumsum(rng.normal(size=(steps, S)), axis=0)
    live[500, 7] = np.nan  # an imputed reading on the way
    rss = []
    for t in range(steps):
        rt.push_many(names, live[t])
        if t in (100, steps - 1):
            gc.collect()
            rss.append(_rss_bytes())
    for t in range(20_000):  # the single-reading path, one call each
        rt.push("s1", float(live[-1, 1] + 0.01 * t))
    gc.collect()
    rss.append(_rss_bytes())
    assert rt.sensors["s7"].imputed == 1
    assert rt.latency.count == steps + 20_000 and rt.latency.counts.size == 181
    # the old list grew ~45 bytes a reading: 45 MB here; allow 4 MB of allocator noise
    assert max(rss) - rss[0] < 4 * 2**20, [r / 2**20 for r in rss]
