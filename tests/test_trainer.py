"""The shared training loop: determinism, early stopping, checkpoint and resume."""

from __future__ import annotations

import torch

from tsforge.errors import ConfigError
from tsforge.training import TrainConfig, train
from tsforge.training.device import amp_dtype, resolve_device


def problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(512, generator=g)
    return x, y[:, None]


def loss_fn(module, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(module(x), y)


def fresh() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(4, 1)


def weights(m: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def test_seeded_training_is_deterministic():
    cfg = TrainConfig(epochs=5, batch_size=64, lr=1e-2, progress=False, seed=3)
    a, b = fresh(), fresh()
    train(a, problem(), loss_fn, cfg)
    train(b, problem(), loss_fn, cfg)
    assert torch.equal(weights(a), weights(b))


def test_early_stopping_stops_and_restores_best_weights():
    x, y = problem()
    noise = (torch.randn_like(x), torch.randn_like(y))  # validation unrelated to training
    m = fresh()
    result = train(m, (x, y), loss_fn, TrainConfig(epochs=200, lr=5e-2, patience=2,
                                                   progress=False), val_tensors=noise)
    assert result.stopped_early and result.epochs_run < 200
    assert result.best_val_loss == min(result.val_losses)


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    data = problem()
    full = fresh()
    cfg = dict(batch_size=64, lr=1e-2, progress=False, patience=None, lr_schedule="none")
    train(full, data, loss_fn, TrainConfig(epochs=6, **cfg))
    part = fresh()
    train(part, data, loss_fn, TrainConfig(epochs=3, checkpoint_dir=str(tmp_path), **cfg))
    resumed = fresh()
    result = train(resumed, data, loss_fn,
                   TrainConfig(epochs=6, checkpoint_dir=str(tmp_path), resume=True, **cfg))
    assert result.epochs_run == 6 and len(result.train_losses) == 6
    torch.testing.assert_close(weights(resumed), weights(full))


def test_device_auto_is_cpu_here_and_amp_is_off_on_cpu():
    device = resolve_device("auto")
    if not torch.cuda.is_available():
        assert device.type == "cpu" and amp_dtype(device) is None


def test_bad_train_config_lists_choices():
    import pytest

    with pytest.raises(ConfigError, match="valid"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="valid"):
        TrainConfig(lr_schedule="step")


def test_budget_counts_optimiser_steps_not_epochs():
    # 512 samples, 20 % validation: 410 train / batch 64 = 7 steps per pass
    cfg = dict(batch_size=64, lr=1e-2, progress=False, patience=None)
    one = train(fresh(), problem(), loss_fn, TrainConfig(max_steps=7, **cfg))
    assert (one.steps_run, one.epochs_run) == (7, 1)
    cut = train(fresh(), problem(), loss_fn, TrainConfig(max_steps=10, **cfg))
    assert (cut.steps_run, cut.epochs_run) == (10, 2)  # the budget ends mid-pass
    capped = train(fresh(), problem(), loss_fn, TrainConfig(epochs=3, max_steps=None, **cfg))
    assert (capped.steps_run, capped.epochs_run) == (21, 3)
    assert TrainConfig(batch_size=64, max_steps=100).total_steps(410) == 100


def test_defaults_train_to_convergence_and_stop_on_validation():
    # The defaults must not stop a model that is still learning: the fit reaches the
    # noise floor (variance 0.01) and the best pass comes well before the last.
    result = train(fresh(), problem(), loss_fn, TrainConfig(lr=1e-2, progress=False))
    assert result.best_val_loss < 0.015
    assert result.stopped_early and result.best_epoch < result.epochs_run - 10


def test_bad_budget_is_rejected():
    import pytest

    with pytest.raises(ConfigError, match="max_steps"):
        TrainConfig(max_steps=0)
