"""Train a population: the members' runs, each built as its single run is built
(``runs.build``) and ending as its single run would end (``runs.lifecycle``)."""

import logging
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig

from callbacks import DivergenceGuard, LayerStats
from callbacks.divergence import Divergence
from datamodules.batches import BatchIndices
from population.checkpoints import MemberCheckpoints
from population.data import MemberBatches
from population.guard import MemberGuard
from population.loggers import MemberLoggers, member_metrics
from population.member import Member
from population.module import Population
from population.stacked import architecture, stack
from runs.build import RunParts, build_run
from runs.lifecycle import announce, end_record, fail_record, log_hparams
from runs.record import RunRecord

log = logging.getLogger("initbench.population")


class PopulationData(L.LightningDataModule):
    """The dataset loaded once (the first member's datamodule) and served to all members:
    training batches in each member's own order; evaluation batches as a single run gets them
    (``Population`` runs each through every member)."""

    def __init__(self, datamodule: L.LightningDataModule, seeds: list[int]) -> None:
        super().__init__()
        self.inner = datamodule
        self.seeds = seeds

    def _loader(self, split: str, train: bool):
        self.inner.trainer = self.trainer  # where the tensors live: the training device
        return self.inner._loader(split, train)

    def train_dataloader(self) -> MemberBatches:
        loader = self._loader("train", train=True)
        n = loader.sampler.n
        size = loader.sampler.batch_size
        samplers = [BatchIndices(n, size, shuffle=True, seed=s, drop_last=True) for s in self.seeds]
        return MemberBatches(loader.x, loader.y, samplers, loader.transform)

    def val_dataloader(self):
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)


def train_population(runs: list[tuple[DictConfig, RunRecord]]) -> list[RunRecord]:
    """Train the runs (each: its resolved config with ``paths.output_dir``, and its starting
    record, ``runs.lifecycle.start_record``) as one population per architecture
    (``_by_architecture``); return each run's record.

    A run whose model or init fails is recorded ``failed`` and the others go on; a member that
    diverges is frozen and recorded ``diverged``; an error of the population as a whole is
    recorded in every member's ``metrics.json`` and logged, and the next population goes on.
    """
    records = [record for _, record in runs]
    for record in records:
        Path(record.output_dir).mkdir(parents=True, exist_ok=True)
        record.write()
    try:  # one dataset for all: a missing file fails every member, as it fails each run
        datamodule = instantiate(runs[0][0].data)
        datamodule.setup("fit")
    except Exception as error:
        for record in records:
            _end(record, time.perf_counter(), failed=error)
        log.error("the population's data failed to load: %s", records[0].error)
        return [record.saved() for record in records]
    for group in _by_architecture(build_members(runs, datamodule)):
        _train(group, datamodule)
    return [record.saved() for record in records]


def build_members(
    runs: list[tuple[DictConfig, RunRecord]], datamodule: L.LightningDataModule
) -> list[tuple[DictConfig, RunRecord, RunParts]]:
    """Each run's parts, built on the shared dataset exactly as its single run builds them
    (``runs.build.build_run``: the same draws, the same init on its own first batch). A run
    that fails to build is recorded ``failed`` and left out."""
    built = []
    for cfg, record in runs:
        started = time.perf_counter()
        try:
            built.append((cfg, record, build_run(cfg, datamodule)))
        except Exception as error:
            _end(record, started, failed=error)
            log.error("%s failed: %s", record.output_dir, record.error)
    return built


def _by_architecture(built: list[tuple[DictConfig, RunRecord, RunParts]]) -> list[list[Member]]:
    """The members in groups of one architecture each, in order. An init may add parameters
    (Fixup's scalars, ReZero's and SkipInit's branch scales), so runs of one model can differ
    in architecture after their inits; each group trains as its own population."""
    groups: dict[tuple, list[tuple[DictConfig, RunRecord, RunParts]]] = {}
    for item in built:
        groups.setdefault(architecture(item[2].net), []).append(item)
    return [
        [_member(i, cfg, record, parts) for i, (cfg, record, parts) in enumerate(group)]
        for group in groups.values()
    ]


def _member(index: int, cfg: DictConfig, record: RunRecord, parts: RunParts) -> Member:
    return Member(
        index,
        cfg,
        Path(record.output_dir),
        parts.net,
        loggers=parts.loggers,
        callbacks=parts.callbacks,
        title=cfg.stats.get("title") if cfg.get("stats") else None,
        num_classes=parts.datamodule.num_classes,
        parametrization=parts.parametrization,
        record=record,
    )


def _train(members: list[Member], datamodule: L.LightningDataModule) -> None:
    """One population from start to end; an error fails its members, not the sweep."""
    started = time.perf_counter()
    try:
        _fit(members, datamodule, members[0].cfg)
    except Exception as error:
        log.exception("population of %d runs failed; each member records it", len(members))
        for member in members:
            _end(member.record, started, failed=error)
            for logger in member.loggers:  # flush and close its event files
                logger.finalize("failed")
        return
    seconds = time.perf_counter() - started
    for member in members:  # each member's share of the population's time
        member.record.seconds = round(seconds / len(members), 2)
        member.record.population = {"members": len(members), "seconds": round(seconds, 2)}
        member.record.write()
        announce(member.record)


def _callbacks(first: Member, members: list[Member]) -> tuple[list[L.Callback], MemberGuard]:
    """The population's callbacks, from what the first member's single run would have (the
    launcher groups only runs that share these settings): its progress bar, its guard's
    settings per member, every member's checkpoints, its statistics. A single run's other
    callbacks are the population's own (``Population.on_train_batch_start`` logs the rate)."""
    bars = [c for c in first.callbacks if isinstance(c, ProgressBar)]
    guards = [c for c in first.callbacks if isinstance(c, DivergenceGuard)]
    stats = [c for c in first.callbacks if isinstance(c, LayerStats)]
    guard = MemberGuard(guards[0].max_loss, guards[0].every_n_steps) if guards else None
    checkpoints = MemberCheckpoints(members)  # a Checkpoint: Lightning adds none of its own
    callbacks = [*bars, *([guard] if guard else [])]
    callbacks += [checkpoints] if checkpoints.callbacks else []
    return callbacks + stats, guard


def _fit(members: list[Member], datamodule: L.LightningDataModule, cfg: DictConfig) -> None:
    """One trainer for all members (the first member's trainer settings), then each
    member's end."""
    callbacks, guard = _callbacks(members[0], members)
    checkpoints = next((c for c in callbacks if isinstance(c, MemberCheckpoints)), None)
    trainer = instantiate(
        cfg.trainer,
        logger=MemberLoggers(members),
        callbacks=callbacks,
        enable_checkpointing=checkpoints is not None,
    )
    net = stack([m.net for m in members])
    optimizers = [instantiate(m.cfg.optimizer) for m in members]
    schedulers = [instantiate(m.cfg.scheduler) for m in members]
    module = Population(members, net, optimizers, schedulers)
    data = PopulationData(datamodule, [m.cfg.data.seed for m in members])
    log.info("population of %d runs: one stacked %s", len(members), type(members[0].net).__name__)
    trainer.fit(module, datamodule=data)
    fitted = _member_scalars(trainer, members)
    divergences = guard.divergences if guard else {}
    if cfg.test and any(m.active for m in members):
        trainer.test(module, datamodule=data, verbose=False)
        for member, tested in zip(members, _member_scalars(trainer, members)):
            if member.active:
                fitted[member.index].update({k: v for k, v in tested.items() if "test/" in k})
    for member in members:
        best = checkpoints.best_score(member) if checkpoints else None
        divergence = divergences.get(member.index)
        epoch, step = guard.stopped_at.get(member.index) if divergence else (None, None)
        _finish(member, trainer, fitted[member.index], divergence, best, epoch, step)


def _member_scalars(trainer: L.Trainer, members: list[Member]) -> list[dict[str, float]]:
    """Each member's logged values (``K/key`` in the trainer's metrics), as ``key``."""
    metrics = trainer.callback_metrics
    return [
        {key: float(v) for key, v in sorted(member_metrics(metrics, m.index).items())}
        for m in members
    ]


def _finish(
    member: Member,
    trainer: L.Trainer,
    metrics: dict[str, float],
    divergence: Divergence | None,
    best: float | None,
    epoch: int | None,
    step: int | None,
) -> None:
    """The member's record and HParams row, as ``runs.single.train`` ends a run."""
    epochs = trainer.current_epoch if epoch is None else epoch
    steps = trainer.global_step if step is None else step
    end_record(member.record, metrics, divergence, best, epochs, steps, member.net)
    log_hparams(member.loggers, member.record, steps)
    for logger in member.loggers:
        logger.finalize("success")


def _end(record: RunRecord, started: float, failed: BaseException) -> None:
    fail_record(record, failed, seconds=time.perf_counter() - started)
    record.write()
