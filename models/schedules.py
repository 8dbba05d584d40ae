"""Learning-rate schedules written in fractions of the run, stepped after every optimizer step.

Why by hand: torch's schedulers count epochs or absolute steps, so their YAML would depend on the
dataset size, batch size and epoch count; these take the run's total steps from the trainer and
one YAML fits every run. Each returns a ``torch.optim.lr_scheduler.LambdaLR``.
"""

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _check_length(total_steps: float, name: str) -> None:
    if not math.isfinite(total_steps):
        raise ValueError(
            f"scheduler={name} is written in fractions of the run, and this run has no end "
            f"(trainer.max_epochs=-1, no trainer.max_steps): give it one, or use "
            f"scheduler=constant"
        )


def cosine(optimizer: Optimizer, total_steps: float, warmup: float = 0.0) -> LambdaLR:
    """Linear warmup over the first ``warmup`` fraction, then cosine decay to 0 at the end
    (Loshchilov & Hutter 2017, without restarts)."""
    _check_length(total_steps, "cosine")
    if not 0 <= warmup < 1:
        raise ValueError(f"scheduler.warmup is a fraction of the run in [0, 1), got {warmup}")
    warmup_steps = int(warmup * total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return LambdaLR(optimizer, factor)


def constant(optimizer: Optimizer, total_steps: float) -> LambdaLR:
    """The optimizer's learning rate throughout."""
    return LambdaLR(optimizer, lambda step: 1.0)


def multistep(
    optimizer: Optimizer,
    total_steps: float,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
) -> LambdaLR:
    """Multiply by ``gamma`` at each milestone, given as fractions of the run (He et al. 2016
    divide by 10 at 50% and 75% of training)."""
    _check_length(total_steps, "multistep")
    steps = sorted(int(m * total_steps) for m in milestones)
    return LambdaLR(optimizer, lambda step: gamma ** sum(step >= s for s in steps))
