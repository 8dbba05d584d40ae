"""Each member's checkpoints, in the form a single run writes them, so ``ckpt_path=`` resumes
a member as a single run."""

from pathlib import Path
from typing import Any

import lightning as L
import torch

from population.member import Member
from population.optim import MemberOptimizers


def member_checkpoint(trainer: L.Trainer, member: Member) -> dict[str, Any]:
    """What Lightning's ``dump_checkpoint`` writes for the member's single run: its
    ``Classifier``'s weights (``net.*``), its optimizer and schedule, and the loops' progress
    (the population's: every member ran the same steps)."""
    optimizer: MemberOptimizers = trainer.optimizers[0]
    k = member.index
    scheduler = optimizer.schedulers[k]
    return {
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "pytorch-lightning_version": L.__version__,
        "state_dict": {f"net.{name}": t for name, t in member.net.state_dict().items()},
        "loops": trainer._checkpoint_connector._get_loops_state_dict(),
        "callbacks": {},
        "optimizer_states": [optimizer.optimizers[k].state_dict()],
        "lr_schedulers": [] if scheduler is None else [scheduler.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"num_classes": member.num_classes},
    }


class MemberCheckpoints(L.Callback):
    """The single run's ``ModelCheckpoint`` (``conf/callbacks/default.yaml``: the best
    ``val/acc`` and ``last.ckpt``) for every active member, after each validation."""

    def __init__(self) -> None:
        self.best: dict[int, tuple[float, Path]] = {}

    def on_validation_end(self, trainer: L.Trainer, module) -> None:
        if trainer.sanity_checking:
            return
        for member in module.members:
            if not module.reporting(member):
                continue
            acc = trainer.callback_metrics.get(f"{member.index}/val/acc")
            folder = member.output_dir / "checkpoints"
            folder.mkdir(parents=True, exist_ok=True)
            checkpoint = member_checkpoint(trainer, member)
            torch.save(checkpoint, folder / "last.ckpt")
            previous = self.best.get(member.index)
            if acc is None or (previous is not None and float(acc) <= previous[0]):
                continue
            path = folder / f"epoch{trainer.current_epoch:02d}-val_acc{float(acc):.4f}.ckpt"
            torch.save(checkpoint, path)
            if previous is not None and previous[1] != path:
                previous[1].unlink(missing_ok=True)
            self.best[member.index] = (float(acc), path)

    def save_last(self, trainer: L.Trainer, member: Member) -> None:
        folder = member.output_dir / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(member_checkpoint(trainer, member), folder / "last.ckpt")
