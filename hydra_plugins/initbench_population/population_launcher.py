"""``hydra/launcher=population``: the jobs of a sweep that can share a population train as one
(``population.groups``, ``population.run``); every other job runs as Hydra's basic launcher
runs it, with the reason logged.

A member is set up exactly as ``hydra.core.utils.run_job`` sets up a job (its HydraConfig, run
folder, ``.hydra/`` files, job logging, callbacks), then the population trains, then each
member gets its ``JobReturn`` (return value: ``val/acc``, as ``train.main`` returns), so Hydra's
sweeper and the multirun callbacks (the sweep report) see ordinary jobs.
"""

import copy
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    configure_log,
    env_override,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from runs.record import RunRecord

log = logging.getLogger(__name__)


@dataclass
class MemberJob:
    """A member after its set-up: its job config (``hydra`` included), the ``JobReturn`` so
    far, its resolved config and starting record (what ``train_population`` takes), and the
    file handler of its job log."""

    config: DictConfig
    job_return: JobReturn
    cfg: DictConfig
    record: RunRecord
    log_files: list[logging.FileHandler] = field(default_factory=list)


class PopulationLauncher(Launcher):
    """Runs a sweep's jobs as populations of at most ``max_members`` where their configs allow
    it, the others one after another in this process, as the basic launcher does."""

    def __init__(self, max_members: int = 32) -> None:
        self.max_members = max_members
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> list[JobReturn]:
        # Imported here: Hydra imports every plugin module at the start of every command.
        from population.groups import plan

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = [self._job_config(o, initial_job_idx + i) for i, o in enumerate(job_overrides)]
        batches = plan(configs, self.max_members)
        swept = _swept(job_overrides)
        alone = sum(batch.reason is not None for batch in batches)
        populations = len(batches) - alone
        counts = f"{len(configs) - alone} in {populations} population(s), {alone} alone"
        log.info(f"Launching {len(configs)} jobs locally: {counts}")
        returns: dict[int, JobReturn] = {}
        for batch in batches:
            jobs = [configs[i] for i in batch.jobs]
            shown = _values([job_overrides[i] for i in batch.jobs], swept)
            if batch.reason is None:
                log.info(f"population of {len(jobs)} runs: {shown}")
                returns.update(zip(batch.jobs, self._population(jobs)))
            else:
                log.info(f"#{jobs[0].hydra.job.num} runs alone: {shown} ({batch.reason})")
                returns[batch.jobs[0]] = self._alone(jobs[0])
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [returns[i] for i in range(len(configs))]

    def _job_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
        """The job's config as the basic launcher composes it."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = idx
            config.hydra.job.num = idx
        return config

    def _alone(self, config: DictConfig) -> JobReturn:
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )

    def _population(self, configs: list[DictConfig]) -> list[JobReturn]:
        """Set up each member as its own job, train them as one population, end each job."""
        members = [self._set_up(config) for config in configs]
        records = _train(members)
        return [self._end(member, record) for member, record in zip(members, records)]

    def _set_up(self, config: DictConfig) -> MemberJob:
        """What ``hydra.core.utils.run_job`` does before it calls the task function, and the
        member's resolved config and starting record, read while its HydraConfig is set."""
        from runs.lifecycle import start_record  # here: Hydra imports plugins on every command

        hydra_config = HydraConfig.instance()
        previous = hydra_config.cfg
        hydra_config.set_config(config)
        sweep = config.hydra.sweep
        output_dir = os.path.abspath(os.path.join(str(sweep.dir), str(sweep.subdir)))
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = output_dir
        hydra_config.set_config(config)
        try:
            task_cfg = copy.deepcopy(config)
            with read_write(task_cfg), open_dict(task_cfg):
                del task_cfg["hydra"]
            overrides = OmegaConf.to_container(config.hydra.overrides.task)
            job_return = JobReturn(
                overrides, cfg=task_cfg, hydra_cfg=copy.deepcopy(hydra_config.cfg)
            )
            job_return.working_dir = os.getcwd()
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            configure_log(config.hydra.job_logging, config.hydra.verbose)
            files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
            if config.hydra.output_subdir is not None:
                _save_configs(config, task_cfg, Path(output_dir, config.hydra.output_subdir))
            with env_override(config.hydra.job.env_set):
                self.hydra_context.callbacks.on_job_start(
                    config=config, task_function=self.task_function
                )
            cfg = copy.deepcopy(task_cfg)
            OmegaConf.resolve(cfg)  # ${hydra:...} as the member's own job: its init, its folder
            job_return.task_name = JobRuntime.instance().get("name")
            return MemberJob(config, job_return, cfg, start_record(cfg), files)
        finally:
            hydra_config.cfg = previous

    def _end(self, member: MemberJob, record: RunRecord) -> JobReturn:
        """The member's ``JobReturn`` (``train.main``'s return value: ``val/acc``, None for a
        failed run) and Hydra's end of its job."""
        job_return = member.job_return
        job_return.status = JobStatus.COMPLETED
        failed = record.status == "failed"
        job_return.return_value = None if failed else record.metrics.get("val/acc")
        hydra_config = HydraConfig.instance()
        previous = hydra_config.cfg
        hydra_config.set_config(member.config)
        try:
            for handler in logging.getLogger().handlers:
                handler.flush()
            self.hydra_context.callbacks.on_job_end(config=member.config, job_return=job_return)
        finally:
            hydra_config.cfg = previous
        return job_return


def _train(members: list[MemberJob]) -> list[RunRecord]:
    """Each member's ``metrics.json`` record. An error of the population as a whole is logged
    into every member's log; ``train_population`` records the members ``failed``, and the
    sweep goes on."""
    from population.run import train_population
    from runs.lifecycle import fail_record

    with _logging_to(members), env_override(members[0].config.hydra.job.env_set):
        try:
            return train_population([(m.cfg, m.record) for m in members])
        except Exception as error:
            log.exception("the population failed (recorded in each member's metrics.json)")
            for member in members:
                fail_record(member.record, error)
                member.record.write()
            return [member.record for member in members]


def _save_configs(config: DictConfig, task_cfg: DictConfig, folder: Path) -> None:
    """The job's ``.hydra/`` files, as ``run_job`` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    hydra_cfg = HydraConfig.instance().cfg
    for name, node in (
        ("config.yaml", task_cfg),
        ("hydra.yaml", hydra_cfg),
        ("overrides.yaml", config.hydra.overrides.task),
    ):
        (folder / name).write_text(OmegaConf.to_yaml(node), encoding="utf-8")


@contextmanager
def _logging_to(members: list[MemberJob]) -> Iterator[None]:
    """While the population trains, every member's job log gets its lines (the job logging
    configured last, the last member's, writes only its own file)."""
    root = logging.getLogger()
    sources = [h for m in members for h in m.log_files if h not in root.handlers]
    added = []
    for source in sources:
        handler = logging.FileHandler(source.baseFilename, mode="a", encoding=source.encoding)
        handler.setFormatter(source.formatter)
        handler.setLevel(source.level)
        root.addHandler(handler)
        added.append(handler)
    try:
        yield
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()


def _swept(job_overrides: Sequence[Sequence[str]]) -> list[str]:
    """The keys whose values differ between the jobs, in command-line order."""
    from sweeps.keys import varying_keys

    return varying_keys([filter_overrides(overrides) for overrides in job_overrides])


def _values(job_overrides: Sequence[Sequence[str]], keys: list[str]) -> str:
    """``init=xavier_normal,kaiming_normal; seed=0,1``: the jobs' values of ``keys``."""
    from sweeps.keys import as_dict

    values: dict[str, list[str]] = {key: [] for key in keys}
    for overrides in job_overrides:
        for key, value in as_dict(filter_overrides(overrides)).items():
            if key in values and value not in values[key]:
                values[key].append(value)
    return "; ".join(f"{key}={','.join(seen)}" for key, seen in values.items() if seen) or "-"
