"""Stop a run whose loss became NaN/Inf or too large, and say where it broke."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import lightning as L
import torch
from torch import Tensor, nn

from callbacks.watched import watched_modules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Divergence:
    """Where a run diverged: the first bad step, the first watched layer whose output was out
    of bounds at that step (None when none was, or it cannot be known), and the loss then."""

    step: int
    layer: str | None
    loss: float


class Snapshots:
    """For each step not checked yet: a reference to its input batch and an on-device copy of
    the model's parameters and buffers as they were before its update (one fused copy per
    step; ``slots`` copies of the model: memory, not time). What replaying that step's
    forward pass needs; shared by the single run's guard and the population's."""

    def __init__(self, slots: int) -> None:
        self.inputs: list[Tensor | None] = [None] * slots
        self._copies: list[list[Tensor]] = []

    @torch.no_grad()
    def take(self, slot: int, state: list[Tensor], x: Tensor) -> None:
        if slot == len(self._copies):
            self._copies.append([t.detach().clone() for t in state])
        else:
            torch._foreach_copy_(self._copies[slot], state)
        self.inputs[slot] = x

    @contextmanager
    def restored(self, slot: int, state: list[Tensor], part: slice = slice(None)) -> Iterator:
        """Within: ``state[part]`` as it was before step ``slot``; put back on leaving."""
        tensors = state[part]
        before = self._copies[slot][part]
        with torch.no_grad():
            current = [t.clone() for t in tensors]
            torch._foreach_copy_(tensors, before)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(tensors, current)

    def clear(self) -> None:
        self.inputs = [None] * len(self.inputs)
        self._copies = []


class DivergenceGuard(L.Callback):
    """Stops the run cleanly once the training loss is NaN/Inf or above ``max_loss``, so a
    sweep goes on; ``runs.lifecycle`` records status ``diverged`` in ``metrics.json``.

    Each step's loss is copied into a small device buffer; the host reads it only every
    ``every_n_steps`` steps and at epoch end (one sync), so no step waits for the host and
    the reported step is still the first bad one. Under DDP every rank takes part in each
    check: the first bad step over all ranks wins, and all ranks stop together (a rank that
    stopped alone would leave the others waiting in the next all-reduce).

    ``layer`` is exact: the guard keeps, for each unchecked step, a reference to its input
    batch and an on-device copy of the model's parameters and buffers as they were before
    that step's update (``every_n_steps`` copies of the model: memory, not time). On a bad
    step it replays that step's forward pass (same modes, the run's precision) with those
    weights on that batch and names the first watched module, in forward order, whose output
    holds a NaN/Inf or a value above ``max_loss`` in absolute value; ``None`` when no output
    did (the loss itself overflowed) or no hook ran (a ``torch.compile``'d forward). Models
    with dropout would redraw their masks. The model's own weights and buffers (BatchNorm
    statistics) are restored afterwards.
    """

    def __init__(self, max_loss: float = 1e4, every_n_steps: int = 10) -> None:
        if every_n_steps < 1:
            raise ValueError(
                f"callbacks.divergence_guard.every_n_steps must be >= 1, got {every_n_steps}"
            )
        self.max_loss = max_loss
        self.every_n_steps = every_n_steps
        self.divergence: Divergence | None = None
        self._losses: Tensor | None = None  # the losses of the steps not checked yet
        self._steps: list[int] = []  # their step numbers
        self._snapshots = Snapshots(every_n_steps)  # their inputs, weights before the update
        self._state: list[Tensor] = []  # the module's parameters and buffers

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int
    ) -> None:
        if self.divergence is not None:
            return
        if not self._state:
            self._state = [*module.parameters(), *module.buffers()]
        self._snapshots.take(len(self._steps), self._state, batch[0])

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if outputs is None or self.divergence is not None:
            return
        loss = outputs["loss"].detach()
        if self._losses is None:
            self._losses = torch.empty(self.every_n_steps, device=loss.device)
        self._losses[len(self._steps)] = loss
        self._steps.append(trainer.global_step - 1)  # the step whose update just ran
        if len(self._steps) == self.every_n_steps:
            self._check(trainer, module)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._snapshots.clear()
        self._state = []

    def _check(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Called at the same points on every rank (each runs as many steps)."""
        steps = self._steps
        self._steps = []
        if not steps or self.divergence is not None:
            return
        n = len(steps)
        world = trainer.world_size
        rank = trainer.global_rank
        losses = self._losses[:n]
        bad = ~torch.isfinite(losses) | (losses.abs() > self.max_loss)
        first = torch.where(bad, torch.arange(n, device=bad.device), n).min()
        # min over ranks of (first bad index, rank): the earliest bad step, and its lowest rank
        key = trainer.strategy.all_gather(first * world + rank).min().item()  # the one sync
        index, source = divmod(key, world)
        if index == n:
            return
        layer = self._replay(trainer, module, index)  # every rank: SyncBatchNorm communicates
        loss, layer = trainer.strategy.broadcast((losses[index].item(), layer), src=source)
        self.divergence = Divergence(steps[index], layer, loss)
        log.warning(
            "diverged at step %d: loss %s; first layer out of bounds: %s", steps[index], loss, layer
        )
        trainer.should_stop = True

    @torch.no_grad()
    def _replay(self, trainer: L.Trainer, module: L.LightningModule, index: int) -> str | None:
        """The first out-of-bounds layer of step ``index``'s forward pass, redone exactly (in
        the modules' training modes, as the step ran: checks run within training)."""
        x = self._snapshots.inputs[index]
        restored = self._snapshots.restored(index, self._state)
        with restored, trainer.precision_plugin.train_step_context():
            return first_out_of_bounds(module, x, self.max_loss)


def first_out_of_bounds(module: nn.Module, x: Tensor, bound: float) -> str | None:
    """Run ``x`` through ``module`` and name the first watched module, in the order they ran,
    whose output holds a NaN/Inf or a value above ``bound`` in absolute value."""
    seen: list[tuple[str, Tensor]] = []

    def hook(name: str):
        def record(_: nn.Module, __: tuple, output) -> None:
            out = output[0] if isinstance(output, tuple) else output
            if isinstance(out, Tensor) and out.numel():
                seen.append((name, out.detach().abs().amax().float()))  # NaN propagates

        return record

    handles = [w.module.register_forward_hook(hook(w.name)) for w in watched_modules(module)]
    try:
        module(x)
    finally:
        for handle in handles:
            handle.remove()
    if not seen:
        return None
    within = (torch.stack([v for _, v in seen]) <= bound).tolist()  # False for NaN too
    return next((name for (name, _), ok in zip(seen, within) if not ok), None)
