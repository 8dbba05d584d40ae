"""Test-only code that configs point at by ``_target_``."""

import os
import signal
from pathlib import Path

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
    """Saves each rank's weights as its ``train.py`` built and initialized them, to check that
    DDP ranks start equal: ``setup`` runs before the strategy wraps the model in DDP, whose
    broadcast of rank 0's weights would hide a difference."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        torch.save(module.state_dict(), f"{self.folder}/weights_rank{trainer.global_rank}.pt")


class BlowUpWeight(L.Callback):
    """Multiplies one parameter by ``factor`` (``nan`` makes it NaN) just before step ``step``
    (after the update of step ``step - 1``), on rank ``rank`` only if given: a divergence
    injected at a known step, in a known layer, on a known rank."""

    def __init__(self, step: int, param: str, factor: float, rank: int | None = None) -> None:
        if step < 1:
            raise ValueError(f"step must be >= 1 (it acts after step - 1), got {step}")
        self.step, self.param, self.factor, self.rank = step, param, factor, rank

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if trainer.global_step != self.step or self.rank not in (None, trainer.global_rank):
            return
        with torch.no_grad():
            module.get_parameter(self.param).mul_(self.factor)


def wobbled_normal(model: nn.Module, wobble: float = 0.1) -> None:
    """A user-defined init with a knob no init of ``conf/init`` has: ``wobble``."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=wobble)


class KillOnce(L.Callback):
    """SIGKILLs its own process in the middle of the run's second epoch, as a crash or a
    scheduler would, once: only while ``marker`` does not exist (it is created first), and only
    in the run whose ``run`` equals ``when``."""

    def __init__(self, marker: str, when: str = "", run: str = "") -> None:
        self.marker = Path(marker)
        self.armed = when == run

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        in_second_epoch = trainer.current_epoch == 1 and batch_idx == 1
        if self.armed and in_second_epoch and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
