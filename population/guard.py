"""The divergence guard of a population: a member that diverges is frozen, the others go on."""

import logging

import lightning as L
import torch
from torch import Tensor

from callbacks.divergence import Divergence, Snapshots, first_out_of_bounds
from population.member import Member, SingleView

log = logging.getLogger(__name__)


class MemberGuard(L.Callback):
    """``callbacks.DivergenceGuard`` per member: each step's K losses go into a device buffer
    that the host reads every ``every_n_steps`` steps and at epoch end (one sync for the whole
    population). A member whose loss was NaN/Inf or above ``max_loss`` is recorded with its
    first bad step and the first watched layer out of bounds then (its forward pass replayed
    alone with its weights as they were before that step, as the single run's guard does), and
    frozen: its optimizer stops and it logs no more. Its NaNs cannot reach the others: every
    stacked layer keeps members apart. Training stops when no member is left."""

    def __init__(self, max_loss: float = 1e4, every_n_steps: int = 10) -> None:
        if every_n_steps < 1:
            raise ValueError(
                f"callbacks.divergence_guard.every_n_steps must be >= 1, got {every_n_steps}"
            )
        self.max_loss = max_loss
        self.every_n_steps = every_n_steps
        self.divergences: dict[int, Divergence] = {}
        self.stopped_at: dict[int, tuple[int, int]] = {}  # member -> (epoch, step) when frozen
        self._losses: Tensor | None = None  # (every_n_steps, K): the steps not checked yet
        self._steps: list[int] = []
        self._snapshots = Snapshots(every_n_steps)
        self._state: list[Tensor] = []  # every member's parameters and buffers, in turn
        self._parts: list[slice] = []  # member k's: self._state[self._parts[k]]

    def on_train_batch_start(self, trainer: L.Trainer, module, batch, batch_idx: int) -> None:
        if not self._state:
            for member in module.members:
                own = [*member.net.parameters(), *member.net.buffers()]
                self._parts.append(slice(len(self._state), len(self._state) + len(own)))
                self._state += own
        self._snapshots.take(len(self._steps), self._state, batch[0])

    def on_train_batch_end(self, trainer: L.Trainer, module, outputs, batch, batch_idx: int):
        losses = outputs["losses"]
        if self._losses is None:
            self._losses = torch.empty(self.every_n_steps, len(losses), device=losses.device)
        self._losses[len(self._steps)] = losses
        self._steps.append(trainer.global_step - 1)
        if len(self._steps) == self.every_n_steps:
            self._check(trainer, module)

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:
        self._check(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module) -> None:
        self._snapshots.clear()
        self._state = []
        self._parts = []

    def _check(self, trainer: L.Trainer, module) -> None:
        steps = self._steps
        self._steps = []
        if not steps:
            return
        n = len(steps)
        losses = self._losses[:n]
        bad = ~torch.isfinite(losses) | (losses.abs() > self.max_loss)
        index = torch.arange(n, device=bad.device)[:, None]
        first = torch.where(bad, index, n).amin(dim=0).tolist()  # the one sync
        for member, i in zip(module.members, first):
            if member.active and i < n:
                self._freeze(trainer, module, member, i, steps[i], losses[i, member.index].item())
        if not any(m.active for m in module.members):
            trainer.should_stop = True

    def _freeze(self, trainer, module, member: Member, i: int, step: int, loss: float) -> None:
        layer = self._replay(trainer, module, member, i)
        self.divergences[member.index] = Divergence(step, layer, loss)
        # the epoch counts as run, as when a single run's trainer stops within it
        self.stopped_at[member.index] = (trainer.current_epoch + 1, trainer.global_step)
        module.freeze(member)
        log.warning(
            "member %d (%s) diverged at step %d: loss %s; first layer out of bounds: %s; "
            "frozen, the others go on",
            member.index,
            member.output_dir.name,
            step,
            loss,
            layer,
        )

    @torch.no_grad()
    def _replay(self, trainer, module, member: Member, i: int) -> str | None:
        """The member's forward pass of step ``i`` alone, with its weights before that step."""
        x = self._snapshots.inputs[i].chunk(module.population_size)[member.index]
        restored = self._snapshots.restored(i, self._state, self._parts[member.index])
        with restored, trainer.precision_plugin.train_step_context():
            return first_out_of_bounds(SingleView(member.net), x, self.max_loss)
