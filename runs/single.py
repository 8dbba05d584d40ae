"""A single run from start to end: build it, train it, test it, and leave its record."""

import logging
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from callbacks import Divergence, DivergenceGuard
from runs.build import RunParts, build_run
from runs.lifecycle import announce, end_record, fail_record, log_hparams, start_record
from runs.record import RECORD_FILE, RunRecord

log = logging.getLogger("initbench")


def train(cfg: DictConfig) -> RunRecord:
    """Build, initialize, train and test the run that ``cfg`` describes; return its record
    (what its ``metrics.json`` holds).

    The record is written ``running`` first, so a killed run leaves a trace; a failure is
    recorded before the exception propagates. With ``resume=true`` a run that already ended
    (finished or diverged) is skipped and an interrupted one continues from its last
    checkpoint.
    """
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    saved = output_dir / RECORD_FILE
    if cfg.get("resume") and saved.exists():
        previous = RunRecord.read(saved)
        if previous.status in ("finished", "diverged"):
            log.info("resume: %s already %s, skipped", output_dir, previous.status)
            return previous
    started = time.perf_counter()
    record = start_record(cfg)
    record.write()
    try:
        trainer, parts = _fit(cfg, output_dir)
        metrics = _scalars(trainer)
        divergence = _divergence(trainer)
        if cfg.test and divergence is None:
            trainer.test(parts.module, datamodule=parts.datamodule, verbose=False)
            metrics.update(_scalars(trainer))
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        best = None if best is None else float(best)
        steps = trainer.global_step
        end_record(record, metrics, divergence, best, trainer.current_epoch, steps, parts.net)
        log_hparams(trainer.loggers, record, steps)
    except Exception as error:
        fail_record(record, error)
        raise
    finally:
        record.seconds = round(time.perf_counter() - started, 2)
        record.write()
    announce(record)
    return record.saved()


def build(cfg: DictConfig) -> tuple[L.Trainer, L.LightningModule, L.LightningDataModule]:
    """The run's trainer, LightningModule and data, ready to fit (for tools and tests)."""
    parts = build_run(cfg)
    return trainer_for(cfg, parts), parts.module, parts.datamodule


def trainer_for(cfg: DictConfig, parts: RunParts) -> L.Trainer:
    """A single run's Trainer: its config's settings, its loggers and callbacks."""
    return instantiate(cfg.trainer, logger=parts.loggers or False, callbacks=parts.callbacks)


def _fit(cfg: DictConfig, output_dir: Path) -> tuple[L.Trainer, RunParts]:
    parts = build_run(cfg)
    trainer = trainer_for(cfg, parts)
    trainer.fit(parts.module, datamodule=parts.datamodule, ckpt_path=_checkpoint(cfg, output_dir))
    return trainer, parts


def _checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """``ckpt_path`` if given; with ``resume=true``, the run's own last checkpoint if any."""
    last = output_dir / "checkpoints" / "last.ckpt"
    if cfg.ckpt_path is None and cfg.get("resume") and last.exists():
        log.info("resume: continuing from %s", last)
        return str(last)
    return cfg.ckpt_path


def _divergence(trainer: L.Trainer) -> Divergence | None:
    guards = [c for c in trainer.callbacks if isinstance(c, DivergenceGuard)]
    return next((g.divergence for g in guards if g.divergence is not None), None)


def _scalars(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(trainer.callback_metrics.items())}
