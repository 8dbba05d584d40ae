"""Where a logging step's statistics go: one host transfer for every member of a population,
then each member's values to its own loggers under the tags a single run writes, so a member's
TensorBoard folder cannot be told from a single run's."""

from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor

from callbacks.dashboard import tensorboard_writers, write_summary
from callbacks.figures import colorful_dimension_figure
from callbacks.members import TrainsMembers
from callbacks.statistics import RATIO_FLOOR
from callbacks.watched import stat_tag

Key = tuple[str, str]  # (stat, layer tag)
Scalars = dict[Key, float]


@dataclass(frozen=True)
class Target:
    """One run whose statistics are written: ``index`` is its row in every stacked value (its
    member index; 0 for a single run), ``loggers`` its own, ``title`` its figures' name."""

    index: int
    loggers: list[Logger]
    title: str | None

    @property
    def writers(self) -> list:
        return tensorboard_writers(self.loggers)


def targets(
    trainer: L.Trainer, module: TrainsMembers, title: str | None, frozen: bool = False
) -> list[Target]:
    """Each run the module trains, with its own loggers; a member frozen by divergence
    (``active`` False) only with ``frozen``: a single run's step logs stop there, while its
    end-of-training figures are still drawn."""
    return [
        Target(m.index, m.loggers, m.title if m.title is not None else title)
        for m in module.members
        if m.active or frozen
    ]


def to_host(
    pending: dict[Key, Tensor], ratios: dict[Key, tuple[Tensor, Tensor]]
) -> list[tuple[Scalars, dict[str, Tensor]]]:
    """Every pending value (shape (K,), or (K, bins) for a ``hist``) in one transfer, split by
    member: per member row, its scalars by (stat, tag) and its histogram counts by tag. A ratio
    whose denominator is below ``RATIO_FLOOR`` (a zero bias at step 0) is left out."""
    scalar_keys = [k for k in pending if k[0] != "hist"]
    hist_keys = [k for k in pending if k[0] == "hist"]
    ratio_keys = list(ratios)
    values = [pending[k] for k in scalar_keys]
    values += [part for k in ratio_keys for part in ratios[k]]
    hists = [pending[k] for k in hist_keys]
    members = (values or hists)[0].shape[0]
    bins = hists[0].shape[1] if hists else 0
    parts = [torch.stack(values, dim=1).flatten()] if values else []
    parts += [torch.stack(hists, dim=1).flatten()] if hists else []
    host = torch.cat([p.double() for p in parts]).cpu()  # the one sync of the step
    scalar_part = host[: members * len(values)].view(members, len(values))
    hist_part = host[members * len(values) :].view(members, len(hists), bins)
    found = []
    for row, counts in zip(scalar_part.tolist(), hist_part):
        scalars = dict(zip(scalar_keys, row))
        offset = len(scalar_keys)
        for i, key in enumerate(ratio_keys):
            numerator, denominator = row[offset + 2 * i], row[offset + 2 * i + 1]
            if not denominator < RATIO_FLOOR:  # NaN (a diverged weight) is kept, as NaN
                scalars[key] = numerator / denominator
        found.append((scalars, {tag: c for (_, tag), c in zip(hist_keys, counts)}))
    return found


def log_scalars(loggers: list[Logger], metrics: dict[str, float], step: int) -> None:
    """``metrics`` to every logger: TensorBoard's as one event, the others' ``log_metrics``."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            _write_scalars(logger.experiment, metrics, step)
        else:
            logger.log_metrics(metrics, step=step)


def _write_scalars(writer, scalars: dict[str, float], step: int) -> None:
    """Every value of a logging step as one TensorBoard event. Why by hand: ``add_scalar``
    writes one event per value, about 0.14 ms each: 20 ms for an MLP's 150 values, where one
    event with all of them takes 0.5 ms. Lightning's ``log_hyperparams`` writes its Summary
    protos the same way."""
    values = [Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
    write_summary(writer, Summary(value=values), step)


def write_figures(target: Target, figures: dict[str, Summary], step: int) -> None:
    """The end-of-training figures (image summaries, ``callbacks.render``) by tag, at ``step``
    (the signal at init at step 0)."""
    for tag, summary in figures.items():
        for writer in target.writers:
            write_summary(writer, summary, step if "signal" not in tag else 0)


class Colorful:
    """Each member's activation histograms at every logging step so far, drawn as one
    colorful-dimension image per output (``callbacks.figures``)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.counts: dict[int, dict[str, list[Tensor]]] = {}  # member -> tag -> per step
        self.steps: dict[int, list[int]] = {}

    def add(self, member: int, step: int, histograms: dict[str, Tensor]) -> None:
        if not histograms:
            return
        counts = self.counts.setdefault(member, {})
        for tag, c in histograms.items():
            counts.setdefault(tag, []).append(c)
        self.steps.setdefault(member, []).append(step)

    def write(self, target: Target, labels: dict[str, str], step: int) -> None:
        """Each output's image, with the member's history so far, at ``step``."""
        if not target.writers:
            return
        steps = self.steps.get(target.index, [])
        for tag, history in self.counts.get(target.index, {}).items():
            name = labels.get(tag, tag)
            figure = colorful_dimension_figure(torch.stack(history, dim=1), steps, self.limit, name)
            for writer in target.writers:
                writer.add_figure(stat_tag("colorful_dimension", tag), figure, step)
