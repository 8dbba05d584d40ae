"""The LightningModule of a population: K members' training steps as one stacked step."""

from collections.abc import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.classifier import OptimizerFactory, SchedulerFactory
from models.parametrization import build_optimizer
from population.loggers import member_key
from population.member import Member
from population.optim import MemberOptimizers


class Population(L.LightningModule):
    """Trains ``members`` together: ``net`` (their stacked model, `population/stacked.py`) runs
    every member's batch in one forward pass; the loss is the sum of the members' mean
    cross-entropies, so each member's parameters get exactly its single run's gradient; each
    member's optimizer and schedule then step (`population/optim.py`).

    It logs for each member what ``models.Classifier`` logs for a single run, under the
    member's prefix (``population.loggers`` routes it to the member's own folder), and keeps
    per-member sums for evaluation. A member frozen by divergence (``freeze``) logs nothing
    after the step it stopped at, as its single run would.
    """

    def __init__(
        self,
        members: Sequence[Member],
        net: nn.Module,
        optimizers: Sequence[OptimizerFactory],
        schedulers: Sequence[SchedulerFactory | None],
    ) -> None:
        super().__init__()
        self.members = list(members)
        self.population_size = len(self.members)
        self.member_nets = nn.ModuleList(m.net for m in self.members)  # what trains and moves
        self.net = net
        self.optimizer_factories = list(optimizers)
        self.scheduler_factories = list(schedulers)
        self._samples = 0
        self._frozen_step: dict[int, int] = {}  # member -> the global step it was frozen at

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _per_member(self, logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample losses and hits, shape ``(K, B)``."""
        k = self.population_size
        losses = F.cross_entropy(logits, y, reduction="none").view(k, -1)
        hits = (logits.detach().argmax(dim=-1) == y).view(k, -1)
        return losses, hits

    def reporting(self, member: Member) -> bool:
        """Whether ``member`` logs what this step ends with: while it trains, and at the step
        it was frozen at (its single run stops after that step's validation, if it has one)."""
        return member.active or self._frozen_step.get(member.index) == self.global_step

    def _log_members(self, values: dict[str, Tensor], **kwargs) -> None:
        """``values[name][k]`` as member k's ``name``, for the members ``reporting``."""
        metrics = {
            member_key(m.index, name): v[m.index]
            for name, v in values.items()
            for m in self.members
            if self.reporting(m)
        }
        if metrics:
            self.log_dict(metrics, prog_bar=False, **kwargs)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        x, y = batch
        losses, hits = self._per_member(self(x), y)
        loss = losses.mean(dim=1)
        correct = hits.sum(dim=1)
        batch_size = losses.shape[1]
        self._loss_sum.add_(loss.detach(), alpha=batch_size)
        self._correct_sum.add_(correct)
        self._samples += batch_size
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            step_metrics = {
                "train/loss_step": loss.detach(),
                "train/acc_step": correct / batch_size,
            }
            self._log_members(step_metrics, on_step=True, on_epoch=False)
        return {"loss": loss.sum(), "losses": loss.detach()}

    def on_train_epoch_start(self) -> None:
        k = self.population_size
        self._loss_sum = torch.zeros(k, device=self.device)
        self._correct_sum = torch.zeros(k, device=self.device, dtype=torch.long)
        self._samples = 0
        self._stopped: dict[int, tuple[Tensor, Tensor, int]] = {}  # frozen during this epoch

    def freeze(self, member: Member) -> None:
        """Stop training ``member`` (it diverged): its optimizer no longer steps and it logs
        no more, but its epoch sums so far are kept: its single run stops here and logs them
        as its last epoch's."""
        k = member.index
        member.active = False
        self._frozen_step[k] = self.global_step
        self.trainer.optimizers[0].active[k] = False
        self._stopped[k] = (self._loss_sum[k].clone(), self._correct_sum[k].clone(), self._samples)

    def on_train_epoch_end(self) -> None:
        metrics = {}
        for m in self.members:
            k = m.index
            if m.active:
                loss = self._loss_sum[k]
                correct = self._correct_sum[k]
                samples = self._samples
            elif k in self._stopped:
                loss, correct, samples = self._stopped[k]
            else:
                continue
            if samples:
                metrics[member_key(k, "train/loss_epoch")] = loss / samples
                metrics[member_key(k, "train/acc_epoch")] = correct / samples
        if metrics:
            self.log_dict(metrics, prog_bar=False, on_step=False, on_epoch=True)

    # -- evaluation: sums per member over the split, logged once at its end -------------------
    def _start_evaluation(self) -> None:
        k = self.population_size
        self._eval_loss = torch.zeros(k, device=self.device, dtype=torch.float64)
        self._eval_hits = torch.zeros(k, device=self.device, dtype=torch.long)
        self._eval_samples = 0

    def _evaluate(self, batch: tuple[Tensor, Tensor]) -> None:
        """Every member on the single run's evaluation batch (so ``limit_val_batches`` counts
        the same batches), in chunks of ``data.batch_size`` images repeated for the K members:
        each stacked forward holds what a training step holds, without its gradients, so it
        fits where training does. (Chunks of ``eval_batch_size / K`` images took K forwards
        per batch: 11 s against 4-5 s for the test split of 24 default MLPs on the CPU.)"""
        x, y = batch
        k = self.population_size
        chunk = self.members[0].cfg.data.batch_size
        for xc, yc in zip(x.split(chunk), y.split(chunk)):
            losses, hits = self._per_member(self(xc.repeat(k, *[1] * (x.dim() - 1))), yc.repeat(k))
            self._eval_loss.add_(losses.sum(dim=1, dtype=torch.float64))
            self._eval_hits.add_(hits.sum(dim=1))
            self._eval_samples += losses.shape[1]

    def _end_evaluation(self, split: str) -> None:
        n = max(self._eval_samples, 1)
        values = {
            f"{split}/loss": (self._eval_loss / n).float(),
            f"{split}/acc": self._eval_hits / n,
        }
        self._log_members(values, on_step=False, on_epoch=True)
        # one progress-bar value for the whole population (no member's key: logged nowhere)
        self.log(f"{split}_acc_max", values[f"{split}/acc"].max(), prog_bar=True, logger=False)

    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch)

    def on_validation_epoch_end(self) -> None:
        self._end_evaluation("val")

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch)

    def on_test_epoch_end(self) -> None:
        self._end_evaluation("test")

    def configure_optimizers(self) -> dict:
        total = self.trainer.estimated_stepping_batches
        optimizers = []
        schedulers = []
        for member, factory, scheduler in zip(
            self.members, self.optimizer_factories, self.scheduler_factories
        ):
            # as Classifier.configure_optimizers: muP's parameter groups, if any
            optimizer = build_optimizer(member.net, factory, member.parametrization)
            optimizers.append(optimizer)
            schedulers.append(None if scheduler is None else scheduler(optimizer, total))
        return {"optimizer": MemberOptimizers(optimizers, schedulers)}

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        """Each member's gradients clipped on their own, as its single run clips them."""
        if gradient_clip_val is None:
            return
        for member in self.members:
            params = list(member.net.parameters())
            if gradient_clip_algorithm == "value":
                torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """Each member's ``train/lr`` as the single run's ``LearningRateMonitor`` logs it
        (``conf/callbacks/default.yaml``): on logging steps, before the step, at Lightning's
        logging step; also in the trainer's metrics, where ``metrics.json`` reads it."""
        trainer = self.trainer
        if not trainer._logger_connector.should_update_logs:
            return
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        optimizer: MemberOptimizers = trainer.optimizers[0]
        for member, inner in zip(self.members, optimizer.optimizers):
            if member.active:
                rates = learning_rates(inner)
                for logger in member.loggers:
                    logger.log_metrics(rates, step=step)
                for name, lr in rates.items():
                    trainer.callback_metrics[member_key(member.index, name)] = torch.tensor(lr)


def learning_rates(optimizer: torch.optim.Optimizer, tag: str = "train/lr") -> dict[str, float]:
    """The tags and values ``LearningRateMonitor`` logs for a single run's optimizer: ``tag``
    for one parameter group, ``tag/<group name>`` (or ``tag/pgN``) for several."""
    groups = optimizer.param_groups
    if len(groups) == 1:
        return {tag: groups[0]["lr"]}
    return {f"{tag}/{g.get('name', f'pg{i + 1}')}": g["lr"] for i, g in enumerate(groups)}
