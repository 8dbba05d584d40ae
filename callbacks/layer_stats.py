"""Per-layer activation, gradient and weight statistics, logged on logging steps only."""

import logging
from dataclasses import dataclass

import lightning as L
import torch
from torch import Tensor

from callbacks.dashboard import layout, layout_summary, write_histogram, write_summary
from callbacks.loss_scale import loss_scale
from callbacks.reduce import Moments, all_reduce_moments
from callbacks.render import draw_all
from callbacks.statistics import (
    activation_moments,
    activation_stats,
    gradient_moments,
    gradient_stats,
    histogram,
    parameter_stats,
    stacked_grads,
)
from callbacks.stats_output import (
    Colorful,
    Target,
    log_scalars,
    targets,
    to_host,
    write_figures,
)
from callbacks.watched import (
    Watched,
    WatchedParameter,
    layer_tag,
    member_roots,
    population_size,
    short_path,
    stat_tag,
    tag_digits,
    watched_modules,
    watched_parameters,
    watched_root,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One value of the tidy table: ``stat`` of ``layer`` at ``step``, of population member
    ``member`` (0 for a single run)."""

    step: int
    layer: str
    stat: str
    value: float
    member: int = 0


class LayerStats(L.Callback):
    """Statistics of every watched layer's output and its gradient, and of every parameter.

    On a logging step (step 0, then every ``every_n_steps``) forward hooks record each watched
    module's output statistics and put a tensor hook on the output for its gradient (module
    backward hooks break on in-place activations); the forward hooks are removed after the
    backward pass. Everything is computed on the device, stacked, and moved to the host once.
    In a population (``population.module.Population``: K members in one stacked forward)
    every value is computed per member (a hook's output rows are the members' batches, one
    after the other) and each member's go to its own loggers under a single run's tags; frozen
    (diverged) members' logs stop, as a single run's do.
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
        self.every_n_steps = every_n_steps
        self.histograms = histograms
        self.sv_every = singular_values_every_n_steps
        self.images_every = images_every_n_steps
        self.hist_bins = hist_bins
        self.hist_limit = hist_limit
        self.title = title
        self.table: list[Row] = []
        self._labels: dict[str, str] = {}  # layer tag -> tick label of the figures
        self._series: dict[str, str] = {}  # layer tag -> its line in the figures (its kind)
        self._order: dict[str, int] = {}
        self._digits = 0  # of the forward position in tags: set from the model
        self._size = 1  # members whose rows a hooked output holds (K; 1 for a single run)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        # Every value below has a leading member dim (K,).
        self._pending: dict[tuple[str, str], Tensor] = {}  # (stat, tag): global already
        self._ratios: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}  # numerator, denominator
        self._moments: Moments = {}  # (kind, tag): this rank's sums, reduced at the flush
        self._grad_scale: Tensor | float = 1.0  # 1 / the loss scale of this step's backward
        self._before: dict[str, tuple[tuple[WatchedParameter, ...], Tensor, Tensor]] = {}
        self._colorful = Colorful(hist_limit)
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
        root = watched_root(module)
        self._size = population_size(module)
        self._digits = self._digits or tag_digits(root)
        for watched in watched_modules(root):
            hook = self._forward_hook(watched)
            self._handles.append(watched.module.register_forward_hook(hook))

    def _forward_hook(self, watched: Watched):
        def hook(_: torch.nn.Module, __: tuple, output: Tensor | tuple) -> None:
            out = output[0] if isinstance(output, tuple) else output
            tag = self._tag(watched.name)
            self._labels[tag] = watched.label
            self._series[tag] = watched.kind
            moments = activation_moments(out, watched.bounded, watched.unit_dim, self._size)
            self._moments[("act", tag)] = moments
            if self.histograms:
                counts = histogram(out, self.hist_bins, self.hist_limit, self._size)
                self._moments[("hist", tag)] = {"counts": counts}
            if out.requires_grad:
                shape = out.shape
                hooked = _whole(out)
                hooked.register_hook(lambda grad: self._record_grad(tag, grad.reshape(shape)))

        return hook

    def _record_grad(self, tag: str, grad: Tensor) -> None:
        self._moments[("act_grad", tag)] = gradient_moments(grad, self._size)

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
        # The same tensor of every member, in the same order (the members share a model).
        for group in zip(*(watched_parameters(root) for root in member_roots(module))):
            grad = stacked_grads([q.param for q in group])
            if grad is None:
                continue
            p = group[0]
            weight = torch.stack([q.value() for q in group])  # also a copy
            tag = self._tag(p.anchor, p.name)
            self._labels[tag] = short_path(p.name)
            self._series[tag] = f"{type(p.module).__name__} {p.attr}"
            stats = parameter_stats(weight, grad, singular, self._grad_scale)
            self._pending.update({(stat, tag): value for stat, value in stats.items()})
            trained = stats["weight_norm"]
            if p.parametrized:
                trained = torch.stack([q.param.detach() for q in group]).float().flatten(1)
                trained = trained.norm(dim=1)
            self._ratios[("grad_to_weight", tag)] = (stats["grad_norm"], trained)
            self._before[tag] = (group, weight, stats["weight_norm"])

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *_) -> None:
        if self._step is None:
            return
        for tag, (group, before, norm) in self._before.items():
            change = torch.stack([q.value() for q in group]) - before
            self._ratios[("update_ratio", tag)] = (change.float().flatten(1).norm(dim=1), norm)
        self._before.clear()
        self._flush(trainer, module, self._step)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._remove_hooks()
        self._write_figures(trainer, module)
        if trainer.is_global_zero:
            for target in targets(trainer, module, self.title, frozen=True):
                self._colorful.write(target, self._labels, trainer.global_step)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, error: BaseException):
        self._remove_hooks()
        self._write_figures(trainer, module)

    def _write_figures(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """The figures of the whole table, once, drawn after training: about 0.3 s each, a
        few percent of an MLP epoch on CPU, and nothing during training. A frozen member's
        too: a diverged single run draws them when it stops."""
        if self._drawn or not trainer.is_global_zero:
            return
        self._drawn = True
        drawn = [t for t in targets(trainer, module, self.title, frozen=True) if t.writers]
        jobs = [
            ([r for r in self.table if r.member == t.index], self._labels, self._series, t.title)
            for t in drawn
        ]
        for target, figures in zip(drawn, draw_all(jobs)):
            write_figures(target, figures, trainer.global_step)

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # -- output ------------------------------------------------------------------------------
    def _flush(self, trainer: L.Trainer, module: L.LightningModule, step: int) -> None:
        """Reduce across ranks, move every member's values to the host in one transfer, then
        log each member's to its own loggers."""
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
        by_member = to_host(self._pending, self._ratios)
        self._pending.clear()
        self._ratios.clear()
        for target in targets(trainer, module, self.title):
            scalars, histograms = by_member[target.index]
            self.table += [
                Row(step, layer, stat, value, target.index)
                for (stat, layer), value in scalars.items()
            ]
            metrics = {stat_tag(stat, layer): value for (stat, layer), value in scalars.items()}
            log_scalars(target.loggers, metrics, step)
            self._log_tensorboard(trainer, target, step, scalars, histograms)

    def _log_tensorboard(
        self,
        trainer: L.Trainer,
        target: Target,
        step: int,
        scalars: dict,
        histograms: dict[str, Tensor],
    ) -> None:
        for writer in target.writers:
            if step == 0:
                write_summary(writer, layout_summary(layout(sorted({s for s, _ in scalars}))), 0)
            for tag, counts in histograms.items():
                write_histogram(writer, stat_tag("act_hist", tag), counts, self.hist_limit, step)
        self._colorful.add(target.index, step, histograms)
        # the first logging step from a multiple of images_every on
        if step % self.images_every < self.every_n_steps and trainer.is_global_zero:
            self._colorful.write(target, self._labels, step)


def _check_at_least(key: str, value: int, least: int) -> None:
    if value < least:
        raise ValueError(f"stats.{key} must be >= {least}, got {value}")


def _whole(out: Tensor) -> Tensor:
    """The tensor whose gradient hook sees ``out``'s gradient: ``out``, or the tensor it
    reshapes (a stacked Linear's (K, B, F) as (K * B, F)). An in-place op after it
    (``ReLU(inplace=True)``) moves a view's gradient onto its base, and a hook on the view
    would never fire."""
    base = out._base
    same = base is not None and base.numel() == out.numel()
    return base if same and base.is_contiguous() and out.is_contiguous() else out
