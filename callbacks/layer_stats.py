"""Per-layer activation, gradient and weight statistics, logged on logging steps only."""

import logging
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary
from torch import Tensor, nn

from callbacks.dashboard import (
    end_figures,
    layout,
    layout_summary,
    tensorboard_writers,
    write_histogram,
    write_summary,
)
from callbacks.figures import colorful_dimension_figure
from callbacks.loss_scale import loss_scale
from callbacks.reduce import Moments, all_reduce_moments
from callbacks.statistics import (
    RATIO_FLOOR,
    activation_moments,
    activation_stats,
    gradient_moments,
    gradient_stats,
    histogram,
    parameter_stats,
)
from callbacks.watched import (
    Watched,
    WatchedParameter,
    layer_tag,
    stat_tag,
    tag_digits,
    watched_modules,
    watched_parameters,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One value of the tidy table: ``stat`` of ``layer`` at ``step``."""

    step: int
    layer: str
    stat: str
    value: float


class LayerStats(L.Callback):
    """Statistics of every watched layer's output and its gradient, and of every parameter.

    On a logging step (step 0, then every ``every_n_steps``) forward hooks record each watched
    module's output statistics and put a tensor hook on the output for its gradient (module
    backward hooks break on in-place activations); the forward hooks are removed after the
    backward pass. Everything is computed on the device, stacked, and moved to the host once.
    Under DDP, activation and activation-gradient sums and histograms are reduced across ranks
    first, so every value is the global batch's. Under 16-mixed, gradients are divided by the
    loss scale, so every precision shows the true gradients. Ratios over a weight norm below
    ``RATIO_FLOOR`` (a zero bias at init) are left out at that step. Tags are
    ``watched.<stat>/NNN.path`` (``callbacks.watched.stat_tag``). When training ends or fails,
    the table is drawn: the step-0 signal-propagation figure and, per statistic of
    ``DEPTH_STATS``, a depth figure (profile and depth x step heatmap).

    Args:
        every_n_steps: logging period in optimizer steps.
        histograms: also log activation histograms and "colorful dimension" images.
        singular_values_every_n_steps: log each weight's largest singular value this often
            (0: never; it costs an SVD per weight).
        images_every_n_steps: redraw the colorful-dimension images this often and at the end
            of training (each is a PNG of the whole history so far: the costly part of ``full``).
        hist_bins: bins of the fixed histogram edges.
        hist_limit: the edges span [-hist_limit, hist_limit].
        title: what the figures' titles name the run by (the config sets the init's name).
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        histograms: bool = False,
        singular_values_every_n_steps: int = 0,
        images_every_n_steps: int = 500,
        hist_bins: int = 64,
        hist_limit: float = 5.0,
        title: str | None = None,
    ) -> None:
        _check_at_least("every_n_steps", every_n_steps, 1)
        _check_at_least("singular_values_every_n_steps", singular_values_every_n_steps, 0)
        _check_at_least("images_every_n_steps", images_every_n_steps, 1)
        _check_at_least("hist_bins", hist_bins, 1)
        if not hist_limit > 0:
            raise ValueError(f"stats.hist_limit must be > 0, got {hist_limit}")
        self.every_n_steps, self.histograms = every_n_steps, histograms
        self.sv_every, self.images_every = singular_values_every_n_steps, images_every_n_steps
        self.hist_bins, self.hist_limit, self.title = hist_bins, hist_limit, title
        self.table: list[Row] = []
        self._labels: dict[str, str] = {}  # layer tag -> tick label of the figures
        self._series: dict[str, str] = {}  # layer tag -> its line in the figures (its kind)
        self._order: dict[str, int] = {}
        self._digits = 0  # of the forward position in tags: set from the model
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._pending: dict[tuple[str, str], Tensor] = {}  # (stat, tag): global already
        self._ratios: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}  # numerator, denominator
        self._moments: Moments = {}  # (kind, tag): this rank's sums, reduced at the flush
        self._grad_scale: Tensor | float = 1.0  # 1 / the loss scale of this step's backward
        self._before: dict[str, tuple[WatchedParameter, Tensor, Tensor]] = {}  # value, norm
        self._colorful: dict[str, list[Tensor]] = {}
        self._colorful_steps: list[int] = []
        self._step: int | None = None
        self._drawn = False

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if getattr(module, "_compiler_ctx", None):  # set by Lightning for a torch.compile'd module
            raise ValueError(
                "per-layer statistics cannot watch a torch.compile'd model (its forward hooks "
                "and tensor hooks do not run inside the compiled graph): use compile=true with "
                "stats=off, or compile=false"
            )

    # -- hooks -------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, *_) -> None:
        step = trainer.global_step
        self._step = step if step % self.every_n_steps == 0 else None
        if self._step is None:
            return
        self._digits = self._digits or tag_digits(module)
        for watched in watched_modules(module):
            hook = self._forward_hook(watched)
            self._handles.append(watched.module.register_forward_hook(hook))

    def _forward_hook(self, watched: Watched):
        kind, label = watched.kind, f"{_short(watched.name)} {type(watched.module).__name__}"

        def hook(_: nn.Module, __: tuple, output: Tensor | tuple) -> None:
            out = output[0] if isinstance(output, tuple) else output
            tag = self._tag(watched.name)
            self._labels[tag], self._series[tag] = label, kind
            self._moments[("act", tag)] = activation_moments(out, watched.bounded, watched.unit_dim)
            if self.histograms:
                counts = histogram(out, self.hist_bins, self.hist_limit)
                self._moments[("hist", tag)] = {"counts": counts}
            if out.requires_grad:
                out.register_hook(lambda grad: self._record_grad(tag, grad))

        return hook

    def _record_grad(self, tag: str, grad: Tensor) -> None:
        self._moments[("act_grad", tag)] = gradient_moments(grad)

    def _tag(self, module_name: str, name: str | None = None) -> str:
        """``NNN.path``: the module's position in forward order (the order hooks fire), then
        ``name`` (the module's path by default), so TensorBoard sorts layers by depth:
        ``act_std/003.net.layers.1.0``, ``grad_norm/003.net.layers.1.0.weight``."""
        position = self._order.setdefault(module_name, len(self._order))
        return layer_tag(position, module_name if name is None else name, self._digits)

    def on_after_backward(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._step is None:
            return
        self._remove_hooks()
        scale = loss_scale(trainer)
        self._grad_scale = 1.0 if scale is None else 1 / scale
        singular = self.sv_every > 0 and self._step % self.sv_every == 0
        for p in watched_parameters(module):
            if p.param.grad is None:
                continue
            tag, weight = self._tag(p.anchor, p.name), p.value()
            self._labels[tag] = _short(p.name)
            self._series[tag] = f"{type(p.module).__name__} {p.attr}"
            stats = parameter_stats(weight, p.param.grad, singular, self._grad_scale)
            self._pending.update({(stat, tag): value for stat, value in stats.items()})
            trained = p.param.detach().float().norm() if p.parametrized else stats["weight_norm"]
            self._ratios[("grad_to_weight", tag)] = (stats["grad_norm"], trained)
            self._before[tag] = (p, weight.clone(), stats["weight_norm"])

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *_) -> None:
        if self._step is None:
            return
        for tag, (p, before, norm) in self._before.items():
            self._ratios[("update_ratio", tag)] = ((p.value() - before).float().norm(), norm)
        self._before.clear()
        self._flush(trainer, self._step)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._remove_hooks()
        self._write_figures(trainer)
        if self._colorful:
            self._write_images(trainer, trainer.global_step)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, error: BaseException):
        self._remove_hooks()
        self._write_figures(trainer)

    def _write_figures(self, trainer: L.Trainer) -> None:
        """The figures of the whole table, once, drawn after training: about 0.3 s each, a
        few percent of an MLP epoch on CPU, and nothing during training."""
        writers = tensorboard_writers(trainer)
        if self._drawn or not writers or not trainer.is_global_zero:
            return
        self._drawn = True
        figures = end_figures(self.table, self._labels, self._series, self.title)
        for tag, figure in figures.items():
            for writer in writers:
                writer.add_figure(tag, figure, trainer.global_step if "signal" not in tag else 0)

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # -- output ------------------------------------------------------------------------------
    def _flush(self, trainer: L.Trainer, step: int) -> None:
        """Reduce across ranks, move every value to the host in one transfer, then log."""
        all_reduce_moments(self._moments)
        for (kind, tag), moments in self._moments.items():
            if kind == "act":
                stats = activation_stats(moments)
            elif kind == "act_grad":
                stats = gradient_stats(moments, "act_grad", self._grad_scale / trainer.world_size)
            else:
                stats = {"hist": moments["counts"]}
            self._pending.update({(stat, tag): value for stat, value in stats.items()})
        self._moments.clear()
        if not (self._pending or self._ratios):
            return
        scalars, histograms = self._to_host()
        self.table += [Row(step, layer, stat, value) for (stat, layer), value in scalars.items()]
        metrics = {stat_tag(stat, layer): value for (stat, layer), value in scalars.items()}
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                _write_scalars(logger.experiment, metrics, step)
            else:
                logger.log_metrics(metrics, step=step)
        self._log_tensorboard(trainer, step, scalars, histograms)

    def _to_host(self) -> tuple[dict[tuple[str, str], float], dict[str, Tensor]]:
        """Every pending value in one transfer: scalars by (stat, tag), and histogram counts by
        tag. A ratio whose denominator is below ``RATIO_FLOOR`` is left out."""
        scalar_keys = [k for k in self._pending if k[0] != "hist"]
        hist_keys = [k for k in self._pending if k[0] == "hist"]
        ratio_keys = list(self._ratios)
        values = [self._pending[k] for k in scalar_keys]
        values += [part for k in ratio_keys for part in self._ratios[k]]
        parts = [torch.stack(values)] if values else []
        host = torch.cat(parts + [self._pending[k] for k in hist_keys]).double().cpu()  # one sync
        self._pending.clear()
        self._ratios.clear()
        flat = host[: len(values)].tolist()
        scalars = dict(zip(scalar_keys, flat))
        pairs = zip(flat[len(scalar_keys) :: 2], flat[len(scalar_keys) + 1 :: 2])
        for key, (numerator, denominator) in zip(ratio_keys, pairs):
            if not denominator < RATIO_FLOOR:  # NaN (a diverged weight) is kept, as NaN
                scalars[key] = numerator / denominator
        counts = host[len(values) :].split(self.hist_bins)
        return scalars, {tag: c for (_, tag), c in zip(hist_keys, counts)}

    def _log_tensorboard(
        self, trainer: L.Trainer, step: int, scalars: dict, histograms: dict[str, Tensor]
    ) -> None:
        writers = tensorboard_writers(trainer)
        for writer in writers:
            if step == 0:
                write_summary(writer, layout_summary(layout(sorted({s for s, _ in scalars}))), 0)
            for tag, counts in histograms.items():
                write_histogram(writer, stat_tag("act_hist", tag), counts, self.hist_limit, step)
        for tag, counts in histograms.items():
            self._colorful.setdefault(tag, []).append(counts)
        if histograms:
            self._colorful_steps.append(step)
        if step % self.images_every < self.every_n_steps:  # the first logging step from a
            self._write_images(trainer, step)  # multiple of images_every on

    def _write_images(self, trainer: L.Trainer, step: int) -> None:
        """Each output's colorful-dimension figure, with the history so far."""
        writers = tensorboard_writers(trainer)
        if not writers or not trainer.is_global_zero:
            return
        for tag, history in self._colorful.items():
            name = self._labels.get(tag, tag)
            figure = colorful_dimension_figure(
                torch.stack(history, dim=1), self._colorful_steps, self.hist_limit, name
            )
            for writer in writers:
                writer.add_figure(stat_tag("colorful_dimension", tag), figure, step)


def _check_at_least(key: str, value: int, least: int) -> None:
    if value < least:
        raise ValueError(f"stats.{key} must be >= {least}, got {value}")


def _short(path: str) -> str:
    """A module or parameter path without the model's own prefix, for the figures' ticks."""
    return path.removeprefix("net.") or "model"


def _write_scalars(writer, scalars: dict[str, float], step: int) -> None:
    """Every value of a logging step as one TensorBoard event. Why by hand: ``add_scalar``
    writes one event per value, about 0.14 ms each: 20 ms for an MLP's 150 values, where one
    event with all of them takes 0.5 ms. Lightning's ``log_hyperparams`` writes its Summary
    protos the same way."""
    values = [Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
    write_summary(writer, Summary(value=values), step)
