"""A transform chain for all sensors of a model group, its parameters in per-sensor arrays.

The model group's sensors share the chain's *kinds* (and a deseasonalize period);
each sensor has its own fitted statistics.  Rather than one
:class:`~tsforge.preprocess.transforms.TransformChain` object per sensor, the
statistics live in arrays indexed by sensor (``mean``/``std`` of a scale, the last
level of a difference, the profile and phase of a deseasonalize step), so one
step of many sensors is a handful of array operations.  The arithmetic is that of
the chain's ``transform_one``/``inverse_forecast`` in the same order, so the
numbers are the same to the last bit.  Chains convert to and from their spec
(``to_spec``/``from_spec``): checkpoints and bundles keep the spec format.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tsforge.errors import ConfigError
from tsforge.preprocess.transforms import TransformChain


class ChainArrays:
    """Per-sensor parameters of a chain of kinds ``kinds`` (see the module docstring)."""

    def __init__(self, template: list[dict[str, Any]], capacity: int = 16) -> None:
        steps = TransformChain.from_spec(template).steps  # validates the spec
        self.kinds = [s.kind for s in steps]
        self.period = next((s.period for s in steps if s.kind == "deseasonalize"), 0)
        self.capacity = 0
        self.mean = self.std = self.last = np.zeros(0)
        self.profile = np.zeros((0, max(self.period, 1)))
        self.phase = np.zeros(0, dtype=np.int64)
        # Fields of a spec the arithmetic never reads, kept to write the spec back.
        self._starts: dict[int, list[int]] = {}
        self._firsts: dict[int, list[Any]] = {}
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` sensors (arrays keep their values)."""
        if capacity <= self.capacity:
            return
        self.mean, self.std = grown(self.mean, capacity, 0.0), grown(self.std, capacity, 1.0)
        self.last = grown(self.last, capacity, 0.0)
        self.profile = grown(self.profile, capacity, 0.0)
        self.phase = grown(self.phase, capacity, 0)
        self.capacity = capacity

    # ------------------------------------------------------------------ specs
    def set_spec(self, i: int, spec: list[dict[str, Any]]) -> None:
        """Load sensor ``i``'s chain from its spec (same kinds as the template)."""
        steps = TransformChain.from_spec(spec).steps
        if [s.kind for s in steps] != self.kinds:
            raise ConfigError(f"transform chain {[s.kind for s in steps]} does not have the "
                              f"kinds {self.kinds} of these arrays")
        for s in steps:
            if s.kind == "scale":
                self.mean[i], self.std[i] = s.mean, s.std
            elif s.kind == "difference":
                self.last[i] = np.nan if s.last is None else s.last
            else:
                if s.period != self.period:
                    raise ConfigError(f"deseasonalize period {s.period} differs from the "
                                      f"model group's {self.period}")
                self.profile[i] = s.profile
                self.phase[i] = s.phase
        self._starts[i] = [getattr(s, "start_phase", 0) for s in steps]
        self._firsts[i] = [getattr(s, "first", None) for s in steps]

    def spec(self, i: int) -> list[dict[str, Any]]:
        """Sensor ``i``'s chain as a spec (what ``TransformChain.to_spec`` gives)."""
        out: list[dict[str, Any]] = []
        starts = self._starts.get(i, [0] * len(self.kinds))
        firsts = self._firsts.get(i, [None] * len(self.kinds))
        for k, kind in enumerate(self.kinds):
            if kind == "scale":
                out.append({"kind": kind, "mean": float(self.mean[i]), "std": float(self.std[i])})
            elif kind == "difference":
                last = float(self.last[i])
                out.append({"kind": kind, "first": firsts[k],
                            "last": None if math.isnan(last) else last})
            else:
                out.append({"kind": kind, "period": self.period,
                            "profile": self.profile[i].tolist(), "phase": int(self.phase[i]),
                            "start_phase": int(starts[k])})
        return out

    # ------------------------------------------------------------------ batch
    def transform(self, idx: Any, y: np.ndarray, fresh: np.ndarray | None) -> np.ndarray:
        """Transform one reading of each sensor ``idx`` (distinct); advances their state.

        ``idx`` is an index array or a slice (``0..n-1``, read as views).  ``fresh``
        marks sensors served for the first time: their differences are anchored at
        this reading (first difference 0), as ``_anchor_first`` did.
        """
        z = y
        for kind in self.kinds:
            if kind == "scale":
                z = (z - self.mean[idx]) / self.std[idx]
            elif kind == "difference":
                last = self.last[idx]  # a view when idx is a slice: use it before writing
                diff = z - (last if fresh is None else np.where(fresh, z, last))
                self.last[idx] = z
                z = diff
            else:
                ph = self.phase[idx]
                z = z - self.profile[_rows(idx, y.shape[0]), ph]
                self.phase[idx] = (ph + 1) % self.period
        return z

    def inverse(self, idx: Any, z_hat: np.ndarray) -> np.ndarray:
        """Forecasts ``(n, H)`` in engineering units from transformed ones."""
        y = z_hat
        H = z_hat.shape[1]
        for kind in reversed(self.kinds):
            if kind == "scale":
                y = y * self.std[idx, None] + self.mean[idx, None]
            elif kind == "difference":  # a cumulative sum over one step is the step itself
                y = self.last[idx, None] + (np.cumsum(y, axis=1) if H > 1 else y)
            else:
                ph = (self.phase[idx, None] + np.arange(H)) % self.period
                y = y + np.take_along_axis(self.profile[idx], ph, axis=1)
        return y

    # ------------------------------------------------------------------ one reading
    def transform_one(self, i: int, y: float, fresh: bool) -> float:
        """:meth:`transform` of one reading with Python floats (the single-reading path)."""
        z = y
        for kind in self.kinds:
            if kind == "scale":
                z = (z - float(self.mean[i])) / float(self.std[i])
            elif kind == "difference":
                last = z if fresh else float(self.last[i])
                self.last[i] = z
                z = z - last
            else:
                ph = int(self.phase[i])
                z = z - float(self.profile[i, ph])
                self.phase[i] = (ph + 1) % self.period
        return z

    def inverse_one(self, i: int, z_hat: np.ndarray) -> np.ndarray:
        """:meth:`inverse` of one forecast ``(H,)`` (Python floats when ``H`` is 1)."""
        if not self.kinds:
            return z_hat
        if z_hat.shape[0] == 1:
            y = float(z_hat[0])
            for kind in reversed(self.kinds):
                if kind == "scale":
                    y = y * float(self.std[i]) + float(self.mean[i])
                elif kind == "difference":
                    y = float(self.last[i]) + y
                else:
                    y = y + float(self.profile[i, self.phase[i]])
            return np.array([y])
        y = z_hat
        for kind in reversed(self.kinds):
            if kind == "scale":
                y = y * self.std[i] + self.mean[i]
            elif kind == "difference":
                y = self.last[i] + np.cumsum(y)
            else:
                y = y + self.profile[i, (self.phase[i] + np.arange(y.shape[0])) % self.period]
        return y

def _rows(idx: Any, n: int) -> np.ndarray:
    """``idx`` as an index array (a slice ``0..n-1`` becomes ``arange(n)``)."""
    return np.arange(n) if isinstance(idx, slice) else idx


def grown(a: np.ndarray, capacity: int, fill: Any) -> np.ndarray:
    """``a`` with its first axis extended to ``capacity`` rows of ``fill``."""
    out = np.full((capacity, *a.shape[1:]), fill, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


class ChainSet:
    """Chains of one model group, grouped by structure (kinds and period).

    Sensors of a group normally share one structure (their chains are fitted with
    the kinds of the group's model) and the set holds one :class:`ChainArrays`;
    a sensor given a chain of other kinds gets arrays of its own structure, and a
    step then runs each structure's sensors together.  Same methods as
    :class:`ChainArrays`.
    """

    def __init__(self, template: list[dict[str, Any]], capacity: int = 16) -> None:
        self.capacity = capacity
        self.structures: dict[tuple, ChainArrays] = {}
        self.which = np.zeros(capacity, dtype=np.intp)  # structure of each sensor
        self._arrays: list[ChainArrays] = []
        self._of(template)

    def _of(self, spec: list[dict[str, Any]]) -> int:
        key = tuple((t.get("kind"), t.get("period")) for t in spec)
        if key not in self.structures:
            self.structures[key] = ChainArrays(spec, self.capacity)
            self._arrays.append(self.structures[key])
        return list(self.structures).index(key)

    def grow(self, capacity: int) -> None:
        for arrays in self._arrays:
            arrays.grow(capacity)
        self.which = grown(self.which, capacity, 0)
        self.capacity = max(self.capacity, capacity)

    def set_spec(self, i: int, spec: list[dict[str, Any]]) -> None:
        k = self._of(spec)
        self._arrays[k].set_spec(i, spec)
        self.which[i] = k

    def spec(self, i: int) -> list[dict[str, Any]]:
        return self._arrays[self.which[i]].spec(i)

    def transform(self, idx: np.ndarray, y: np.ndarray, fresh: np.ndarray | None) -> np.ndarray:
        if len(self._arrays) == 1:
            return self._arrays[0].transform(idx, y, fresh)
        return self._by_structure(idx, y, lambda a, i, v, m: a.transform(
            i, v, None if fresh is None else fresh[m]))

    def inverse(self, idx: np.ndarray, z_hat: np.ndarray) -> np.ndarray:
        if len(self._arrays) == 1:
            return self._arrays[0].inverse(idx, z_hat)
        return self._by_structure(idx, z_hat, lambda a, i, v, m: a.inverse(i, v))

    def _by_structure(self, idx: np.ndarray, values: np.ndarray, apply: Any) -> np.ndarray:
        """Apply ``apply(arrays, rows, values, mask)`` per chain structure; one output."""
        idx = _rows(idx, values.shape[0])
        out = np.empty_like(values)
        which = self.which[idx]
        for k, arrays in enumerate(self._arrays):
            m = which == k
            if m.any():
                out[m] = apply(arrays, idx[m], values[m], m)
        return out

    def transform_one(self, i: int, y: float, fresh: bool) -> float:
        return self._arrays[self.which[i]].transform_one(i, y, fresh)

    def inverse_one(self, i: int, z_hat: np.ndarray) -> np.ndarray:
        return self._arrays[self.which[i]].inverse_one(i, z_hat)
