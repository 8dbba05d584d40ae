"""The runs a LightningModule trains, as the per-run callbacks (statistics, figures) see them:
one for a single run (``models.Classifier``), K for a population
(``population.module.Population``), each with the same small interface."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lightning.pytorch.loggers import Logger
from torch import nn


class MemberView(Protocol):
    """One run of those a module trains.

    Attributes:
        index: its row in every stacked value (0 for a single run).
        net: its own model, holding its trained parameters.
        loggers: where its values go.
        title: what its figures name it by; None: the statistics callback's own title.
        active: False once it diverged and was frozen (a population's member).
    """

    index: int
    net: nn.Module
    loggers: list[Logger]
    title: str | None
    active: bool


class TrainsMembers(Protocol):
    """A LightningModule whose ``net`` runs the forward pass of all its ``members`` at once."""

    net: nn.Module

    @property
    def members(self) -> Sequence[MemberView]: ...


@dataclass
class SingleMember:
    """A single run as the one member of its module."""

    net: nn.Module
    loggers: list[Logger] = field(default_factory=list)
    index: int = 0
    title: str | None = None
    active: bool = True
