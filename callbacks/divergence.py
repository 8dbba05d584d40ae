"""Stop a run whose loss became NaN/Inf or too large, and say where it broke."""

import logging
from dataclasses import asdict, dataclass

import lightning as L
import torch
from torch import Tensor, nn

from callbacks.watched import watched_modules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Divergence:
    """Where a run diverged: the step, the first layer whose output (or parameter) is
    non-finite, and the loss then."""

    step: int
    layer: str
    loss: float

    def as_dict(self) -> dict:
        return asdict(self)


class DivergenceGuard(L.Callback):
    """Watches the training loss for NaN/Inf or a value above ``max_loss``; once it happens it
    finds the first watched layer whose output on that batch is non-finite (in forward order),
    else the first non-finite parameter, logs it, and stops the run cleanly, so a sweep goes on.
    ``train.py`` records it as status ``diverged`` in ``metrics.json``.

    The first bad step and its loss are tracked on the device at every step; the host reads
    them only every ``every_n_steps`` and at epoch end, so the training loop is not synced per
    step and the reported step is still exact.
    """

    def __init__(self, max_loss: float = 1e4, every_n_steps: int = 10) -> None:
        self.max_loss, self.every_n_steps = max_loss, every_n_steps
        self.divergence: Divergence | None = None
        self._first: Tensor | None = None  # (step, loss) of the first bad step; step -1: none

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if outputs is None:
            return
        step = trainer.global_step - 1  # the step whose update just ran
        loss = outputs["loss"].detach().float()
        if self._first is None:
            self._first = torch.tensor([-1.0, 0.0], device=loss.device)
        bad = ~torch.isfinite(loss) | (loss.abs() > self.max_loss)
        new = bad & (self._first[0] < 0)
        self._first = torch.where(
            new, torch.stack([loss.new_tensor(float(step)), loss]), self._first
        )
        if (step + 1) % self.every_n_steps == 0:
            self._check(trainer, module, batch[0])

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._first is not None and self.divergence is None:
            self._check(trainer, module, None)

    def _check(self, trainer: L.Trainer, module: L.LightningModule, x: Tensor | None) -> None:
        step, loss = self._first.tolist()  # the one host sync
        if step < 0 or self.divergence is not None:
            return
        layer = (_first_non_finite(module, x) if x is not None else None) or _first_bad_param(
            module
        )
        self.divergence = Divergence(int(step), layer or "(every output finite)", loss)
        log.warning("diverged at step %d: loss %s; first non-finite: %s", step, loss, layer)
        trainer.should_stop = True


@torch.no_grad()
def _first_non_finite(module: nn.Module, x: Tensor) -> str | None:
    """Run ``x`` through the model in its current state and name the first watched module
    whose output is non-finite; if none, the first non-finite parameter."""
    broken: list[str] = []

    def hook(name: str):
        def check(_: nn.Module, __: tuple, output) -> None:
            out = output[0] if isinstance(output, tuple) else output
            if not broken and not torch.isfinite(out).all():
                broken.append(name)

        return check

    handles = [w.module.register_forward_hook(hook(w.name)) for w in watched_modules(module)]
    try:
        module(x)
    finally:
        for handle in handles:
            handle.remove()
    return broken[0] if broken else _first_bad_param(module)


def _first_bad_param(module: nn.Module) -> str | None:
    return next((n for n, p in module.named_parameters() if not torch.isfinite(p).all()), None)
