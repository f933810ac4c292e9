"""The Lightning internals CotModule relies on, checked against the installed Lightning.

If an upgrade moves one of them, these tests fail first and name which one; see
complement/training/_lightning_compat.py for the version range they were checked on."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from complement.training._lightning_compat import checked_trainer_property, loggers_will_write, step_not_counted


class Probe(pl.LightningModule):
    """Manual optimization, two optimizer steps per batch, the second one not counted."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.net = torch.nn.Linear(3, 2)
        self.will_write: list[bool] = []

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        for counted in (True, False):
            self.manual_backward(self.net(batch[0]).sum())
            if counted:
                optimizer.step()
            else:
                with step_not_counted(optimizer):
                    optimizer.step()
            optimizer.zero_grad()
        self.will_write.append(loggers_will_write(self.trainer))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(module, **kwargs):
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )  # fmt: skip
    trainer.fit(module, DataLoader(TensorDataset(torch.randn(12, 3)), batch_size=2))
    return trainer


def test_a_step_not_counted_leaves_global_step_alone_and_the_hooks_restored():
    module = Probe()
    trainer = fit(module)
    assert trainer.global_step == 6  # 6 batches, 12 optimizer steps, the 6 second ones not counted
    optimizer = module.optimizers()
    assert "lambda" not in repr(optimizer._on_before_step) and "lambda" not in repr(optimizer._on_after_step)


def test_loggers_will_write_follows_log_every_n_steps():
    module = Probe()
    fit(module, log_every_n_steps=3)
    assert module.will_write == [False, False, True, False, False, True]


def test_the_internals_exist_on_the_installed_lightning():
    trainer = pl.Trainer(accelerator="cpu", logger=False)
    assert hasattr(trainer._logger_connector, "should_update_logs")
    from lightning.pytorch.core.optimizer import LightningOptimizer

    optimizer = LightningOptimizer(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
    assert callable(optimizer._on_before_step) and callable(optimizer._on_after_step)


def test_checked_trainer_property_runs_the_check_when_a_trainer_is_attached():
    seen = []

    class Checked(Probe):
        trainer = checked_trainer_property(seen.append)

    module = Checked()
    trainer = pl.Trainer(accelerator="cpu", logger=False)
    module.trainer = trainer
    assert seen == [trainer] and module.trainer is trainer

    class Refusing(Probe):
        trainer = checked_trainer_property(lambda t: (_ for _ in ()).throw(ValueError("refused")))

    with pytest.raises(ValueError, match="refused"):
        fit(Refusing())
