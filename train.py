"""Train one model with one init strategy and log everything to TensorBoard.

python train.py init=kaiming model=resnet
python train.py -m init=xavier_normal,kaiming_normal model=mlp,cnn seed=0,1,2

In Python: ``train.train(train.compose("model=cnn", "init=lsuv"))`` returns the run's record.
"""

import logging
import os
import sys
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from runs.compose import CONFIG_DIR, compose
from runs.preflight import preflight
from runs.single import build, train
from sweeps.callback import exit_status

__all__ = ["CONFIG_DIR", "build", "compose", "error_message", "main", "train"]

log = logging.getLogger("initbench")

# Lightning 2.6 calls a pytree API that torch >= 2.10 deprecates; harmless, and noise to users.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
# Lightning >= 2.6 advertises its cloud services on every run ("Tip: ... litlogger").
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(lambda record: "💡" not in str(record.msg))
# Errors a user can cause by a config value: shown as their message alone (the others, bugs,
# with their type and where to find the traceback).
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, MisconfigurationException)


def error_message(
    error: BaseException, where: str = "HYDRA_FULL_ERROR=1 shows the traceback"
) -> str:
    """What a user needs to read of ``error``: the message of a config mistake (unwrapped from
    Hydra's instantiation error), or a bug's type and message and where its traceback is."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, USER_ERRORS):
        return str(error)
    return f"{type(error).__name__}: {error} ({where})"


def _traceback_to_files(error: BaseException) -> None:
    """The failed run's traceback into its ``train.log`` (the file handlers of its job's
    logging), not the sweep's console."""
    record = log.makeRecord(
        log.name,
        logging.ERROR,
        __file__,
        0,
        "traceback",
        (),
        (type(error), error, error.__traceback__),
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """One run. A failure is one clear line and exit status 1 (``HYDRA_FULL_ERROR=1``: the
    traceback). In a sweep a failed run is logged and recorded, and the sweep goes on; its
    report lists it and the sweep's exit status counts it."""
    try:
        return train(cfg).metrics.get("val/acc")
    except Exception as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.error(
                "run failed: %s (recorded in metrics.json); the sweep goes on",
                error_message(error, where="its traceback is in its train.log"),
            )
            _traceback_to_files(error)
            return None
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error(error_message(error))
        sys.exit(1)


if __name__ == "__main__":
    problem = preflight(sys.argv[1:])  # a misspelt key or choice: one message, before Hydra's
    if problem:
        sys.exit(problem)
    main()
    sys.exit(exit_status())  # a sweep: the runs it lost (sweeps.callback)
