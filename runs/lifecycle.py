"""A run's record from start to end, the same for a single run and a population member: it is
written ``running`` before anything is built (a killed run leaves a trace), and ended as
finished, diverged or failed."""

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from callbacks.dashboard import write_summary
from callbacks.divergence import Divergence
from callbacks.hparams import session_summaries
from callbacks.watched import layer_tag, module_class, tag_digits, watched_modules
from runs.knobs import group_knobs, init_knobs
from runs.record import DivergenceInfo, RunRecord
from sweeps.keys import swept_keys

log = logging.getLogger("initbench")

HPARAMS_EXTRA = ("val/acc_best", "train/diverged_step")  # metrics logged at the end only


def start_record(cfg: DictConfig) -> RunRecord:
    """A run's record while it trains: status ``running``, what it is (its overrides, which of
    them its sweep varies, its choices, its init's and other knobs, its seed), read from its
    config and from Hydra's config of the current job."""
    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    choices = dict(hydra.runtime.choices) if hydra else {}
    choices = {k: v for k, v in choices.items() if not k.startswith("hydra") and v is not None}
    varied: list[str] = []
    if hydra is not None and hydra.mode == RunMode.MULTIRUN:
        varied = sorted(swept_keys(Path(hydra.sweep.dir) / "multirun.yaml"))
    output_dir = Path(cfg.paths.output_dir)
    return RunRecord(
        name=output_dir.name,
        output_dir=str(output_dir),
        overrides=list(hydra.overrides.task) if hydra else [],
        varied=varied,
        choices=choices,
        init=choices.get("init", ""),
        init_knobs=init_knobs(cfg.get("init")),
        knobs=group_knobs(cfg),
        seed=cfg.seed,
    )


def end_record(
    record: RunRecord,
    metrics: dict[str, float],
    divergence: Divergence | None,
    best: float | None,
    epochs: int,
    steps: int,
    net: nn.Module,
) -> None:
    """A run's end: its status and metrics with the HParams tab's extras (the checkpoint
    callback's ``best`` validation score, the step a diverged run stopped at), epochs, steps,
    and its watched layers' module types."""
    if best is not None:
        metrics["val/acc_best"] = best
    if divergence is not None:
        metrics["train/diverged_step"] = float(divergence.step)
        record.divergence = DivergenceInfo(divergence.step, divergence.layer, divergence.loss)
    record.status = "finished" if divergence is None else "diverged"
    record.metrics = metrics
    record.epochs = epochs
    record.steps = steps
    record.layers = layer_types(net)


def layer_types(net: nn.Module) -> dict[str, dict[str, str]]:
    """Each watched output's tag (``000.net.layers.0.0``, as the statistics name it): the class
    of its module and its kind (a layer's, an activation's or a block's output)."""
    root = nn.ModuleDict({"net": net})
    digits = tag_digits(root)
    return {
        layer_tag(i, w.name, digits): {"type": module_class(w.module).__name__, "kind": w.kind}
        for i, w in enumerate(watched_modules(root))
    }


def fail_record(record: RunRecord, error: BaseException, seconds: float | None = None) -> None:
    """A failed run's record: its status and the error's first line (and, given, the seconds
    it ran)."""
    record.status = "failed"
    record.error = f"{type(error).__name__}: {error}".splitlines()[0]
    if seconds is not None:
        record.seconds = round(seconds, 2)


@rank_zero_only  # other ranks' writers are Lightning's no-op stand-ins
def log_hparams(loggers: list[Logger], record: RunRecord, step: int) -> None:
    """The run's row of TensorBoard's HParams tab (``callbacks.hparams``): its values, status
    and final metrics. Written after ``fit`` has closed the loggers' event files: into a file
    of its own in the run's TensorBoard folder, which TensorBoard reads as the same run."""
    extra = {k: v for k, v in record.metrics.items() if k in HPARAMS_EXTRA and v is not None}
    for logger in loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(record.hparams)
            logger.save()
            continue
        with SummaryWriter(logger.log_dir, filename_suffix=".hparams") as writer:
            for name, value in extra.items():
                writer.add_scalar(name, value, step)
            for summary in session_summaries(record):
                write_summary(writer, summary, step)


def announce(record: RunRecord) -> None:
    """How the run ended, on the console and in its log."""
    shown = ", ".join(
        f"{k} {record.metrics[k]:.4f}"
        for k in ("val/acc", "test/acc")
        if record.metrics.get(k) is not None
    )
    log.info("%s in %.1f s: %s", record.status, record.seconds or 0.0, shown)
    if record.divergence is not None:
        log.info("diverged: %s", record.divergence)
    folder = Path(record.output_dir).resolve()
    log.info("run folder: %s", folder)
    log.info("TensorBoard: tensorboard --logdir %s", folder)
