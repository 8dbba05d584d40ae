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


class RaiseFor(L.Callback):
    """Fails the one run of a sweep whose ``run`` equals ``when`` (e.g. 'orthogonal/lstm' from
    ``${hydra:runtime.choices.init}/${hydra:runtime.choices.model}``): a failure injected into
    a real sweep without touching the code under test."""

    def __init__(self, when: str, run: str) -> None:
        self.when, self.run = when, run

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.run == self.when:
            raise RuntimeError(f"injected failure in {self.run}")


class SaveInitialWeights(L.Callback):
    """Saves each rank's weights as training starts, to check that DDP ranks start equal."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        torch.save(module.state_dict(), f"{self.folder}/weights_rank{trainer.global_rank}.pt")
