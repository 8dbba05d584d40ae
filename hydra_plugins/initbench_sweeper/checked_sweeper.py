"""A sweep is checked before its first run: every job's config is composed and its values
checked (``runs.validate``); a bad one stops the sweep, with one line per bad job, before any
run starts or its folder is made. Hydra's basic sweeper checks only that each batch composes,
batch by batch, so a bad value in the last job showed after every other run had trained."""

import copy
from collections.abc import Callable, Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, open_dict


class SweepConfigError(CompactHydraException):
    """Some jobs of a sweep have bad values; Hydra prints this message alone."""


class CheckedSweeper(BasicSweeper):
    """Hydra's basic sweeper, with every job of every batch checked before the first."""

    def sweep(self, arguments: list[str]) -> Any:
        params = self._parse_config() + list(arguments)  # as BasicSweeper.sweep reads them
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = self.split_arguments(parser.parse_overrides(params), self.max_batch_size)
        self._check([job for batch in batches for job in batch])
        return super().sweep(arguments)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Nothing: ``sweep`` checked every job already (composing each one again would
        only cost time)."""

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
            return "; ".join(_with_hydra_config(config, number, problems)) or None
        except Exception as error:  # Hydra's or OmegaConf's reason, as this job's line
            return " ".join(short_message(error).split())


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
