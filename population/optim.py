"""The members' optimizers and schedules, stepped as the one optimizer Lightning drives."""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class MemberOptimizers(Optimizer):
    """Each member's own optimizer (built as its single run builds it: its type, lr, weight
    decay, momentum) and schedule, stepped together: one optimizer step per batch, as Lightning
    counts steps, and exactly each single run's update.

    Why not one optimizer with a group per member: a schedule (``LambdaLR``) drives every group
    of its optimizer, and members may differ in schedule and optimizer type. Why not Lightning's
    manual optimization with K optimizers: it counts every optimizer's step as a global step.
    A member that diverged is frozen: its optimizer and schedule are no longer stepped.

    ``param_groups`` are the members' own group dicts, so a learning rate a schedule sets is
    the one this optimizer shows.
    """

    def __init__(self, optimizers: Sequence[Optimizer], schedulers: Sequence[LRScheduler | None]):
        params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
        super().__init__(params, {})
        self.param_groups = [g for o in optimizers for g in o.param_groups]
        self.optimizers = list(optimizers)
        self.schedulers = list(schedulers)
        self.active = [True] * len(self.optimizers)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer, scheduler, active in zip(self.optimizers, self.schedulers, self.active):
            if active:
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() if s else None for s in self.schedulers],
            "active": list(self.active),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["optimizers"]):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(self.schedulers, state_dict["schedulers"]):
            if scheduler is not None:
                scheduler.load_state_dict(state)
        self.active = list(state_dict["active"])
