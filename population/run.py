"""Train a population: the members' runs, each ending as its single run would end."""

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from callbacks.divergence import Divergence
from datamodules.batches import BatchIndices
from inits import apply_init
from population.checkpoints import MemberCheckpoints
from population.data import MemberBatches
from population.guard import MemberGuard
from population.loggers import MemberLoggers, member_metrics
from population.member import Member
from population.module import Population
from population.stacked import architecture, stack
from train import end_record, finite, log_hparams, record_failure, report, write_record

log = logging.getLogger("initbench.population")


class PopulationData(L.LightningDataModule):
    """The dataset loaded once (the first member's datamodule) and served to all members:
    training batches in each member's own order; evaluation batches as a single run gets them
    (``Population`` runs each through every member)."""

    def __init__(self, datamodule: L.LightningDataModule, seeds: list[int]) -> None:
        super().__init__()
        self.inner, self.seeds = datamodule, seeds

    def _loader(self, split: str, train: bool):
        self.inner.trainer = self.trainer  # where the tensors live: the training device
        return self.inner._loader(split, train)

    def train_dataloader(self) -> MemberBatches:
        loader = self._loader("train", train=True)
        n, size = loader.sampler.n, loader.sampler.batch_size
        samplers = [BatchIndices(n, size, shuffle=True, seed=s, drop_last=True) for s in self.seeds]
        return MemberBatches(loader.x, loader.y, samplers, loader.transform)

    def val_dataloader(self):
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)


def train_population(runs: list[tuple[DictConfig, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Train the runs (each: its resolved config with ``paths.output_dir``, and its starting
    record, ``train.start_record``) as one population per architecture (``_by_architecture``);
    return each run's ``metrics.json``.

    A run whose model or init fails is recorded ``failed`` and the others go on; a member that
    diverges is frozen and recorded ``diverged``; an error of the population as a whole is
    recorded in every member's ``metrics.json`` and logged, and the next population goes on.
    """
    records = [dict(record) for _, record in runs]
    for (cfg, _), record in zip(runs, records):
        Path(cfg.paths.output_dir).mkdir(parents=True, exist_ok=True)
        write_record(Path(cfg.paths.output_dir) / "metrics.json", record)
    try:  # one dataset for all: a missing file fails every member, as it fails each run
        datamodule = instantiate(runs[0][0].data)
        datamodule.setup("fit")
    except Exception as error:
        for (cfg, _), record in zip(runs, records):
            _end(cfg, record, time.perf_counter(), failed=error)
        log.error("the population's data failed to load: %s", records[0]["error"])
        return [finite(r) for r in records]
    built = []
    for (cfg, _), record in zip(runs, records):
        started = time.perf_counter()
        try:
            built.append((cfg, record, _initialized(cfg, datamodule)))
        except Exception as error:
            _end(cfg, record, started, failed=error)
            log.error("%s failed: %s", cfg.paths.output_dir, record["error"])
    for group in _by_architecture(built):
        members = [
            Member(i, cfg, Path(cfg.paths.output_dir), net, num_classes=datamodule.num_classes,
                   parametrization=parametrization, record=record)
            for i, (cfg, record, (net, parametrization)) in enumerate(group)
        ]  # fmt: skip
        _train(members, datamodule)
    return [finite(r) for r in records]


def _by_architecture(built: list[tuple]) -> list[list[tuple]]:
    """The members in groups of one architecture each, in order. An init may add parameters
    (Fixup's scalars, ReZero's and SkipInit's branch scales), so runs of one model can differ
    in architecture after their inits; each group trains as its own population."""
    groups: dict[tuple, list[tuple]] = {}
    for item in built:
        groups.setdefault(architecture(item[2][0]), []).append(item)
    return list(groups.values())


def _train(members: list[Member], datamodule) -> None:
    """One population from start to end; an error fails its members, not the sweep."""
    started = time.perf_counter()
    for member in members:
        cfg = member.cfg
        member.loggers = [instantiate(c) for c in cfg.get("logger", {}).values()]
        member.title = cfg.stats.get("title") if cfg.get("stats") else None
    try:
        _fit(members, datamodule, members[0].cfg)
    except Exception as error:
        log.exception("population of %d runs failed; each member records it", len(members))
        for member in members:
            _end(member.cfg, member.record, started, failed=error)
            for logger in member.loggers:  # flush and close its event files
                logger.finalize("failed")
        return
    seconds = time.perf_counter() - started
    for member in members:  # each member's share of the population's time
        member.record["seconds"] = round(seconds / len(members), 2)
        member.record["population"] = {"members": len(members), "seconds": round(seconds, 2)}
        write_record(member.output_dir / "metrics.json", member.record)
        report(member.record, member.output_dir)


def _initialized(cfg: DictConfig, datamodule) -> tuple[nn.Module, Any]:
    """The member's model, built and initialized exactly as ``train.build`` does for its
    single run: seed, model, init on its own first batch, in that order (the same draws),
    then its parametrization's rescaling; and that parametrization."""
    L.seed_everything(cfg.seed, workers=True)
    net = instantiate(cfg.model)(datamodule.input_shape, datamodule.num_classes)
    strategy = instantiate(cfg.init)
    parametrization = instantiate(cfg.get("parametrization"))
    datamodule.trainer, datamodule.seed = None, cfg.data.seed  # the single run's first batch:
    x, _ = next(iter(datamodule.train_dataloader()))  # on the CPU, in its order, augmented
    apply_init(strategy, net, x)
    if parametrization is not None:
        parametrization.rescale_init(net)
    return net, parametrization


def _fit(members: list[Member], datamodule, cfg: DictConfig) -> None:
    """One trainer for all members (the first member's trainer settings: the launcher groups
    only runs that share them), then each member's end."""
    callbacks: list[L.Callback] = []
    bar = cfg.callbacks.get("progress_bar")  # the other default callbacks, each member's own:
    if bar is not None and cfg.trainer.get("enable_progress_bar", True):  # MemberCheckpoints,
        callbacks.append(instantiate(bar))  # MemberGuard, Population.on_train_batch_start
    guard_cfg = cfg.callbacks.get("divergence_guard")
    guard = MemberGuard(guard_cfg.max_loss, guard_cfg.every_n_steps) if guard_cfg else None
    callbacks += [guard] if guard is not None else []
    checkpoints = MemberCheckpoints(members)  # a Checkpoint: Lightning adds none of its own
    callbacks += [checkpoints] if checkpoints.callbacks else []
    if cfg.get("stats"):
        callbacks.append(instantiate(cfg.stats))
    trainer = instantiate(
        cfg.trainer,
        logger=MemberLoggers(members),
        callbacks=callbacks,
        enable_checkpointing=bool(checkpoints.callbacks),
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
        best = checkpoints.best_score(member)
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
    """The member's ``metrics.json`` and HParams row, as ``train.train`` ends a run."""
    epochs = trainer.current_epoch if epoch is None else epoch
    steps = trainer.global_step if step is None else step
    end_record(member.record, member.cfg, metrics, divergence, best, epochs, steps)
    log_hparams(member.loggers, member.record, steps)
    for logger in member.loggers:
        logger.finalize("success")


def _end(cfg: DictConfig, record: dict, started: float, failed: BaseException) -> None:
    record_failure(record, failed)
    record["seconds"] = round(time.perf_counter() - started, 2)
    write_record(Path(cfg.paths.output_dir) / "metrics.json", record)
