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
    """Checks the training loss every ``every_n_steps``; when it is non-finite or above
    ``max_loss`` it finds the first watched layer whose output on that batch is non-finite (in
    forward order), else the first non-finite parameter, logs it, and stops the run cleanly, so
    a sweep goes on. ``train.py`` records it as status ``diverged`` in ``metrics.json``.
    """

    def __init__(self, max_loss: float = 1e4, every_n_steps: int = 1) -> None:
        self.max_loss, self.every_n_steps = max_loss, every_n_steps
        self.divergence: Divergence | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        step = trainer.global_step - 1  # the step whose update just ran
        if step % self.every_n_steps or outputs is None:
            return
        loss = outputs["loss"].detach()
        if torch.isfinite(loss) and loss.abs() <= self.max_loss:
            return
        layer = _first_non_finite(module, batch[0]) or "(every output finite)"
        self.divergence = Divergence(step, layer, float(loss))
        log.warning("diverged at step %d: loss %s; first non-finite: %s", step, float(loss), layer)
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
    if broken:
        return broken[0]
    return next((n for n, p in module.named_parameters() if not torch.isfinite(p).all()), None)
