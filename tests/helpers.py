"""Test-only code that configs point at by ``_target_``."""

import lightning as L
import torch
from torch import nn


def scaled_orthogonal(model: nn.Module, scale: float = 0.5) -> None:
    """A user-defined init, as the README shows: a callable taking the model."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.orthogonal_(module.weight, scale)


class StopAfterFirstEpoch(L.Callback):
    """Ends fit after one epoch, as if the run had been killed there."""

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        trainer.should_stop = True


def raising_init(model: nn.Module) -> None:
    """An init that fails, injected into a sweep by tests/conf/init/raises.yaml."""
    raise RuntimeError("injected failure")
