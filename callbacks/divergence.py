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

    Each step's loss is copied into a small device buffer (one device op per step); the host
    reads the buffer only every ``every_n_steps`` and at epoch end, so the training loop is not
    synced per step and the reported step is still exact.
    """

    def __init__(self, max_loss: float = 1e4, every_n_steps: int = 10) -> None:
        if every_n_steps < 1:
            raise ValueError(
                f"callbacks.divergence_guard.every_n_steps must be >= 1, got {every_n_steps}"
            )
        self.max_loss, self.every_n_steps = max_loss, every_n_steps
        self.divergence: Divergence | None = None
        self._losses: Tensor | None = None  # the losses of the steps not checked yet
        self._steps: list[int] = []  # their step numbers

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
            self._check(trainer, module, batch[0])

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer, module, None)

    def _check(self, trainer: L.Trainer, module: L.LightningModule, x: Tensor | None) -> None:
        steps, self._steps = self._steps, []
        if not steps or self.divergence is not None:
            return
        losses = self._losses[: len(steps)]
        bad = (~torch.isfinite(losses) | (losses.abs() > self.max_loss)).tolist()  # one sync
        if not any(bad):
            return
        first = bad.index(True)
        step, loss = steps[first], losses[first].item()
        layer = (_first_non_finite(module, x) if x is not None else None) or _first_bad_param(
            module
        )
        self.divergence = Divergence(step, layer or "(every output finite)", loss)
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
