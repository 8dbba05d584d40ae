"""Each member's checkpoints, written by its own ``ModelCheckpoint`` in the form a single run
writes them, so ``ckpt_path=`` resumes a member as a single run, best score included."""

import os
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from torch import Tensor

from population.loggers import member_metrics
from population.member import Member
from population.optim import MemberOptimizers


def member_checkpoint(
    trainer: L.Trainer,
    member: Member,
    callbacks: dict[str, Any] | None = None,
    weights_only: bool = False,
) -> dict[str, Any]:
    """What Lightning's ``dump_checkpoint`` writes for the member's single run: its
    ``Classifier``'s weights (``net.*``), the loops' progress (the population's: every member
    ran the same steps) and, unless ``weights_only``, its callbacks' state, its optimizer and
    its schedule."""
    checkpoint = {
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "pytorch-lightning_version": L.__version__,
        "state_dict": {f"net.{name}": t for name, t in member.net.state_dict().items()},
        "loops": trainer._checkpoint_connector._get_loops_state_dict(),
    }
    if not weights_only:
        optimizer: MemberOptimizers = trainer.optimizers[0]
        scheduler = optimizer.schedulers[member.index]
        checkpoint["callbacks"] = callbacks or {}
        checkpoint["optimizer_states"] = [optimizer.optimizers[member.index].state_dict()]
        checkpoint["lr_schedulers"] = [] if scheduler is None else [scheduler.state_dict()]
    checkpoint["hparams_name"] = "kwargs"
    checkpoint["hyper_parameters"] = {"num_classes": member.num_classes}
    return checkpoint


class MemberTrainer:
    """The trainer as one member's ``ModelCheckpoint`` sees it: the member's metrics under its
    single run's names (``val/acc``, not ``3/val/acc``), its loggers and root folder (where a
    callback without ``dirpath`` saves), and its checkpoint where the population's would be
    saved; everything else is the population's trainer.

    Why a view and not our own saving rules: Lightning's callback decides when to save, how to
    name the file, which to keep and what its state is; a member then gets exactly the files
    (and the resumable best score) its single run gets, in any Lightning version."""

    def __init__(self, trainer: L.Trainer, member: Member, callback: ModelCheckpoint) -> None:
        self._trainer = trainer
        self._member = member
        self._callback = callback

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trainer, name)

    @property
    def callback_metrics(self) -> dict[str, Tensor]:
        return member_metrics(self._trainer.callback_metrics, self._member.index)

    @property
    def loggers(self) -> list[Logger]:
        return self._member.loggers

    @property
    def logger(self) -> Logger | None:
        return self._member.loggers[0] if self._member.loggers else None

    @property
    def default_root_dir(self) -> str:
        return self._member.cfg.trainer.get("default_root_dir") or os.getcwd()

    def save_checkpoint(self, filepath, weights_only: bool = False, storage_options=None) -> None:
        """Written directly, without the strategy's rank-0 check and barrier: a population
        trains on one device."""
        state = {self._callback.state_key: self._callback.state_dict()}
        checkpoint = member_checkpoint(self._trainer, self._member, state, weights_only)
        self._trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, filepath, storage_options)


class MemberCheckpoints(Checkpoint):
    """Each member's ``ModelCheckpoint``, built with its run (``callbacks.model_checkpoint``:
    by default the best ``val/acc`` and ``last.ckpt``), given every hook that can save, as in
    its single run, while the member reports. A ``Checkpoint`` itself, so Lightning calls it
    where it calls a single run's: after the module's epoch-end hook (its epoch metrics).

    A frozen member's stop where it froze: when its single run validates and saves at the
    step it stopped at (Lightning validates once ``should_stop`` is set), the member saves
    nothing then."""

    def __init__(self, members: list[Member]) -> None:
        self.callbacks: dict[int, ModelCheckpoint] = {
            m.index: c for m in members for c in m.callbacks if isinstance(c, ModelCheckpoint)
        }

    def best_score(self, member: Member) -> float | None:
        """The member's best monitored value (``val/acc_best`` in its ``metrics.json``)."""
        callback = self.callbacks.get(member.index)
        score = None if callback is None else callback.best_model_score
        return None if score is None else float(score)

    def setup(self, trainer: L.Trainer, module, stage: str) -> None:
        self._each("setup", trainer, module, stage)

    def _each(self, hook: str, trainer: L.Trainer, module, *args) -> None:
        for member in module.members:
            callback = self.callbacks.get(member.index)
            if callback is not None and module.reporting(member):
                view = MemberTrainer(trainer, member, callback)
                getattr(callback, hook)(view, module, *args)

    def on_train_start(self, trainer: L.Trainer, module) -> None:
        self._each("on_train_start", trainer, module)

    def on_train_batch_end(self, trainer: L.Trainer, module, outputs, batch, batch_idx) -> None:
        self._each("on_train_batch_end", trainer, module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, module) -> None:
        self._each("on_train_epoch_end", trainer, module)

    def on_validation_end(self, trainer: L.Trainer, module) -> None:
        self._each("on_validation_end", trainer, module)

    def on_train_end(self, trainer: L.Trainer, module) -> None:
        self._each("on_train_end", trainer, module)

    def on_exception(self, trainer: L.Trainer, module, exception: BaseException) -> None:
        self._each("on_exception", trainer, module, exception)
