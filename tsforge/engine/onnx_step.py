"""One onnxruntime call per time step for a whole model group, fed without copies.

:class:`BoundStep` owns preallocated float32 buffers for the step's inputs and
outputs and binds them to the session with an ``IOBinding``, so onnxruntime
reads the inputs and writes the forecasts and new states in place.  The model
state of all sensors lives in one ``(capacity, *state_shape)`` array that is
*double-buffered*: when a call serves every sensor in order, the state array is
bound as the input and its twin as the output, and the two swap afterwards (no
gather, no scatter; one cached binding per direction).  A call for a subset of
sensors gathers their rows into a scratch input and scatters the new states back.
Bindings are cached per batch size, so a steady stream rebinds nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class BoundStep:
    """Run ``(x, state) -> (forecast, new_state)`` over preallocated buffers.

    Parameters
    ----------
    session
        The artifact's ``onnxruntime.InferenceSession``.
    n_channels, horizon, state_shape
        Shapes of one sensor's input, forecast and state.
    """

    def __init__(self, session: Any, n_channels: int, horizon: int,
                 state_shape: tuple[int, ...], capacity: int = 16) -> None:
        import onnxruntime

        self._ort = onnxruntime
        self.session = session
        self.C, self.H, self.shape = n_channels, horizon, tuple(state_shape)
        self.x_name = "x"
        self.s_name = "state"
        outs = [o.name for o in session.get_outputs()]
        self.f_name, self.ns_name = outs[0], outs[1]
        self.capacity = 0
        self._pair = [np.zeros((0, *self.shape), np.float32)] * 2
        self._cur = 0
        self._grow(capacity)

    @property
    def state(self) -> np.ndarray:
        """Current state of every sensor, ``(capacity, *state_shape)`` (row = sensor)."""
        return self._pair[self._cur]

    def _grow(self, capacity: int) -> None:
        state = np.zeros((capacity, *self.shape), np.float32)
        state[:self.state.shape[0]] = self.state
        self._pair = [state, np.zeros_like(state)]  # current, and where a full call writes
        self._cur = 0
        self.x = np.zeros((capacity, self.C), np.float32)
        self.forecast = np.zeros((capacity, self.H), np.float32)
        self._s_in = np.zeros_like(state)  # gathered states of a partial batch
        self._s_out = np.zeros_like(state)
        self._bindings: dict[tuple[int, int], Any] = {}
        self.capacity = capacity

    def grow(self, capacity: int) -> None:
        if capacity > self.capacity:
            self._grow(capacity)

    def _binding(self, n: int, mode: int) -> Any:
        """Binding for ``n`` rows; mode 0/1: full call reading buffer 0/1, 2: partial."""
        key = (n, mode)
        io = self._bindings.get(key)
        if io is None:
            io = self.session.io_binding()
            self._bind(io, self.x_name, self.x, n, input_=True)
            self._bind(io, self.f_name, self.forecast, n, input_=False)
            src, dst = ((self._s_in, self._s_out) if mode == 2
                        else (self._pair[mode], self._pair[1 - mode]))
            self._bind(io, self.s_name, src, n, input_=True)
            self._bind(io, self.ns_name, dst, n, input_=False)
            self._bindings[key] = io
        return io

    def _bind(self, io: Any, name: str, buf: np.ndarray, n: int, *, input_: bool) -> None:
        """Bind rows ``:n`` of ``buf`` in place (an OrtValue over the numpy memory)."""
        value = self._ort.OrtValue.ortvalue_from_numpy(buf[:n])  # no copy; keeps buf alive
        (io.bind_ortvalue_input if input_ else io.bind_ortvalue_output)(name, value)

    def run(self, idx: np.ndarray | None, n: int) -> np.ndarray:
        """Step sensors ``idx`` (distinct), or with None every sensor ``0..n-1`` in order.

        None is for ``n`` = all sensors in use: rows past ``n`` are not carried over.
        The inputs are in ``self.x[:n]``; returns the forecasts ``(n, H)`` (a view
        of the output buffer, valid until the next call); the new states are stored.
        """
        if idx is None:
            self.session.run_with_iobinding(self._binding(n, self._cur))
            self._cur = 1 - self._cur
        else:
            np.take(self.state, idx, axis=0, out=self._s_in[:n])
            self.session.run_with_iobinding(self._binding(n, 2))
            self.state[idx] = self._s_out[:n]
        return self.forecast[:n]

    def run_one(self, i: int) -> np.ndarray:
        """Step sensor ``i`` alone (input in ``self.x[0]``): the single-reading path."""
        self._s_in[0] = self.state[i]
        self.session.run_with_iobinding(self._binding(1, 2))
        self.state[i] = self._s_out[0]
        return self.forecast[0]
