"""One run of a population: what the callbacks need to treat it as the single run it stands for."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from torch import nn

from runs.record import RunRecord


@dataclass
class Member:
    """A member of a population.

    Args:
        index: its position in the population: its samples are rows ``index * B`` to
            ``(index + 1) * B - 1`` of every stacked batch, its outputs the same rows.
        cfg: its resolved config (what ``python train.py OVERRIDES`` would run).
        output_dir: its run folder.
        net: its own model, holding the parameters the optimizer trains (the stacked model
            reads them); a single run's ``Classifier.net``.
        loggers: its own loggers (TensorBoard events in its run folder), in place of
            ``trainer.loggers``.
        callbacks: the callbacks its single run would have (``runs.build``): the population
            runs its checkpoints and takes its guard's and statistics' settings from them.
        title: what its figures name it by (``cfg.stats.title``: its init).
        num_classes: classes of its dataset.
        parametrization: its ``parametrization`` (muP's per-layer learning rates), if any.
        record: its record (``metrics.json``) so far.
        active: False once it diverged: frozen, no more updates or logs.
    """

    index: int
    cfg: DictConfig
    output_dir: Path
    net: nn.Module
    loggers: list[Logger] = field(default_factory=list)
    callbacks: list[L.Callback] = field(default_factory=list)
    title: str | None = None
    num_classes: int = 0
    parametrization: Any = None
    record: RunRecord = field(default_factory=RunRecord)
    active: bool = True


class SingleView(nn.Module):
    """A member's net under the path a single run's ``Classifier`` gives it (``net.*``), so
    what names modules and parameters (statistics, the divergence guard) names them alike."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)
