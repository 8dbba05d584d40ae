"""A sweep is checked before its first run: every job's config is composed and its values
checked (``runs.validate``); a bad one stops the sweep, with one line per bad job, before any
run starts. Hydra's basic sweeper checks only that each batch composes, batch by batch, so a
bad value in the last job showed after every other run had trained."""

import copy
from collections.abc import Callable, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, open_dict


class SweepConfigError(CompactHydraException):
    """Some jobs of a sweep have bad values; Hydra prints this message alone."""


class CheckedSweeper(BasicSweeper):
    """Hydra's basic sweeper; before the first batch, every job of every batch is checked."""

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        if self.batch_index == 0:
            self._check([job for batch in self.overrides for job in batch])
        return super().get_job_batch()

    def _check(self, jobs: list[Sequence[str]]) -> None:
        lines = []
        for number, job in enumerate(jobs):
            problem = self._problem(list(job), number)
            if problem:
                lines.append(f"job {number} ({' '.join(job) or 'no overrides'}): {problem}")
        if lines:
            count = f"{len(lines)} of {len(jobs)} jobs have bad values; no run started"
            raise SweepConfigError("\n".join([count, *lines]))

    def _problem(self, job: list[str], number: int) -> str | None:
        """What is wrong with the job's config, in one line (None: nothing)."""
        from runs.preflight import short_message  # here: Hydra imports plugins at start-up
        from runs.validate import problems

        try:
            config = self.hydra_context.config_loader.load_sweep_config(self.config, job)
        except Exception as error:  # Hydra's reason: a choice or key this job cannot have
            return " ".join(short_message(error).split())
        return "; ".join(_with_hydra_config(config, number, problems)) or None


def _with_hydra_config(
    config: DictConfig, number: int, check: Callable[[DictConfig], list[str]]
) -> list[str]:
    """``check(config)`` while the job's Hydra config is current (the configs' ``${hydra:...}``
    and resolvers read it), with the job number it will run as."""
    config = copy.deepcopy(config)
    with open_dict(config.hydra.job):
        config.hydra.job.num = config.hydra.job.id = number
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(config)
    try:
        return check(config)
    finally:
        hydra_config.cfg = previous
