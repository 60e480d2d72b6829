"""Shared machinery of every forecaster built on a torch streaming core.

A *streaming core* is a ``torch.nn.Module`` with

- ``forward(x_t, state) -> (forecast, new_state)``: ``x_t`` is ``(B, C)`` (the
  transformed target in channel 0, covariates after it), ``state`` is ``(B, *S)``,
  ``forecast`` is ``(B, H)``;
- ``initial_state(batch) -> Tensor``: the state before any reading.

The same core runs the Python stream (``update``/``learn_one``), is exported to
ONNX unchanged, and is what the edge runtime executes.  Families differ only
in how they build the core and how they train it.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np

from tsforge.errors import ConfigError, DataError
from tsforge.models.base import Forecast, Forecaster, ForecasterConfig
from tsforge.optional import require
from tsforge.training import TrainConfig
from tsforge.training.device import one_torch_thread


@dataclasses.dataclass(frozen=True)
class TorchConfig(ForecasterConfig):
    """Hyper-parameters shared by torch families: the training loop's settings.

    See :class:`tsforge.training.TrainConfig` for their meaning: a budget of
    ``max_steps`` optimiser steps with early stopping on the last ``val_fraction``
    of the training windows (chronological), ``epochs`` only a cap on passes.
    """

    epochs: int = 1000
    batch_size: int = 32
    max_steps: int | None = 5000
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    patience: int | None = 20
    val_fraction: float = 0.2
    lr_schedule: str = "cosine"
    device: str = "auto"
    amp: bool = True
    progress: bool = False
    checkpoint_dir: str | None = None

    def train_config(self) -> TrainConfig:
        """The :class:`TrainConfig` these fields describe."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        return TrainConfig(**values)


class TorchForecaster(Forecaster):
    """Base class: a torch streaming core plus its current state.

    Subclasses implement :meth:`build_core` and :meth:`fit` (typically by calling
    :func:`tsforge.training.train` and then :meth:`_start_stream`).
    """

    Config = TorchConfig
    exportable = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.core_: Any = None
        self.state_: Any = None
        self.last_forecast_: np.ndarray | None = None
        self.train_result_: Any = None

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def build_core(self, n_channels: int) -> Any:
        """Create an untrained streaming core for ``n_channels`` input channels."""

    # ------------------------------------------------------------------ streaming
    def _inputs(self, y: float, x: np.ndarray | None) -> np.ndarray:
        x_arr = self._check_step_input(x)
        return np.concatenate(([float(y)], x_arr))

    def update(self, y: float, x: np.ndarray | None = None) -> None:
        torch = require("torch", f"streaming with '{self.name}'")
        row = self._inputs(y, x)
        if not np.all(np.isfinite(row)):
            raise DataError(
                f"model '{self.name}' got a non-finite reading {row.tolist()}; "
                "wrap it in a Pipeline with a nonfinite policy or repair the data"
            )
        with torch.no_grad(), one_torch_thread():
            inp = torch.as_tensor(row, dtype=torch.float32)[None]
            out, self.state_ = self.core_(inp, self.state_)
        self.last_forecast_ = out[0].double().numpy()

    def forecast(self) -> Forecast:
        if self.last_forecast_ is None:
            raise DataError(f"model '{self.name}' is not fitted: call fit() first")
        return Forecast(mean=self.last_forecast_.copy())

    def _start_stream(self, Z: np.ndarray) -> None:
        """Put the core in the state reached after reading the rows of ``Z`` (``(T, C)``)."""
        torch = require("torch", "streaming")
        self.core_.eval()
        with torch.no_grad(), one_torch_thread():
            state = self.core_.initial_state(1)
            out = torch.zeros(1, self.horizon)
            rows = torch.as_tensor(self._warmup_rows(Z), dtype=torch.float32)
            for row in rows:
                out, state = self.core_(row[None], state)
        self.state_ = state
        self.last_forecast_ = out[0].double().numpy()

    def _warmup_rows(self, Z: np.ndarray) -> np.ndarray:
        """Rows of history replayed to set the stream state (all finite rows by default)."""
        return Z[np.all(np.isfinite(Z), axis=1)]

    # ------------------------------------------------------------------ persistence
    def _ensure_core(self) -> None:
        if self.core_ is None:
            if self.n_covariates_ is None:
                raise DataError(f"model '{self.name}' has no covariate count; cannot build it")
            self.core_ = self.build_core(1 + self.n_covariates_)
            self.core_.eval()

    def state_dict(self) -> dict[str, np.ndarray]:
        if self.core_ is None:
            return {}
        state = {f"core/{k}": v.detach().cpu().numpy() for k, v in self.core_.state_dict().items()}
        state["stream_state"] = self.state_.detach().cpu().numpy()
        state["last_forecast"] = np.asarray(self.last_forecast_)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        torch = require("torch", "loading a model")
        if not state:
            return
        self._ensure_core()
        weights = {k[len("core/") :]: torch.as_tensor(v) for k, v in state.items()
                   if k.startswith("core/")}
        self.core_.load_state_dict(weights)
        self.state_ = torch.as_tensor(state["stream_state"])
        self.last_forecast_ = np.asarray(state["last_forecast"], dtype=np.float64)

    # ------------------------------------------------------------------ export
    def streaming_core(self) -> Any:
        if self.core_ is None:
            raise ConfigError(f"model '{self.name}' is not fitted; nothing to export")
        return self.core_

    def stream_state(self) -> np.ndarray:
        return self.state_[0].detach().cpu().numpy()
