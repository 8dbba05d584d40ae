"""The LightningModule that trains any model of `models/` as an image classifier."""

from collections.abc import Callable, Iterable

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from callbacks.members import SingleMember
from models.parametrization import MuP, Standard, build_optimizer

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]


class Classifier(L.LightningModule):
    """Cross-entropy training, accuracy via torchmetrics, optimizer and schedule from the config.

    Args:
        net: the model, already initialized by a strategy of `inits/`.
        optimizer: builds the optimizer from the parameters (a Hydra ``_partial_``).
        scheduler: builds an LR schedule from the optimizer and the run's total steps
            (`models/schedules.py`); it is stepped after every optimizer step.
        num_classes: number of classes of the dataset.
        parametrization: how the learning rate varies per layer (`models/parametrization.py`:
            muP's parameter groups); None is the standard one, a single group.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        num_classes: int,
        scheduler: SchedulerFactory | None = None,
        parametrization: Standard | MuP | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "parametrization"])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.parametrization = parametrization
        self._samples = 0  # training samples of this epoch; their loss and hits sum below
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    @property
    def members(self) -> list[SingleMember]:
        """The one run this module trains, for the per-run callbacks (``callbacks.members``)."""
        return [SingleMember(self.net, list(self.loggers))]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        correct = (logits.detach().argmax(dim=-1) == y).sum()
        # Epoch sums kept on the device (two in-place adds), and self.log only on logging steps:
        # each self.log call costs Lightning about 1 ms, a tenth of an MLP step on CPU
        # (benchmarks/speed/throughput.py).
        self._loss_sum.add_(loss.detach(), alpha=len(y))
        self._correct_sum.add_(correct)
        self._samples += len(y)
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            metrics = {"train/loss_step": loss, "train/acc_step": correct / len(y)}
            # sync_dist: under DDP the logged loss is the global batch's (no-op on one device).
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True, sync_dist=True)
        return loss

    def on_train_epoch_start(self) -> None:
        self._loss_sum = torch.zeros((), device=self.device)
        self._correct_sum = torch.zeros((), device=self.device, dtype=torch.long)
        self._samples = 0

    def on_train_epoch_end(self) -> None:
        if self._samples == 0:
            return
        metrics = {
            "train/loss_epoch": self._loss_sum / self._samples,
            "train/acc_epoch": self._correct_sum / self._samples,
        }
        self.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True)

    def _evaluate(self, batch: tuple[Tensor, Tensor], split: str) -> None:
        x, y = batch
        logits = self(x)
        accuracy = getattr(self, f"{split}_acc")
        accuracy.update(logits, y)
        metrics = {f"{split}/loss": F.cross_entropy(logits, y), f"{split}/acc": accuracy}
        # sync_dist: under DDP a DataLoader's DistributedSampler gives each rank a shard (the
        # resident path evaluates the whole split everywhere); the accuracy syncs by itself.
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> dict:
        optimizer = build_optimizer(self.net, self.optimizer_factory, self.parametrization)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        total = self.trainer.estimated_stepping_batches  # inf for a run without end
        scheduler = self.scheduler_factory(optimizer, total)
        return {
            "optimizer": optimizer,
            # "train/lr": the LearningRateMonitor's tag, next to the loss in TensorBoard
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"},
        }
