"""Building a run from its config: the one path for single runs and population members.

Every value is instantiated and checked before any data is read; then the model is built,
initialized on its own first batch (LSUV and other data-dependent inits see it), and wrapped in
the LightningModule. A single run adds a Trainer (``runs.single``); a population stacks its
members' parts under one (``population.run``).
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from torch import nn

from inits import apply_init
from models import Classifier
from models.classifier import OptimizerFactory, SchedulerFactory
from models.parametrization import build_optimizer
from runs.validate import validate


@dataclass
class RunParts:
    """What a run is made of, built from its config.

    Attributes:
        datamodule: its data, set up for fitting.
        net: its model, initialized.
        module: the LightningModule that trains ``net`` (compiled when ``compile=true``).
        optimizer: builds its optimizer from parameters.
        scheduler: builds its learning-rate schedule, or None.
        parametrization: muP's per-layer scales, or None for the standard one.
        loggers: its loggers.
        callbacks: its callbacks (statistics last).
    """

    datamodule: L.LightningDataModule
    net: nn.Module
    module: L.LightningModule
    optimizer: OptimizerFactory
    scheduler: SchedulerFactory | None
    parametrization: Any
    loggers: list[Logger]
    callbacks: list[L.Callback]


def build_run(cfg: DictConfig, datamodule: L.LightningDataModule | None = None) -> RunParts:
    """Check every value of ``cfg`` (``runs.validate``), instantiate and check every part of
    its run, then build and initialize its model.

    Args:
        cfg: the run's resolved config.
        datamodule: a dataset already loaded (a population's, shared by its members); by
            default the run's own, from ``cfg.data``.
    """
    validate(cfg)  # every value's type and range, before anything is built or read
    if cfg.ckpt_path is not None and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
    L.seed_everything(cfg.seed, workers=True)
    if datamodule is None:
        datamodule = instantiate(cfg.data)
    net = instantiate(cfg.model)(datamodule.input_shape, datamodule.num_classes)
    optimizer = instantiate(cfg.optimizer)
    scheduler = instantiate(cfg.scheduler)
    strategy = instantiate(cfg.init)
    parametrization = instantiate(cfg.get("parametrization"))  # None: the standard one
    loggers = [instantiate(c) for c in cfg.get("logger", {}).values()]
    callbacks = _callbacks(cfg)
    _check_optimizer(cfg, optimizer, scheduler)
    build_optimizer(net, optimizer, parametrization)  # muP refuses a model or optimizer now
    datamodule.setup("fit")
    apply_init(strategy, net, first_batch(datamodule, cfg))  # after building, before training
    if parametrization is not None:
        parametrization.rescale_init(net)  # muP rescales what the init wrote (the readout)
    module = Classifier(net, optimizer, datamodule.num_classes, scheduler, parametrization)
    if cfg.get("compile"):
        module = torch.compile(module)  # Lightning unwraps it and trains the compiled forward
    return RunParts(
        datamodule, net, module, optimizer, scheduler, parametrization, loggers, callbacks
    )


def _callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The config's callbacks, the progress bar dropped when the trainer's switch says so,
    then the statistics (``stats=off`` composes to nothing)."""
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
    if not cfg.trainer.get("enable_progress_bar", True):  # the switch wins over the callback
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if cfg.get("stats"):
        callbacks.append(instantiate(cfg.stats))
    return callbacks


def _check_optimizer(
    cfg: DictConfig, optimizer: OptimizerFactory, scheduler: SchedulerFactory | None
) -> None:
    """torch's own checks (lr < 0, ...) and the schedule's (a run without end), now."""
    try:
        probe = optimizer([torch.nn.Parameter(torch.zeros(1))])
    except ValueError as error:
        raise ValueError(f"optimizer={cfg.optimizer._target_}: {error}") from error
    if scheduler is not None:
        scheduler(probe, planned_steps(cfg.trainer))


def planned_steps(trainer: DictConfig) -> float:
    """A stand-in for the run's length before the data is known, for the schedule's check:
    ``max_steps``, inf for a run without end, else the epochs (any finite length will do)."""
    max_steps = trainer.get("max_steps", -1)
    if max_steps is not None and max_steps > 0:
        return max_steps
    epochs = trainer.get("max_epochs")
    if epochs is None:  # Lightning's rule: 1000 epochs, unless a max_time ends the run
        epochs = 1000 if trainer.get("max_time") is None else -1
    return math.inf if epochs == -1 else epochs


def first_batch(datamodule: L.LightningDataModule, cfg: DictConfig) -> torch.Tensor:
    """The run's first training batch on the CPU, in its own order and augmented as it will
    be trained: what a data-dependent init (LSUV) measures."""
    datamodule.trainer = None
    datamodule.seed = cfg.data.seed
    x, _ = next(iter(datamodule.train_dataloader()))
    return x
