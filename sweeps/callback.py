"""The Hydra callback that ends every multirun with its report, and the sweep's exit status."""

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeps.report import write_report

log = logging.getLogger(__name__)
UNFINISHED = ("failed", "incomplete", "missing")


class SweepReport(Callback):
    """At the end of a multirun: write the report (``sweeps.report``), log it, and count the
    runs that failed or never ended. ``python train.py -m ...`` exits with that count
    (``exit_status``): a callback that called ``sys.exit`` would cut Hydra's own end short."""

    failed_runs = 0  # of the last multirun in this process

    def __init__(self, threshold: float = 0.9) -> None:
        self.threshold = threshold

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = write_report(sweep_dir, self.threshold)
        summary = sweep_dir / "summary.md"
        log.info("sweep summary (%s):\n%s", summary, summary.read_text())
        log.info("compare the runs: tensorboard --logdir %s", sweep_dir.resolve())
        failed = sum(row["status"] in UNFINISHED for row in rows)
        SweepReport.failed_runs = failed
        if failed:
            log.error("%d of %d runs failed; see %s", failed, len(rows), summary)


def exit_status() -> int:
    """The number of runs the last multirun lost (0 when all finished or diverged), capped
    at 255, the largest exit status."""
    return min(SweepReport.failed_runs, 255)
