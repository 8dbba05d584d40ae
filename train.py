"""Train one model with one init strategy and log everything to TensorBoard.

python train.py init=kaiming model=resnet
python train.py -m init=xavier_normal,kaiming_normal model=mlp,cnn seed=0,1,2
"""

import json
import logging
import math
import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, open_dict

from callbacks import Divergence, DivergenceGuard
from callbacks.dashboard import write_summary
from callbacks.hparams import run_hparams, session_summaries
from inits import apply_init
from models import Classifier
from models.parametrization import build_optimizer
from resolvers import run_name  # importing it registers the resolvers the configs use

log = logging.getLogger("initbench")

CONFIG_DIR = Path(__file__).resolve().parent / "conf"
# Lightning 2.6 calls a pytree API that torch >= 2.10 deprecates; harmless, and noise to users.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# Lightning >= 2.6 advertises its cloud services on every run ("Tip: ... litlogger").
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(lambda record: "💡" not in str(record.msg))
# Errors a user can cause by a config value: shown as their message alone (the others, bugs,
# with their type and where to find the traceback).
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, MisconfigurationException)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build, initialize, train and test the run that ``cfg`` describes.

    Returns the contents of the run's ``metrics.json``. It is written with status ``running``
    first, so a killed run leaves a trace; a failure is recorded before the exception
    propagates. With ``resume=true`` a run that already ended (finished or diverged) is skipped
    and an interrupted one continues from its last checkpoint.
    """
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics_file = output_dir / "metrics.json"
    resume = cfg.get("resume") and metrics_file.exists()
    previous = json.loads(metrics_file.read_text()) if resume else {}
    if previous.get("status") in ("finished", "diverged"):
        log.info("resume: %s already %s, skipped", output_dir, previous["status"])
        return previous
    started = time.perf_counter()
    record = start_record(cfg)
    write_record(metrics_file, record)
    try:
        trainer, module, datamodule = build(cfg)
        trainer.fit(module, datamodule=datamodule, ckpt_path=_checkpoint(cfg, output_dir))
        metrics = _scalars(trainer)
        divergence = _divergence(trainer)
        if cfg.test and divergence is None:
            trainer.test(module, datamodule=datamodule, verbose=False)
            metrics.update(_scalars(trainer))
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        best = None if best is None else float(best)
        end_record(
            record, cfg, metrics, divergence, best, trainer.current_epoch, trainer.global_step
        )
        log_hparams(trainer.loggers, record, trainer.global_step)
    except Exception as error:
        record_failure(record, error)
        raise
    finally:
        record["seconds"] = round(time.perf_counter() - started, 2)
        write_record(metrics_file, record)
    report(record, output_dir)
    return finite(record)  # what metrics.json holds


def start_record(cfg: DictConfig) -> dict[str, Any]:
    """What ``metrics.json`` says while a run trains: status ``running``, the command-line
    overrides and the chosen files, read from Hydra's config of the current job."""
    return {"status": "running", "overrides": _overrides(), **_choices(cfg)}


def _checkpoint(cfg: DictConfig, output_dir: Path) -> str | None:
    """``ckpt_path`` if given; with ``resume=true``, the run's own last checkpoint if any."""
    last = output_dir / "checkpoints" / "last.ckpt"
    if cfg.ckpt_path is None and cfg.get("resume") and last.exists():
        log.info("resume: continuing from %s", last)
        return str(last)
    return cfg.ckpt_path


@rank_zero_only  # one metrics.json per run, also under DDP
def write_record(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(finite(record), indent=2, allow_nan=False) + "\n")


def finite(value: Any) -> Any:
    """Strict JSON: NaN and Inf (a diverged run's loss) become None, written as null, which
    ``jq`` and every JSON parser read."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def compose(*overrides: str, output_dir: str | Path | None = None) -> DictConfig:
    """The config ``python train.py OVERRIDES`` would run, for a notebook or a script:
    ``train.train(train.compose("model=cnn", "init=lsuv"))``. The run's folder is
    ``output_dir``, or as on the command line ``logs/runs/<overrides>/<time>``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra.compose("config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        name, now = run_name(",".join(overrides)), f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
        cfg.paths.output_dir = str(output_dir or f"{cfg.paths.log_dir}/runs/{name}/{now}")
    return cfg


def build(cfg: DictConfig) -> tuple[L.Trainer, Classifier, L.LightningDataModule]:
    """Instantiate everything, validating every choice before any data is read."""
    if cfg.ckpt_path is not None and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    net = instantiate(cfg.model)(datamodule.input_shape, datamodule.num_classes)
    optimizer = instantiate(cfg.optimizer)
    scheduler = instantiate(cfg.scheduler)
    strategy = instantiate(cfg.init)
    parametrization = instantiate(cfg.get("parametrization"))  # None: the standard one
    loggers = [instantiate(c) for c in cfg.get("logger", {}).values()]
    callbacks = [instantiate(c) for c in cfg.get("callbacks", {}).values()]
    if not cfg.trainer.get("enable_progress_bar", True):  # the switch wins over the callback
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if cfg.get("stats"):  # stats=off composes to nothing
        callbacks.append(instantiate(cfg.stats))
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    # torch's own checks (lr < 0, ...) and the schedule's (a run without end) fail now.
    try:
        probe = optimizer([torch.nn.Parameter(torch.zeros(1))])
    except ValueError as error:
        raise ValueError(f"optimizer={cfg.optimizer._target_}: {error}") from error
    if scheduler is not None:
        scheduler(probe, _planned_steps(trainer))
    build_optimizer(net, optimizer, parametrization)  # muP refuses a model or optimizer now
    datamodule.setup("fit")
    x, _ = next(iter(datamodule.train_dataloader()))
    apply_init(strategy, net, x)  # its own visible step: after building, before the optimizer
    if parametrization is not None:
        parametrization.rescale_init(net)  # muP rescales what the init wrote (the readout)
    module = Classifier(net, optimizer, datamodule.num_classes, scheduler, parametrization)
    if cfg.get("compile"):
        module = torch.compile(module)  # Lightning unwraps it and trains the compiled forward
    return trainer, module, datamodule


def _planned_steps(trainer: L.Trainer) -> float:
    """A stand-in for the run's length before the data is known, for the schedule's check:
    ``max_steps``, inf for a run without end, else the epochs (any finite length will do)."""
    if trainer.max_steps > 0:
        return trainer.max_steps
    return math.inf if trainer.max_epochs in (None, -1) else trainer.max_epochs


HPARAMS_EXTRA = ("val/acc_best", "train/diverged_step")  # metrics logged at the end only


def end_record(
    record: dict[str, Any],
    cfg: DictConfig,
    metrics: dict[str, float],
    divergence: Divergence | None,
    best: float | None,
    epochs: int,
    steps: int,
) -> None:
    """A run's end in its record: status, metrics with the HParams tab's extras (the
    checkpoint callback's ``best`` validation score, the step a diverged run stopped at),
    epochs, steps and its HParams row. Shared with the population trainer."""
    if best is not None:
        metrics["val/acc_best"] = best
    if divergence is not None:
        metrics["train/diverged_step"] = float(divergence.step)
    status = "finished" if divergence is None else "diverged"
    record.update(
        status=status,
        metrics=metrics,
        epochs=epochs,
        steps=steps,
        hparams=run_hparams(cfg, record["choices"], status),
    )
    if divergence is not None:
        record["divergence"] = divergence.as_dict()


def record_failure(record: dict[str, Any], error: BaseException) -> None:
    """A failed run's record: its status and the error's first line."""
    record.update(status="failed", error=f"{type(error).__name__}: {error}".splitlines()[0])


@rank_zero_only  # other ranks' writers are Lightning's no-op stand-ins
def log_hparams(loggers: list[Logger], record: dict[str, Any], step: int) -> None:
    """The run's row of TensorBoard's HParams tab (``callbacks.hparams``): its values, status
    and final metrics."""
    extra = {k: v for k, v in record["metrics"].items() if k in HPARAMS_EXTRA}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            for name, value in extra.items():
                logger.experiment.add_scalar(name, value, step)
            for summary in session_summaries(record["hparams"], record["status"]):
                write_summary(logger.experiment, summary, step)
        else:
            logger.log_hyperparams(record["hparams"])
        logger.save()


def _divergence(trainer: L.Trainer) -> Divergence | None:
    guards = [c for c in trainer.callbacks if isinstance(c, DivergenceGuard)]
    return next((g.divergence for g in guards if g.divergence is not None), None)


def _scalars(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(trainer.callback_metrics.items())}


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _choices(cfg: DictConfig) -> dict[str, Any]:
    """The chosen file of each config group and the seed: what a sweep report groups by."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    groups = {k: v for k, v in choices.items() if not k.startswith("hydra") and v is not None}
    return {"choices": groups, "seed": cfg.seed}


def report(record: dict[str, Any], output_dir: Path) -> None:
    metrics = record["metrics"]
    shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("val/acc", "test/acc") if k in metrics)
    log.info("%s in %.1f s: %s", record["status"], record["seconds"], shown)
    if "divergence" in record:
        log.info("diverged: %s", record["divergence"])
    log.info("run folder: %s", output_dir.resolve())
    log.info("TensorBoard: tensorboard --logdir %s", output_dir.resolve())


def error_message(error: BaseException) -> str:
    """What a user needs to read of ``error``: the message of a config mistake (unwrapped from
    Hydra's instantiation error), or a bug's type and message and where its traceback is."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, USER_ERRORS):
        return str(error)
    return f"{type(error).__name__}: {error} (HYDRA_FULL_ERROR=1 shows the traceback)"


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """One run. A failure is one clear line and exit status 1 (``HYDRA_FULL_ERROR=1``: the
    traceback). In a sweep a failed run is logged and recorded, and the sweep goes on; its
    report lists it and the sweep's exit status counts it."""
    try:
        return train(cfg)["metrics"].get("val/acc")
    except Exception as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.exception("run failed (recorded in metrics.json); the sweep goes on")
            return None
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error(error_message(error))
        sys.exit(1)


if __name__ == "__main__":
    main()
