"""Device-agnostic training loop shared by every torch family."""

from tsforge.training.trainer import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
